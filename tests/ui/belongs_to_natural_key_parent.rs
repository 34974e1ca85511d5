// A `#[belongs_to]` parent must have a generated `Id<Self>` key, not a natural key.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Country {
    #[key]
    pub code: String,
    #[has_many(back_populates = "country")]
    pub cities: HasMany<City>,
}

#[derive(Model)]
pub struct City {
    #[key]
    pub id: Id<City>,
    #[belongs_to(back_populates = "cities")]
    pub country: Id<Country>,
}

fn main() {}
