// `#[belongs_to(back_populates = "..")]` must name the parent's `#[has_many]` field, not a column.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "name")]
    pub user: Id<User>,
}

fn main() {}
