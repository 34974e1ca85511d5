// A field is only one of `#[key]`, `#[belongs_to]` and `#[has_many]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
}

#[derive(Model)]
pub struct Profile {
    #[key]
    #[belongs_to]
    pub user: Id<User>,
}

fn main() {}
