// A column's type must implement `orm_core::ColumnType`; `std::time::Duration` does not.

use orm_core::prelude::*;

#[derive(Model)]
pub struct Job {
    #[key]
    pub id: Id<Job>,
    pub timeout: std::time::Duration,
}

fn main() {}
