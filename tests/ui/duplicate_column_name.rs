// Two fields cannot share a column name, including one given by `#[column(name = "..")]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
    #[column(name = "name")]
    pub display_name: String,
}

fn main() {}
