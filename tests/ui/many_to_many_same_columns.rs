// A model linked to itself needs two column names: by default both would be `person_id`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Person {
    #[key]
    pub id: Id<Person>,
    #[has_many(through = "follows")]
    pub following: HasMany<Person>,
}

fn main() {}
