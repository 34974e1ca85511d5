// `#[version]` takes no arguments (rows start at 1).

use orm_core::prelude::*;

#[derive(Model)]
pub struct Page {
    #[key]
    pub id: Id<Page>,
    #[version(start = 0)]
    pub version: i64,
}

fn main() {}
