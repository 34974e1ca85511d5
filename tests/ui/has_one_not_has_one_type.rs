// `#[has_one]` goes on a `HasOne<Child>` field.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    #[has_one(back_populates = "account")]
    pub profile: HasMany<Profile>,
}

#[derive(Model)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    #[belongs_to]
    pub account: Id<Account>,
}

fn main() {}
