// `#[has_many(back_populates = "..")]` must name the child's `#[belongs_to]` pointing at this
// model, not a `#[belongs_to]` pointing at another parent.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "shop")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Shop {
    #[key]
    pub id: Id<Shop>,
    #[has_many(back_populates = "shop")]
    pub products: HasMany<Product>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
    #[belongs_to(back_populates = "products")]
    pub shop: Id<Shop>,
}

fn main() {}
