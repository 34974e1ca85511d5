//! What the derive's generated code names (`::orm_core::__private`). Not public API: it
//! changes with the derive.

pub use crate::error::{Error, Result};
pub use crate::id::{ForeignKey, Handle, HasMany, HasOne, Id, RawCollection, RawId};
pub use crate::model::{
    Cascade, ColumnMeta, KeyKind, KeyType, Model, ModelMeta, OnDelete, RelationKind, RelationMeta,
    RowReader,
};
pub use crate::query::Column;
pub use crate::session::store::new_store;
pub use crate::session::{BelongsTo, HasManyRel, HasOneRel};
pub use crate::value::{ColumnType, SqlType, ValueRef};
pub use ::core::any::TypeId;
pub use ::core::convert::Into;
pub use ::core::option::Option;
pub use ::core::panic;
pub use ::core::result::Result as StdResult;
pub use ::std::string::String;

/// What the field a `back_populates` names is, found at compile time in the other model's
/// metadata; the derive turns every case but `Found` and `Unchecked` into an error at the
/// string literal.
#[derive(Clone, Copy)]
pub enum Inverse {
    /// The relationship of the expected kind, at this index of `relations`.
    Found(usize),
    /// The other model has no field of that name.
    Missing,
    /// The field is a plain column.
    Column,
    /// The field is a relationship of the other kind.
    WrongKind,
    /// The field's own `back_populates` names another relationship of this model.
    NotMutual,
    /// The other model failed to derive and reports its own errors: nothing to check.
    Unchecked,
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The side of a relationship whose other side is `side` (see `RelationKind::side`).
const fn mirror(side: u8) -> u8 {
    match side {
        0 => 1,
        1 => 0,
        _ => 2,
    }
}

/// Whether `this` has a relationship `field` of side `side` to the model named `target`.
const fn same_side(
    this: &ModelMeta,
    field: &str,
    side: u8,
    targets: &[&str],
    target: &str,
) -> bool {
    let mut i = 0;
    while i < this.relations.len() && i < targets.len() {
        let r = &this.relations[i];
        if str_eq(r.field, field) {
            return r.kind.side() == side && str_eq(targets[i], target);
        }
        i += 1;
    }
    false
}

/// Looks up field `name` of `other`, named by `back_populates` on field `field` of `this`;
/// it must be of side `side` (see `RelationKind::side`: a `belongs_to` 0, a `has_many` or
/// `has_one` 1, a many-to-many 2).
///
/// `targets` are the names of the models at the other end of each relationship of `this`:
/// the sides are not mutual only if the other side names another relationship of `this`
/// of the same kind and between the same models (otherwise the other side is wrong, and
/// its own check says so).
pub const fn find_inverse(
    other: &ModelMeta,
    name: &str,
    side: u8,
    this: &ModelMeta,
    field: &str,
    targets: &[&str],
) -> Inverse {
    if str_eq(other.name, FALLBACK_META.name) {
        return Inverse::Unchecked;
    }
    let mut i = 0;
    while i < other.relations.len() {
        let r = &other.relations[i];
        if str_eq(r.field, name) {
            if r.kind.side() != side {
                return Inverse::WrongKind;
            }
            if let Option::Some(back) = r.back_populates {
                if !str_eq(back, field) && same_side(this, back, mirror(side), targets, other.name)
                {
                    return Inverse::NotMutual;
                }
            }
            return Inverse::Found(i);
        }
        i += 1;
    }
    let mut i = 0;
    while i < other.columns.len() {
        if str_eq(other.columns[i].field, name) {
            return Inverse::Column;
        }
        i += 1;
    }
    Inverse::Missing
}

/// The index [`find_inverse`] found, or [`NO_RELATION`].
pub const fn inverse_index(
    other: &ModelMeta,
    name: &str,
    side: u8,
    this: &ModelMeta,
    field: &str,
    targets: &[&str],
) -> usize {
    match find_inverse(other, name, side, this, field, targets) {
        Inverse::Found(i) => i,
        _ => NO_RELATION,
    }
}

/// No relationship: [`RelationAt`] at this index is the expected model for every model, so
/// a `back_populates` already reported as wrong adds no second error.
pub const NO_RELATION: usize = usize::MAX;

/// The model at the other end of relationship `N` of `Self` (the derive implements it for
/// each relationship); `E` is what the caller expects, used only for [`NO_RELATION`].
pub trait RelationAt<const N: usize, E> {
    /// The parent of a `belongs_to`, the child of a `has_many`.
    type Other;
}
impl<T, E> RelationAt<NO_RELATION, E> for T {
    type Other = E;
}

/// The `has_many` a `#[belongs_to(back_populates = "..")]` names must hold this model.
#[diagnostic::on_unimplemented(
    message = "this `#[has_many]` of `{P}` holds `{Self}`s, not `{C}`s; `back_populates` must name the `#[has_many]` field of `{P}` that holds `{C}`s",
    label = "holds `{Self}`s, not `{C}`s"
)]
pub trait ChildIs<C, P> {}
#[diagnostic::do_not_recommend]
impl<C, P> ChildIs<C, P> for C {}

/// Checks that the `has_many` of `P` named by a `belongs_to` of `C` holds `C`s.
pub const fn expect_child<Actual: ChildIs<C, P>, C, P>() {}

/// The `belongs_to` a `#[has_many(back_populates = "..")]` names must point at this model.
#[diagnostic::on_unimplemented(
    message = "this `#[belongs_to]` of `{C}` points at `{Self}`, not `{P}`; `back_populates` must name the `#[belongs_to]` field of `{C}` that points at `{P}`",
    label = "points at `{Self}`, not `{P}`"
)]
pub trait ParentIs<P, C> {}
#[diagnostic::do_not_recommend]
impl<P, C> ParentIs<P, C> for P {}

/// Checks that the `belongs_to` of `C` named by a `has_many` of `P` points at `P`.
pub const fn expect_parent<Actual: ParentIs<P, C>, P, C>() {}

/// A model that can be the parent of a `belongs_to`: its key is `Id<Self>`. The derive
/// implements it for each such model; every use of a parent's metadata goes through it, so
/// a parent that is not one is reported once, with this message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a model with a generated key, so it cannot be the parent of a `#[belongs_to]`; point at a model whose `#[key]` is `Id<Self>`, or store a natural key in a plain column",
    label = "not a model with an `Id<{Self}>` key"
)]
pub trait GeneratedKey {
    /// The model's metadata.
    const META: &'static ModelMeta;
}

/// The type of a natural key (a `#[key]` that is not an `Id<Self>`); the derive writes
/// `type Key = <T as NaturalKey>::Key`, so a type that cannot be a key is reported once, with
/// this message (a blanket impl over `KeyType` would report the missing `KeyType` instead).
/// `model.rs` implements it next to `KeyType`, from the same list.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a key; use `Id<Self>` for a key the database generates, or an integer, `bool`, `String` or `Vec<u8>` for a natural key",
    label = "not a key type"
)]
pub trait NaturalKey {
    /// `Self`.
    type Key: KeyType;
}

/// A model, as the child of a `has_many`: every use of a child's metadata goes through it,
/// so a child that is not a model is reported once, with this message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a model; `HasMany<..>` holds a struct that derives `Model`",
    label = "not a model"
)]
pub trait AnyModel {
    /// The model's metadata.
    const META: &'static ModelMeta;
}
#[diagnostic::do_not_recommend]
impl<T: Model> AnyModel for T {
    const META: &'static ModelMeta = T::META;
}

/// The shape of a `belongs_to` field, whatever its parent (the parent is checked by
/// [`GeneratedKey`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `orm_core::Id<Parent>` or `Option<orm_core::Id<Parent>>`; a `#[belongs_to]` field holds the parent's `Id`",
    label = "not an `Id<Parent>`"
)]
pub trait IdField {}
impl<P> IdField for Id<P> {}
impl<P> IdField for Option<Id<P>> {}

/// Checks a `belongs_to` field type at compile time.
pub const fn assert_id_field<F: IdField>() {}

/// `ForeignKeyOf::<F>::NEW.raw(&field)` and the like: a `belongs_to` field's accessors.
/// When `F` is not a [`ForeignKey`] (its parent is not a model) they resolve to
/// [`NotAForeignKey`] and add no error: [`GeneratedKey`] reports it once.
pub struct ForeignKeyOf<F>(::core::marker::PhantomData<fn() -> F>);

impl<F> ForeignKeyOf<F> {
    /// The accessors.
    pub const NEW: Self = ForeignKeyOf(::core::marker::PhantomData);
}

impl<F: ForeignKey> ForeignKeyOf<F> {
    /// The key the field holds.
    pub fn raw(&self, field: &F) -> RawId {
        field.raw()
    }

    /// Sets the key the field holds.
    pub fn set_raw(&self, field: &mut F, raw: RawId) {
        field.set_raw(raw)
    }

    /// Reads the field from the next column.
    pub fn read(&self, row: &mut RowReader<'_>) -> Result<F> {
        row.id::<F>()
    }
}

/// The accessors of a field that is not a foreign key (the build fails, so never called).
pub trait NotAForeignKey<F> {
    /// Never runs.
    fn raw(&self, field: &F) -> RawId;
    /// Never runs.
    fn set_raw(&self, field: &mut F, raw: RawId);
    /// Never runs.
    fn read(&self, row: &mut RowReader<'_>) -> Result<F>;
}

impl<F> NotAForeignKey<F> for ForeignKeyOf<F> {
    fn raw(&self, _: &F) -> RawId {
        invalid_model()
    }
    fn set_raw(&self, _: &mut F, _: RawId) {
        invalid_model()
    }
    fn read(&self, _: &mut RowReader<'_>) -> Result<F> {
        invalid_model()
    }
}

/// `ColumnOf::<T>::NEW.to_sql(&field)` and `ColumnOf::<T>::NEW.read(row)`: a column's
/// accessors. When `T` is not a [`ColumnType`] they resolve to [`NotAColumn`] instead and
/// add no error: the metadata reports it once, at the field's type.
pub struct ColumnOf<T>(::core::marker::PhantomData<fn() -> T>);

impl<T> ColumnOf<T> {
    /// The accessors.
    pub const NEW: Self = ColumnOf(::core::marker::PhantomData);
}

impl<T: ColumnType> ColumnOf<T> {
    /// The field's value to bind.
    pub fn to_sql<'v>(&self, value: &'v T) -> ValueRef<'v> {
        value.to_sql()
    }

    /// Reads the field from the next column.
    pub fn read(&self, row: &mut RowReader<'_>) -> Result<T> {
        row.column::<T>()
    }
}

/// The accessors of a field type that is not a column (the build fails, so never called).
pub trait NotAColumn<T> {
    /// Never runs.
    fn to_sql<'v>(&self, value: &'v T) -> ValueRef<'v>;
    /// Never runs.
    fn read(&self, row: &mut RowReader<'_>) -> Result<T>;
}

impl<T> NotAColumn<T> for ColumnOf<T> {
    fn to_sql<'v>(&self, _: &'v T) -> ValueRef<'v> {
        invalid_model()
    }
    fn read(&self, _: &mut RowReader<'_>) -> Result<T> {
        invalid_model()
    }
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
    version: None,
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
