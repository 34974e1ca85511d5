// A field's column options go in one `#[column(..)]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[column(unique)]
    #[column(index)]
    pub name: String,
}

fn main() {}
