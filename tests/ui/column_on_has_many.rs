// A `#[has_many]` field has no column, so it takes no `#[column(..)]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    #[column(name = "product_ids")]
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
