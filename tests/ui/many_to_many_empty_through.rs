// The association table needs a name.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
