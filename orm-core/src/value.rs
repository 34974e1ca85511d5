//! SQL values and the conversions between Rust field types and them.

use std::fmt;

/// The SQL type of a column, before a dialect names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// `BOOLEAN` (an integer 0/1 on SQLite).
    Bool,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Blob,
}

/// An owned SQL value: a statement parameter, or a column as it was last read or written.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 16-bit integer.
    I16(i16),
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A borrowed SQL value: what a model hands to a statement without copying its strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 16-bit integer.
    I16(i16),
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl Value {
    /// Borrows this value.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(v) => ValueRef::Bool(*v),
            Value::I16(v) => ValueRef::I16(*v),
            Value::I32(v) => ValueRef::I32(*v),
            Value::I64(v) => ValueRef::I64(*v),
            Value::F32(v) => ValueRef::F32(*v),
            Value::F64(v) => ValueRef::F64(*v),
            Value::Text(v) => ValueRef::Text(v),
            Value::Blob(v) => ValueRef::Blob(v),
        }
    }
}

impl ValueRef<'_> {
    /// Copies this value into an owned [`Value`].
    pub fn into_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(v) => Value::Bool(v),
            ValueRef::I16(v) => Value::I16(v),
            ValueRef::I32(v) => Value::I32(v),
            ValueRef::I64(v) => Value::I64(v),
            ValueRef::F32(v) => Value::F32(v),
            ValueRef::F64(v) => Value::F64(v),
            ValueRef::Text(v) => Value::Text(v.to_owned()),
            ValueRef::Blob(v) => Value::Blob(v.to_owned()),
        }
    }

    /// Whether two values would be stored the same; floats compare by bits so that a NaN that
    /// did not change is not written again.
    pub fn same_as(self, other: ValueRef<'_>) -> bool {
        match (self, other) {
            (ValueRef::F32(a), ValueRef::F32(b)) => a.to_bits() == b.to_bits(),
            (ValueRef::F64(a), ValueRef::F64(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Bool(_) => "a boolean",
            ValueRef::I16(_) | ValueRef::I32(_) | ValueRef::I64(_) => "an integer",
            ValueRef::F32(_) | ValueRef::F64(_) => "a float",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "a blob",
        }
    }
}

/// The most bytes of a text value that its display shows (error messages stay readable).
const SHOWN_TEXT: usize = 100;

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Text(v) if v.len() > SHOWN_TEXT => {
                let mut end = SHOWN_TEXT;
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                write!(f, "{:?}... ({} bytes)", &v[..end], v.len())
            }
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Blob(v) => write!(f, "<{} bytes>", v.len()),
        }
    }
}

/// Why a database value could not become a field's Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError(pub String);

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn mismatch<T>(expected: &str, got: ValueRef<'_>) -> Result<T, ConversionError> {
    Err(ConversionError(format!(
        "expected {expected}, found {}",
        got.kind()
    )))
}

/// A Rust type that can be stored in one column.
///
/// Implemented for `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `f32`, `f64`, `bool`, `String`,
/// `Vec<u8>` and `Option<T>` of each (a nullable column). Implement it for your own type to
/// store it in a column:
///
/// ```
/// use orm_core::{ColumnType, ConversionError, SqlType, ValueRef};
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Cents(i64);
///
/// impl ColumnType for Cents {
///     const SQL_TYPE: SqlType = SqlType::I64;
///     fn to_sql(&self) -> ValueRef<'_> {
///         ValueRef::I64(self.0)
///     }
///     fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
///         i64::from_sql(value).map(Cents)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported column type",
    label = "unsupported column type",
    note = "supported column types: i16, i32, i64, u8, u16, u32, f32, f64, bool, String, Vec<u8>, and Option<T> of each",
    note = "to store your own type, implement `orm_core::ColumnType` for it"
)]
pub trait ColumnType: Sized {
    /// The SQL type of the column.
    const SQL_TYPE: SqlType;
    /// Whether the column accepts `NULL` (true for `Option<T>`).
    const NULLABLE: bool = false;
    /// The value to bind for this field.
    fn to_sql(&self) -> ValueRef<'_>;
    /// Reads the field back from a column value.
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError>;
}

fn int_of(value: ValueRef<'_>) -> Result<i64, ConversionError> {
    match value {
        ValueRef::I16(v) => Ok(v.into()),
        ValueRef::I32(v) => Ok(v.into()),
        ValueRef::I64(v) => Ok(v),
        ValueRef::Bool(v) => Ok(v.into()),
        other => mismatch("an integer", other),
    }
}

macro_rules! int_column {
    ($($ty:ty => $sql:ident($wide:ty)),* $(,)?) => {$(
        impl ColumnType for $ty {
            const SQL_TYPE: SqlType = SqlType::$sql;
            fn to_sql(&self) -> ValueRef<'_> {
                ValueRef::$sql(<$wide>::from(*self))
            }
            fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
                let v = int_of(value)?;
                <$ty>::try_from(v).map_err(|_| {
                    ConversionError(format!("{v} is out of range for {}", stringify!($ty)))
                })
            }
        }
    )*};
}

int_column! {
    i16 => I16(i16),
    i32 => I32(i32),
    i64 => I64(i64),
    u8 => I16(i16),
    u16 => I32(i32),
    u32 => I64(i64),
}

impl ColumnType for bool {
    const SQL_TYPE: SqlType = SqlType::Bool;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Bool(*self)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::Bool(v) => Ok(v),
            other => match int_of(other)? {
                0 => Ok(false),
                1 => Ok(true),
                v => Err(ConversionError(format!("{v} is not a boolean"))),
            },
        }
    }
}

impl ColumnType for f64 {
    const SQL_TYPE: SqlType = SqlType::F64;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::F64(*self)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::F64(v) => Ok(v),
            ValueRef::F32(v) => Ok(v.into()),
            ValueRef::I16(_) | ValueRef::I32(_) | ValueRef::I64(_) => Ok(int_of(value)? as f64),
            other => mismatch("a float", other),
        }
    }
}

impl ColumnType for f32 {
    const SQL_TYPE: SqlType = SqlType::F32;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::F32(*self)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::F32(v) => Ok(v),
            // SQLite stores every float as a double; narrowing is the stored value's precision.
            ValueRef::F64(v) => Ok(v as f32),
            ValueRef::I16(_) | ValueRef::I32(_) | ValueRef::I64(_) => Ok(int_of(value)? as f32),
            other => mismatch("a float", other),
        }
    }
}

impl ColumnType for String {
    const SQL_TYPE: SqlType = SqlType::Text;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::Text(v) => Ok(v.to_owned()),
            other => mismatch("text", other),
        }
    }
}

impl ColumnType for Vec<u8> {
    const SQL_TYPE: SqlType = SqlType::Blob;
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::Blob(v) => Ok(v.to_owned()),
            other => mismatch("a blob", other),
        }
    }
}

impl<T: ColumnType> ColumnType for Option<T> {
    const SQL_TYPE: SqlType = T::SQL_TYPE;
    const NULLABLE: bool = true;
    fn to_sql(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.to_sql(),
            None => ValueRef::Null,
        }
    }
    fn from_sql(value: ValueRef<'_>) -> Result<Self, ConversionError> {
        match value {
            ValueRef::Null => Ok(None),
            v => T::from_sql(v).map(Some),
        }
    }
}

/// Converts a Rust value into a statement parameter (used by filters).
pub trait IntoValue {
    /// The owned SQL value.
    fn into_value(self) -> Value;
}

impl<C: ColumnType> IntoValue for C {
    fn into_value(self) -> Value {
        self.to_sql().into_owned()
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_check_range() {
        assert_eq!(u8::from_sql(ValueRef::I64(255)), Ok(255));
        assert!(u8::from_sql(ValueRef::I64(256)).is_err());
        assert_eq!(
            u32::from_sql(ValueRef::I64(4_000_000_000)),
            Ok(4_000_000_000)
        );
        assert_eq!(7u16.to_sql(), ValueRef::I32(7));
    }

    #[test]
    fn option_maps_null() {
        assert_eq!(Option::<String>::from_sql(ValueRef::Null), Ok(None));
        assert!(String::from_sql(ValueRef::Null).is_err());
        const { assert!(<Option<i64> as ColumnType>::NULLABLE) };
    }

    #[test]
    fn nan_is_the_same_as_itself() {
        assert!(ValueRef::F64(f64::NAN).same_as(ValueRef::F64(f64::NAN)));
        assert!(!ValueRef::F64(1.0).same_as(ValueRef::F64(2.0)));
    }
}
