//! Plan: the statements of a flush, as data (which statement of which model, over which of
//! the plan's parameters), built from the changes, the reserved keys and the order without
//! talking to the database. [`super::execute`] runs them.

use super::changes::{Update, Updates};
use super::deletes::MAX_IN_LIST;
use super::keys::Resolver;
use super::order::Deferred;
use super::Row;
use crate::id::RawId;
use crate::model::{ModelMeta, RelationKind};
use crate::session::store::KeyValue;
use crate::sql::Dialect;
use crate::value::{SqlType, ValueRef};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::ops::Range;

/// Most rows in one multi-row INSERT.
const MAX_BATCH_ROWS: usize = 500;

/// Batches of up to this many rows go in one INSERT of their own size; larger ones in
/// powers of two (see [`insert_sizes`]).
const EXACT_BATCH_ROWS: usize = 16;

/// Most bytes of values in one multi-row INSERT (a row larger than this goes alone): well
/// under PostgreSQL's 1 GiB message limit, and a bound on the memory a statement takes.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// One statement of a flush.
pub(crate) enum Statement {
    /// A multi-row INSERT of every column of `meta`, for these rows of the flush's insert
    /// order. Their values are read when it runs (see [`Plan::insert_params`]), so that a
    /// flush never holds the values of every row at once.
    Insert {
        meta: &'static ModelMeta,
        rows: Range<usize>,
    },
    /// An UPDATE of some columns of `meta` by key, run once per row: each row's parameters
    /// are the columns' values, then the key (then, where the columns include the
    /// `#[version]`, the version read). Each run must change a row.
    Update {
        meta: &'static ModelMeta,
        /// Where the columns are in [`Plan::columns`].
        columns: Range<usize>,
        params: Range<usize>,
    },
    /// A DELETE of `rows` rows of `meta` by key; the parameters are their keys, the last
    /// repeated up to a power-of-two count. It must delete every row.
    Delete {
        meta: &'static ModelMeta,
        rows: usize,
        params: Range<usize>,
    },
    /// DELETEs of rows of a model with a `#[version]`, one per row; the parameters are each
    /// row's key and version. Each must delete its row.
    DeleteVersioned {
        meta: &'static ModelMeta,
        params: Range<usize>,
    },
    /// A DELETE of the rows of `meta` whose `column` is one of the parameters (children of
    /// deleted parents, not read), however many there are.
    DeleteWhereIn {
        meta: &'static ModelMeta,
        column: usize,
        params: Range<usize>,
    },
}

/// The statements of a flush in the order they run, their parameters in one vector (but
/// those of INSERTs).
#[derive(Default)]
pub(crate) struct Plan<'a> {
    pub(crate) statements: Vec<Statement>,
    pub(crate) params: Vec<ValueRef<'a>>,
    pub(crate) columns: Vec<usize>,
    /// Foreign keys the INSERTs write as `NULL` (set after them).
    deferred: Deferred,
}

/// The plan of a flush, in this order:
/// 1. the DELETEs nothing else waits for, children first (`deletes`: the rows in that order,
///    and the keys among them set to `NULL` first to break a cycle), and children deleted by
///    their parent's key;
/// 2. the UPDATEs (so that a UNIQUE value an update gives up can be taken by a new row);
/// 3. the DELETEs of rows an UPDATE moves a row away from (and of the rows they reference);
/// 4. the INSERTs in `order`;
/// 5. the foreign keys set once every row exists (those left NULL to break a cycle, and
///    changed keys that point at a row this flush inserts); where there are such changed
///    keys, step 3 comes after this one, since the rows they leave may be deleted.
///
/// So a new or updated row can take a UNIQUE value that a deleted row gives up (a has-one
/// parent's new child, a child moved to a parent whose child goes).
pub(super) fn build<'a>(
    r: &mut Resolver<'a>,
    d: &dyn Dialect,
    updates: &Updates,
    (order, deferred): (&[Row], Deferred),
    (deleted, cleared): (&[Row], Deferred),
) -> Plan<'a> {
    let mut plan = Plan::default();
    let waiting = waiting_deletes(r, updates, deleted);
    plan.clear_keys(r, &cleared);
    plan.bulk_deletes(r);
    let (first, after): (Vec<Row>, Vec<Row>) =
        deleted.iter().partition(|row| !waiting.contains(row));
    plan.row_deletes(r, &first, &cleared);
    let takers = takers(r, updates);
    let (early, mut late) = split_updates(r, updates, &takers);
    plan.updates(r, early.as_ref().unwrap_or(updates));
    let keys_after = !late.is_empty();
    if !keys_after {
        plan.keys_in_order(r, &takers);
        plan.row_deletes(r, &after, &cleared);
    }
    plan.inserts(r, d, order, &deferred);
    plan.deferred = deferred.clone();
    late.extend(deferred);
    plan.late_keys(r, late);
    if keys_after {
        plan.keys_in_order(r, &takers);
        plan.row_deletes(r, &after, &cleared);
    }
    plan
}

/// The deleted rows (of `deleted`, children first) that must wait for the UPDATEs: those a
/// changed key moves a row away from (deleted first, they would still be referenced), and
/// the deleted rows they reference in turn.
fn waiting_deletes(r: &Resolver<'_>, updates: &Updates, deleted: &[Row]) -> HashSet<Row> {
    let mut waiting = HashSet::default();
    if deleted.is_empty() || updates.is_empty() {
        return waiting;
    }
    let set: HashSet<Row> = deleted.iter().copied().collect();
    let named = |si: usize, slot: u32, rel: usize| -> Option<Row> {
        let ti = r.targets[si][rel]?;
        let RawId::Stored(k) = r.stored_fk(si, slot, rel) else {
            return None;
        };
        let row = (ti, r.stores[ti].lookup(&KeyValue::Int(k))?);
        set.contains(&row).then_some(row)
    };
    for u in &updates.list {
        let meta = r.stores[u.store].meta();
        for &c in updates.columns(u) {
            if let Some(row) = meta.columns[c]
                .relation
                .and_then(|rel| named(u.store, u.slot, rel))
            {
                waiting.insert(row);
            }
        }
    }
    // Children come first: a waiting row's parents are met after it.
    for &(si, slot) in deleted {
        if waiting.contains(&(si, slot)) {
            let rels = r.stores[si].meta().relations;
            for rel in (0..rels.len()).filter(|&rel| !rels[rel].kind.holds_children()) {
                waiting.extend(named(si, slot, rel));
            }
        }
    }
    waiting
}

/// A foreign key to write after the inserts: (store, slot, relation).
type LateKey = (usize, u32, usize);

/// The changed foreign keys of `updates` that take a UNIQUE value (a has-one key, or one
/// declared unique) which another row of the flush gives up, each after the row it waits for
/// when that row takes a value too: the database checks UNIQUE at each row, so they are
/// written after the other UPDATEs, in this order. (Rows that swap values are left in any
/// order, and the database refuses them.)
fn takers(r: &Resolver<'_>, updates: &Updates) -> Vec<LateKey> {
    let mut giving: HashMap<(usize, usize, i64), u32> = HashMap::default();
    let mut taking: Vec<(LateKey, i64)> = Vec::new();
    for u in &updates.list {
        let meta = r.stores[u.store].meta();
        for &c in updates.columns(u) {
            let Some(rel) = meta.columns[c].relation else {
                continue;
            };
            if !crate::sql::is_unique(meta, c) {
                continue;
            }
            if let RawId::Stored(old) = r.stored_fk(u.store, u.slot, rel) {
                giving.insert((u.store, rel, old), u.slot);
            }
            if let Some(new) = r.resolve(u.store, rel, r.fk(u.store, u.slot, rel)) {
                taking.push(((u.store, u.slot, rel), new));
            }
        }
    }
    let waits: HashMap<LateKey, LateKey> = taking
        .into_iter()
        .filter_map(|((si, slot, rel), new)| {
            let giver = *giving.get(&(si, rel, new))?;
            (giver != slot).then_some(((si, slot, rel), (si, giver, rel)))
        })
        .collect();
    let mut keys: Vec<LateKey> = waits.keys().copied().collect();
    keys.sort_unstable();
    let mut out = Vec::with_capacity(keys.len());
    let mut done: HashSet<LateKey> = HashSet::default();
    for key in keys {
        // Each waits for at most one row (the one holding the value): follow the chain, then
        // write it from its end.
        let mut chain = Vec::new();
        let mut at = key;
        while !done.contains(&at) && waits.contains_key(&at) && !chain.contains(&at) {
            chain.push(at);
            at = waits[&at];
        }
        for k in chain.into_iter().rev() {
            if done.insert(k) {
                out.push(k);
            }
        }
    }
    out
}

/// Takes out of the UPDATEs each changed foreign key that points at a row the flush inserts
/// (`None` when there is none, the common case), to be written after the inserts.
fn split_updates(
    r: &mut Resolver<'_>,
    updates: &Updates,
    takers: &[LateKey],
) -> (Option<Updates>, Vec<LateKey>) {
    let is_late = |r: &mut Resolver<'_>, u: &Update, c: usize| {
        let col = &r.stores[u.store].meta().columns[c];
        col.relation
            .filter(|&rel| r.parent_row(u.store, u.slot, rel).is_some())
    };
    let taken = |r: &Resolver<'_>, u: &Update, c: usize| {
        let col = &r.stores[u.store].meta().columns[c];
        col.relation
            .is_some_and(|rel| takers.contains(&(u.store, u.slot, rel)))
    };
    let mut late = Vec::new();
    for u in &updates.list {
        for &c in updates.columns(u) {
            if let Some(rel) = is_late(r, u, c) {
                late.push((u.store, u.slot, rel));
            }
        }
    }
    if late.is_empty() && takers.is_empty() {
        return (None, late);
    }
    let mut early = Updates::default();
    for u in &updates.list {
        let kept: Vec<usize> = updates
            .columns(u)
            .iter()
            .copied()
            .filter(|&c| is_late(r, u, c).is_none() && !taken(r, u, c))
            .collect();
        early.push(u.store, u.slot, kept.into_iter(), None);
    }
    (Some(early), late)
}

impl<'a> Plan<'a> {
    /// An UPDATE of `columns` of `meta` for the rows whose parameters start at `params`.
    fn update(&mut self, meta: &'static ModelMeta, columns: &[usize], params: usize) {
        let start = self.columns.len();
        self.columns.extend_from_slice(columns);
        self.statements.push(Statement::Update {
            meta,
            columns: start..self.columns.len(),
            params: params..self.params.len(),
        });
    }

    /// UPDATEs of the changed columns; consecutive updates of the same columns of one model
    /// are one statement run once per row.
    fn updates(&mut self, r: &Resolver<'a>, updates: &Updates) {
        let same =
            |a: &Update, b: &Update| a.store == b.store && updates.columns(a) == updates.columns(b);
        for group in updates.list.chunk_by(same) {
            let store = &r.stores[group[0].store];
            let meta = store.meta();
            let start = self.params.len();
            let version = meta
                .version
                .filter(|v| updates.columns(&group[0]).contains(v));
            for u in group {
                for &c in updates.columns(u) {
                    self.params.push(if Some(c) == version {
                        r.next_version(u.store, u.slot, c)
                    } else {
                        r.column_value(u.store, u.slot, c)
                    });
                }
                self.params.push(r.stored_key(u.store, u.slot));
                if let Some(v) = version {
                    // `WHERE key = ? AND version = ?`: the version the row was read with.
                    self.params.push(r.stored_column(u.store, u.slot, v));
                }
            }
            self.update(meta, updates.columns(&group[0]), start);
        }
    }

    /// INSERTs of the rows in `order`, in batches of consecutive rows of one table that do
    /// not reference each other, cut by rows, parameters and bytes; keys in `deferred` go in
    /// as NULL.
    fn inserts(
        &mut self,
        r: &mut Resolver<'a>,
        d: &dyn Dialect,
        order: &[Row],
        deferred: &Deferred,
    ) {
        let (stores, targets) = (r.stores, r.targets);
        // Relations of a table to itself: a row must not share a statement with its parent.
        let self_refs: Vec<Vec<usize>> = (0..stores.len())
            .map(|si| {
                (0..targets[si].len())
                    .filter(|&rel| targets[si][rel] == Some(si))
                    .collect()
            })
            .collect();
        let (mut batch_rows, mut batch_bytes) = (0usize, 0usize);
        let (mut batch_store, mut batch_start) = (usize::MAX, 0usize);
        let mut in_batch: HashSet<u32> = HashSet::default();
        for (i, next) in order.iter().copied().map(Some).chain([None]).enumerate() {
            // The next row starts the next batch if this one ends.
            let ends = match next {
                None => true,
                Some((si, slot)) => {
                    let bytes = row_bytes(r, si, slot);
                    let ends = si != batch_store
                        || batch_rows >= batch_limit(d, stores[si].meta())
                        || batch_bytes + bytes > MAX_BATCH_BYTES
                        || self_refs[si].iter().any(|&rel| {
                            !deferred.contains(&(si, slot, rel))
                                && matches!(r.parent_row(si, slot, rel), Some((ti, ps)) if ti == si && in_batch.contains(&ps))
                        });
                    if ends {
                        batch_bytes = 0;
                    }
                    batch_bytes += bytes;
                    ends
                }
            };
            if ends && batch_rows > 0 {
                self.insert(d, stores[batch_store].meta(), batch_start, batch_rows);
                batch_start = i;
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
    }

    /// INSERTs of `rows` rows of `meta` from position `first` of the insert order, in the statement
    /// sizes of [`insert_sizes`].
    fn insert(&mut self, d: &dyn Dialect, meta: &'static ModelMeta, first: usize, rows: usize) {
        let mut at = first;
        for size in insert_sizes(rows, batch_limit(d, meta)) {
            self.statements.push(Statement::Insert {
                meta,
                rows: at..at + size,
            });
            at += size;
        }
    }

    /// The values of the rows of an INSERT (`order`: the flush's insert order), into `out`.
    pub(super) fn insert_params(
        &self,
        r: &Resolver<'a>,
        order: &[Row],
        rows: Range<usize>,
        out: &mut Vec<ValueRef<'a>>,
    ) {
        out.clear();
        for &(si, slot) in &order[rows] {
            row_params(r, si, slot, &self.deferred, out);
        }
    }

    /// UPDATEs of foreign keys once every row exists, one statement per model and column.
    fn late_keys(&mut self, r: &Resolver<'a>, mut late: Vec<LateKey>) {
        late.sort_unstable();
        late.dedup();
        self.keys_in_order(r, &late);
    }

    /// UPDATEs of these foreign keys in this order (consecutive ones of one model and column
    /// in one statement run once per row).
    fn keys_in_order(&mut self, r: &Resolver<'a>, keys: &[LateKey]) {
        let mut current: Option<(usize, usize, usize)> = None; // (store, column, params start)
        for &(si, slot, rel) in keys {
            let meta = r.stores[si].meta();
            let RelationKind::BelongsTo { column, .. } = meta.relations[rel].kind else {
                continue;
            };
            if let Some((csi, ccol, start)) = current {
                if (csi, ccol) != (si, column) {
                    self.update(r.stores[csi].meta(), &[ccol], start);
                    current = None;
                }
            }
            if current.is_none() {
                current = Some((si, column, self.params.len()));
            }
            let fk = r
                .resolve(si, rel, r.fk(si, slot, rel))
                .map_or(ValueRef::Null, ValueRef::I64);
            self.params.push(fk);
            self.params.push(r.column_value(si, slot, meta.key));
        }
        if let Some((csi, ccol, start)) = current {
            self.update(r.stores[csi].meta(), &[ccol], start);
        }
    }
}

impl<'a> Plan<'a> {
    /// UPDATEs that set the keys in `deferred` to `NULL` (rows about to be deleted that
    /// reference each other), one statement per model and column.
    fn clear_keys(&mut self, r: &Resolver<'a>, deferred: &Deferred) {
        let mut clear: Vec<(usize, usize, u32)> = deferred
            .iter()
            .filter_map(
                |&(si, slot, rel)| match r.stores[si].meta().relations[rel].kind {
                    RelationKind::BelongsTo { column, .. } => Some((si, column, slot)),
                    RelationKind::HasMany
                    | RelationKind::HasOne
                    | RelationKind::ManyToMany { .. } => None,
                },
            )
            .collect();
        clear.sort_unstable();
        for group in clear.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let start = self.params.len();
            for &(si, _, slot) in group {
                self.params.push(ValueRef::Null);
                self.params.push(r.stored_key(si, slot));
            }
            self.update(r.stores[group[0].0].meta(), &[group[0].1], start);
        }
    }

    /// DELETEs of the children deleted by their parents' keys, without being read.
    fn bulk_deletes(&mut self, r: &Resolver<'a>) {
        for (ci, rel, keys) in &r.deletes.bulk {
            let meta = r.stores[*ci].meta();
            let RelationKind::BelongsTo { column, .. } = meta.relations[*rel].kind else {
                continue;
            };
            for chunk in keys.chunks(MAX_IN_LIST) {
                let start = self.params.len();
                self.params.extend(crate::sql::padded_keys(chunk));
                self.statements.push(Statement::DeleteWhereIn {
                    meta,
                    column,
                    params: start..self.params.len(),
                });
            }
        }
    }

    /// DELETEs of the rows in `order` (children first): consecutive rows of one table, at
    /// most [`MAX_IN_LIST`] a statement, a row never in the statement of a row that
    /// references it (except through a key in `deferred`, set to `NULL` before).
    fn row_deletes(&mut self, r: &Resolver<'a>, order: &[Row], deferred: &Deferred) {
        let mut batch: Vec<Row> = Vec::new();
        let mut referenced: HashSet<u32> = HashSet::default();
        for &(si, slot) in order {
            let ends = batch.first().is_some_and(|&(bsi, _)| bsi != si)
                || batch.len() >= MAX_IN_LIST
                || referenced.contains(&slot);
            if ends {
                self.delete(r, &batch);
                batch.clear();
                referenced.clear();
            }
            batch.push((si, slot));
            // Its parents in its own table go in a later statement.
            let store = &r.stores[si];
            for (rel, link) in r.targets[si].iter().enumerate() {
                if *link != Some(si) || deferred.contains(&(si, slot, rel)) {
                    continue;
                }
                if let RawId::Stored(k) = r.stored_fk(si, slot, rel) {
                    referenced.extend(store.lookup(&KeyValue::Int(k)));
                }
            }
        }
        self.delete(r, &batch);
    }

    /// One DELETE of these rows (of one table), if any.
    fn delete(&mut self, r: &Resolver<'a>, rows: &[Row]) {
        let Some(&(si, _)) = rows.first() else {
            return;
        };
        let start = self.params.len();
        let meta = r.stores[si].meta();
        if let Some(v) = meta.version {
            // One `DELETE .. WHERE key = ? AND version = ?` per row.
            for &(si, slot) in rows {
                self.params.push(r.stored_key(si, slot));
                self.params.push(r.stored_column(si, slot, v));
            }
            self.statements.push(Statement::DeleteVersioned {
                meta,
                params: start..self.params.len(),
            });
            return;
        }
        self.params
            .extend(rows.iter().map(|&(si, slot)| r.stored_key(si, slot)));
        let last = self.params[self.params.len() - 1];
        let padded = rows.len().next_power_of_two();
        self.params.extend((rows.len()..padded).map(|_| last));
        self.statements.push(Statement::Delete {
            meta: r.stores[si].meta(),
            rows: rows.len(),
            params: start..self.params.len(),
        });
    }
}

/// The values of every column of a new row, foreign keys in `deferred` as NULL.
fn row_params<'a>(
    r: &Resolver<'a>,
    si: usize,
    slot: u32,
    deferred: &Deferred,
    out: &mut Vec<ValueRef<'a>>,
) {
    let meta = r.stores[si].meta();
    for (c, col) in meta.columns.iter().enumerate() {
        match col.relation {
            Some(rel) if deferred.contains(&(si, slot, rel)) => out.push(ValueRef::Null),
            // A new row starts at version 1, whatever the program set.
            _ if meta.version == Some(c) => {
                out.push(super::keys::first_version(r.column_value(si, slot, c)))
            }
            _ => out.push(r.column_value(si, slot, c)),
        }
    }
}

/// The most rows of `meta` one INSERT takes: [`MAX_BATCH_ROWS`], fewer for a wide model
/// whose parameters would pass the dialect's limit.
fn batch_limit(d: &dyn Dialect, meta: &ModelMeta) -> usize {
    MAX_BATCH_ROWS
        .min(d.max_params() / meta.columns.len().max(1))
        .max(1)
}

/// The bytes the values of a new row take in a statement's parameters, roughly (text and
/// blobs as they are, every other value 8).
fn row_bytes(r: &Resolver<'_>, si: usize, slot: u32) -> usize {
    let meta = r.stores[si].meta();
    let store = &r.stores[si];
    (0..meta.columns.len())
        .map(|c| match meta.columns[c].sql_type {
            SqlType::Text | SqlType::Blob => value_bytes(store.column(slot, c)),
            _ => 8,
        })
        .sum()
}

/// The bytes a value takes in a statement's parameters, roughly.
fn value_bytes(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Text(t) => t.len(),
        ValueRef::Blob(b) => b.len(),
        _ => 8,
    }
}

/// The sizes of the INSERTs that write `rows` rows, at most `full` a statement: full
/// statements, then the rest in powers of two down to [`EXACT_BATCH_ROWS`] rows, which go in
/// one statement. So a model has at most two dozen INSERT texts and prepared statements,
/// however its flushes are sized, and a small flush sends one INSERT a table.
fn insert_sizes(rows: usize, full: usize) -> impl Iterator<Item = usize> {
    let mut left = rows;
    std::iter::from_fn(move || {
        let size = if left == 0 {
            return None;
        } else if left >= full {
            full
        } else if left <= EXACT_BATCH_ROWS {
            left
        } else {
            1 << left.ilog2()
        };
        left -= size;
        Some(size)
    })
}

#[cfg(test)]
mod tests {
    use super::insert_sizes;

    fn sizes(rows: usize, full: usize) -> Vec<usize> {
        insert_sizes(rows, full).collect()
    }

    #[test]
    fn small_batches_go_in_one_statement_of_their_size() {
        assert_eq!(sizes(1, 500), [1]);
        assert_eq!(sizes(16, 500), [16]);
        assert!(sizes(0, 500).is_empty());
    }

    #[test]
    fn large_batches_go_in_full_statements_then_powers_of_two() {
        assert_eq!(sizes(1000, 500), [500, 500]);
        assert_eq!(sizes(537, 500), [500, 32, 5]);
        assert_eq!(sizes(100, 500), [64, 32, 4]);
    }

    #[test]
    fn every_row_is_written_once_in_few_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for rows in 0..2000 {
            let s = sizes(rows, 500);
            assert_eq!(s.iter().sum::<usize>(), rows);
            assert!(s.iter().all(|&n| n > 0 && n <= 500));
            shapes.extend(s);
        }
        assert!(shapes.len() <= 24, "{} shapes", shapes.len());
    }
}
