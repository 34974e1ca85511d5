// A generated key is `Id<Self>`: an `Id` of another model is a foreign key (`#[belongs_to]`).

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
}

#[derive(Model)]
pub struct Profile {
    #[key]
    pub id: Id<User>,
    pub bio: String,
}

fn main() {}
