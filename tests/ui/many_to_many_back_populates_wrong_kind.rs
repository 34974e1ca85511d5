// The other side of a many-to-many is a many-to-many through the same table, not a
// `#[has_many]` of children.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[has_many(through = "post_tags", back_populates = "notes")]
    pub tags: HasMany<Tag>,
}

#[derive(Model)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    #[has_many(back_populates = "tag")]
    pub notes: HasMany<Note>,
}

#[derive(Model)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    #[belongs_to(back_populates = "notes")]
    pub tag: Id<Tag>,
}

fn main() {}
