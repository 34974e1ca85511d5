//! `Id<T>` (a key, pending or stored), `Handle<T>` (an object in a session) and `HasMany<T>`.

use crate::error::{Error, Result};
use crate::model::Model;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// The state of an id, without its model type.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawId {
    /// Never set (a new object, or a required parent not chosen yet); `NULL` for a nullable key.
    Unset,
    /// The key of an object of a session that is not flushed yet.
    Pending {
        /// The session.
        session: u32,
        /// The object's slot in the session.
        slot: u32,
    },
    /// A key value stored in (or assigned for) the database.
    Stored(i64),
}

/// The key of a `T` row: pending (its object is in a session but not flushed yet) or stored.
///
/// A pending id can be copied into other objects before the flush; the flush replaces it with
/// the key the database stored. Comparing and printing work in both states;
/// [`value`](Id::value) on a pending id is an error, never a made-up number.
pub struct Id<T> {
    raw: RawId,
    _model: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// An id with the given stored value (an explicit key, or a key you know exists).
    pub const fn new(value: i64) -> Self {
        Self::from_raw(RawId::Stored(value))
    }

    /// An id that is not set yet; [`Session::add`](crate::Session::add) makes the key of a
    /// new object pending.
    pub const fn unset() -> Self {
        Self::from_raw(RawId::Unset)
    }

    #[doc(hidden)]
    pub const fn from_raw(raw: RawId) -> Self {
        Id {
            raw,
            _model: PhantomData,
        }
    }

    #[doc(hidden)]
    pub const fn raw(&self) -> RawId {
        self.raw
    }

    /// Whether this id points at an object that is not flushed yet.
    pub fn is_pending(&self) -> bool {
        matches!(self.raw, RawId::Pending { .. })
    }

    /// Whether this id holds a stored key value.
    pub fn is_stored(&self) -> bool {
        matches!(self.raw, RawId::Stored(_))
    }

    /// Whether this id points nowhere (a required key not set yet, or a child taken out of
    /// its parent's collection).
    pub fn is_unset(&self) -> bool {
        self.raw == RawId::Unset
    }
}

impl<T: Model> Id<T> {
    /// The key value; an error while the object is not flushed yet (or the id is unset).
    pub fn value(&self) -> Result<i64> {
        match self.raw {
            RawId::Stored(v) => Ok(v),
            RawId::Pending { .. } => Err(Error::PendingId {
                model: T::META.name,
            }),
            RawId::Unset => Err(Error::UnsetId {
                model: T::META.name,
            }),
        }
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> Default for Id<T> {
    fn default() -> Self {
        Self::unset()
    }
}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Id<T> {}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}
impl<T> PartialEq<i64> for Id<T> {
    fn eq(&self, other: &i64) -> bool {
        self.raw == RawId::Stored(*other)
    }
}
impl<T> From<i64> for Id<T> {
    fn from(value: i64) -> Self {
        Id::new(value)
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.raw {
            RawId::Stored(v) => write!(f, "Id({v})"),
            RawId::Pending { slot, .. } => write!(f, "Id(pending #{slot})"),
            RawId::Unset => f.write_str("Id(unset)"),
        }
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.raw {
            RawId::Stored(v) => write!(f, "{v}"),
            RawId::Pending { slot, .. } => write!(f, "pending #{slot}"),
            RawId::Unset => f.write_str("unset"),
        }
    }
}

/// A small `Copy` reference to an object held by a [`Session`](crate::Session).
///
/// `db[h]` reads the object and `db.get_mut(h)` changes it; the handle stays valid across
/// flushes and commits.
pub struct Handle<T> {
    pub(crate) session: u32,
    pub(crate) slot: u32,
    _model: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    pub(crate) fn new(session: u32, slot: u32) -> Self {
        Handle {
            session,
            slot,
            _model: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.session, self.slot) == (other.session, other.slot)
    }
}
impl<T> Eq for Handle<T> {}
impl<T> Hash for Handle<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.session, self.slot).hash(state)
    }
}
impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle(#{})", self.slot)
    }
}

/// A pending id for the object of a handle; the flush resolves it to the stored key.
impl<T> From<Handle<T>> for Id<T> {
    fn from(h: Handle<T>) -> Self {
        Id::from_raw(RawId::Pending {
            session: h.session,
            slot: h.slot,
        })
    }
}

impl<T> From<Handle<T>> for Option<Id<T>> {
    fn from(h: Handle<T>) -> Self {
        Some(h.into())
    }
}

/// The children of a `#[has_many]` relationship, as handles into the session.
///
/// A new object starts with an empty, loaded collection; an object read from the database
/// starts unloaded, and [`Session::load`](crate::Session::load) reads it. Change it through the
/// session (`db.set`, `db.append`, `db.remove`) so both sides of the relationship stay in step.
pub struct HasMany<T> {
    items: Option<Vec<Handle<T>>>,
}

impl<T> HasMany<T> {
    /// An empty, loaded collection (what a new object has).
    pub fn new() -> Self {
        HasMany {
            items: Some(Vec::new()),
        }
    }

    /// A collection that is not loaded yet.
    pub fn unloaded() -> Self {
        HasMany { items: None }
    }

    /// Whether the children are loaded.
    pub fn is_loaded(&self) -> bool {
        self.items.is_some()
    }

    /// The children, or `None` when not loaded.
    pub fn get(&self) -> Option<&[Handle<T>]> {
        self.items.as_deref()
    }

    /// The loaded children (empty when not loaded).
    pub fn as_slice(&self) -> &[Handle<T>] {
        self.items.as_deref().unwrap_or(&[])
    }

    /// Iterates over the loaded children.
    pub fn iter(&self) -> std::slice::Iter<'_, Handle<T>> {
        self.as_slice().iter()
    }

    /// The number of loaded children.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether no children are loaded.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether `child` is among the loaded children.
    pub fn contains(&self, child: Handle<T>) -> bool {
        self.as_slice().contains(&child)
    }
}

impl<T> Default for HasMany<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T> IntoIterator for &'a HasMany<T> {
    type Item = &'a Handle<T>;
    type IntoIter = std::slice::Iter<'a, Handle<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> fmt::Debug for HasMany<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.items {
            Some(items) => f.debug_list().entries(items).finish(),
            None => f.write_str("<not loaded>"),
        }
    }
}

impl<T, const N: usize> PartialEq<[Handle<T>; N]> for HasMany<T> {
    fn eq(&self, other: &[Handle<T>; N]) -> bool {
        self.items.as_deref() == Some(&other[..])
    }
}
impl<T> PartialEq<[Handle<T>]> for HasMany<T> {
    fn eq(&self, other: &[Handle<T>]) -> bool {
        self.items.as_deref() == Some(other)
    }
}
impl<T> PartialEq<Vec<Handle<T>>> for HasMany<T> {
    fn eq(&self, other: &Vec<Handle<T>>) -> bool {
        self.items.as_deref() == Some(&other[..])
    }
}

/// Type-erased access to a `HasMany`, used by the session's relationship bookkeeping.
#[doc(hidden)]
pub trait RawCollection {
    fn is_loaded(&self) -> bool;
    fn slots(&self) -> Option<Vec<u32>>;
    /// Appends the slots of a loaded collection to `out`.
    fn append_slots(&self, out: &mut Vec<u32>) {
        if let Some(slots) = self.slots() {
            out.extend(slots);
        }
    }
    fn contains_slot(&self, slot: u32) -> bool;
    fn push_slot(&mut self, session: u32, slot: u32);
    fn remove_slots(&mut self, slots: &rustc_hash::FxHashSet<u32>);
    fn set_slots(&mut self, session: u32, slots: &[u32]);
    fn unload(&mut self);
}

impl<T> RawCollection for HasMany<T> {
    fn is_loaded(&self) -> bool {
        self.items.is_some()
    }
    fn slots(&self) -> Option<Vec<u32>> {
        self.items
            .as_ref()
            .map(|items| items.iter().map(|h| h.slot).collect())
    }
    fn append_slots(&self, out: &mut Vec<u32>) {
        if let Some(items) = &self.items {
            out.extend(items.iter().map(|h| h.slot));
        }
    }
    fn contains_slot(&self, slot: u32) -> bool {
        self.as_slice().iter().any(|h| h.slot == slot)
    }
    fn push_slot(&mut self, session: u32, slot: u32) {
        if let Some(items) = &mut self.items {
            items.push(Handle::new(session, slot));
        }
    }
    fn remove_slots(&mut self, slots: &rustc_hash::FxHashSet<u32>) {
        if let Some(items) = &mut self.items {
            items.retain(|h| !slots.contains(&h.slot));
        }
    }
    fn set_slots(&mut self, session: u32, slots: &[u32]) {
        self.items = Some(slots.iter().map(|&s| Handle::new(session, s)).collect());
    }
    fn unload(&mut self) {
        self.items = None;
    }
}

/// The child of a `#[has_one]` relationship (at most one: its foreign key is `UNIQUE`), as a
/// handle into the session.
///
/// A new object starts loaded with no child; an object read from the database starts
/// unloaded, and [`Session::load`](crate::Session::load) reads it. Change it through the
/// session (`db.set(user, User::profile, Some(p))`), which lets go of the old child at once.
pub struct HasOne<T> {
    item: Option<Option<Handle<T>>>,
}

impl<T> HasOne<T> {
    /// Loaded, with no child (what a new object has).
    pub fn new() -> Self {
        HasOne { item: Some(None) }
    }

    /// Not loaded yet.
    pub fn unloaded() -> Self {
        HasOne { item: None }
    }

    /// Whether the child is loaded.
    pub fn is_loaded(&self) -> bool {
        self.item.is_some()
    }

    /// The loaded child (`None` when there is none or it is not loaded).
    pub fn get(&self) -> Option<Handle<T>> {
        self.item.flatten()
    }
}

impl<T> Default for HasOne<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for HasOne<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Some(item) => item.fmt(f),
            None => f.write_str("<not loaded>"),
        }
    }
}

impl<T> PartialEq<Option<Handle<T>>> for HasOne<T> {
    fn eq(&self, other: &Option<Handle<T>>) -> bool {
        self.item == Some(*other)
    }
}
impl<T> PartialEq<Handle<T>> for HasOne<T> {
    fn eq(&self, other: &Handle<T>) -> bool {
        self.item == Some(Some(*other))
    }
}

impl<T> RawCollection for HasOne<T> {
    fn is_loaded(&self) -> bool {
        self.item.is_some()
    }
    fn slots(&self) -> Option<Vec<u32>> {
        self.item
            .map(|item| item.map(|h| h.slot).into_iter().collect())
    }
    fn contains_slot(&self, slot: u32) -> bool {
        self.get().is_some_and(|h| h.slot == slot)
    }
    fn push_slot(&mut self, session: u32, slot: u32) {
        if self.item.is_some() {
            self.item = Some(Some(Handle::new(session, slot)));
        }
    }
    fn remove_slots(&mut self, slots: &rustc_hash::FxHashSet<u32>) {
        if self.get().is_some_and(|h| slots.contains(&h.slot)) {
            self.item = Some(None);
        }
    }
    fn set_slots(&mut self, session: u32, slots: &[u32]) {
        self.item = Some(slots.last().map(|&s| Handle::new(session, s)));
    }
    fn unload(&mut self) {
        self.item = None;
    }
}

/// A `#[belongs_to]` field: `Id<Parent>` (required) or `Option<Id<Parent>>` (nullable).
#[diagnostic::on_unimplemented(
    message = "`#[belongs_to]` needs a field of type `Id<Parent>` or `Option<Id<Parent>>`, found `{Self}`",
    label = "not an `Id<Parent>`"
)]
#[doc(hidden)]
pub trait ForeignKey: Sized {
    type Parent: Model;
    const NULLABLE: bool;
    fn raw(&self) -> RawId;
    fn set_raw(&mut self, raw: RawId);
    fn from_raw(raw: RawId) -> Self;
}

impl<P: Model> ForeignKey for Id<P> {
    type Parent = P;
    const NULLABLE: bool = false;
    fn raw(&self) -> RawId {
        self.raw
    }
    fn set_raw(&mut self, raw: RawId) {
        self.raw = raw;
    }
    fn from_raw(raw: RawId) -> Self {
        Id::from_raw(raw)
    }
}

impl<P: Model> ForeignKey for Option<Id<P>> {
    type Parent = P;
    const NULLABLE: bool = true;
    fn raw(&self) -> RawId {
        self.map_or(RawId::Unset, |id| id.raw)
    }
    fn set_raw(&mut self, raw: RawId) {
        *self = match raw {
            RawId::Unset => None,
            raw => Some(Id::from_raw(raw)),
        };
    }
    fn from_raw(raw: RawId) -> Self {
        let mut v = None;
        v.set_raw(raw);
        v
    }
}
