// The default table name (the struct's name in snake_case) is checked too.

use orm_core::prelude::*;

#[derive(Model)]
pub struct AModelWhoseNameIsMuchLongerThanPostgresKeepsForOneIdentifierAtAll {
    #[key]
    pub id: Id<AModelWhoseNameIsMuchLongerThanPostgresKeepsForOneIdentifierAtAll>,
}

fn main() {}
