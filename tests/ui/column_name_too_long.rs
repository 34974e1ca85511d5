// Column names, given or derived from the field (a foreign key's `_id` included), must fit the
// 63 bytes PostgreSQL keeps.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub a_field_name_that_is_much_longer_than_postgres_keeps_for_a_column: String,
    #[column(name = "a_column_name_that_is_much_longer_than_postgres_keeps_for_a_column")]
    pub short: String,
    #[belongs_to]
    pub a_parent_field_whose_foreign_key_column_is_63_bytes_long_with_id: Option<Id<User>>,
}

fn main() {}
