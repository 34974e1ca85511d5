// An `Id` field is either this model's `#[key]` or a `#[belongs_to]` foreign key.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    pub owner: Id<User>,
}

fn main() {}
