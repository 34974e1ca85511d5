// A key cannot be `Option`: it is never `NULL`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub email: Option<String>,
}

fn main() {}
