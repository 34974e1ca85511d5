// `const_name = "new"` would clash with the generated constructor.
use orm_core::prelude::*;

#[derive(Model, Debug)]
struct Post {
    #[key]
    id: Id<Post>,
    #[column(const_name = "new")]
    title: String,
}

fn main() {}
