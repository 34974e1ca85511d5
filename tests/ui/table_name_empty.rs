// An empty table name is refused where it is written.

use orm_core::prelude::*;

#[derive(Model)]
#[model(table = "")]
pub struct Person {
    #[key]
    pub id: Id<Person>,
}

fn main() {}
