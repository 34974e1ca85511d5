// `#[model(table = "user")]` names a table after an SQL keyword; it is quoted.

use orm_core::prelude::*;

#[derive(Model, Debug)]
#[model(table = "user")]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    #[column(name = "order", unique, index)]
    pub position: i64,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<Account>()?;
    db.add(Account::new(1));
    db.commit()?;
    assert_eq!(db.all::<Account>()?.len(), 1);
    Ok(())
}
