// The `Id<Parent>` of a `#[belongs_to]` must name a model.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to]
    pub owner: Id<String>,
}

fn main() {}
