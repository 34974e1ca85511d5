// The key is not the version: `#[version]` goes on a plain integer column of its own.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Page {
    #[key]
    #[version]
    pub code: i64,
    pub title: String,
}

fn main() {}
