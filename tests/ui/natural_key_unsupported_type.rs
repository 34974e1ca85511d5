// A natural key must be an integer, `bool`, `String` or `Vec<u8>`; a float is not a key.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Reading {
    #[key]
    pub value: f64,
    pub label: String,
}

fn main() {}
