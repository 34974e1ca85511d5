// A field is one kind of relationship.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    #[has_one(back_populates = "account")]
    #[has_many(back_populates = "account")]
    pub profile: HasOne<Profile>,
}

#[derive(Model)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    #[belongs_to(back_populates = "profile")]
    pub account: Id<Account>,
}

fn main() {}
