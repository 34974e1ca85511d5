// A `#[has_one]` cannot go `through` an association table: a many-to-many is a `HasMany`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_one(through = "post_tags")]
    pub tag: HasOne<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
