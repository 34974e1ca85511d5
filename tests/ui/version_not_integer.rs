// `#[version]` counts updates: an integer field (`i64` or `i32`), not text.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Page {
    #[key]
    pub id: Id<Page>,
    #[version]
    pub version: String,
}

fn main() {}
