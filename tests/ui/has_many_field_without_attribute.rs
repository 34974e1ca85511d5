// A `HasMany` field needs `#[has_many(back_populates = "..")]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to]
    pub user: Id<User>,
}

fn main() {}
