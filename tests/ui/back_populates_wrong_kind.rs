// `#[has_many(back_populates = "..")]` must name the child's `#[belongs_to]`, not one of its
// own `#[has_many]` fields.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "parts")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
    #[has_many(back_populates = "product")]
    pub parts: HasMany<Part>,
}

#[derive(Model)]
pub struct Part {
    #[key]
    pub id: Id<Part>,
    #[belongs_to(back_populates = "parts")]
    pub product: Id<Product>,
}

fn main() {}
