// `foreign_key` names a column of a many-to-many's association table: without `through`
// there is none.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(back_populates = "post", foreign_key = "post_id")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    #[belongs_to(back_populates = "tags")]
    pub post: Id<Post>,
}

fn main() {}
