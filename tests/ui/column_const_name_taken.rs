// Two typed column constants cannot have one name.
use orm_core::prelude::*;

#[derive(Model, Debug)]
struct Post {
    #[key]
    id: Id<Post>,
    title: String,
    #[column(const_name = "title")]
    subtitle: String,
}

fn main() {}
