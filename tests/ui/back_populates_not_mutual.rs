// The two sides of a relationship must name each other: `Product::owner` names
// `User::products`, whose `back_populates` is `user`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
    #[belongs_to(back_populates = "products")]
    pub owner: Id<User>,
}

fn main() {}
