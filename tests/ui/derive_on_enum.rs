// `#[derive(Model)]` goes on a struct with named fields, not an enum.

use orm_core::prelude::*;

#[derive(Model)]
pub enum Status {
    Active,
    Disabled,
}

fn main() {}
