// `on_delete` is given once.

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
    #[belongs_to(back_populates = "products", on_delete = "cascade", on_delete = "restrict")]
    pub user: Id<User>,
}

fn main() {}
