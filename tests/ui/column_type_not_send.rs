// A session can move to another thread, so every model is `Send`: a column type that is not
// (it holds an `Rc`) is refused where the model derives `Model`.

use orm_core::prelude::*;
use std::rc::Rc;

#[derive(Debug)]
pub struct Shared(Rc<str>);

impl orm_core::ColumnType for Shared {
    const SQL_TYPE: orm_core::SqlType = orm_core::SqlType::Text;
    fn to_sql(&self) -> orm_core::ValueRef<'_> {
        orm_core::ValueRef::Text(&self.0)
    }
    fn from_sql(value: orm_core::ValueRef<'_>) -> Result<Self, orm_core::ConversionError> {
        String::from_sql(value).map(|s| Shared(s.into()))
    }
}

#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    pub text: Shared,
}

fn main() {}
