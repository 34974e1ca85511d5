// The forms a many-to-many takes: both sides naming each other, one side only (no
// `back_populates`), a model linked to itself through named columns, a natural key at one end,
// and types written through a path.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "post_tags", back_populates = "posts")]
    pub tags: HasMany<Tag>,
    #[has_many(through = "post_topics")]
    pub topics: orm_core::HasMany<Topic>,
    #[has_many(through = "see_also", foreign_key = "from_id", target_foreign_key = "to_id")]
    pub related: HasMany<Self>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    #[has_many(through = "post_tags", back_populates = "tags")]
    pub posts: HasMany<Post>,
}

#[derive(Model)]
pub struct Topic {
    #[key]
    pub code: String,
}

fn main() {}
