// A model cannot be generic: each table is its own struct.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Setting<T> {
    #[key]
    pub id: Id<Setting<T>>,
    pub value: T,
}

fn main() {}
