// `Option<T>` is a nullable column only if `T` is a column type; `char` is not one.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Grade {
    #[key]
    pub id: Id<Grade>,
    pub letter: Option<char>,
}

fn main() {}
