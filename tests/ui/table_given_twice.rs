// The table is named once.

use orm_core::prelude::*;

#[derive(Model)]
#[model(table = "people", table = "persons")]
pub struct Person {
    #[key]
    pub id: Id<Person>,
}

fn main() {}
