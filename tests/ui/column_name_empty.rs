// An empty column name is refused where it is written.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[column(name = "")]
    pub name: String,
}

fn main() {}
