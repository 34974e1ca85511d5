//! The objects of one model in a session: the arena, the identity map and the snapshots that
//! dirty tracking and rollback compare against.

use crate::id::{RawCollection, RawId};
use crate::model::{KeyKind, Model, ModelMeta, RawRow, RelationKind, RowReader};
use crate::value::{Value, ValueRef};
use crate::Result;
use rustc_hash::FxHashMap as HashMap;
use std::any::Any;

/// A key value as the identity map holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[doc(hidden)]
#[allow(missing_docs)]
pub enum KeyValue {
    Int(i64),
    Text(Box<str>),
    Blob(Box<[u8]>),
}

impl KeyValue {
    pub(crate) fn from_ref(v: ValueRef<'_>) -> Option<KeyValue> {
        Some(match v {
            ValueRef::Bool(b) => KeyValue::Int(b.into()),
            ValueRef::I16(i) => KeyValue::Int(i.into()),
            ValueRef::I32(i) => KeyValue::Int(i.into()),
            ValueRef::I64(i) => KeyValue::Int(i),
            ValueRef::Text(t) => KeyValue::Text(t.into()),
            ValueRef::Blob(b) => KeyValue::Blob(b.into()),
            ValueRef::Null | ValueRef::F32(_) | ValueRef::F64(_) => return None,
        })
    }
}

/// The identity map: stored key → slot. Integer keys (every generated key) have a map of
/// their own: see [`IntMap`].
#[derive(Default)]
pub(crate) struct Identity {
    ints: IntMap,
    others: HashMap<KeyValue, u32>,
}

impl Identity {
    pub(crate) fn get(&self, key: &KeyValue) -> Option<u32> {
        match key {
            KeyValue::Int(i) => self.ints.get(*i),
            _ => self.others.get(key).copied(),
        }
    }

    pub(crate) fn insert(&mut self, key: KeyValue, slot: u32) {
        match key {
            KeyValue::Int(i) => self.ints.insert(i, slot),
            _ => {
                self.others.insert(key, slot);
            }
        }
    }

    /// Whether no key is mapped.
    pub(crate) fn is_empty(&self) -> bool {
        self.ints.dense_len == 0 && self.ints.sparse.is_empty() && self.others.is_empty()
    }

    pub(crate) fn remove(&mut self, key: &KeyValue) {
        match key {
            KeyValue::Int(i) => self.ints.remove(*i),
            _ => {
                self.others.remove(key);
            }
        }
    }
}

/// Integer key → slot. Generated keys are mostly small and dense, so keys below a bound
/// that grows with the number of entries live in a plain vector indexed by key (4 bytes
/// each, written in order as rows load); the others in a hash map.
#[derive(Default)]
pub(crate) struct IntMap {
    /// `dense[k]` is the slot of key `k` plus one, or 0.
    dense: Vec<u32>,
    /// Entries in `dense`.
    dense_len: usize,
    sparse: HashMap<i64, u32>,
}

impl IntMap {
    /// The vector may grow to twice its entries plus this many keys.
    const SLACK: usize = 1024;

    fn index(&self, key: i64) -> Option<usize> {
        usize::try_from(key).ok().filter(|&k| k < self.dense.len())
    }

    pub(crate) fn get(&self, key: i64) -> Option<u32> {
        if let Some(k) = self.index(key) {
            if let Some(slot) = self.dense[k].checked_sub(1) {
                return Some(slot);
            }
        }
        if self.sparse.is_empty() {
            // Not even hashed: the common case of generated keys, all in `dense`.
            return None;
        }
        self.sparse.get(&key).copied()
    }

    pub(crate) fn insert(&mut self, key: i64, slot: u32) {
        let k = usize::try_from(key)
            .ok()
            .filter(|&k| k < self.dense.len() || k < 2 * (self.dense_len + 1) + Self::SLACK);
        match k {
            Some(k) if slot < u32::MAX => {
                if k >= self.dense.len() {
                    self.dense.resize((k + 1).max(self.dense.len() * 2), 0);
                }
                if self.dense[k] == 0 {
                    self.dense_len += 1;
                }
                self.dense[k] = slot + 1;
                if !self.sparse.is_empty() {
                    self.sparse.remove(&key);
                }
            }
            _ => {
                self.sparse.insert(key, slot);
            }
        }
    }

    pub(crate) fn remove(&mut self, key: i64) {
        if let Some(k) = self.index(key) {
            if self.dense[k] != 0 {
                self.dense[k] = 0;
                self.dense_len -= 1;
            }
        }
        self.sparse.remove(&key);
    }
}

/// Where an object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Added, not inserted yet.
    New,
    /// Stored in the database (this transaction's view of it).
    Persistent,
    /// Thrown away by `rollback`, or deleted by a flush; its handles no longer work.
    Discarded,
}

/// The values of an object as the database holds them, and its foreign keys, in one
/// allocation (plus one for foreign keys that are pending ids, which is rare).
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// Column values (none for a new object, which has no row yet), then, unless `pending`
    /// holds them, the foreign key of each relation (`I64` if stored, else `NULL`).
    values: Box<[Value]>,
    /// How many column values `values` starts with.
    columns: usize,
    /// Every relation's foreign key, when one of them is a pending id.
    pending: Option<Box<[RawId]>>,
}

impl Snapshot {
    /// The column values (empty for a new object).
    pub(crate) fn columns(&self) -> &[Value] {
        &self.values[..self.columns]
    }

    /// The foreign key of relation `rel` (`Unset` for has-many).
    pub(crate) fn fk(&self, rel: usize) -> RawId {
        if let Some(p) = &self.pending {
            return p[rel];
        }
        match self.values[self.columns + rel] {
            Value::I64(v) => RawId::Stored(v),
            _ => RawId::Unset,
        }
    }
}

/// The children of each has-many relation of one object (`None`: not loaded), by relation.
type SavedCollections = Box<[Option<Vec<u32>>]>;

pub(crate) struct Slot<T> {
    pub(crate) obj: Option<T>,
    pub(crate) state: State,
    /// In `Store::marked` since the last flush.
    marked: bool,
    /// Added (or first inserted) since the last commit.
    pub(crate) since_commit: bool,
    /// Has an entry in `Store::journal`.
    journaled: bool,
    /// Has an entry in `Store::collections_journal`.
    collections_journaled: bool,
    /// In `Store::touched`.
    touched: bool,
    /// In `Store::doomed`: to be deleted by the next flush.
    doomed: bool,
}

/// What [`Store::reload_row`] reports: the slot, and for each `belongs_to` whose key the row
/// changed, (relation, the parent the object is linked under, the key now).
pub(crate) type Reloaded = (u32, Vec<(usize, RawId, RawId)>);

/// The objects of one model.
pub struct Store<T: Model> {
    pub(crate) slots: Vec<Slot<T>>,
    pub(crate) identity: Identity,
    /// The parent each relation's loaded collection holds this object under, when the
    /// session moved it since the snapshot (see `AnyStore::linked_fk`).
    linked: HashMap<u32, Box<[RawId]>>,
    /// The values of each marked object when it was first taken mutably since the last
    /// flush (only marked objects have one).
    snapshots: HashMap<u32, Snapshot>,
    /// New objects, in the order they were added.
    pub(crate) new: Vec<u32>,
    /// Objects taken mutably since the last flush.
    pub(crate) marked: Vec<u32>,
    /// Objects handed to the user mutably (whose keys may have changed) since the session
    /// last brought their collections in step.
    touched: Vec<u32>,
    /// Slots added or inserted since the last commit.
    pub(crate) added: Vec<u32>,
    /// Objects to delete at the next flush, in the order `delete` was called.
    doomed: Vec<u32>,
    /// Objects deleted by flushes of the open transaction, kept for `rollback`.
    deleted: Vec<(u32, T)>,
    /// Database values of rows updated since the last commit, as they were at that commit.
    pub(crate) journal: Vec<(u32, Snapshot)>,
    /// The has-many collections of objects whose collections changed since the last commit,
    /// as they were at that commit (`None`: not loaded), one entry per relation.
    collections_journal: Vec<(u32, SavedCollections)>,
    /// New objects added with an explicit key, so children can find them before the flush.
    pending_keys: HashMap<KeyValue, u32>,
    /// The highest integer key read from the database: keys generated later are above it,
    /// whatever other programs deleted since (or inserted without moving a key sequence).
    loaded_max: Option<i64>,
    /// For each relation, the highest parent key read from the database in a `belongs_to`
    /// column (has-many relations stay `None`).
    fk_loaded_max: Box<[Option<i64>]>,
    /// No object of the store holds, or held before a rollback, an integer key above this.
    held_max: Option<i64>,
    /// Keys written explicitly by flushes of the open transaction.
    tx_explicit: Vec<i64>,
    /// Integer keys of objects a rollback discarded: never generated again (a copy of such an
    /// object's id must not come to name another row).
    retired: rustc_hash::FxHashSet<i64>,
    /// Rows the open transaction wrote whose objects were expunged: the journal entry (or
    /// `None` for a row it inserted), handed to the object read next for that key, so that
    /// `rollback` restores (or discards) that object as it would have the expunged one.
    expunged: HashMap<KeyValue, Option<Snapshot>>,
    /// Collections `rollback` restored, for the session to prune of discarded children.
    restored: Vec<(u32, usize)>,
}

impl<T: Model> Store<T> {
    pub(crate) fn new() -> Self {
        Store {
            slots: Vec::new(),
            identity: Identity::default(),
            linked: HashMap::default(),
            snapshots: HashMap::default(),
            new: Vec::new(),
            marked: Vec::new(),
            touched: Vec::new(),
            added: Vec::new(),
            doomed: Vec::new(),
            deleted: Vec::new(),
            journal: Vec::new(),
            collections_journal: Vec::new(),
            pending_keys: HashMap::default(),
            loaded_max: None,
            fk_loaded_max: vec![None; T::META.relations.len()].into_boxed_slice(),
            held_max: None,
            tx_explicit: Vec::new(),
            retired: Default::default(),
            expunged: HashMap::default(),
            restored: Vec::new(),
        }
    }

    pub(crate) fn obj(&self, slot: u32) -> Option<&T> {
        self.slots.get(slot as usize).and_then(|s| s.obj.as_ref())
    }

    fn take_snapshot(obj: &T, state: State) -> Snapshot {
        let meta = T::META;
        let columns = if state == State::Persistent {
            meta.columns.len()
        } else {
            0
        };
        let fk = |r: usize| match meta.relations[r].kind {
            RelationKind::BelongsTo { .. } => obj.foreign_key(r),
            _ => RawId::Unset,
        };
        let pending = (0..meta.relations.len())
            .any(|r| matches!(fk(r), RawId::Pending { .. }))
            .then(|| (0..meta.relations.len()).map(fk).collect());
        let fks = if pending.is_some() {
            0
        } else {
            meta.relations.len()
        };
        let mut values = Vec::with_capacity(columns + fks);
        values.extend((0..columns).map(|c| match meta.columns[c].relation {
            Some(rel) => raw_value(obj.foreign_key(rel)),
            None if c == meta.key && meta.key_kind == KeyKind::Generated => raw_value(obj.key_id()),
            None => obj.column(c).into_owned(),
        }));
        values.extend((0..fks).map(|r| raw_value(fk(r))));
        Snapshot {
            values: values.into_boxed_slice(),
            columns,
            pending,
        }
    }

    /// Marks a slot as possibly changed, snapshotting it first; returns the object.
    pub(crate) fn mark(&mut self, slot: u32) -> Option<&mut T> {
        let s = self.slots.get_mut(slot as usize)?;
        let obj = s.obj.as_mut()?;
        if !s.marked {
            s.marked = true;
            let state = s.state;
            self.snapshots
                .entry(slot)
                .or_insert_with(|| Self::take_snapshot(obj, state));
            self.marked.push(slot);
        }
        Some(obj)
    }

    /// Marks a slot (see [`mark`](Store::mark)) that is handed to the user mutably, and
    /// notes it as touched: its foreign keys may change without the session seeing it.
    pub(crate) fn touch(&mut self, slot: u32) -> Option<&mut T> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.obj.is_some() && !s.touched {
            s.touched = true;
            self.touched.push(slot);
        }
        self.mark(slot)
    }

    /// Ends a flush cycle, after a successful flush or a rollback: no object is marked, new or
    /// touched any more, and every child is linked under the parent its key names again (also
    /// one the session linked without changing its key).
    fn end_flush_cycle(&mut self) {
        for &slot in &self.marked {
            self.slots[slot as usize].marked = false;
            self.snapshots.remove(&slot);
        }
        self.marked.clear();
        self.new.clear();
        self.pending_keys.clear();
        for slot in std::mem::take(&mut self.touched) {
            self.slots[slot as usize].touched = false;
        }
        for slot in std::mem::take(&mut self.doomed) {
            self.slots[slot as usize].doomed = false;
        }
        self.linked.clear();
    }

    /// Adds a new object; returns its slot.
    pub(crate) fn insert_new(&mut self, obj: T) -> u32 {
        let slot = self.slots.len() as u32;
        if let Some(k) = Self::key_of(&obj) {
            self.hold(&k);
            self.pending_keys.insert(k, slot);
        }
        self.slots.push(Slot {
            obj: Some(obj),
            state: State::New,
            marked: false,
            since_commit: true,
            journaled: false,
            collections_journaled: false,
            touched: false,
            doomed: false,
        });
        self.new.push(slot);
        self.added.push(slot);
        slot
    }

    /// Reads a row into the session; an object already there for its key is kept as it is.
    pub(crate) fn load_row(&mut self, row: &dyn RawRow) -> Result<u32> {
        let meta = T::META;
        let value = row
            .value(meta.key, meta.key_column().sql_type)
            .map_err(|message| crate::Error::Decode {
                model: meta.name,
                field: meta.key_column().field,
                message,
            })?;
        // A generated key (an integer) is looked up without building a `KeyValue`.
        let key = match value {
            ValueRef::I64(k) if meta.key_kind == KeyKind::Generated => {
                if let Some(slot) = self.identity.ints.get(k) {
                    return Ok(slot);
                }
                Some(KeyValue::Int(k))
            }
            _ => {
                let key = KeyValue::from_ref(value);
                if let Some(slot) = key.as_ref().and_then(|k| self.identity.get(k)) {
                    return Ok(slot);
                }
                key
            }
        };
        // A generated key was just read: the object takes it rather than decoding it again.
        let obj = match key {
            Some(KeyValue::Int(k)) if meta.key_kind == KeyKind::Generated => {
                T::from_row(&mut RowReader::with_key(row, meta, k))?
            }
            _ => T::from_row(&mut RowReader::new(row, meta))?,
        };
        // The parents' keys it holds were keys of rows too.
        for (r, seen) in self.fk_loaded_max.iter_mut().enumerate() {
            if let RawId::Stored(k) = obj.foreign_key(r) {
                *seen = Some(seen.map_or(k, |m| m.max(k)));
            }
        }
        let slot = self.slots.len() as u32;
        self.slots.push(Slot {
            obj: Some(obj),
            state: State::Persistent,
            marked: false,
            since_commit: false,
            journaled: false,
            collections_journaled: false,
            touched: false,
            doomed: false,
        });
        if let Some(k) = key {
            if let KeyValue::Int(v) = k {
                self.loaded_max = Some(self.loaded_max.map_or(v, |m| m.max(v)));
            }
            if !self.expunged.is_empty() {
                self.take_over_expunged(&k, slot);
            }
            self.hold(&k);
            self.identity.insert(k, slot);
        }
        Ok(slot)
    }

    /// A row read again after its object was expunged in the open transaction takes over
    /// what `rollback` needs of it: the journal entry, or being added since the commit.
    fn take_over_expunged(&mut self, key: &KeyValue, slot: u32) {
        let Some(entry) = self.expunged.remove(key) else {
            return;
        };
        let s = &mut self.slots[slot as usize];
        match entry {
            Some(snap) => {
                s.journaled = true;
                self.journal.push((slot, snap));
            }
            None => {
                s.since_commit = true;
                self.added.push(slot);
            }
        }
    }

    /// Raises the bound on held integer keys to `key`.
    fn hold(&mut self, key: &KeyValue) {
        if let KeyValue::Int(k) = *key {
            self.held_max = Some(self.held_max.map_or(k, |m| m.max(k)));
        }
    }

    /// Takes `key` out of the identity map if it still names `slot`.
    fn forget_key(&mut self, key: Option<KeyValue>, slot: u32) {
        if let Some(k) = key {
            if self.identity.get(&k) == Some(slot) {
                self.identity.remove(&k);
            }
        }
    }

    fn key_of(obj: &T) -> Option<KeyValue> {
        match T::META.key_kind {
            KeyKind::Generated => match obj.key_id() {
                RawId::Stored(v) => Some(KeyValue::Int(v)),
                _ => None,
            },
            KeyKind::Natural => KeyValue::from_ref(obj.column(T::META.key)),
        }
    }
}

/// The value a foreign key or generated key holds in the database.
fn raw_value(raw: RawId) -> Value {
    match raw {
        RawId::Stored(v) => Value::I64(v),
        _ => Value::Null,
    }
}

/// Type-erased access to a [`Store`], for the flush and the relationship bookkeeping.
#[doc(hidden)]
#[allow(missing_docs)]
pub trait AnyStore: Any + Send {
    fn meta(&self) -> &'static ModelMeta;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The number of slots (objects ever held, discarded ones included).
    fn slot_count(&self) -> usize;
    fn state(&self, slot: u32) -> State;
    fn new_slots(&self) -> &[u32];
    fn marked_slots(&self) -> &[u32];
    fn column(&self, slot: u32, col: usize) -> ValueRef<'_>;
    fn key_id(&self, slot: u32) -> RawId;
    fn foreign_key(&self, slot: u32, rel: usize) -> RawId;
    fn snapshot_fk(&self, slot: u32, rel: usize) -> Option<RawId>;
    /// The parent whose loaded collection holds this object for `rel`: where the session last
    /// put it, which differs from the foreign key after a direct edit until the session
    /// settles it (the next relationship call on the model, or flush).
    fn linked_fk(&self, slot: u32, rel: usize) -> RawId;
    /// Records where the session put the object for `rel`.
    fn set_linked(&mut self, slot: u32, rel: usize, id: RawId);
    /// Replaces foreign keys without marking the object (pending ids resolved by a flush).
    fn resolve_fks(&mut self, slot: u32, fks: &[(usize, RawId)]);
    fn snapshot_value(&self, slot: u32, col: usize) -> Option<&Value>;
    fn lookup(&self, key: &KeyValue) -> Option<u32>;
    /// The key the object holds now (none for a new object whose key is not chosen yet).
    fn key_value(&self, slot: u32) -> Option<KeyValue>;
    fn collection(&self, slot: u32, rel: usize) -> Option<&dyn RawCollection>;
    fn collection_mut(&mut self, slot: u32, rel: usize) -> Option<&mut dyn RawCollection>;
    /// Marks (snapshots) a slot and sets a foreign key.
    fn set_foreign_key(&mut self, slot: u32, rel: usize, id: RawId);
    fn load_row(&mut self, row: &dyn RawRow) -> Result<u32>;
    /// [`Store::reload_row`]: an object already there takes the row's values.
    fn reload_row(&mut self, row: &dyn RawRow, session: u32) -> Result<Reloaded>;
    /// After a successful flush: the inserted rows' keys and resolved foreign keys.
    fn apply_insert(&mut self, slot: u32, key: Option<i64>, fks: &[(usize, RawId)]);
    /// After a successful flush: an updated row's new key in the identity map, and its
    /// commit-time values in the rollback journal.
    fn apply_update(&mut self, slot: u32);
    /// After a successful flush: the `#[version]` an UPDATE wrote (the object not marked).
    fn set_version(&mut self, slot: u32, version: i64);
    /// Before a statement outside a flush changes an object's row (an upsert): its values
    /// now, kept for `rollback` unless it has them already (or is discarded by it).
    fn journal_row(&mut self, slot: u32);
    /// An object read from a row a statement outside a flush wrote (an upsert): `rollback`
    /// discards it.
    fn mark_added(&mut self, slot: u32);
    /// The slots touched since the last call (see [`Store::touch`]), forgotten.
    fn take_touched(&mut self) -> Vec<u32>;
    /// The highest integer key read from the database.
    fn loaded_max(&self) -> Option<i64>;
    /// The highest parent key read from the database in the column of relation `rel`.
    fn fk_loaded_max(&self, rel: usize) -> Option<i64>;
    /// Whether a generated key must not be `key`: an object of the session holds it, or one
    /// that a rollback discarded held it.
    fn key_taken(&self, key: i64) -> bool;
    /// Notes keys a successful flush wrote explicitly.
    fn note_explicit_keys(&mut self, keys: &[i64]);
    /// The highest key written explicitly in the open transaction.
    fn tx_explicit_max(&self) -> Option<i64>;
    /// Whether any object of the store is stored (has a key in the identity map).
    fn holds_stored(&self) -> bool;
    /// Whether `key` is a key the session deleted or discarded, held by no object now.
    fn is_retired(&self, key: i64) -> bool;
    /// Marks an object to be deleted by the next flush (false if it already was).
    fn doom(&mut self, slot: u32) -> bool;
    /// The objects to delete at the next flush.
    fn doomed_slots(&self) -> &[u32];
    /// Whether an object is to be deleted by the next flush.
    fn is_doomed(&self, slot: u32) -> bool;
    /// After a successful flush: an object is gone (its row deleted, or a new object never
    /// inserted). Its handles stop working; `rollback` brings back a row deleted since the
    /// commit.
    fn apply_delete(&mut self, slot: u32, session: u32);
    /// After a successful flush: forget the marks and new list.
    fn finish_flush(&mut self);
    /// After commit.
    fn finish_commit(&mut self);
    /// After rollback: discard objects added since the commit, restore the others and their
    /// collections (whose handles are of `session`).
    fn rollback(&mut self, session: u32) -> Result<()>;
    /// The collections the last `rollback` restored (slot, relation), forgotten.
    fn take_restored(&mut self) -> Vec<(u32, usize)>;
    /// Takes `dead` children out of a collection, without journaling it (after a rollback).
    fn prune_collection(&mut self, slot: u32, rel: usize, dead: &rustc_hash::FxHashSet<u32>);
    /// Moves children out of (`remove`) and into (`add`) a loaded collection as the database
    /// says they are, in the collection and in the copy the journal keeps for `rollback`
    /// alike (a row read is not undone by a rollback, so neither is where it belongs).
    fn move_as_read(
        &mut self,
        slot: u32,
        rel: usize,
        remove: &rustc_hash::FxHashSet<u32>,
        add: &[u32],
        session: u32,
    );
}

impl<T: Model> AnyStore for Store<T> {
    fn meta(&self) -> &'static ModelMeta {
        T::META
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn slot_count(&self) -> usize {
        self.slots.len()
    }
    fn state(&self, slot: u32) -> State {
        self.slots
            .get(slot as usize)
            .map_or(State::Discarded, |s| s.state)
    }
    fn new_slots(&self) -> &[u32] {
        &self.new
    }
    fn marked_slots(&self) -> &[u32] {
        &self.marked
    }
    fn column(&self, slot: u32, col: usize) -> ValueRef<'_> {
        self.obj(slot).map_or(ValueRef::Null, |o| o.column(col))
    }
    fn key_id(&self, slot: u32) -> RawId {
        self.obj(slot).map_or(RawId::Unset, |o| o.key_id())
    }
    fn foreign_key(&self, slot: u32, rel: usize) -> RawId {
        self.obj(slot).map_or(RawId::Unset, |o| o.foreign_key(rel))
    }
    fn snapshot_fk(&self, slot: u32, rel: usize) -> Option<RawId> {
        Some(self.snapshots.get(&slot)?.fk(rel))
    }
    fn snapshot_value(&self, slot: u32, col: usize) -> Option<&Value> {
        self.snapshots.get(&slot)?.columns().get(col)
    }
    fn key_value(&self, slot: u32) -> Option<KeyValue> {
        self.obj(slot).and_then(Self::key_of)
    }
    fn lookup(&self, key: &KeyValue) -> Option<u32> {
        self.identity.get(key).or_else(|| {
            let slot = *self.pending_keys.get(key)?;
            let s = self.slots.get(slot as usize)?;
            let obj = s.obj.as_ref()?;
            (s.state == State::New && Self::key_of(obj).as_ref() == Some(key)).then_some(slot)
        })
    }
    fn linked_fk(&self, slot: u32, rel: usize) -> RawId {
        let Some(s) = self.slots.get(slot as usize) else {
            return RawId::Unset;
        };
        if let Some(l) = self.linked.get(&slot) {
            return l[rel];
        }
        if let Some(snap) = self.snapshots.get(&slot) {
            return snap.fk(rel);
        }
        s.obj.as_ref().map_or(RawId::Unset, |o| o.foreign_key(rel))
    }
    fn set_linked(&mut self, slot: u32, rel: usize, id: RawId) {
        let n = T::META.relations.len();
        if !self.linked.contains_key(&slot) {
            let current: Box<[RawId]> = (0..n).map(|r| self.linked_fk(slot, r)).collect();
            self.linked.insert(slot, current);
        }
        if let Some(l) = self.linked.get_mut(&slot) {
            l[rel] = id;
        }
    }
    fn resolve_fks(&mut self, slot: u32, fks: &[(usize, RawId)]) {
        if let Some(obj) = self.slots[slot as usize].obj.as_mut() {
            for &(rel, id) in fks {
                obj.set_foreign_key(rel, id);
            }
        }
    }
    fn collection(&self, slot: u32, rel: usize) -> Option<&dyn RawCollection> {
        self.obj(slot).map(|o| o.collection(rel))
    }
    fn collection_mut(&mut self, slot: u32, rel: usize) -> Option<&mut dyn RawCollection> {
        let s = self.slots.get_mut(slot as usize)?;
        let obj = s.obj.as_mut()?;
        // An object that was there at the last commit keeps its collections as they were
        // then, for `rollback` (new objects are discarded by it instead).
        if !s.since_commit && !s.collections_journaled {
            s.collections_journaled = true;
            let saved = (0..T::META.relations.len())
                .map(|r| {
                    if T::META.relations[r].kind.holds_children() {
                        obj.collection(r).slots()
                    } else {
                        None
                    }
                })
                .collect();
            self.collections_journal.push((slot, saved));
        }
        Some(obj.collection_mut(rel))
    }
    fn set_foreign_key(&mut self, slot: u32, rel: usize, id: RawId) {
        if let Some(obj) = self.mark(slot) {
            obj.set_foreign_key(rel, id);
        }
    }
    fn load_row(&mut self, row: &dyn RawRow) -> Result<u32> {
        Store::load_row(self, row)
    }
    fn reload_row(&mut self, row: &dyn RawRow, session: u32) -> Result<Reloaded> {
        Store::reload_row(self, row, session)
    }
    fn apply_insert(&mut self, slot: u32, key: Option<i64>, fks: &[(usize, RawId)]) {
        let s = &mut self.slots[slot as usize];
        let Some(obj) = s.obj.as_mut() else { return };
        if let Some(k) = key {
            obj.set_key_id(RawId::Stored(k));
        }
        for &(rel, id) in fks {
            obj.set_foreign_key(rel, id);
        }
        s.state = State::Persistent;
        self.snapshots.remove(&slot);
        if let Some(k) = Self::key_of(obj) {
            self.hold(&k);
            self.identity.insert(k, slot);
        }
    }
    fn journal_row(&mut self, slot: u32) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let Some(obj) = s.obj.as_ref() else { return };
        if s.since_commit || s.journaled || s.state != State::Persistent {
            return;
        }
        s.journaled = true;
        let snap = Self::take_snapshot(obj, State::Persistent);
        self.journal.push((slot, snap));
    }
    fn mark_added(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if !s.since_commit {
                s.since_commit = true;
                self.added.push(slot);
            }
        }
    }
    fn set_version(&mut self, slot: u32, version: i64) {
        if let Some(obj) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.obj.as_mut())
        {
            obj.set_version(version);
        }
    }
    fn apply_update(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        let (Some(obj), Some(snap)) = (s.obj.as_ref(), self.snapshots.remove(&slot)) else {
            return;
        };
        // A key that changed moves in the identity map.
        let old = snap
            .columns()
            .get(T::META.key)
            .and_then(|v| KeyValue::from_ref(v.as_ref()));
        let new = Self::key_of(obj);
        if !s.since_commit && !s.journaled {
            s.journaled = true;
            self.journal.push((slot, snap));
        }
        if old != new {
            self.forget_key(old, slot);
            if let Some(k) = new {
                self.hold(&k);
                self.identity.insert(k, slot);
            }
        }
    }
    fn take_touched(&mut self) -> Vec<u32> {
        let touched = std::mem::take(&mut self.touched);
        for &slot in &touched {
            self.slots[slot as usize].touched = false;
        }
        touched
    }
    fn loaded_max(&self) -> Option<i64> {
        self.loaded_max
    }
    fn fk_loaded_max(&self, rel: usize) -> Option<i64> {
        self.fk_loaded_max.get(rel).copied().flatten()
    }
    fn key_taken(&self, key: i64) -> bool {
        self.held_max.is_some_and(|m| key <= m)
            && (self.retired.contains(&key) || self.lookup(&KeyValue::Int(key)).is_some())
    }
    fn note_explicit_keys(&mut self, keys: &[i64]) {
        self.tx_explicit.extend_from_slice(keys);
    }
    fn tx_explicit_max(&self) -> Option<i64> {
        self.tx_explicit.iter().copied().max()
    }
    fn holds_stored(&self) -> bool {
        !self.identity.is_empty()
    }
    fn is_retired(&self, key: i64) -> bool {
        !self.retired.is_empty()
            && self.retired.contains(&key)
            && self.lookup(&KeyValue::Int(key)).is_none()
    }
    fn doom(&mut self, slot: u32) -> bool {
        match self.slots.get_mut(slot as usize) {
            Some(s) if s.obj.is_some() && !s.doomed => {
                s.doomed = true;
                self.doomed.push(slot);
                true
            }
            _ => false,
        }
    }
    fn doomed_slots(&self) -> &[u32] {
        &self.doomed
    }
    fn is_doomed(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).is_some_and(|s| s.doomed)
    }
    fn apply_delete(&mut self, slot: u32, session: u32) {
        let s = &mut self.slots[slot as usize];
        let Some(mut obj) = s.obj.take() else { return };
        s.state = State::Discarded;
        // Kept as the database held it (edits made since the last flush were not written),
        // for `rollback`.
        if let Some(snap) = self
            .snapshots
            .get(&slot)
            .filter(|s| !s.columns().is_empty())
        {
            if let Ok(mut stored) = T::from_row(&mut RowReader::new(&snap.columns(), T::META)) {
                for r in has_many::<T>() {
                    if let Some(children) = obj.collection(r).slots() {
                        stored.collection_mut(r).set_slots(session, &children);
                    }
                }
                obj = stored;
            }
        }
        let key = Self::key_of(&obj);
        // Its key is never generated again: a copy of its id must not come to name a new row.
        if let Some(KeyValue::Int(k)) = key {
            self.hold(&KeyValue::Int(k));
            self.retired.insert(k);
        }
        self.forget_key(key, slot);
        self.deleted.push((slot, obj));
    }
    fn finish_flush(&mut self) {
        // Every marked object is stored now (the new ones were inserted).
        self.end_flush_cycle();
    }
    fn take_restored(&mut self) -> Vec<(u32, usize)> {
        std::mem::take(&mut self.restored)
    }
    fn move_as_read(
        &mut self,
        slot: u32,
        rel: usize,
        remove: &rustc_hash::FxHashSet<u32>,
        add: &[u32],
        session: u32,
    ) {
        let Some(obj) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.obj.as_mut())
        else {
            return;
        };
        let c = obj.collection_mut(rel);
        if c.slots().is_some() {
            c.remove_slots(remove);
            let one = T::META.relations[rel].kind == RelationKind::HasOne;
            if one {
                c.set_slots(session, &add[add.len().saturating_sub(1)..]);
            } else {
                for &child in add {
                    if !c.contains_slot(child) {
                        c.push_slot(session, child);
                    }
                }
            }
        }
        if let Some((_, saved)) = self
            .collections_journal
            .iter_mut()
            .find(|(s, _)| *s == slot)
        {
            if let Some(children) = &mut saved[rel] {
                children.retain(|c| !remove.contains(c));
                for &child in add {
                    if !children.contains(&child) {
                        children.push(child);
                    }
                }
            }
        }
    }
    fn prune_collection(&mut self, slot: u32, rel: usize, dead: &rustc_hash::FxHashSet<u32>) {
        if let Some(obj) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.obj.as_mut())
        {
            obj.collection_mut(rel).remove_slots(dead);
        }
    }
    fn finish_commit(&mut self) {
        self.tx_explicit.clear();
        self.expunged.clear();
        self.deleted.clear();
        for slot in self.added.drain(..) {
            self.slots[slot as usize].since_commit = false;
        }
        for (slot, _) in self.journal.drain(..) {
            self.slots[slot as usize].journaled = false;
        }
        for (slot, _) in self.collections_journal.drain(..) {
            self.slots[slot as usize].collections_journaled = false;
        }
    }
    fn rollback(&mut self, session: u32) -> Result<()> {
        self.tx_explicit.clear();
        self.expunged.clear();
        self.restore_deleted();
        self.discard_added();
        let restored = self.restore_objects(session);
        self.end_flush_cycle();
        self.restore_collections(session);
        restored
    }
}

impl<T: Model> Store<T> {
    /// Rollback: rows deleted by flushes since the last commit come back (objects added
    /// since then stay gone), as they were when deleted: the journal then restores their
    /// values at the commit.
    fn restore_deleted(&mut self) {
        for (slot, obj) in std::mem::take(&mut self.deleted) {
            let s = &mut self.slots[slot as usize];
            if s.since_commit {
                continue;
            }
            let key = Self::key_of(&obj);
            s.obj = Some(obj);
            s.state = State::Persistent;
            if let Some(k) = key {
                if let KeyValue::Int(v) = k {
                    self.retired.remove(&v);
                }
                self.identity.insert(k, slot);
            }
        }
    }

    /// Rollback: discards the objects added (or first inserted) since the last commit; their
    /// keys are retired, never generated again.
    fn discard_added(&mut self) {
        for slot in std::mem::take(&mut self.added) {
            let key = self.slots[slot as usize]
                .obj
                .as_ref()
                .and_then(Self::key_of);
            if let Some(KeyValue::Int(k)) = key {
                self.hold(&KeyValue::Int(k));
                self.retired.insert(k);
            }
            self.forget_key(key, slot);
            let s = &mut self.slots[slot as usize];
            s.obj = None;
            s.state = State::Discarded;
            self.snapshots.remove(&slot);
            s.marked = false;
            s.since_commit = false;
        }
    }

    /// Rollback: undoes unflushed edits, then rows updated by flushes of this transaction (the
    /// journal holds their values at the commit, so it goes last). Every object is restored
    /// even if one cannot be; the first failure is reported. Collections are carried over.
    fn restore_objects(&mut self, session: u32) -> Result<()> {
        let mut result = Ok(());
        let journal = std::mem::take(&mut self.journal);
        let restores = self
            .marked
            .iter()
            .filter_map(|&slot| Some((slot, self.snapshots.get(&slot)?.clone())))
            .chain(journal)
            .collect::<Vec<_>>();
        for (slot, snap) in restores {
            let s = &mut self.slots[slot as usize];
            s.journaled = false;
            if s.state != State::Persistent || snap.columns().is_empty() {
                continue;
            }
            let mut obj = match T::from_row(&mut RowReader::new(&snap.columns(), T::META)) {
                Ok(obj) => obj,
                Err(e) => {
                    result = result.and(Err(e));
                    continue;
                }
            };
            let Some(old) = self.slots[slot as usize].obj.take() else {
                continue;
            };
            // A key it held in the transaction is retired, like those of discarded objects.
            let held = Self::key_of(&old);
            if held != Self::key_of(&obj) {
                if let Some(KeyValue::Int(k)) = held {
                    self.hold(&KeyValue::Int(k));
                    self.retired.insert(k);
                }
            }
            for r in has_many::<T>() {
                if let Some(children) = old.collection(r).slots() {
                    obj.collection_mut(r).set_slots(session, &children);
                }
            }
            self.forget_key(Self::key_of(&old), slot);
            if let Some(k) = Self::key_of(&obj) {
                self.hold(&k);
                self.identity.insert(k, slot);
            }
            self.slots[slot as usize].obj = Some(obj);
        }
        result
    }

    /// Rollback: collections changed since the commit go back to what they held then (which
    /// names no discarded object); one first loaded since is unloaded.
    fn restore_collections(&mut self, session: u32) {
        for (slot, saved) in std::mem::take(&mut self.collections_journal) {
            let s = &mut self.slots[slot as usize];
            s.collections_journaled = false;
            let Some(obj) = s.obj.as_mut() else { continue };
            for r in has_many::<T>() {
                let c = obj.collection_mut(r);
                match &saved[r] {
                    Some(children) => {
                        c.set_slots(session, children);
                        self.restored.push((slot, r));
                    }
                    None => c.unload(),
                }
            }
        }
    }
}

impl<T: Model> Store<T> {
    /// Takes an object out of the store: no key, no work pending, its handles invalid.
    pub(crate) fn detach(&mut self, slot: u32) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let Some(obj) = s.obj.take() else { return };
        let written = s.state == State::Persistent && (s.journaled || s.since_commit);
        let inserted = s.since_commit;
        s.state = State::Discarded;
        s.marked = false;
        s.touched = false;
        s.doomed = false;
        s.journaled = false;
        // The key the identity map holds it under (the row's, if an edit changed it).
        let stored = self
            .snapshots
            .remove(&slot)
            .and_then(|snap| snap.columns().get(T::META.key).cloned())
            .and_then(|v| KeyValue::from_ref(v.as_ref()))
            .or_else(|| Self::key_of(&obj));
        if written {
            let journal = self.journal.iter().position(|(j, _)| *j == slot);
            let entry = journal.map(|i| self.journal.swap_remove(i).1);
            if let Some(k) = stored.clone() {
                self.expunged.insert(k, if inserted { None } else { entry });
            }
        }
        self.forget_key(stored, slot);
        self.forget_key(Self::key_of(&obj), slot);
        self.pending_keys.retain(|_, s| *s != slot);
        for list in [
            &mut self.new,
            &mut self.marked,
            &mut self.touched,
            &mut self.doomed,
        ] {
            list.retain(|&s| s != slot);
        }
        self.linked.remove(&slot);
    }

    /// Reads a row into the session like [`load_row`](Store::load_row), except that an
    /// object already there takes the row's values (its edits dropped): its slot, and for
    /// each `belongs_to` whose key the row changes, (relation, the parent it is linked
    /// under, the key now) for the session to move it between collections.
    pub(crate) fn reload_row(&mut self, row: &dyn RawRow, session: u32) -> Result<Reloaded> {
        let meta = T::META;
        let existing = row
            .value(meta.key, meta.key_column().sql_type)
            .ok()
            .and_then(KeyValue::from_ref)
            .and_then(|k| self.identity.get(&k));
        let Some(slot) = existing else {
            return Ok((self.load_row(row)?, Vec::new()));
        };
        let fresh = T::from_row(&mut RowReader::new(row, meta))?;
        let moves = (0..meta.relations.len())
            .filter(|&r| matches!(meta.relations[r].kind, RelationKind::BelongsTo { .. }))
            .map(|r| (r, AnyStore::linked_fk(self, slot, r), fresh.foreign_key(r)))
            .filter(|&(_, linked, now)| linked != now)
            .collect();
        self.replace_with_row(slot, fresh, session);
        Ok((slot, moves))
    }

    /// Puts `fresh`, just read from the object's row, in place of the object: its loaded
    /// collections carry over, and it is no longer marked as changed.
    pub(crate) fn replace_with_row(&mut self, slot: u32, mut fresh: T, session: u32) {
        let s = &mut self.slots[slot as usize];
        let Some(old) = s.obj.take() else { return };
        for r in 0..T::META.relations.len() {
            if T::META.relations[r].kind.holds_children() {
                if let Some(children) = old.collection(r).slots() {
                    fresh.collection_mut(r).set_slots(session, &children);
                }
            }
        }
        s.obj = Some(fresh);
        if s.marked {
            s.marked = false;
            self.marked.retain(|&m| m != slot);
        }
        if s.touched {
            s.touched = false;
            self.touched.retain(|&t| t != slot);
        }
        self.snapshots.remove(&slot);
        // Loaded again from the row whose key the identity map holds.
        let key = self.slots[slot as usize]
            .obj
            .as_ref()
            .and_then(Self::key_of);
        if let Some(k) = key {
            self.identity.insert(k, slot);
        }
    }
}

/// The has-many and has-one relations of `T`.
fn has_many<T: Model>() -> impl Iterator<Item = usize> {
    (0..T::META.relations.len()).filter(|&r| T::META.relations[r].kind.holds_children())
}

/// Creates the store of model `T` (the derive puts this in the model's metadata).
#[doc(hidden)]
pub fn new_store<T: Model>() -> Box<dyn AnyStore> {
    Box::new(Store::<T>::new())
}

#[cfg(test)]
mod tests {
    use super::IntMap;

    #[test]
    fn int_map_keeps_every_key_dense_or_sparse() {
        let mut m = IntMap::default();
        // Far keys and negative keys go to the hash map.
        m.insert(5_000, 1);
        m.insert(-3, 2);
        m.insert(i64::MAX, 3);
        assert_eq!(
            (m.get(5_000), m.get(-3), m.get(i64::MAX)),
            (Some(1), Some(2), Some(3))
        );
        // Dense keys, loaded in order, grow the vector past 5,000.
        for k in 0..4_500 {
            m.insert(k, 10 + k as u32);
        }
        assert!(m.dense.len() > 5_000, "{}", m.dense.len());
        assert_eq!(m.get(4_499), Some(4_509));
        // A sparse key now inside the vector's range is still found, and moves when set.
        assert_eq!(m.get(5_000), Some(1));
        m.insert(5_000, 7);
        assert_eq!(m.get(5_000), Some(7));
        assert!(!m.sparse.contains_key(&5_000));
        // Removing works from either side; a missing key is None.
        m.remove(5_000);
        m.remove(-3);
        m.remove(0);
        assert_eq!((m.get(5_000), m.get(-3), m.get(0)), (None, None, None));
        assert_eq!(m.get(1), Some(11));
        assert_eq!(m.get(4_600), None);
        // Slot 0 is a slot like any other.
        m.insert(0, 0);
        assert_eq!(m.get(0), Some(0));
    }
}
