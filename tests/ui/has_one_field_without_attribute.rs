// A `HasOne` field needs `#[has_one(back_populates = "..")]`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    pub profile: HasOne<Profile>,
}

#[derive(Model)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    #[belongs_to]
    pub account: Id<Account>,
}

fn main() {}
