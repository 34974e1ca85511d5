// `#[derive(Model)]` needs named fields: each field is a column with that name.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User(Id<User>, String);

fn main() {}
