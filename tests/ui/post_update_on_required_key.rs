// `post_update` inserts the key `NULL` first, so the key must be nullable.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
}

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(post_update)]
    pub user: Id<User>,
}

fn main() {}
