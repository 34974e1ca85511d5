// A model needs exactly one `#[key]` field; this one has none.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    pub id: i64,
    pub name: String,
}

fn main() {}
