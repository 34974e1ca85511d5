// `#[belongs_to(back_populates = "..")]` must name the parent's `#[has_many]` of this model,
// not a `#[has_many]` of another child type.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
    #[has_many(back_populates = "user")]
    pub orders: HasMany<Order>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

#[derive(Model)]
pub struct Order {
    #[key]
    pub id: Id<Order>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

fn main() {}
