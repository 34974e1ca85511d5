// `#[has_one]` names the child's `#[belongs_to]` field with `back_populates`.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    #[has_one]
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
