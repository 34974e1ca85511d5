// The association table's name must fit the 63 bytes PostgreSQL keeps.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "posts_and_their_tags_linked_together_in_one_table_with_a_long_name")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
