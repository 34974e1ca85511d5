// `#[has_many(back_populates = "..")]` must name the child's `#[belongs_to]` field, not a column.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "name")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    pub name: String,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

fn main() {}
