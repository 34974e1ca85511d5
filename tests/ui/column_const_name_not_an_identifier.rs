// `const_name` names the typed column constant: it must be an identifier.
use orm_core::prelude::*;

#[derive(Model, Debug)]
struct Post {
    #[key]
    id: Id<Post>,
    #[column(const_name = "the title")]
    title: String,
}

fn main() {}
