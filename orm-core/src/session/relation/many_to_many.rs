//! Many-to-many through an association table (`#[has_many(through = "..")]`). Linking and
//! unlinking change both sides' loaded collections at once and are kept as pending links
//! until the flush writes them ([`JoinChanges`]); loading reads the other side's rows
//! through the table, lazily for one object or eagerly for many, and adds the pending links.

use crate::backend::SqlKey;
use crate::error::{Error, Result};
use crate::id::RawId;
use crate::model::KeyKind;
use crate::session::store::{KeyValue, State};
use crate::session::Session;
use crate::sql::JoinTable;
use crate::value::{Value, ValueRef};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// An object of the session: (store, slot).
pub(crate) type Row = (usize, u32);

/// The links of one association table that the next flush writes or removes.
pub(crate) struct JoinChanges {
    /// The table, as the relation `rel` that changed it first sees it.
    pub(crate) join: JoinTable,
    pub(crate) rel: usize,
    /// For each pair (the row whose key goes in the table's first column, the row of the
    /// second): when it first changed, and whether the rows are linked after the flush.
    changes: HashMap<(Row, Row), (u32, bool)>,
    /// The number the next new change takes.
    next: u32,
    /// For each end ((0: first column, 1: second), row), the rows it has changes with.
    by_end: HashMap<(u8, Row), Vec<Row>>,
}

impl JoinChanges {
    fn new(join: JoinTable, rel: usize) -> Self {
        JoinChanges {
            join,
            rel,
            changes: HashMap::default(),
            next: 0,
            by_end: HashMap::default(),
        }
    }

    /// Notes that `pair` is linked (or not) after the flush.
    fn record(&mut self, pair: (Row, Row), linked: bool) {
        match self.changes.get_mut(&pair) {
            Some(change) => change.1 = linked,
            None => {
                self.changes.insert(pair, (self.next, linked));
                self.next += 1;
                self.by_end.entry((0, pair.0)).or_default().push(pair.1);
                self.by_end.entry((1, pair.1)).or_default().push(pair.0);
            }
        }
    }

    /// The rows that `row` (at end `end`) has changes with, and whether each is linked.
    fn partners(&self, end: u8, row: Row) -> Vec<(Row, bool)> {
        let Some(rows) = self.by_end.get(&(end, row)) else {
            return Vec::new();
        };
        rows.iter()
            .map(|&other| {
                let pair = if end == 0 { (row, other) } else { (other, row) };
                (other, self.changes[&pair].1)
            })
            .collect()
    }

    /// Drops every change that involves `row`.
    fn forget(&mut self, row: Row) {
        for end in 0..2u8 {
            let Some(others) = self.by_end.remove(&(end, row)) else {
                continue;
            };
            for other in others {
                let pair = if end == 0 { (row, other) } else { (other, row) };
                self.changes.remove(&pair);
                if let Some(list) = self.by_end.get_mut(&(1 - end, other)) {
                    list.retain(|&r| r != row);
                }
            }
        }
    }

    /// The changes in the order they were first made: (pair, linked).
    pub(crate) fn in_order(&self) -> Vec<((Row, Row), bool)> {
        let mut out: Vec<_> = self
            .changes
            .iter()
            .map(|(&pair, &(seq, linked))| (seq, pair, linked))
            .collect();
        out.sort_unstable_by_key(|&(seq, ..)| seq);
        out.into_iter()
            .map(|(_, pair, linked)| (pair, linked))
            .collect()
    }
}

/// The pending links of every association table, by table name.
pub(crate) type Joins = HashMap<&'static str, JoinChanges>;

impl Session {
    /// The association table of many-to-many `rel` of store `si`, the store of the other side,
    /// and the other side's relation if it declares one (checked to be the same table with the
    /// columns the other way round).
    pub(crate) fn join_of(
        &mut self,
        si: usize,
        rel: usize,
    ) -> Result<(JoinTable, usize, Option<usize>)> {
        let meta = self.stores[si].meta();
        let join = JoinTable::of(meta, rel).expect("a many-to-many relation");
        let ti = self.store_index_or_create(join.target);
        let inv = self.links[si][rel].inverse;
        if let Some(inv) = inv {
            let other = join.target.relations[inv].kind;
            let mirrored = crate::model::mirrored(meta.relations[rel].kind, other);
            if !mirrored {
                return Err(Error::Relationship {
                    model: meta.name,
                    field: meta.relations[rel].field,
                    message: format!(
                        "its other side `{}.{}` must go through the same table (`{}`) with the columns the other way round (`foreign_key = \"{}\"`, `target_foreign_key = \"{}\"`)",
                        join.target.name,
                        join.target.relations[inv].field,
                        join.table,
                        join.target_column,
                        join.column
                    ),
                });
            }
        }
        Ok((join, ti, inv))
    }

    /// Links (or unlinks) object `own` of store `si` and object `other` of the other side of
    /// many-to-many `rel`: both loaded collections change now, the table at the next flush.
    pub(crate) fn link(
        &mut self,
        si: usize,
        rel: usize,
        own: u32,
        other: u32,
        linked: bool,
    ) -> Result<()> {
        let (join, ti, inv) = self.join_of(si, rel)?;
        let pair = if join.column_first() {
            ((si, own), (ti, other))
        } else {
            ((ti, other), (si, own))
        };
        self.joins
            .entry(join.table)
            .or_insert_with(|| JoinChanges::new(join, rel))
            .record(pair, linked);
        self.edit_collection((si, own), rel, other, linked);
        if let Some(inv) = inv {
            self.edit_collection((ti, other), inv, own, linked);
        }
        Ok(())
    }

    /// Makes the objects `new` (of the other side) the ones linked to object `own` through
    /// many-to-many `rel`, in that order: those linked now and not in `new` are unlinked.
    pub(crate) fn set_linked(
        &mut self,
        si: usize,
        own: u32,
        rel: usize,
        new: &[crate::id::Handle<impl crate::model::Model>],
    ) -> Result<()> {
        let current = self.load_linked(si, own, rel)?;
        let keep: HashSet<u32> = new.iter().map(|h| h.slot).collect();
        for &other in current.iter().filter(|o| !keep.contains(o)) {
            self.link(si, rel, own, other, false)?;
        }
        let had: HashSet<u32> = current.into_iter().collect();
        for h in new.iter().filter(|h| !had.contains(&h.slot)) {
            self.link(si, rel, own, h.slot, true)?;
        }
        let slots: Vec<u32> = new.iter().map(|h| h.slot).collect();
        let session = self.id;
        if let Some(c) = self.stores[si].collection_mut(own, rel) {
            c.set_slots(session, &slots);
        }
        Ok(())
    }

    /// Adds `other` to (or takes it out of) collection `rel` of `row`, if it is loaded.
    fn edit_collection(&mut self, (si, slot): Row, rel: usize, other: u32, linked: bool) {
        let loaded = self.stores[si]
            .collection(slot, rel)
            .is_some_and(|c| c.is_loaded() && c.contains_slot(other) != linked);
        if !loaded {
            return;
        }
        let session = self.id;
        if let Some(c) = self.stores[si].collection_mut(slot, rel) {
            if linked {
                c.push_slot(session, other);
            } else {
                c.remove_slots(&std::iter::once(other).collect());
            }
        }
    }

    /// The objects linked to object `slot` of store `si` through many-to-many `rel`: its
    /// loaded collection, or the rows the table links it to and the pending links (then kept
    /// as its collection).
    pub(crate) fn load_linked(&mut self, si: usize, slot: u32, rel: usize) -> Result<Vec<u32>> {
        let (join, ti, _) = self.join_of(si, rel)?;
        if let Some(slots) = self.stores[si]
            .collection(slot, rel)
            .and_then(|c| c.slots())
        {
            return Ok(slots);
        }
        let found = match self.stored_key(si, slot) {
            Some(key) => {
                let sql = self
                    .conn
                    .sql(join.meta, SqlKey::JoinTargets(rel, 1, false), |d| {
                        join.select_targets(d, 1, false)
                    });
                self.load_slots(ti, &sql, &[key.as_ref()])?
            }
            None => Vec::new(),
        };
        let linked = self.with_pending(&join, (si, slot), ti, found);
        let session = self.id;
        if let Some(c) = self.stores[si].collection_mut(slot, rel) {
            c.set_slots(session, &linked);
        }
        Ok(linked)
    }

    /// The key of a row as the database holds it now (`None` for a new object).
    fn stored_key(&self, si: usize, slot: u32) -> Option<Value> {
        let store = &self.stores[si];
        let meta = store.meta();
        match meta.key_kind {
            KeyKind::Generated => match store.key_id(slot) {
                RawId::Stored(k) => Some(Value::I64(k)),
                _ => None,
            },
            KeyKind::Natural if store.state(slot) == State::Persistent => Some(
                store
                    .snapshot_value(slot, meta.key)
                    .cloned()
                    .unwrap_or_else(|| store.column(slot, meta.key).into_owned()),
            ),
            KeyKind::Natural => None,
        }
    }

    /// `found` (slots of store `ti` the table links `row` to) with the pending links of `row`
    /// applied, and without objects the session no longer has.
    fn with_pending(&self, join: &JoinTable, row: Row, ti: usize, mut found: Vec<u32>) -> Vec<u32> {
        let end = if join.column_first() { 0 } else { 1 };
        if let Some(changes) = self.joins.get(join.table) {
            let partners = changes.partners(end, row);
            if !partners.is_empty() {
                let unlinked: HashSet<u32> = partners
                    .iter()
                    .filter(|&&((s, _), linked)| s == ti && !linked)
                    .map(|&((_, o), _)| o)
                    .collect();
                found.retain(|o| !unlinked.contains(o));
                let mut seen: HashSet<u32> = found.iter().copied().collect();
                for ((s, o), linked) in partners {
                    if s == ti && linked && seen.insert(o) {
                        found.push(o);
                    }
                }
            }
        }
        found.retain(|&o| self.stores[ti].state(o) != State::Discarded);
        found
    }

    /// Loads many-to-many `rel` of the objects `slots` of store `si` whose collection is not
    /// loaded, in one query per 1,024 objects; returns the linked objects of all of them
    /// (store `ti`), each once.
    /// With `whole`, `slots` are every row of their table, and every link is read (no list
    /// of keys).
    pub(crate) fn load_linked_many(
        &mut self,
        si: usize,
        slots: &[u32],
        rel: usize,
        whole: bool,
    ) -> Result<Vec<u32>> {
        let (join, ti, _) = self.join_of(si, rel)?;
        let mut keys: Vec<Value> = Vec::new();
        let mut unloaded: Vec<u32> = Vec::new();
        for &slot in slots {
            let loaded = self.stores[si]
                .collection(slot, rel)
                .is_some_and(|c| c.is_loaded());
            if !loaded {
                keys.extend(self.stored_key(si, slot));
                unloaded.push(slot);
            }
        }
        let mut by_owner: HashMap<KeyValue, Vec<u32>> = HashMap::default();
        if whole && !keys.is_empty() {
            self.read_linked(&join, rel, ti, &[], &mut by_owner)?;
        } else {
            for chunk in keys.chunks(1024) {
                self.read_linked(&join, rel, ti, chunk, &mut by_owner)?;
            }
        }
        let session = self.id;
        for slot in unloaded {
            let found = self
                .stored_key(si, slot)
                .and_then(|k| KeyValue::from_ref(k.as_ref()))
                .and_then(|k| by_owner.remove(&k))
                .unwrap_or_default();
            let linked = self.with_pending(&join, (si, slot), ti, found);
            if let Some(c) = self.stores[si].collection_mut(slot, rel) {
                c.set_slots(session, &linked);
            }
        }
        let mut seen = HashSet::default();
        let mut out = Vec::new();
        let mut linked = Vec::new();
        for &slot in slots {
            linked.clear();
            if let Some(c) = self.stores[si].collection(slot, rel) {
                c.append_slots(&mut linked);
            }
            out.extend(linked.iter().copied().filter(|&o| seen.insert(o)));
        }
        Ok(out)
    }

    /// Reads the rows of store `ti` linked to the rows of these `keys` (to every row if there
    /// are none), into `by_owner`.
    fn read_linked(
        &mut self,
        join: &JoinTable,
        rel: usize,
        ti: usize,
        keys: &[Value],
        by_owner: &mut HashMap<KeyValue, Vec<u32>>,
    ) -> Result<()> {
        // The last key repeated up to a few statement shapes (see `sql::in_list_len`).
        let params: Vec<ValueRef<'_>> = match keys.last() {
            None => Vec::new(),
            Some(last) => keys
                .iter()
                .chain(std::iter::repeat(last))
                .take(crate::sql::in_list_len(keys.len()))
                .map(Value::as_ref)
                .collect(),
        };
        let n = params.len();
        let sql = self
            .conn
            .sql(join.meta, SqlKey::JoinTargets(rel, n, true), |d| {
                join.select_targets(d, n, true)
            });
        let owner = join.target.columns.len();
        let owner_type = join.meta.key_column().sql_type;
        let meta = join.target;
        let (session, populating) = (self.id, self.populating);
        if populating {
            self.settle(ti);
        }
        let store = &mut self.stores[ti];
        let mut moves = Vec::new();
        self.conn.query(&sql, &params, &mut |row| {
            let slot = if populating {
                // `populate_existing`: objects already there take the row's values.
                let (slot, changed) = store.reload_row(row, session)?;
                moves.extend(
                    changed
                        .into_iter()
                        .map(|(r, linked, now)| (ti, slot, r, linked, now)),
                );
                slot
            } else {
                store.load_row(row)?
            };
            match row.value(owner, owner_type).map(KeyValue::from_ref) {
                Ok(Some(k)) => {
                    by_owner.entry(k).or_default().push(slot);
                    Ok(())
                }
                Ok(None) => Err(decode(
                    meta,
                    "a key of the association table is NULL".into(),
                )),
                Err(message) => Err(decode(meta, message)),
            }
        })?;
        self.move_children_with(&moves, true, false);
        Ok(())
    }

    /// Takes the objects `rows` (deleted by a flush, or expunged) out of every loaded
    /// many-to-many collection that holds them, and drops their pending links. A collection
    /// may hold an object whichever side declares the relationship, and the object's own
    /// collection may be out of date (another program linked it), so the objects of each
    /// model with a many-to-many to theirs are looked through: once per relationship,
    /// whatever the number of rows.
    pub(crate) fn forget_links(&mut self, rows: &[Row]) {
        if rows.is_empty() || self.joins.is_empty() && !self.has_many_to_many() {
            return;
        }
        for changes in self.joins.values_mut() {
            for &row in rows {
                changes.forget(row);
            }
        }
        let mut gone: HashMap<usize, HashSet<u32>> = HashMap::default();
        for &(si, slot) in rows {
            gone.entry(si).or_default().insert(slot);
        }
        for oi in 0..self.stores.len() {
            let meta = self.stores[oi].meta();
            for rel in 0..meta.relations.len() {
                let target = self.links[oi][rel].target;
                let Some(dead) = target
                    .filter(|_| meta.relations[rel].kind.is_many_to_many())
                    .and_then(|ti| gone.get(&ti))
                else {
                    continue;
                };
                for holder in 0..self.stores[oi].slot_count() as u32 {
                    let holds = self.stores[oi]
                        .collection(holder, rel)
                        .and_then(|c| c.slots())
                        .is_some_and(|slots| slots.iter().any(|s| dead.contains(s)));
                    if holds {
                        if let Some(c) = self.stores[oi].collection_mut(holder, rel) {
                            c.remove_slots(dead);
                        }
                    }
                }
            }
        }
    }

    /// Whether any model of the session has a many-to-many relationship.
    fn has_many_to_many(&self) -> bool {
        self.stores
            .iter()
            .any(|s| s.meta().relations.iter().any(|r| r.kind.is_many_to_many()))
    }
}

/// A decoding error for a row of `meta` read through an association table.
fn decode(meta: &crate::model::ModelMeta, message: String) -> Error {
    Error::Decode {
        model: meta.name,
        field: meta.key_column().field,
        message,
    }
}
