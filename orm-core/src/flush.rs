//! The unit of work: validate, reserve keys, order rows parents first, write them in batches
//! inside a savepoint, and only then give the objects their keys.
//!
//! Nothing in the session changes until every statement has succeeded, so a failed flush
//! leaves the objects exactly as they were (the savepoint leaves the database as it was).

use crate::backend::{Conn, SqlKey};
use crate::error::{DbErrorKind, Error, Result};
use crate::id::RawId;
use crate::model::{KeyKind, ModelMeta, RawRow, RelationKind};
use crate::session::store::{AnyStore, KeyValue, State};
use crate::session::Session;
use crate::sql::{self, KeyAllocation};
use crate::value::{SqlType, Value, ValueRef};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

/// Most rows in one multi-row INSERT.
const MAX_BATCH_ROWS: usize = 500;

/// Batches of up to this many rows go in one INSERT of their own size; larger ones in
/// powers of two (see `insert_rows`).
const EXACT_BATCH_ROWS: usize = 16;

/// Most bytes of values in one multi-row INSERT (a row larger than this goes alone): well
/// under PostgreSQL's 1 GiB message limit, and a bound on the memory a statement takes.
const MAX_BATCH_BYTES: usize = 16 << 20;

type Row = (usize, u32);

/// Foreign keys (store, slot, relation) inserted as NULL and set by an UPDATE afterwards.
type Deferred = HashSet<(usize, u32, usize)>;

/// For each store and relation, the store of the model at the other end (if it has one).
type Targets = Vec<Vec<Option<usize>>>;

fn targets(db: &Session) -> Targets {
    db.stores
        .iter()
        .map(|s| {
            s.meta()
                .relations
                .iter()
                .map(|r| db.store_index_of((r.target)()))
                .collect()
        })
        .collect()
}

pub(crate) fn flush(db: &mut Session) -> Result<()> {
    db.conn.check_not_aborted()?;
    validate(db)?;
    let updates = changed_columns(db);
    let has_inserts = db.stores.iter().any(|s| !s.new_slots().is_empty());
    let targets = targets(db);
    let written = if has_inserts || !updates.is_empty() {
        db.begin()?;
        db.conn.execute_batch("SAVEPOINT orm_flush")?;
        match write(db, &targets, &updates) {
            Ok(done) => {
                db.conn.execute_batch("RELEASE orm_flush")?;
                Some(done)
            }
            Err(e) => {
                // The savepoint restores the database; the session was not touched.
                if db.conn.execute_batch("ROLLBACK TO orm_flush").is_ok() {
                    // The savepoint undid the failure; the transaction goes on.
                    db.conn.aborted = None;
                    let _ = db.conn.execute_batch("RELEASE orm_flush");
                } else {
                    // The savepoint is gone with the transaction (SQLite ends it on some
                    // errors; a connection may be lost): nothing more is written in it.
                    db.conn.aborted.get_or_insert_with(|| e.to_string());
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    // Everything below changes the session, now that the database has the changes: children
    // whose keys changed join their new parents' collections (linked by the ids they held
    // before the keys were resolved).
    let mut moves = Vec::new();
    for si in 0..db.stores.len() {
        moves.extend(db.moves_of(si, db.stores[si].marked_slots()));
    }
    let rekeyed: Vec<(usize, u32)> = updates
        .list
        .iter()
        .filter(|u| updates.columns(u).contains(&db.stores[u.store].meta().key))
        .map(|u| (u.store, u.slot))
        .collect();
    apply(db, &targets, written.as_ref(), &updates);
    db.move_children(&moves, true);
    db.relink_children_of(&rekeyed);
    db.link_unlinked();
    db.pending_children.clear();
    for s in &mut db.stores {
        s.finish_flush();
    }
    Ok(())
}

/// Misuse the session can see before any SQL: required keys left unset, pending ids of other
/// sessions or of discarded objects, keys that another object holds or that are not stored.
fn validate(db: &Session) -> Result<()> {
    for store in &db.stores {
        let meta = store.meta();
        for &slot in store.new_slots().iter().chain(store.marked_slots()) {
            if store.state(slot) == State::Discarded {
                continue;
            }
            check_key(&**store, slot)?;
            for (r, rel) in meta.relations.iter().enumerate() {
                let RelationKind::BelongsTo { nullable, .. } = rel.kind else {
                    continue;
                };
                let id = store.foreign_key(slot, r);
                if id == RawId::Unset && !nullable {
                    return Err(Error::RequiredRelationUnset {
                        model: meta.name,
                        field: rel.field,
                    });
                }
                db.check_pending_parent(meta, r, id)?;
            }
        }
    }
    Ok(())
}

/// The key of a new or changed object: stored if the object is, and held by no other object
/// of the session (which would make two objects of one row).
fn check_key(store: &dyn AnyStore, slot: u32) -> Result<()> {
    let meta = store.meta();
    let persistent = store.state(slot) == State::Persistent;
    if persistent
        && meta.key_kind == KeyKind::Generated
        && !matches!(store.key_id(slot), RawId::Stored(_))
    {
        return Err(Error::KeyNotStored { model: meta.name });
    }
    let Some(key) = store.key_value(slot) else {
        return Ok(());
    };
    let unchanged = persistent
        && store
            .snapshot_value(slot, meta.key)
            .is_none_or(|v| KeyValue::from_ref(v.as_ref()).as_ref() == Some(&key));
    if unchanged {
        return Ok(());
    }
    match store.lookup(&key) {
        Some(other) if other != slot && store.key_value(other).as_ref() == Some(&key) => {
            Err(Error::KeyInUse {
                model: meta.name,
                key: match key {
                    KeyValue::Int(k) => k.to_string(),
                    KeyValue::Text(t) => format!("{t:?}"),
                    KeyValue::Blob(b) => format!("<{} bytes>", b.len()),
                },
            })
        }
        _ => Ok(()),
    }
}

/// An UPDATE to run: store, slot, and where its changed columns are in [`Updates`].
pub(crate) struct Update {
    store: usize,
    slot: u32,
    columns: std::ops::Range<usize>,
}

/// The UPDATEs of a flush, their changed columns in one vector.
pub(crate) struct Updates {
    list: Vec<Update>,
    columns: Vec<usize>,
}

impl Updates {
    fn columns(&self, u: &Update) -> &[usize] {
        &self.columns[u.columns.clone()]
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The columns of each persistent object that differ from its snapshot.
fn changed_columns(db: &Session) -> Updates {
    let mut out = Updates {
        list: Vec::new(),
        columns: Vec::new(),
    };
    for (si, store) in db.stores.iter().enumerate() {
        let meta = store.meta();
        for &slot in store.marked_slots() {
            if store.state(slot) != State::Persistent {
                continue;
            }
            let start = out.columns.len();
            for (c, col) in meta.columns.iter().enumerate() {
                let changed = if let Some(r) = col.relation {
                    let now = db.normalize(meta.relations[r].target, store.foreign_key(slot, r));
                    Some(now) != store.snapshot_fk(slot, r)
                } else if c == meta.key && meta.key_kind == KeyKind::Generated {
                    let now = match store.key_id(slot) {
                        RawId::Stored(v) => Value::I64(v),
                        _ => Value::Null,
                    };
                    store.snapshot_value(slot, c) != Some(&now)
                } else {
                    store
                        .snapshot_value(slot, c)
                        .is_none_or(|old| !old.as_ref().same_as(store.column(slot, c)))
                };
                if changed {
                    out.columns.push(c);
                }
            }
            if out.columns.len() > start {
                out.list.push(Update {
                    store: si,
                    slot,
                    columns: start..out.columns.len(),
                });
            }
        }
    }
    out
}

/// What the statements wrote, applied to the objects once all of them succeeded.
pub(crate) struct Written {
    keys: Vec<Vec<i64>>,
    inserted: Vec<Row>,
    /// For each store, the keys written explicitly.
    explicit: Vec<Vec<i64>>,
}

/// Per-flush lookup tables: where each relation's target lives and the reserved keys.
struct Plan<'a> {
    stores: &'a [Box<dyn AnyStore>],
    session: u32,
    targets: &'a Targets,
    /// For each store, the key of each new slot (reserved or explicit), indexed by slot.
    keys: Vec<Vec<i64>>,
    /// For each store, the new rows by key; built on first use.
    by_key: Vec<Option<HashMap<i64, u32>>>,
}

impl Plan<'_> {
    /// The key a foreign key will hold once the rows are inserted.
    fn resolve(&self, si: usize, rel: usize, id: RawId) -> Option<i64> {
        match id {
            RawId::Unset => None,
            RawId::Stored(v) => Some(v),
            RawId::Pending { slot, .. } => {
                pending_key(self.stores, self.targets, &self.keys, si, rel, slot)
            }
        }
    }

    /// The new row that row `(si, slot)` references through `rel`, if any.
    fn parent_row(&mut self, si: usize, slot: u32, rel: usize) -> Option<Row> {
        let ti = self.targets[si][rel]?;
        if self.stores[ti].new_slots().is_empty() {
            return None;
        }
        match self.stores[si].foreign_key(slot, rel) {
            RawId::Pending { session, slot: ps } if session == self.session => {
                (self.stores[ti].state(ps) == State::New).then_some((ti, ps))
            }
            RawId::Stored(k) => {
                let stores = self.stores;
                let keys = &self.keys;
                let map = self.by_key[ti].get_or_insert_with(|| {
                    stores[ti]
                        .new_slots()
                        .iter()
                        .map(|&s| (keys[ti][s as usize], s))
                        .collect()
                });
                map.get(&k).map(|&s| (ti, s))
            }
            _ => None,
        }
    }
}

/// The key of the parent at `slot` that a pending id of relation `rel` of store `si` points
/// at: reserved by this flush for a new parent, the stored key of any other.
fn pending_key(
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

/// Reserves keys, sorts the new rows and runs every statement.
fn write(db: &mut Session, targets: &Targets, updates: &Updates) -> Result<Written> {
    let session = db.id;
    let (keys, explicit) = reserve_all(db, updates)?;
    let (conn, stores) = (&mut db.conn, &db.stores[..]);
    let mut plan = Plan {
        stores,
        session,
        targets,
        keys,
        by_key: vec![None; stores.len()],
    };
    let (order, deferred) = sort(&mut plan)?;

    // Updates go first, so that a UNIQUE value an update gives up can be taken by a new row;
    // a changed foreign key that points at a row this flush inserts is written after the
    // inserts, with the keys left NULL to break a cycle.
    let (early, mut late) = split_updates(&mut plan, updates);
    run_updates(conn, &plan, early.as_ref().unwrap_or(updates))?;
    run_inserts(conn, &mut plan, &order, &deferred)?;
    late.extend(deferred);
    run_late_keys(conn, &plan, late)?;

    Ok(Written {
        keys: plan.keys,
        inserted: order,
        explicit,
    })
}

/// The keys of the new rows of each store (indexed by slot; empty for a store without new
/// rows or with natural keys): explicit ones as given, the others reserved as the dialect says
/// (after the highest key under SQLite's write lock, or from the key's sequence), never
/// colliding with them or with a key the session has seen. Also the keys each store writes
/// explicitly (new rows' and changed keys of stored rows).
#[allow(clippy::type_complexity)]
fn reserve_all(db: &mut Session, updates: &Updates) -> Result<(Vec<Vec<i64>>, Vec<Vec<i64>>)> {
    let mut keys = Vec::with_capacity(db.stores.len());
    let mut explicit_keys = Vec::with_capacity(db.stores.len());
    for si in 0..db.stores.len() {
        let store = &db.stores[si];
        let meta = store.meta();
        if meta.key_kind != KeyKind::Generated {
            keys.push(Vec::new());
            explicit_keys.push(Vec::new());
            continue;
        }
        let mut explicit: HashSet<i64> = HashSet::default();
        let mut missing = 0usize;
        for &slot in store.new_slots() {
            match store.key_id(slot) {
                RawId::Stored(v) => {
                    explicit.insert(v);
                }
                _ => missing += 1,
            }
        }
        // Keys that existing rows take in this flush are taken too.
        for u in updates
            .list
            .iter()
            .filter(|u| u.store == si && updates.columns(u).contains(&meta.key))
        {
            if let RawId::Stored(v) = store.key_id(u.slot) {
                explicit.insert(v);
            }
        }
        let read = read_max(db, si);
        let fresh = reserve_keys(&mut db.conn, &*db.stores[si], read, missing, &explicit)?;
        explicit_keys.push(explicit.into_iter().collect());
        let store = &db.stores[si];
        if store.new_slots().is_empty() {
            keys.push(Vec::new());
            continue;
        }
        let mut fresh = fresh.into_iter();
        let mut table_keys = vec![0i64; store.slot_count()];
        for &slot in store.new_slots() {
            table_keys[slot as usize] = match store.key_id(slot) {
                RawId::Stored(v) => v,
                _ => fresh.next().expect("one reserved key per new row"),
            };
        }
        keys.push(table_keys);
    }
    Ok((keys, explicit_keys))
}

/// Inserts the new rows in `order`, in batches of consecutive rows of one table that do not
/// reference each other, cut by rows, parameters and bytes; keys in `deferred` go in as NULL.
fn run_inserts(
    conn: &mut Conn,
    plan: &mut Plan<'_>,
    order: &[Row],
    deferred: &Deferred,
) -> Result<()> {
    let (stores, targets) = (plan.stores, plan.targets);
    // Relations of a table to itself: a row must not share a statement with its parent.
    let self_refs: Vec<Vec<usize>> = (0..stores.len())
        .map(|si| {
            (0..targets[si].len())
                .filter(|&r| targets[si][r] == Some(si))
                .collect()
        })
        .collect();
    let d = conn.dialect();
    let mut params: Vec<ValueRef<'_>> = Vec::new();
    let (mut batch_rows, mut batch_bytes) = (0usize, 0usize);
    let mut batch_store = usize::MAX;
    let mut in_batch: HashSet<u32> = HashSet::default();
    for next in order.iter().copied().map(Some).chain([None]) {
        // The next row's values go after the batch's; they start the next batch if it ends.
        let start = params.len();
        let ends = match next {
            None => true,
            Some((si, slot)) => {
                row_params(plan, si, slot, deferred, &mut params);
                let bytes = params[start..]
                    .iter()
                    .map(|v| value_bytes(*v))
                    .sum::<usize>();
                let ends = si != batch_store
                    || batch_rows >= batch_limit(d, stores[si].meta())
                    || batch_bytes + bytes > MAX_BATCH_BYTES
                    || self_refs[si].iter().any(|&r| {
                        !deferred.contains(&(si, slot, r))
                            && matches!(plan.parent_row(si, slot, r), Some((ti, ps)) if ti == si && in_batch.contains(&ps))
                    });
                if ends {
                    batch_bytes = 0;
                }
                batch_bytes += bytes;
                ends
            }
        };
        if ends && batch_rows > 0 {
            let meta = stores[batch_store].meta();
            insert_rows(conn, meta, &params[..start], batch_rows)?;
            params.drain(..start);
            batch_rows = 0;
            in_batch.clear();
        }
        if let Some((si, slot)) = next {
            batch_store = si;
            batch_rows += 1;
            if !self_refs[si].is_empty() {
                in_batch.insert(slot);
            }
        }
    }
    Ok(())
}

/// Sets foreign keys once every row exists: keys that new rows went in with as NULL (to break
/// a cycle), and changed keys of stored rows that point at a new row.
fn run_late_keys(conn: &mut Conn, plan: &Plan<'_>, mut late: Vec<LateKey>) -> Result<()> {
    late.sort_unstable();
    late.dedup();
    for (si, slot, r) in late {
        let meta = plan.stores[si].meta();
        let RelationKind::BelongsTo { column, .. } = meta.relations[r].kind else {
            continue;
        };
        let fk = plan
            .resolve(si, r, plan.stores[si].foreign_key(slot, r))
            .map_or(ValueRef::Null, ValueRef::I64);
        let key = column_value(plan, si, slot, meta.key);
        let text = update_sql(conn, meta, &[column]);
        if conn.execute(&text, &[fk, key])? == 0 {
            return Err(stale(meta, key));
        }
    }
    Ok(())
}

/// The most rows of `meta` one INSERT takes: [`MAX_BATCH_ROWS`], fewer for a wide model
/// whose parameters would pass the dialect's limit.
fn batch_limit(d: &dyn sql::Dialect, meta: &ModelMeta) -> usize {
    MAX_BATCH_ROWS
        .min(d.max_params() / meta.columns.len().max(1))
        .max(1)
}

/// The bytes a value takes in a statement's parameters, roughly.
fn value_bytes(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Text(t) => t.len(),
        ValueRef::Blob(b) => b.len(),
        _ => 8,
    }
}

/// Inserts `rows` rows of `meta` whose values are `params`, in statements of a few fixed
/// sizes: full batches, then the rest in powers of two down to [`EXACT_BATCH_ROWS`] rows,
/// which go in one statement. So a model has at most two dozen INSERT texts and prepared
/// statements, however its flushes are sized, and a small flush sends one INSERT a table.
fn insert_rows(
    conn: &mut Conn,
    meta: &'static ModelMeta,
    params: &[ValueRef<'_>],
    rows: usize,
) -> Result<()> {
    let n = meta.columns.len();
    let full = batch_limit(conn.dialect(), meta);
    let mut done = 0;
    while done < rows {
        let left = rows - done;
        let size = if left >= full {
            full
        } else if left <= EXACT_BATCH_ROWS {
            left
        } else {
            1 << left.ilog2()
        };
        let text = conn.sql(meta, SqlKey::Insert(size), |d| sql::insert(d, meta, size));
        conn.execute(&text, &params[done * n..(done + size) * n])?;
        done += size;
    }
    Ok(())
}

/// A foreign key to write after the inserts: (store, slot, relation).
type LateKey = (usize, u32, usize);

/// Takes out of the UPDATEs each changed foreign key that points at a row the flush inserts
/// (`None` when there is none, the common case), to be written after the inserts.
fn split_updates(plan: &mut Plan<'_>, updates: &Updates) -> (Option<Updates>, Vec<LateKey>) {
    let mut late = Vec::new();
    let is_late = |plan: &mut Plan<'_>, u: &Update, c: usize| {
        let col = &plan.stores[u.store].meta().columns[c];
        col.relation
            .filter(|&r| plan.parent_row(u.store, u.slot, r).is_some())
    };
    for u in &updates.list {
        for &c in updates.columns(u) {
            if let Some(r) = is_late(plan, u, c) {
                late.push((u.store, u.slot, r));
            }
        }
    }
    if late.is_empty() {
        return (None, late);
    }
    let mut early = Updates {
        list: Vec::with_capacity(updates.list.len()),
        columns: Vec::with_capacity(updates.columns.len()),
    };
    for u in &updates.list {
        let start = early.columns.len();
        for &c in updates.columns(u) {
            if is_late(plan, u, c).is_none() {
                early.columns.push(c);
            }
        }
        if early.columns.len() > start {
            early.list.push(Update {
                store: u.store,
                slot: u.slot,
                columns: start..early.columns.len(),
            });
        }
    }
    (Some(early), late)
}

/// Runs UPDATEs of the changed columns; consecutive updates of the same columns run as one
/// prepared statement executed once per row. A row that matches nothing was deleted (or
/// re-keyed) behind the session's back: a stale-data error.
fn run_updates(conn: &mut Conn, plan: &Plan<'_>, updates: &Updates) -> Result<()> {
    let same =
        |a: &Update, b: &Update| a.store == b.store && updates.columns(a) == updates.columns(b);
    let mut params: Vec<ValueRef<'_>> = Vec::new();
    for group in updates.list.chunk_by(same) {
        let store = &plan.stores[group[0].store];
        let meta = store.meta();
        params.clear();
        for u in group {
            for &c in updates.columns(u) {
                params.push(column_value(plan, u.store, u.slot, c));
            }
            params.push(
                store
                    .snapshot_value(u.slot, meta.key)
                    .map_or(ValueRef::Null, Value::as_ref),
            );
        }
        let columns = updates.columns(&group[0]);
        let text = update_sql(conn, meta, columns);
        let changed = conn.execute_many(&text, &params, columns.len() + 1)?;
        if let Some(i) = changed.iter().position(|&n| n == 0) {
            let key = params[(i + 1) * (columns.len() + 1) - 1];
            return Err(stale(meta, key));
        }
    }
    Ok(())
}

/// The error for an UPDATE of the row with this key that matched no row.
fn stale(meta: &ModelMeta, key: ValueRef<'_>) -> Error {
    Error::StaleData {
        model: meta.name,
        key: key.into_owned().to_string(),
    }
}

/// The highest key of store `si`'s model read from the database: as a row's key, or as a
/// parent key in a `belongs_to` column of any model.
fn read_max(db: &Session, si: usize) -> Option<i64> {
    let meta = db.stores[si].meta();
    let as_parent = db.stores.iter().flat_map(|s| {
        let m = s.meta();
        (0..m.relations.len())
            .filter(move |&r| {
                m.relations[r].kind != RelationKind::HasMany && (m.relations[r].target)().same(meta)
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
            move_sequence(&mut db.conn, db.stores[si].meta(), max)?;
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
    let exhausted = || Error::KeysExhausted { model: meta.name };
    match conn.dialect().key_allocation() {
        KeyAllocation::AfterMax => {
            let mut max = 0i64;
            conn.query(&sql::max_key(conn.dialect(), meta), &[], &mut |row| {
                max = int(row).unwrap_or(0);
                Ok(())
            })?;
            let floor = [explicit.iter().copied().max(), read]
                .into_iter()
                .flatten()
                .fold(max.max(0), i64::max);
            // After the highest key in use or read, skipping keys the session's objects hold
            // (another program may have deleted their rows) or held before a rollback.
            let mut next = floor;
            while keys.len() < missing {
                next = next.checked_add(1).ok_or_else(exhausted)?;
                if !store.key_taken(next) {
                    keys.push(next);
                }
            }
        }
        KeyAllocation::Sequence => {
            let mut fresh = draw_keys(conn, meta, missing)?;
            // Only when the sequence is behind a row read from the database (which another
            // program inserted with an explicit key) is it moved past that row's key.
            if let Some(l) = read.filter(|&l| fresh.first().is_some_and(|&f| f <= l)) {
                move_sequence(conn, meta, l)?;
                fresh = draw_keys(conn, meta, missing)?;
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
                fresh = draw_keys(conn, meta, missing - keys.len())?;
            }
            keys.sort_unstable();
        }
    }
    Ok(keys)
}

/// The integer in the first column of a row.
fn int(row: &dyn RawRow) -> Option<i64> {
    match row.value(0, SqlType::I64) {
        Ok(ValueRef::I64(v)) => Some(v),
        _ => None,
    }
}

/// The error for a key sequence at its end.
fn sequence_error(meta: &ModelMeta) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Database {
            kind: DbErrorKind::SequenceExhausted,
            ..
        } => Error::KeysExhausted { model: meta.name },
        e => e,
    }
}

/// `n` keys from the sequence of `meta`'s key column.
fn draw_keys(conn: &mut Conn, meta: &ModelMeta, n: usize) -> Result<Vec<i64>> {
    let d = conn.dialect();
    let table = sql::quoted(d, meta.table);
    let column = ValueRef::Text(meta.key_column().name);
    let count = i64::try_from(n).map_err(|_| Error::KeysExhausted { model: meta.name })?;
    let params = [ValueRef::Text(&table), column, ValueRef::I64(count)];
    let mut keys = Vec::with_capacity(n);
    conn.query(&sql::next_keys(d), &params, &mut |row| {
        keys.extend(int(row));
        Ok(())
    })
    .map_err(sequence_error(meta))?;
    if keys.len() != n {
        return Err(Error::NoKeySequence {
            model: meta.name,
            table: meta.table,
        });
    }
    keys.sort_unstable();
    Ok(keys)
}

/// Moves the sequence of `meta`'s key column to at least `key`, so that it never hands out
/// that key or one below it.
fn move_sequence(conn: &mut Conn, meta: &ModelMeta, key: i64) -> Result<()> {
    let d = conn.dialect();
    let table = sql::quoted(d, meta.table);
    let params = [
        ValueRef::Text(&table),
        ValueRef::Text(meta.key_column().name),
        ValueRef::I64(key),
    ];
    conn.query(&sql::skip_keys(d), &params, &mut |_| Ok(()))
        .map_err(sequence_error(meta))
}

/// The UPDATE of these columns of `meta`, cached when the columns fit in a bit set.
fn update_sql(conn: &mut Conn, meta: &'static ModelMeta, columns: &[usize]) -> Arc<str> {
    if columns.iter().all(|&c| c < 64) {
        let mask = columns.iter().fold(0u64, |m, &c| m | 1 << c);
        conn.sql(meta, SqlKey::Update(mask), |d| {
            sql::update(d, meta, columns)
        })
    } else {
        sql::update(conn.dialect(), meta, columns).into()
    }
}

/// The value of one column of a row to write, with pending ids resolved.
fn column_value<'a>(plan: &Plan<'a>, si: usize, slot: u32, c: usize) -> ValueRef<'a> {
    let store = &plan.stores[si];
    let meta = store.meta();
    if let Some(r) = meta.columns[c].relation {
        return plan
            .resolve(si, r, store.foreign_key(slot, r))
            .map_or(ValueRef::Null, ValueRef::I64);
    }
    if c == meta.key && meta.key_kind == KeyKind::Generated {
        return match store.key_id(slot) {
            RawId::Stored(v) => ValueRef::I64(v),
            _ => ValueRef::I64(plan.keys[si][slot as usize]),
        };
    }
    store.column(slot, c)
}

fn row_params<'a>(
    plan: &Plan<'a>,
    si: usize,
    slot: u32,
    deferred: &Deferred,
    out: &mut Vec<ValueRef<'a>>,
) {
    let meta = plan.stores[si].meta();
    for (c, col) in meta.columns.iter().enumerate() {
        match col.relation {
            Some(r) if deferred.contains(&(si, slot, r)) => out.push(ValueRef::Null),
            _ => out.push(column_value(plan, si, slot, c)),
        }
    }
}

/// Orders the new rows so that every parent comes before its children: models in dependency
/// order, rows of a model in the order they were added, a row's parents (in any table) first.
/// A cycle is broken at a nullable key (inserted `NULL`, set by an UPDATE afterwards); a cycle
/// of required keys is an error naming its tables.
fn sort(plan: &mut Plan<'_>) -> Result<(Vec<Row>, Deferred)> {
    let stores = plan.stores;
    let model_order = model_order(plan);
    let mut deferred = Deferred::default();
    let mut mark: Vec<Vec<u8>> = stores
        .iter()
        .map(|s| {
            if s.new_slots().is_empty() {
                Vec::new()
            } else {
                vec![0u8; s.slot_count()]
            }
        })
        .collect();
    let total: usize = stores.iter().map(|s| s.new_slots().len()).sum();
    let mut order = Vec::with_capacity(total);
    // Stack of (row, next relation to look at).
    let mut stack: Vec<(Row, usize)> = Vec::new();
    for &si in &model_order {
        for &root in stores[si].new_slots() {
            if mark[si][root as usize] != 0 {
                continue;
            }
            mark[si][root as usize] = 1;
            stack.push(((si, root), 0));
            while let Some(&mut ((csi, cslot), ref mut next)) = stack.last_mut() {
                let rels = stores[csi].meta().relations;
                if *next < rels.len() {
                    let r = *next;
                    *next += 1;
                    if deferred.contains(&(csi, cslot, r)) {
                        continue;
                    }
                    let Some((psi, pslot)) = plan.parent_row(csi, cslot, r) else {
                        continue;
                    };
                    match mark[psi][pslot as usize] {
                        0 => {
                            mark[psi][pslot as usize] = 1;
                            stack.push(((psi, pslot), 0));
                        }
                        1 => break_cycle(
                            stores,
                            &mut stack,
                            &mut mark,
                            &mut deferred,
                            (csi, cslot, r),
                            (psi, pslot),
                        )?,
                        _ => {}
                    }
                } else {
                    mark[csi][cslot as usize] = 2;
                    order.push((csi, cslot));
                    stack.pop();
                }
            }
        }
    }
    Ok((order, deferred))
}

/// The depth-first walk of [`sort`] met `parent`, a row still on its stack, as the parent of
/// `child` through relation `child.2`: a cycle of the rows on the stack from `parent` up.
/// It is broken at the child's key if nullable, else at the last nullable key on the stack
/// (the rows above it are unmarked, to be visited again; rows placed stay placed); a cycle of
/// required keys is an error naming its tables.
fn break_cycle(
    stores: &[Box<dyn AnyStore>],
    stack: &mut Vec<(Row, usize)>,
    mark: &mut [Vec<u8>],
    deferred: &mut Deferred,
    child: (usize, u32, usize),
    parent: Row,
) -> Result<()> {
    let nullable = |si: usize, r: usize| {
        matches!(
            stores[si].meta().relations[r].kind,
            RelationKind::BelongsTo { nullable: true, .. }
        )
    };
    if nullable(child.0, child.2) {
        deferred.insert(child);
        return Ok(());
    }
    let start = stack
        .iter()
        .position(|&(row, _)| row == parent)
        .expect("a visiting row is on the stack");
    let edge = stack[start..stack.len() - 1]
        .iter()
        .map(|&((si, slot), n)| (si, slot, n - 1))
        .rfind(|&(si, _, r)| nullable(si, r));
    let Some(e) = edge else {
        let mut tables: Vec<&'static str> = stack[start..]
            .iter()
            .map(|&((si, _), _)| stores[si].meta().table)
            .collect();
        tables.push(stores[parent.0].meta().table);
        return Err(Error::Cycle { tables });
    };
    deferred.insert(e);
    let from = stack
        .iter()
        .position(|&(row, _)| row == (e.0, e.1))
        .expect("the edge's row is on the stack");
    for &((si, slot), _) in &stack[from + 1..] {
        mark[si][slot as usize] = 0;
    }
    stack.truncate(from + 1);
    Ok(())
}

/// The stores with new rows, parents before children (a cycle between models in any order).
fn model_order(plan: &Plan<'_>) -> Vec<usize> {
    fn visit(plan: &Plan<'_>, si: usize, seen: &mut [bool], out: &mut Vec<usize>) {
        if seen[si] {
            return;
        }
        seen[si] = true;
        for (r, rel) in plan.stores[si].meta().relations.iter().enumerate() {
            if let RelationKind::BelongsTo { .. } = rel.kind {
                if let Some(ti) = plan.targets[si][r] {
                    if !plan.stores[ti].new_slots().is_empty() {
                        visit(plan, ti, seen, out);
                    }
                }
            }
        }
        out.push(si);
    }
    let mut seen = vec![false; plan.stores.len()];
    let mut out = Vec::new();
    for si in 0..plan.stores.len() {
        if !plan.stores[si].new_slots().is_empty() {
            visit(plan, si, &mut seen, &mut out);
        }
    }
    out
}

/// Gives the inserted objects their keys, replaces every pending id with the key it stands
/// for, and moves updated rows' snapshots to the rollback journal.
fn apply(db: &mut Session, targets: &Targets, written: Option<&Written>, updates: &Updates) {
    let keys: &[Vec<i64>] = written.map_or(&[], |w| &w.keys);
    let pending_fks = |db: &Session, si: usize, slot: u32, fks: &mut Vec<(usize, RawId)>| {
        fks.clear();
        for r in 0..targets[si].len() {
            if let RawId::Pending { slot: ps, .. } = db.stores[si].foreign_key(slot, r) {
                if let Some(k) = pending_key(&db.stores, targets, keys, si, r, ps) {
                    fks.push((r, RawId::Stored(k)));
                }
            }
        }
    };
    let mut fks: Vec<(usize, RawId)> = Vec::new();
    if let Some(written) = written {
        for (si, keys) in written.explicit.iter().enumerate() {
            db.stores[si].note_explicit_keys(keys);
        }
        for &(si, slot) in &written.inserted {
            pending_fks(db, si, slot, &mut fks);
            let key = match db.stores[si].meta().key_kind {
                KeyKind::Generated => Some(written.keys[si][slot as usize]),
                KeyKind::Natural => None,
            };
            db.stores[si].apply_insert(slot, key, &fks);
        }
    }
    for u in &updates.list {
        db.stores[u.store].apply_update(u.slot);
    }
    // Every stored object taken mutably, updated or not, may hold a pending id.
    for si in 0..db.stores.len() {
        for i in 0..db.stores[si].marked_slots().len() {
            let slot = db.stores[si].marked_slots()[i];
            if db.stores[si].state(slot) == State::Persistent {
                pending_fks(db, si, slot, &mut fks);
                if !fks.is_empty() {
                    db.stores[si].resolve_fks(slot, &fks);
                }
            }
        }
    }
}
