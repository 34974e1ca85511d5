// `#[key]` takes no arguments.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key(generated)]
    pub id: Id<User>,
}

fn main() {}
