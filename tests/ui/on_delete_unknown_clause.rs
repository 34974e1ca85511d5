// `on_delete` names one of the clauses SQL has.

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
    #[belongs_to(back_populates = "products", on_delete = "nullify")]
    pub user: Option<Id<User>>,
}

fn main() {}
