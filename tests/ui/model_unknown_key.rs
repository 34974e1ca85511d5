// `#[model(..)]` accepts only `table = "..."`.

use orm_core::prelude::*;

#[derive(Model)]
#[model(table = "users", schema = "public")]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
}

fn main() {}
