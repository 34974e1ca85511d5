//! Plain column values, read without objects: `(Post::id, Post::title)` gives
//! `(Id<Post>, String)` rows.

use super::filter::fk_column;
use super::filter::Column;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::model::{Model, ModelMeta, RawRow};
use crate::session::BelongsTo;
use crate::value::{ColumnType, ConversionError, SqlType, ValueRef};

/// A type a column's value is read as: any [`ColumnType`], or an `Id` (`Option<Id>` for a
/// nullable key).
pub trait ColumnValue: Sized {
    /// The SQL type it is read as.
    #[doc(hidden)]
    const SQL_TYPE: SqlType;
    /// The value, from what the database returned.
    #[doc(hidden)]
    fn from_value(value: ValueRef<'_>) -> Result<Self, ConversionError>;
}

impl<T: ColumnType> ColumnValue for T {
    const SQL_TYPE: SqlType = T::SQL_TYPE;
    fn from_value(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        T::from_sql(value)
    }
}
impl<P> ColumnValue for Id<P> {
    const SQL_TYPE: SqlType = SqlType::I64;
    fn from_value(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        i64::from_sql(value).map(Id::new)
    }
}
impl<P> ColumnValue for Option<Id<P>> {
    const SQL_TYPE: SqlType = SqlType::I64;
    fn from_value(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        Option::<i64>::from_sql(value).map(|v| v.map(Id::new))
    }
}

/// Columns of model `M` to read as plain values: a [`Column`], a `#[belongs_to]`
/// descriptor (read as `Option<Id<Parent>>`), or a tuple of up to eight of them.
pub trait Selection<M> {
    /// What a row becomes.
    type Row;
    /// The columns read, in order.
    #[doc(hidden)]
    fn columns(&self) -> Vec<usize>;
    /// Decodes the row's columns from index `at` on, moving `at` past them.
    #[doc(hidden)]
    fn decode(&self, row: &dyn RawRow, meta: &ModelMeta, at: &mut usize) -> Result<Self::Row>;
}

/// Column `index` of `meta`, read at position `at` of a row.
fn decode_one<V: ColumnValue>(
    row: &dyn RawRow,
    meta: &ModelMeta,
    index: usize,
    at: &mut usize,
) -> Result<V> {
    let error = |message: String| Error::Decode {
        model: meta.name,
        field: meta.columns[index].field,
        message,
    };
    let value = row.value(*at, V::SQL_TYPE).map_err(error)?;
    *at += 1;
    V::from_value(value).map_err(|e| error(e.0))
}

impl<M, V: ColumnValue> Selection<M> for Column<M, V> {
    type Row = V;
    fn columns(&self) -> Vec<usize> {
        vec![self.index()]
    }
    fn decode(&self, row: &dyn RawRow, meta: &ModelMeta, at: &mut usize) -> Result<V> {
        decode_one(row, meta, self.index(), at)
    }
}

impl<C: Model, P> Selection<C> for BelongsTo<C, P> {
    type Row = Option<Id<P>>;
    fn columns(&self) -> Vec<usize> {
        vec![fk_column(C::META, self.rel)]
    }
    fn decode(&self, row: &dyn RawRow, meta: &ModelMeta, at: &mut usize) -> Result<Self::Row> {
        decode_one(row, meta, fk_column(meta, self.rel), at)
    }
}

macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        impl<M, $($t: Selection<M>),+> Selection<M> for ($($t,)+) {
            type Row = ($($t::Row,)+);
            fn columns(&self) -> Vec<usize> {
                let mut out = Vec::new();
                $(out.extend(self.$i.columns());)+
                out
            }
            fn decode(&self, row: &dyn RawRow, meta: &ModelMeta, at: &mut usize) -> Result<Self::Row> {
                Ok(($(self.$i.decode(row, meta, at)?,)+))
            }
        }
    };
}
tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
