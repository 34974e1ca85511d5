//! An ORM for object graphs: models are plain structs with `#[derive(Model)]`, relationships
//! are `#[has_many]` and `#[belongs_to]`, and a [`Session`] saves a whole graph of new and
//! changed objects in one flush, parents first, filling in every foreign key.
//!
//! It runs on SQLite (bundled) and PostgreSQL: [`Session::connect`] takes
//! `postgres://user@host/db`, `sqlite://file.db`, `sqlite::memory:` or a file path.
//!
//! ```
//! use orm_core::prelude::*;
//!
//! #[derive(Model, Debug)]
//! #[model(table = "user")]
//! pub struct User {
//!     #[key]
//!     pub id: Id<User>,
//!     pub name: String,
//!     #[has_many(back_populates = "user")]
//!     pub products: HasMany<Product>,
//! }
//!
//! #[derive(Model, Debug)]
//! pub struct Product {
//!     #[key]
//!     pub id: Id<Product>,
//!     pub name: String,
//!     #[belongs_to(back_populates = "products")]
//!     pub user: Id<User>,
//! }
//!
//! # fn main() -> orm_core::Result<()> {
//! let mut db = Session::open_in_memory()?;
//! db.create_all::<(User, Product)>()?;
//! let dave = db.add(User::new("Dave"));
//! // The id is pending: the flush resolves it.
//! let e = db.add(Product::new("C", db[dave].id));
//! assert_eq!(db[dave].products, [e]);
//! db.commit()?;
//! assert_eq!(db[e].user, db[dave].id);
//! assert_eq!(db[e].user, 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

// Lets the derive's `::orm_core::` paths work in this crate's own tests.
extern crate self as orm_core;

pub mod backend;
pub mod error;
pub(crate) mod flush;
pub mod id;
pub mod model;
#[cfg(feature = "pool")]
pub mod pool;
pub mod query;
pub mod schema;
pub mod session;
pub mod sql;
pub mod value;

#[cfg(feature = "postgres")]
pub use backend::PostgresConnection;
pub use backend::{Connection, LoggedStatement, SqliteConnection};
pub use error::{DbErrorKind, Error, Result, Violated};
pub use id::{Handle, HasMany, HasOne, Id};
pub use model::{
    Cascade, ColumnMeta, KeyKind, Model, ModelMeta, ModelSet, OnDelete, RelationKind, RelationMeta,
};
pub use query::{Column, Cursor, Eager, Filter, OrderBy, Query};
pub use session::{BelongsTo, HasManyRel, HasOneRel, Relationship, Session};
pub use value::{ColumnType, ConversionError, IntoValue, SqlType, Value, ValueRef};

/// Derives [`Model`](trait@Model) for a struct with named fields.
///
/// - `#[model(table = "name")]` on the struct names its table (default: the struct's name in
///   snake_case).
/// - One column per plain field: `i16 i32 i64 u8 u16 u32 f32 f64 bool String Vec<u8>`, or
///   `Option<T>` of each for a nullable column, or any type implementing [`ColumnType`].
/// - `#[key]` marks the key: on an `Id<Self>` field the database generates it at flush; on any
///   other column type it is a natural key the user assigns.
/// - `#[column(name = "..", unique, index)]` renames a column, adds `UNIQUE` or an index.
/// - `#[belongs_to(back_populates = "..")]` on an `Id<Parent>` (required) or
///   `Option<Id<Parent>>` (nullable) field is a foreign key (column `<field>_id`, indexed).
/// - `#[has_many(back_populates = "..")]` on a `HasMany<Child>` field is the other side of a
///   child's `belongs_to`; it has no column.
///
/// It also generates `new(..)`, taking every column except a generated key (strings and
/// foreign keys as `impl Into<..>`), and a relationship descriptor per relationship field
/// (`User::products`, `Product::user`) for [`Session::load`] and [`Session::set`].
#[cfg(feature = "derive")]
pub use orm_derive::Model;

/// What a model file needs: `use orm_core::prelude::*;`.
pub mod prelude {
    pub use crate::query::Filter;
    pub use crate::{Handle, HasMany, HasOne, Id, Model, Result, Session};
}

/// What the derive's generated code names. Not public API.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
