// `#[has_many(..)]` takes `back_populates` and the cascade flags; `on_delete` goes on the
// child's `#[belongs_to]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user", on_delete = "cascade")]
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
