// `through` is given once.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "post_tags", through = "tags_of_posts")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
}

fn main() {}
