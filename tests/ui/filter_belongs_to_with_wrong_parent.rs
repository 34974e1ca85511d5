// A belongs_to column takes a handle or id of its parent model only.
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
    let _ = Post::author.eq(Id::<Post>::new(1));
    let _ = Post::id.eq(Id::<Author>::new(1));
}
