// A user type implementing `orm_core::ColumnType` is a column type, plain or in an `Option`.

use orm_core::prelude::*;
use orm_core::{ColumnType, ConversionError, SqlType, ValueRef};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cents(i64);

impl ColumnType for Cents {
    const SQL_TYPE: SqlType = SqlType::I64;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::I64(self.0)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        i64::from_sql(value).map(Cents)
    }
}

#[derive(Model, Debug)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    pub price: Cents,
    pub discount: Option<Cents>,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<Product>()?;
    let p = db.add(Product::new(Cents(250), None));
    db.commit()?;
    assert_eq!(db[p].price, Cents(250));
    Ok(())
}
