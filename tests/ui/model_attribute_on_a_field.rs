// `#[model(..)]` goes on the struct.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[model(table = "names")]
    pub name: String,
}

fn main() {}
