// `#[has_many]` goes on a `HasMany<Child>` field, not a `Vec`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub products: Vec<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to]
    pub user: Id<User>,
}

fn main() {}
