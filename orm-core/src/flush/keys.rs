//! Keys: reserving the keys of new rows before anything is written, and resolving the
//! pending ids that point at them.

use super::changes::Updates;
use super::deletes::Deletes;
use super::{execute, Row, Targets};
use crate::backend::Conn;
use crate::error::{Error, Result};
use crate::id::RawId;
use crate::model::KeyKind;
use crate::session::store::{AnyStore, State};
use crate::session::Session;
use crate::sql::KeyAllocation;
use crate::value::ValueRef;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The reserved keys of a flush, and what pending ids resolve to with them.
pub(super) struct Resolver<'a> {
    pub(super) stores: &'a [Box<dyn AnyStore>],
    pub(super) session: u32,
    pub(super) targets: &'a Targets,
    /// For each store, the new objects the flush inserts.
    pub(super) inserts: &'a [Vec<u32>],
    /// What the flush deletes, and the foreign keys it sets to `NULL`.
    pub(super) deletes: &'a Deletes,
    /// For each store, the key of each new slot (reserved or explicit), indexed by slot.
    pub(super) keys: Vec<Vec<i64>>,
    /// For each store, the new rows by key; built on first use.
    by_key: Vec<Option<HashMap<i64, u32>>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        stores: &'a [Box<dyn AnyStore>],
        session: u32,
        targets: &'a Targets,
        (inserts, deletes): (&'a [Vec<u32>], &'a Deletes),
        keys: Vec<Vec<i64>>,
    ) -> Self {
        Resolver {
            stores,
            session,
            targets,
            inserts,
            deletes,
            keys,
            by_key: vec![None; stores.len()],
        }
    }

    /// The key a foreign key will hold once the rows are inserted.
    pub(super) fn resolve(&self, si: usize, rel: usize, id: RawId) -> Option<i64> {
        match id {
            RawId::Unset => None,
            RawId::Stored(v) => Some(v),
            RawId::Pending { slot, .. } => {
                pending_key(self.stores, self.targets, &self.keys, si, rel, slot)
            }
        }
    }

    /// Foreign key `rel` of row `(si, slot)` as the flush writes it (`NULL` where its parent
    /// goes).
    pub(super) fn fk(&self, si: usize, slot: u32, rel: usize) -> RawId {
        if self.deletes.is_nulled(si, slot, rel) {
            RawId::Unset
        } else {
            self.stores[si].foreign_key(slot, rel)
        }
    }

    /// Foreign key `rel` of stored row `(si, slot)` as the database holds it now.
    pub(super) fn stored_fk(&self, si: usize, slot: u32, rel: usize) -> RawId {
        let store = &self.stores[si];
        store
            .snapshot_fk(slot, rel)
            .unwrap_or_else(|| store.foreign_key(slot, rel))
    }

    /// The key of stored row `(si, slot)` as the database holds it now.
    pub(super) fn stored_key(&self, si: usize, slot: u32) -> ValueRef<'a> {
        let store = &self.stores[si];
        let key = store.meta().key;
        match store.snapshot_value(slot, key) {
            Some(v) => v.as_ref(),
            None => self.column_value(si, slot, key),
        }
    }

    /// Column `c` of stored row `(si, slot)` as the database holds it now.
    pub(super) fn stored_column(&self, si: usize, slot: u32, c: usize) -> ValueRef<'a> {
        let store = &self.stores[si];
        match store.snapshot_value(slot, c) {
            Some(v) => v.as_ref(),
            None => store.column(slot, c),
        }
    }

    /// The `#[version]` a stored row of a versioned model gets from an UPDATE: the one the
    /// database holds now, plus one.
    pub(super) fn next_version(&self, si: usize, slot: u32, c: usize) -> ValueRef<'a> {
        bumped(self.stored_column(si, slot, c))
    }

    /// The new row that row `(si, slot)` references through `rel`, if any.
    pub(super) fn parent_row(&mut self, si: usize, slot: u32, rel: usize) -> Option<Row> {
        let ti = self.targets[si][rel]?;
        if self.inserts[ti].is_empty() {
            return None;
        }
        match self.fk(si, slot, rel) {
            RawId::Pending { session, slot: ps } if session == self.session => {
                (self.stores[ti].state(ps) == State::New && !self.deletes.contains(ti, ps))
                    .then_some((ti, ps))
            }
            RawId::Stored(k) => {
                let inserts = self.inserts;
                let keys = &self.keys;
                let map = self.by_key[ti].get_or_insert_with(|| {
                    inserts[ti]
                        .iter()
                        .map(|&s| (keys[ti][s as usize], s))
                        .collect()
                });
                map.get(&k).map(|&s| (ti, s))
            }
            _ => None,
        }
    }

    /// The value of column `c` of a row to write, with pending ids resolved.
    pub(super) fn column_value(&self, si: usize, slot: u32, c: usize) -> ValueRef<'a> {
        let store = &self.stores[si];
        let meta = store.meta();
        if let Some(r) = meta.columns[c].relation {
            return self
                .resolve(si, r, self.fk(si, slot, r))
                .map_or(ValueRef::Null, ValueRef::I64);
        }
        if c == meta.key && meta.key_kind == KeyKind::Generated {
            return match store.key_id(slot) {
                RawId::Stored(v) => ValueRef::I64(v),
                _ => ValueRef::I64(self.keys[si][slot as usize]),
            };
        }
        store.column(slot, c)
    }
}

/// Version 1, of the integer type of `v` (what a new row of a `#[version]` model gets).
pub(crate) fn first_version(v: ValueRef<'_>) -> ValueRef<'static> {
    match v {
        ValueRef::I32(_) => ValueRef::I32(1),
        ValueRef::I16(_) => ValueRef::I16(1),
        _ => ValueRef::I64(1),
    }
}

/// A version plus one, of the same integer type (wrapping as the column would).
pub(super) fn bumped(v: ValueRef<'_>) -> ValueRef<'static> {
    match v {
        ValueRef::I32(i) => ValueRef::I32(i.wrapping_add(1)),
        ValueRef::I16(i) => ValueRef::I16(i.wrapping_add(1)),
        ValueRef::I64(i) => ValueRef::I64(i.wrapping_add(1)),
        _ => ValueRef::I64(1),
    }
}

/// The key of the parent at `slot` that a pending id of relation `rel` of store `si` points
/// at: reserved by this flush for a new parent, the stored key of any other.
pub(super) fn pending_key(
    stores: &[Box<dyn AnyStore>],
    targets: &Targets,
    keys: &[Vec<i64>],
    si: usize,
    rel: usize,
    slot: u32,
) -> Option<i64> {
    let ti = targets[si][rel]?;
    match stores[ti].state(slot) {
        State::New => keys.get(ti)?.get(slot as usize).copied(),
        _ => match stores[ti].key_id(slot) {
            RawId::Stored(v) => Some(v),
            _ => None,
        },
    }
}

/// The keys a flush reserved: for each store, the key of each new slot, and the keys the
/// store writes explicitly.
pub(super) struct Reserved {
    pub(super) keys: Vec<Vec<i64>>,
    pub(super) explicit: Vec<Vec<i64>>,
}

/// The keys of the new rows of each store (indexed by slot; empty for a store without new
/// rows or with natural keys): explicit ones as given, the others reserved as the dialect says
/// (after the highest key under SQLite's write lock, or from the key's sequence), never
/// colliding with them or with a key the session has seen. Also the keys each store writes
/// explicitly (new rows' and changed keys of stored rows).
pub(super) fn reserve_all(
    db: &mut Session,
    updates: &Updates,
    inserts: &[Vec<u32>],
) -> Result<Reserved> {
    let mut out = Reserved {
        keys: Vec::with_capacity(db.stores.len()),
        explicit: Vec::with_capacity(db.stores.len()),
    };
    for (si, inserts) in inserts.iter().enumerate() {
        let store = &db.stores[si];
        let meta = store.meta();
        if meta.key_kind != KeyKind::Generated {
            out.keys.push(Vec::new());
            out.explicit.push(Vec::new());
            continue;
        }
        let mut explicit: HashSet<i64> = HashSet::default();
        let mut missing = 0usize;
        for &slot in inserts {
            match store.key_id(slot) {
                RawId::Stored(v) => {
                    explicit.insert(v);
                }
                _ => missing += 1,
            }
        }
        // Keys that existing rows take in this flush are taken too.
        for u in updates.of_key(si, meta.key) {
            if let RawId::Stored(v) = store.key_id(u.slot) {
                explicit.insert(v);
            }
        }
        let read = read_max(db, si);
        let fresh = reserve_keys(&mut db.conn, &*db.stores[si], read, missing, &explicit)?;
        out.explicit.push(explicit.into_iter().collect());
        let store = &db.stores[si];
        if inserts.is_empty() {
            out.keys.push(Vec::new());
            continue;
        }
        let mut fresh = fresh.into_iter();
        let mut table_keys = vec![0i64; store.slot_count()];
        for &slot in inserts {
            table_keys[slot as usize] = match store.key_id(slot) {
                RawId::Stored(v) => v,
                _ => fresh.next().expect("one reserved key per new row"),
            };
        }
        out.keys.push(table_keys);
    }
    Ok(out)
}

/// `n` keys for new rows of store `si` written outside a flush (an upsert's), reserved as a
/// flush reserves them.
pub(crate) fn reserve_keys_for(db: &mut Session, si: usize, n: usize) -> Result<Vec<i64>> {
    let read = read_max(db, si);
    reserve_keys(&mut db.conn, &*db.stores[si], read, n, &HashSet::default())
}

/// The highest key of store `si`'s model read from the database: as a row's key, or as a
/// parent key in a `belongs_to` column of any model.
fn read_max(db: &Session, si: usize) -> Option<i64> {
    let meta = db.stores[si].meta();
    let as_parent = db.stores.iter().flat_map(|s| {
        let m = s.meta();
        (0..m.relations.len())
            .filter(move |&r| {
                !m.relations[r].kind.holds_children() && (m.relations[r].target)().same(meta)
            })
            .map(move |r| s.fk_loaded_max(r))
    });
    std::iter::once(db.stores[si].loaded_max())
        .chain(as_parent)
        .flatten()
        .max()
}

/// Before the transaction commits, on a database whose keys come from sequences: each
/// sequence moves past the keys the transaction wrote explicitly, so that no session draws
/// them later. (Not earlier: a flush or transaction that is rolled back leaves the sequences
/// where they were.)
pub(crate) fn before_commit(db: &mut Session) -> Result<()> {
    if db.conn.dialect().key_allocation() != KeyAllocation::Sequence {
        return Ok(());
    }
    for si in 0..db.stores.len() {
        if let Some(max) = db.stores[si].tx_explicit_max() {
            execute::move_sequence(&mut db.conn, db.stores[si].meta(), max)?;
        }
    }
    Ok(())
}

/// `missing` keys for new rows of `store`'s model, ascending, that no other row has or will
/// get, drawn as the dialect says: never one of `explicit` (the keys this flush writes
/// explicitly), one an object of the session holds, or one an object discarded by a rollback
/// held; and above `read`, the highest key read from the database.
fn reserve_keys(
    conn: &mut Conn,
    store: &dyn AnyStore,
    read: Option<i64>,
    missing: usize,
    explicit: &HashSet<i64>,
) -> Result<Vec<i64>> {
    let meta = store.meta();
    let mut keys = Vec::with_capacity(missing);
    if missing == 0 {
        return Ok(keys);
    }
    match conn.dialect().key_allocation() {
        KeyAllocation::AfterMax => {
            let max = execute::max_key(conn, meta)?;
            let floor = [explicit.iter().copied().max(), read]
                .into_iter()
                .flatten()
                .fold(max.max(0), i64::max);
            // After the highest key in use or read, skipping keys the session's objects hold
            // (another program may have deleted their rows) or held before a rollback.
            let mut next = floor;
            while keys.len() < missing {
                next = next
                    .checked_add(1)
                    .ok_or(Error::KeysExhausted { model: meta.name })?;
                if !store.key_taken(next) {
                    keys.push(next);
                }
            }
        }
        KeyAllocation::Sequence => {
            let mut fresh = execute::draw_keys(conn, meta, missing)?;
            // Only when the sequence is behind a row read from the database (which another
            // program inserted with an explicit key) is it moved past that row's key.
            if let Some(l) = read.filter(|&l| fresh.first().is_some_and(|&f| f <= l)) {
                execute::move_sequence(conn, meta, l)?;
                fresh = execute::draw_keys(conn, meta, missing)?;
            }
            // Other keys the session knows are skipped, not moved past: the ones this flush
            // writes explicitly, those of the session's objects, and those rolled back. (The
            // sequence moves past explicit keys once they are committed, see `before_commit`.)
            loop {
                keys.extend(
                    fresh
                        .into_iter()
                        .filter(|&k| !explicit.contains(&k) && !store.key_taken(k)),
                );
                if keys.len() >= missing {
                    break;
                }
                fresh = execute::draw_keys(conn, meta, missing - keys.len())?;
            }
            keys.sort_unstable();
        }
    }
    Ok(keys)
}
