//! Deletes: the objects a flush deletes (those marked with `delete`, orphans of
//! `delete_orphans` relationships, and the children `cascade_delete` reaches, loaded or not)
//! and the foreign keys it sets to `NULL` because their parent goes. Computed as data before
//! anything is written; the session changes only once the flush has succeeded.

use crate::backend::SqlKey;
use crate::error::{Error, Result};
use crate::id::RawId;
use crate::model::{OnDelete, RelationKind};
use crate::session::store::{KeyValue, State};
use crate::session::Session;
use rustc_hash::FxHashSet as HashSet;

/// Most keys in one `IN` list of a cascade's SELECT or a DELETE (a power of two).
pub(super) const MAX_IN_LIST: usize = 1024;

/// What a flush deletes.
#[derive(Default)]
pub(crate) struct Deletes {
    /// For each store, the objects that go, in the order they were found. New ones are
    /// simply not inserted; stored ones are deleted.
    rows: Vec<Vec<u32>>,
    set: Vec<HashSet<u32>>,
    /// Foreign keys (store, slot, relation) set to `NULL` because their parent goes.
    nulled: HashSet<(usize, u32, usize)>,
    /// Rows deleted by their foreign key without being read: (store, relation, the keys of
    /// the parents that go). See [`bulk_ok`].
    pub(super) bulk: Vec<(usize, usize, Vec<i64>)>,
}

impl Deletes {
    /// Whether nothing goes and no key is set to `NULL`.
    pub(super) fn is_empty(&self) -> bool {
        self.nulled.is_empty() && self.bulk.is_empty() && self.rows.iter().all(Vec::is_empty)
    }

    /// The objects of store `si` that go.
    pub(super) fn rows(&self, si: usize) -> &[u32] {
        self.rows.get(si).map_or(&[], Vec::as_slice)
    }

    /// Whether object `slot` of store `si` goes.
    pub(super) fn contains(&self, si: usize, slot: u32) -> bool {
        self.set.get(si).is_some_and(|s| s.contains(&slot))
    }

    /// Whether foreign key `rel` of object `slot` of store `si` is set to `NULL` (and the
    /// object stays).
    pub(super) fn is_nulled(&self, si: usize, slot: u32, rel: usize) -> bool {
        !self.nulled.is_empty()
            && self.nulled.contains(&(si, slot, rel))
            && !self.contains(si, slot)
    }

    /// The foreign keys set to `NULL` of objects that stay.
    pub(super) fn nulled(&self) -> impl Iterator<Item = (usize, u32, usize)> + '_ {
        self.nulled
            .iter()
            .copied()
            .filter(|&(si, slot, _)| !self.contains(si, slot))
    }

    /// Adds an object; false if it was there.
    fn add(&mut self, si: usize, slot: u32) -> bool {
        if self.rows.len() <= si {
            self.rows.resize_with(si + 1, Vec::new);
            self.set.resize_with(si + 1, HashSet::default);
        }
        let new = self.set[si].insert(slot);
        if new {
            self.rows[si].push(slot);
        }
        new
    }
}

/// A child whose required key names a parent that goes: an error unless the child goes too.
struct Left {
    parent: (usize, u32),
    child: (usize, u32),
    rel: usize,
    /// Through a `belongs_to` with no other side on the parent.
    one_way: bool,
}

/// What the next flush deletes, following the relationships' cascades. May read the
/// children of deleted parents from the database (one query per relationship and 1,024
/// parents), inside the session's transaction so that SQLite's write lock is held.
pub(super) fn collect(db: &mut Session) -> Result<Deletes> {
    let mut out = Deletes::default();
    let mut work: Vec<(usize, u32)> = Vec::new();
    for si in 0..db.stores.len() {
        for i in 0..db.stores[si].doomed_slots().len() {
            let slot = db.stores[si].doomed_slots()[i];
            if db.stores[si].state(slot) != State::Discarded && out.add(si, slot) {
                work.push((si, slot));
            }
        }
    }
    orphans(db, &mut out, &mut work);
    let mut left = Vec::new();
    while !work.is_empty() {
        cascade(db, &mut out, &mut work, &mut left)?;
    }
    if let Some(l) = left.iter().find(|l| !out.contains(l.child.0, l.child.1)) {
        let count = left
            .iter()
            .filter(|o| {
                o.parent == l.parent && o.rel == l.rel && !out.contains(o.child.0, o.child.1)
            })
            .count();
        let (pi, ps) = l.parent;
        let child = db.stores[l.child.0].meta();
        if l.one_way {
            return Err(Error::ParentDeleted {
                model: child.name,
                field: child.relations[l.rel].field,
                target: db.stores[pi].meta().name,
            });
        }
        return Err(Error::ChildrenLeft {
            parent: db.stores[pi].meta().name,
            key: match db.stores[pi].key_id(ps) {
                RawId::Stored(k) => k.to_string(),
                _ => "(not flushed yet)".to_owned(),
            },
            child: child.name,
            field: child.relations[l.rel].field,
            count,
        });
    }
    Ok(out)
}

/// Children taken out of a `delete_orphans` collection since the last flush (their key was
/// set and is now unset) go: stored ones are deleted, new ones are not inserted.
fn orphans(db: &Session, out: &mut Deletes, work: &mut Vec<(usize, u32)>) {
    for (si, store) in db.stores.iter().enumerate() {
        let meta = store.meta();
        for (r, rel) in meta.relations.iter().enumerate() {
            let link = db.links[si][r];
            let (RelationKind::BelongsTo { .. }, Some(inv)) = (rel.kind, link.inverse) else {
                continue;
            };
            if !(rel.target)().relations[inv].cascade.orphans {
                continue;
            }
            for &slot in store.marked_slots() {
                let was_set = store
                    .snapshot_fk(slot, r)
                    .is_some_and(|id| id != RawId::Unset);
                if store.state(slot) != State::Discarded
                    && was_set
                    && store.foreign_key(slot, r) == RawId::Unset
                    && out.add(si, slot)
                {
                    work.push((si, slot));
                }
            }
        }
    }
}

/// Follows the has-many relationships of the objects in `work` (taken): children of a
/// `cascade_delete` relationship go (and are added to `work`), others get their key set to
/// `NULL` where it is nullable, or are noted in `left`.
fn cascade(
    db: &mut Session,
    out: &mut Deletes,
    work: &mut Vec<(usize, u32)>,
    left: &mut Vec<Left>,
) -> Result<()> {
    let mut by_store: Vec<(usize, Vec<u32>)> = Vec::new();
    for (si, slot) in std::mem::take(work) {
        match by_store.iter_mut().find(|(s, _)| *s == si) {
            Some((_, slots)) => slots.push(slot),
            None => by_store.push((si, vec![slot])),
        }
    }
    for (pi, parents) in by_store {
        let meta = db.stores[pi].meta();
        for (rel, r) in meta.relations.iter().enumerate() {
            let Some(inv) = db.links[pi][rel].inverse else {
                continue;
            };
            // A many-to-many's links go with the row (`ON DELETE CASCADE`), never the other end.
            if !r.kind.holds_children() || r.kind.is_many_to_many() {
                continue;
            }
            let ci = db.store_index_or_create((r.target)());
            let read = if r.cascade.passive {
                Read::Keys
            } else if r.cascade.delete && bulk_ok(db, ci) {
                Read::Nothing
            } else {
                Read::Rows
            };
            let (children, keys) = children_of(db, (pi, rel), (ci, inv), &parents, read)?;
            if read == Read::Nothing && !keys.is_empty() {
                out.bulk.push((ci, inv, keys));
            }
            let child_meta = db.stores[ci].meta();
            let nullable = matches!(
                child_meta.relations[inv].kind,
                RelationKind::BelongsTo { nullable: true, .. }
            );
            for (child, parent) in children {
                if out.contains(ci, child) {
                    continue;
                }
                if r.cascade.delete {
                    if out.add(ci, child) {
                        work.push((ci, child));
                    }
                } else if nullable {
                    out.nulled.insert((ci, child, inv));
                } else {
                    left.push(Left {
                        parent: (pi, parent),
                        child: (ci, child),
                        rel: inv,
                        one_way: false,
                    });
                }
            }
        }
        one_way(db, pi, &parents, out, work, left)?;
    }
    Ok(())
}

/// Objects of the session that point at these parents of store `pi` through a `belongs_to`
/// with no other side on the parent's model: gone too where its `on_delete` is "cascade",
/// their key set to `NULL` where it is "set null", else noted in `left` (the database would
/// refuse the delete). Rows not in the session are left to the database.
fn one_way(
    db: &mut Session,
    pi: usize,
    parents: &[u32],
    out: &mut Deletes,
    work: &mut Vec<(usize, u32)>,
    left: &mut Vec<Left>,
) -> Result<()> {
    let mut refs = Vec::new();
    for (ci, links) in db.links.iter().enumerate() {
        for (r, link) in links.iter().enumerate() {
            let rel = &db.stores[ci].meta().relations[r];
            if link.target == Some(pi) && link.inverse.is_none() && !rel.kind.holds_children() {
                refs.push((ci, r));
            }
        }
    }
    for (ci, r) in refs {
        let children = session_children(db, pi, (ci, r), parents)?;
        let on_delete = db.stores[ci].meta().relations[r].on_delete;
        for (child, parent) in children {
            if out.contains(ci, child) {
                continue;
            }
            match on_delete {
                OnDelete::Cascade => {
                    if out.add(ci, child) {
                        work.push((ci, child));
                    }
                }
                OnDelete::SetNull => {
                    out.nulled.insert((ci, child, r));
                }
                OnDelete::NoAction | OnDelete::Restrict => left.push(Left {
                    parent: (pi, parent),
                    child: (ci, child),
                    rel: r,
                    one_way: true,
                }),
            }
        }
    }
    Ok(())
}

/// The objects of the session (child slot, parent slot) whose key `r` of store `ci` names one
/// of these parents of store `pi`: new and changed ones from the session's index, stored
/// ones found by reading the keys of the rows that name them (only when the store holds
/// stored objects; no object is loaded).
fn session_children(
    db: &mut Session,
    pi: usize,
    (ci, r): (usize, usize),
    parents: &[u32],
) -> Result<Vec<(u32, u32)>> {
    db.settle(ci);
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for &ps in parents {
        let key = db.stores[pi].key_id(ps);
        if let RawId::Stored(k) = key {
            keys.push(k);
            ids.push(key);
        }
        ids.push(RawId::Pending {
            session: db.id,
            slot: ps,
        });
    }
    let mut candidates = read_child_keys(db, ci, r, &keys)?;
    candidates.extend(db.pending_children(ci, r, &ids));
    Ok(naming(db, pi, (ci, r), candidates, parents))
}

/// The candidates (child slots of store `ci`) whose key `r` names one of `parents` of store
/// `pi` now, each with that parent.
fn naming(
    db: &Session,
    pi: usize,
    (ci, r): (usize, usize),
    mut candidates: Vec<u32>,
    parents: &[u32],
) -> Vec<(u32, u32)> {
    candidates.sort_unstable();
    candidates.dedup();
    let parents: HashSet<u32> = parents.iter().copied().collect();
    let parent_meta = db.stores[pi].meta();
    candidates
        .into_iter()
        .filter(|&c| db.stores[ci].state(c) != State::Discarded)
        .filter_map(
            |c| match db.parent_slot(parent_meta, db.stores[ci].foreign_key(c, r)) {
                Some((p, ps)) if p == pi && parents.contains(&ps) => Some((c, ps)),
                _ => None,
            },
        )
        .collect()
}

/// The objects of store `ci` in the session whose row's key `r` is one of `keys` in the
/// database: their keys are read (not the rows), and looked up in the identity map. Nothing
/// is read when the store holds no stored object.
fn read_child_keys(db: &mut Session, ci: usize, r: usize, keys: &[i64]) -> Result<Vec<u32>> {
    let meta = db.stores[ci].meta();
    let RelationKind::BelongsTo { column, .. } = meta.relations[r].kind else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if keys.is_empty() || !db.stores[ci].holds_stored() {
        return Ok(out);
    }
    db.conn.begin()?;
    let key_type = meta.key_column().sql_type;
    for chunk in keys.chunks(MAX_IN_LIST) {
        let params = crate::sql::padded_keys(chunk);
        let n = params.len();
        let sql = db.conn.sql(meta, SqlKey::KeysIn(column, n), |d| {
            let keys = crate::sql::Columns::Only(vec![meta.key]);
            let select =
                crate::sql::Select::new(meta).filter(crate::sql::Expr::in_params(column, n));
            crate::sql::Select {
                columns: keys,
                ..select
            }
            .render(d)
            .text
        });
        let store = &db.stores[ci];
        db.conn.query(&sql, &params, &mut |row| {
            if let Ok(v) = row.value(0, key_type) {
                if let Some(slot) = KeyValue::from_ref(v).and_then(|k| store.lookup(&k)) {
                    out.push(slot);
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// A child slot and the slot of the parent it belongs to.
type ChildOf = (u32, u32);

/// What [`children_of`] reads from the database for parents whose collection is not loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The children's rows, into the session.
    Rows,
    /// The children's keys, to find those the session holds (`passive_deletes`).
    Keys,
    /// Nothing: the children are deleted by their foreign key (see [`bulk_ok`]).
    Nothing,
}

/// Whether the children of store `ci` whose parents go can be deleted by their foreign key
/// (`DELETE .. WHERE user_id IN (..)`) without being read: the session holds none of them
/// stored, nothing cascades from them (their model has no `has_many` or `has_one`), and no
/// model of the session points at them through a one-way `belongs_to`.
fn bulk_ok(db: &Session, ci: usize) -> bool {
    let meta = db.stores[ci].meta();
    !db.stores[ci].holds_stored()
        && !meta.relations.iter().any(|r| r.kind.holds_children())
        && !db.links.iter().enumerate().any(|(si, links)| {
            links.iter().enumerate().any(|(r, l)| {
                l.target == Some(ci)
                    && l.inverse.is_none()
                    && !db.stores[si].meta().relations[r].kind.holds_children()
            })
        })
}

/// The children (child slot, parent slot) through has-many `rel` of store `pi` of these
/// parents, as the session sees them: loaded collections as they are; otherwise what `read`
/// says is read from the database, and the session's new and changed children, each counted
/// for the parent its key names now. Also the keys of the stored parents whose collection is
/// not loaded.
fn children_of(
    db: &mut Session,
    (pi, rel): (usize, usize),
    (ci, inv): (usize, usize),
    parents: &[u32],
    read: Read,
) -> Result<(Vec<ChildOf>, Vec<i64>)> {
    db.settle(ci);
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut keys: Vec<i64> = Vec::new();
    let mut ids: Vec<RawId> = Vec::new();
    let mut unloaded: HashSet<u32> = HashSet::default();
    for &ps in parents {
        if let Some(slots) = db.stores[pi].collection(ps, rel).and_then(|c| c.slots()) {
            out.extend(slots.into_iter().map(|c| (c, ps)));
            continue;
        }
        unloaded.insert(ps);
        let key = db.stores[pi].key_id(ps);
        if let RawId::Stored(k) = key {
            keys.push(k);
            ids.push(key);
        }
        ids.push(RawId::Pending {
            session: db.id,
            slot: ps,
        });
    }
    if unloaded.is_empty() {
        return Ok((out, keys));
    }
    // With `passive_deletes` the rows are left to the database, but objects of the session
    // for them are found (by their keys) and go with them.
    let mut candidates = match read {
        Read::Rows => read_children(db, ci, inv, &keys)?,
        Read::Keys => read_child_keys(db, ci, inv, &keys)?,
        Read::Nothing => Vec::new(),
    };
    candidates.extend(db.pending_children(ci, inv, &ids));
    let unloaded: Vec<u32> = unloaded.into_iter().collect();
    out.extend(naming(db, pi, (ci, inv), candidates, &unloaded));
    Ok((out, keys))
}

/// Reads into the session the rows of store `ci` whose key `inv` is one of `keys`.
fn read_children(db: &mut Session, ci: usize, inv: usize, keys: &[i64]) -> Result<Vec<u32>> {
    let meta = db.stores[ci].meta();
    let RelationKind::BelongsTo { column, .. } = meta.relations[inv].kind else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if keys.is_empty() {
        return Ok(out);
    }
    // On SQLite the write lock is taken before the children are read, so none can appear
    // between this read and the deletes.
    db.conn.begin()?;
    for chunk in keys.chunks(MAX_IN_LIST) {
        let params = crate::sql::padded_keys(chunk);
        let n = params.len();
        let sql = db.conn.sql(meta, SqlKey::SelectIn(column, n), |d| {
            let select =
                crate::sql::Select::new(meta).filter(crate::sql::Expr::in_params(column, n));
            select.render(d).text
        });
        out.extend(db.load_slots(ci, &sql, &params)?);
    }
    Ok(out)
}

/// For each store, its new objects that the flush inserts (those that do not go).
pub(super) fn inserts(db: &Session, deletes: &Deletes) -> Vec<Vec<u32>> {
    db.stores
        .iter()
        .enumerate()
        .map(|(si, s)| {
            let new = s.new_slots();
            if deletes.rows(si).is_empty() {
                new.to_vec()
            } else {
                new.iter()
                    .copied()
                    .filter(|&slot| !deletes.contains(si, slot))
                    .collect()
            }
        })
        .collect()
}

/// For each store, its stored objects that the flush deletes.
pub(super) fn stored_rows(db: &Session, deletes: &Deletes) -> Vec<Vec<u32>> {
    (0..db.stores.len())
        .map(|si| {
            deletes
                .rows(si)
                .iter()
                .copied()
                .filter(|&slot| db.stores[si].state(slot) == State::Persistent)
                .collect()
        })
        .collect()
}
