// Deleting either end of a many-to-many deletes its links, never the other end:
// `cascade_delete` does not apply.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "post_tags", cascade_delete)]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
