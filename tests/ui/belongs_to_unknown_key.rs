// `#[belongs_to(..)]` takes `back_populates` and `on_delete`; the cascade flags go on the
// parent's `#[has_many]`.

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
    #[belongs_to(back_populates = "products", cascade_delete)]
    pub user: Id<User>,
}

fn main() {}
