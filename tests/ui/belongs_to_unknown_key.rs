// `#[belongs_to(..)]` takes only `back_populates = "..."`.

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
    #[belongs_to(on_delete = "cascade")]
    pub user: Id<User>,
}

fn main() {}
