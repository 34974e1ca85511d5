// `#[key]`, `#[column]`, `#[belongs_to]` and `#[has_many]` go on fields, not on the struct.

use orm_core::prelude::*;

#[derive(Model)]
#[column(name = "users")]
pub struct User {
    #[key]
    pub id: Id<User>,
}

fn main() {}
