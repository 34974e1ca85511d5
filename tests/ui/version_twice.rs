// One `#[version]` per model.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Page {
    #[key]
    pub id: Id<Page>,
    #[version]
    pub version: i64,
    #[version]
    pub revision: i64,
}

fn main() {}
