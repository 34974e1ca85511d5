// `#[belongs_to]` is written once on its field.

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
    #[belongs_to]
    #[belongs_to]
    pub user: Id<User>,
}

fn main() {}
