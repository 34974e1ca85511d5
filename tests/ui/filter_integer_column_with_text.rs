// An integer column compared with text does not compile.
use orm_core::prelude::*;

#[derive(Model, Debug)]
struct Author {
    #[key]
    id: Id<Author>,
    name: String,
    #[has_many(back_populates = "author")]
    posts: HasMany<Post>,
}

#[derive(Model, Debug)]
struct Post {
    #[key]
    id: Id<Post>,
    title: String,
    stars: i32,
    #[belongs_to(back_populates = "posts")]
    author: Id<Author>,
}

fn main() {
    let _ = Post::stars.gt("five");
}
