// `#[has_many]` must say which field of the child points back: `back_populates = "field"`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many]
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
