// `#[key]` is written once on its field.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    #[key]
    pub id: Id<User>,
}

fn main() {}
