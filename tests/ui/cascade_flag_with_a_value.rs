// The cascade flags take no value.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user", cascade_delete = true)]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

fn main() {}
