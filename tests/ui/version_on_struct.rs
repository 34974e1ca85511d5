// `#[version]` goes on a field, not on the struct.

use orm_core::prelude::*;

#[derive(Model)]
#[version]
pub struct Page {
    #[key]
    pub id: Id<Page>,
    pub version: i64,
}

fn main() {}
