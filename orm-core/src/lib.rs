//! An ORM for object graphs: models are plain structs with `#[derive(Model)]`, relationships
//! are `#[has_many]` and `#[belongs_to]`, and a [`Session`] saves a whole graph of new and
//! changed objects in one flush, parents first, filling in every foreign key.
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
pub mod schema;
pub mod session;
pub mod sql;
pub mod value;

pub use backend::{Connection, LoggedStatement, SqliteConnection};
pub use error::{DbErrorKind, Error, Result};
pub use id::{Handle, HasMany, Id};
pub use model::{ColumnMeta, KeyKind, Model, ModelMeta, ModelSet, RelationKind, RelationMeta};
pub use session::{BelongsTo, HasManyRel, Relationship, Session};
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
    pub use crate::{Handle, HasMany, Id, Model, Result, Session};
}

/// What the derive's generated code names. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::{Error, Result};
    pub use crate::id::{ForeignKey, Handle, HasMany, Id, RawCollection, RawId};
    pub use crate::model::{
        ColumnMeta, KeyKind, KeyType, Model, ModelMeta, RelationKind, RelationMeta, RowReader,
    };
    pub use crate::session::store::new_store;
    pub use crate::session::{BelongsTo, HasManyRel};
    pub use crate::value::{ColumnType, SqlType, ValueRef};
    pub use ::core::any::TypeId;
    pub use ::core::convert::Into;
    pub use ::core::option::Option;
    pub use ::core::panic;
    pub use ::core::result::Result as StdResult;
    pub use ::std::string::String;

    /// The type of the field a `#[has_many(back_populates = "..")]` names must be the
    /// `belongs_to` pointing back; the derive calls this to make rustc check it.
    pub const fn expect_belongs_to<C, P>(_: BelongsTo<C, P>) {}

    /// The counterpart of [`expect_belongs_to`] for `#[belongs_to(back_populates = "..")]`.
    pub const fn expect_has_many<P, C>(_: HasManyRel<P, C>) {}

    /// A foreign key's parent must have a generated `Id` key.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be the parent of a `#[belongs_to]`: its key is not `Id<{Self}>`",
        label = "this model's key is not generated",
        note = "a `#[belongs_to]` points at a model whose `#[key]` is an `Id<Self>`"
    )]
    pub trait GeneratedKey {}
    impl<T: Model<Key = Id<T>>> GeneratedKey for T {}

    /// Checks a parent type at compile time.
    pub const fn assert_generated_key<P: GeneratedKey>() {}

    /// Checks a field type at compile time.
    pub const fn assert_column<C: ColumnType>() {}

    /// Checks a `belongs_to` field type at compile time.
    pub const fn assert_foreign_key<F: ForeignKey>() {}

    /// The metadata of `T`, as a function pointer for relationship targets.
    pub fn meta_of<T: Model>() -> &'static ModelMeta {
        T::META
    }

    fn fallback_store() -> Box<dyn crate::session::store::AnyStore> {
        invalid_model()
    }

    /// Metadata of a model whose derive failed (the build fails with its errors).
    pub const FALLBACK_META: &ModelMeta = &ModelMeta {
        name: "<invalid model>",
        table: "",
        columns: &[],
        key: 0,
        key_kind: KeyKind::Generated,
        relations: &[],
        type_id: TypeId::of::<()>,
        new_store: fallback_store,
    };

    /// Never runs: a model whose derive failed does not compile.
    pub fn invalid_model<T>() -> T {
        ::core::panic!("this model failed to derive")
    }

    /// Never runs: a model whose derive failed does not compile.
    pub fn invalid_collection<'a>() -> &'a mut HasMany<()> {
        invalid_model()
    }
}
