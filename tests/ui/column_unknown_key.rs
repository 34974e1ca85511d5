// `#[column(..)]` accepts only `name = "..."`, `unique` and `index`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[column(nullable)]
    pub name: String,
}

fn main() {}
