// A filter on one model's columns cannot filter another model's query.
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
    let mut db = Session::open_in_memory().unwrap();
    let _ = db.query::<Author>().filter(Post::title.eq("x")).all();
    let _ = db.query::<Author>().order_by(Post::title).all();
}
