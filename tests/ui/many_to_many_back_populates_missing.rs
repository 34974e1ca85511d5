// `back_populates` on a many-to-many names a field of the other model that exists.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "post_tags", back_populates = "postings")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
