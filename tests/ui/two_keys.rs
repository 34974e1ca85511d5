// A model has exactly one `#[key]` field; composite keys are not supported.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Membership {
    #[key]
    pub user_id: i64,
    #[key]
    pub group_id: i64,
}

fn main() {}
