// The two sides of a relationship must name each other: `User::favourites` names
// `Product::user`, whose `back_populates` is `products`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
    #[has_many(back_populates = "user")]
    pub favourites: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

fn main() {}
