// `HasMany<Child>` holds a model: `Child` must derive `Model`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub emails: HasMany<String>,
}

fn main() {}
