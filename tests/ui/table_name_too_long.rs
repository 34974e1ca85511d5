// A table name longer than the 63 bytes PostgreSQL keeps would silently name the same table as
// another model whose name starts the same way.

use orm_core::prelude::*;

#[derive(Model)]
#[model(table = "a_table_name_that_is_much_longer_than_postgres_keeps_for_one_identifier")]
pub struct Long {
    #[key]
    pub id: Id<Long>,
}

fn main() {}
