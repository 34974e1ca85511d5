//! The `Model` trait that `#[derive(Model)]` implements, and the static metadata it describes.

use crate::error::{Error, Result};
use crate::id::{ForeignKey, RawCollection, RawId};
use crate::value::{ColumnType, SqlType, ValueRef};
use std::any::TypeId;

/// How a model's key is filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An `Id<Self>` integer key generated at flush.
    Generated,
    /// A key the user assigns (a code, an email...).
    Natural,
}

/// One column of a table.
#[derive(Debug)]
pub struct ColumnMeta {
    /// The column name in SQL.
    pub name: &'static str,
    /// The Rust field it is stored from.
    pub field: &'static str,
    /// Its SQL type.
    pub sql_type: SqlType,
    /// Whether it accepts `NULL`.
    pub nullable: bool,
    /// `UNIQUE`.
    pub unique: bool,
    /// Whether an index is created for it.
    pub index: bool,
    /// For a foreign key, the index of its `belongs_to` in [`ModelMeta::relations`].
    pub relation: Option<usize>,
}

/// The kind of a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// A foreign key on this model (`#[belongs_to]`), stored in column `column`.
    BelongsTo {
        /// Index of the foreign key in [`ModelMeta::columns`].
        column: usize,
        /// Whether the key may be `NULL`.
        nullable: bool,
    },
    /// The inverse side of a `belongs_to` on the target model (`#[has_many]`).
    HasMany,
    /// The inverse side of a `belongs_to` on the target model that names at most one child
    /// (`#[has_one]`; the foreign key is `UNIQUE`).
    HasOne,
    /// Many-to-many through an association table (`#[has_many(through = "..")]`): each row
    /// of `table` links a row of this model (`column`) with one of the target (`target_column`).
    ManyToMany {
        /// The association table.
        table: &'static str,
        /// Its column that holds this model's key.
        column: &'static str,
        /// Its column that holds the target model's key.
        target_column: &'static str,
    },
}

impl RelationKind {
    /// Whether this is the parent's side (`has_many` or `has_one`), which has no column.
    pub const fn holds_children(self) -> bool {
        matches!(
            self,
            RelationKind::HasMany | RelationKind::HasOne | RelationKind::ManyToMany { .. }
        )
    }

    /// Whether this is a many-to-many through an association table.
    pub const fn is_many_to_many(self) -> bool {
        matches!(self, RelationKind::ManyToMany { .. })
    }

    /// Which side a relationship is, for matching it with its other side: 0 for a
    /// `belongs_to`, 1 for a `has_many` or `has_one`, 2 for a many-to-many.
    pub const fn side(self) -> u8 {
        match self {
            RelationKind::BelongsTo { .. } => 0,
            RelationKind::HasMany | RelationKind::HasOne => 1,
            RelationKind::ManyToMany { .. } => 2,
        }
    }

    /// The side a relationship's other side must be (see [`side`](RelationKind::side)).
    pub const fn other_side(self) -> u8 {
        match self.side() {
            0 => 1,
            1 => 0,
            _ => 2,
        }
    }
}

/// One relationship field of a model.
#[derive(Debug)]
pub struct RelationMeta {
    /// The Rust field.
    pub field: &'static str,
    /// Belongs-to or has-many.
    pub kind: RelationKind,
    /// The other model.
    pub target: fn() -> &'static ModelMeta,
    /// The field on the other model that is the other side of this relationship.
    pub back_populates: Option<&'static str>,
    /// What the session does with the children when a parent is deleted or lets go of them
    /// (`#[has_many(cascade_delete, delete_orphans, passive_deletes)]`; has-many only).
    pub cascade: Cascade,
    /// The `ON DELETE` clause of the foreign key (`#[belongs_to(on_delete = "..")]`;
    /// belongs-to only).
    pub on_delete: OnDelete,
    /// `#[belongs_to(post_update)]`: a new row is inserted with this key `NULL`, set by an
    /// UPDATE once every row exists, and a deleted row's key is set to `NULL` before the
    /// deletes (for a key that is not in a cycle the flush sees: rows that reference each
    /// other through triggers or a later constraint).
    pub post_update: bool,
}

/// What the session does with a parent's children (`#[has_many(...)]` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cascade {
    /// `cascade_delete`: deleting the parent deletes its children (loaded or not).
    pub delete: bool,
    /// `delete_orphans`: a child taken out of the collection (its key set to none) is
    /// deleted at the flush. Implies `delete`.
    pub orphans: bool,
    /// `passive_deletes`: children not loaded are left to the database's `ON DELETE`
    /// clause instead of being loaded to be deleted or to have their key set to `NULL`.
    pub passive: bool,
}

/// The `ON DELETE` clause of a foreign key: what the database does to the children when a
/// parent row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDelete {
    /// No clause: the database refuses the delete while children exist (at the end of the
    /// statement).
    #[default]
    NoAction,
    /// `ON DELETE CASCADE`: the children are deleted too.
    Cascade,
    /// `ON DELETE SET NULL`: the children's key becomes `NULL` (a nullable key only).
    SetNull,
    /// `ON DELETE RESTRICT`: the delete is refused at once while children exist.
    Restrict,
}

/// Static description of a model: its table, columns, key and relationships.
pub struct ModelMeta {
    /// The Rust type name.
    pub name: &'static str,
    /// The table name.
    pub table: &'static str,
    /// The columns, in field order.
    pub columns: &'static [ColumnMeta],
    /// Index of the key column in `columns`.
    pub key: usize,
    /// Generated or natural key.
    pub key_kind: KeyKind,
    /// Relationship fields, in field order.
    pub relations: &'static [RelationMeta],
    /// Index in `columns` of the `#[version]` column: every UPDATE and DELETE of a row checks
    /// that it still holds the value read, and an UPDATE writes that value plus one.
    pub version: Option<usize>,
    #[doc(hidden)]
    pub type_id: fn() -> TypeId,
    #[doc(hidden)]
    pub new_store: fn() -> Box<dyn crate::session::store::AnyStore>,
}

impl std::fmt::Debug for ModelMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMeta")
            .field("name", &self.name)
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("key", &self.key)
            .field("relations", &self.relations)
            .finish()
    }
}

impl ModelMeta {
    /// The key column.
    pub fn key_column(&self) -> &ColumnMeta {
        &self.columns[self.key]
    }

    /// Finds a column by SQL name or Rust field name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| self.columns.iter().position(|c| c.field == name))
    }

    /// Finds a relationship by field name.
    pub fn relation_index(&self, field: &str) -> Option<usize> {
        self.relations.iter().position(|r| r.field == field)
    }

    /// Whether two metadata describe the same model.
    pub fn same(&self, other: &ModelMeta) -> bool {
        (self.type_id)() == (other.type_id)()
    }

    /// The other side of relation `rel` on the target model: the relation its
    /// `back_populates` names or, for a `belongs_to` without one, the `has_many` of the target
    /// whose `back_populates` names it.
    pub(crate) fn inverse(&self, rel: usize) -> Option<usize> {
        let r = &self.relations[rel];
        let target = (r.target)();
        if let (None, RelationKind::ManyToMany { .. }) = (r.back_populates, r.kind) {
            // The other many-to-many through the same table, its columns swapped.
            return target
                .relations
                .iter()
                .position(|o| (o.target)().same(self) && mirrored(r.kind, o.kind));
        }
        match r.back_populates {
            Some(name) => target.relation_index(name),
            None => target.relations.iter().position(|o| {
                o.back_populates == Some(r.field)
                    && (o.target)().same(self)
                    && o.kind.side() == r.kind.other_side()
            }),
        }
    }
}

/// Whether two many-to-many relationships are the two sides of one association table.
pub(crate) fn mirrored(a: RelationKind, b: RelationKind) -> bool {
    match (a, b) {
        (
            RelationKind::ManyToMany {
                table,
                column,
                target_column,
            },
            RelationKind::ManyToMany {
                table: t,
                column: c,
                target_column: tc,
            },
        ) => table == t && column == tc && target_column == c,
        _ => false,
    }
}

/// A struct stored as a table row; implement it with `#[derive(Model)]`.
///
/// The methods are the derive's interface to the session and are hidden from the docs.
pub trait Model: Sized + Send + 'static {
    /// What `Session::get` takes: `Id<Self>` for a generated key, the field's type otherwise.
    type Key: KeyType;
    /// The model's static description.
    const META: &'static ModelMeta;

    #[doc(hidden)]
    fn column(&self, index: usize) -> ValueRef<'_>;
    #[doc(hidden)]
    fn from_row(row: &mut RowReader<'_>) -> Result<Self>;
    #[doc(hidden)]
    fn key_id(&self) -> RawId;
    #[doc(hidden)]
    fn set_key_id(&mut self, id: RawId);
    #[doc(hidden)]
    fn set_version(&mut self, _version: i64) {}
    #[doc(hidden)]
    fn foreign_key(&self, relation: usize) -> RawId;
    #[doc(hidden)]
    fn set_foreign_key(&mut self, relation: usize, id: RawId);
    #[doc(hidden)]
    fn collection(&self, relation: usize) -> &dyn RawCollection;
    #[doc(hidden)]
    fn collection_mut(&mut self, relation: usize) -> &mut dyn RawCollection;
}

/// A model's key type as `Session::get` takes it.
#[doc(hidden)]
pub trait KeyType {
    /// The key as a parameter, or the pending id it is.
    fn key_ref(&self) -> KeyRef<'_>;
}

#[doc(hidden)]
pub enum KeyRef<'a> {
    Id(RawId),
    Value(ValueRef<'a>),
}

impl<T> KeyType for crate::id::Id<T> {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::Id(self.raw())
    }
}

// `KeyType` and the derive's `NaturalKey` (in `__private`) for every natural key type, from
// one list.
macro_rules! natural_key {
    ($($ty:ty),*) => {$(
        impl KeyType for $ty {
            fn key_ref(&self) -> KeyRef<'_> {
                KeyRef::Value(self.to_sql())
            }
        }
        impl crate::__private::NaturalKey for $ty {
            type Key = $ty;
        }
    )*};
}
natural_key!(i16, i32, i64, u8, u16, u32, bool, String, Vec<u8>);

/// A row as a backend returns it.
#[doc(hidden)]
pub trait RawRow {
    /// The value of column `index`, read as `ty`.
    fn value(&self, index: usize, ty: SqlType) -> std::result::Result<ValueRef<'_>, String>;
}

impl RawRow for &[crate::value::Value] {
    fn value(&self, index: usize, _ty: SqlType) -> std::result::Result<ValueRef<'_>, String> {
        self.get(index)
            .map(|v| v.as_ref())
            .ok_or_else(|| format!("no column {index}"))
    }
}

/// Reads the columns of one row, in the model's column order, into its fields.
#[doc(hidden)]
pub struct RowReader<'a> {
    row: &'a dyn RawRow,
    meta: &'static ModelMeta,
    next: usize,
    /// A generated key the session already read from this row.
    key: Option<i64>,
}

impl<'a> RowReader<'a> {
    pub(crate) fn new(row: &'a dyn RawRow, meta: &'static ModelMeta) -> Self {
        RowReader {
            row,
            meta,
            next: 0,
            key: None,
        }
    }

    /// A reader that returns `key` for the generated key column instead of reading it again.
    pub(crate) fn with_key(row: &'a dyn RawRow, meta: &'static ModelMeta, key: i64) -> Self {
        RowReader {
            key: Some(key),
            ..Self::new(row, meta)
        }
    }

    /// A decoding error for column `index`; the field is looked up only when one happens.
    fn decode_error(&self, index: usize, message: String) -> Error {
        Error::Decode {
            model: self.meta.name,
            field: self.meta.columns.get(index).map_or("?", |c| c.field),
            message,
        }
    }

    /// Reads the next column as a plain field.
    pub fn column<C: ColumnType>(&mut self) -> Result<C> {
        let index = self.next;
        self.next += 1;
        let value = self
            .row
            .value(index, C::SQL_TYPE)
            .map_err(|m| self.decode_error(index, m))?;
        C::from_sql(value).map_err(|e| self.decode_error(index, e.0))
    }

    /// Reads the next column as an `Id` (a generated key or a foreign key).
    pub fn id<F: ForeignKey>(&mut self) -> Result<F> {
        let v: Option<i64> = self.column()?;
        Ok(F::from_raw(v.map_or(RawId::Unset, RawId::Stored)))
    }

    /// Reads the next column as a generated key.
    pub fn key<T>(&mut self) -> Result<crate::id::Id<T>> {
        if let Some(v) = self.key.filter(|_| self.next == self.meta.key) {
            self.next += 1;
            return Ok(crate::id::Id::new(v));
        }
        let v: i64 = self.column()?;
        Ok(crate::id::Id::new(v))
    }
}

/// A set of models, written as a tuple: `db.create_all::<(User, Product)>()`.
pub trait ModelSet {
    /// The metadata of each model in the set.
    fn metas() -> Vec<&'static ModelMeta>;
}

impl<T: Model> ModelSet for T {
    fn metas() -> Vec<&'static ModelMeta> {
        vec![T::META]
    }
}

macro_rules! tuple_set {
    ($($t:ident),+) => {
        impl<$($t: Model),+> ModelSet for ($($t,)+) {
            fn metas() -> Vec<&'static ModelMeta> {
                vec![$($t::META),+]
            }
        }
    };
}
tuple_set!(A);
tuple_set!(A, B);
tuple_set!(A, B, C);
tuple_set!(A, B, C, D);
tuple_set!(A, B, C, D, E);
tuple_set!(A, B, C, D, E, F);
tuple_set!(A, B, C, D, E, F, G);
tuple_set!(A, B, C, D, E, F, G, H);
tuple_set!(A, B, C, D, E, F, G, H, I);
tuple_set!(A, B, C, D, E, F, G, H, I, J);
tuple_set!(A, B, C, D, E, F, G, H, I, J, K);
tuple_set!(A, B, C, D, E, F, G, H, I, J, K, L);
