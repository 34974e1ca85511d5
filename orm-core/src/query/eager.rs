//! Eager loading: the relationships of the rows a query found, one `SELECT .. IN` per
//! relationship and level (chunked under the parameter limit), matched through the identity
//! map so that no row becomes two objects.

use crate::error::Result;
use crate::id::RawId;
use crate::model::RelationKind;
use crate::session::store::{KeyValue, State};
use crate::session::{BelongsTo, HasManyRel, HasOneRel, Session};
use crate::sql::{padded_keys, Expr, Order, Select};
use rustc_hash::FxHashSet;
use std::marker::PhantomData;

/// A relationship of `M` (to `T`s) to load with a query, with the relationships of the `T`s
/// to load in turn: `Author::posts.with(Post::comments)`. Any relationship descriptor
/// (`Author::posts`, `Post::author`, `User::profile`) is one.
pub struct Eager<M, T> {
    pub(crate) node: Node,
    _m: PhantomData<fn() -> (M, T)>,
}

impl<M, T> Clone for Eager<M, T> {
    fn clone(&self) -> Self {
        Eager {
            node: self.node.clone(),
            _m: PhantomData,
        }
    }
}

impl<M, T> std::fmt::Debug for Eager<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.node.fmt(f)
    }
}

/// A relationship to load, by index in the model's relations, and what to load below it.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    rel: usize,
    nested: Vec<Node>,
}

impl<M, T> Eager<M, T> {
    fn new(rel: usize) -> Self {
        Eager {
            node: Node {
                rel,
                nested: Vec::new(),
            },
            _m: PhantomData,
        }
    }

    /// Also loads a relationship of the `T`s this one loads.
    pub fn with<U>(mut self, nested: impl Into<Eager<T, U>>) -> Eager<M, T> {
        self.node.nested.push(nested.into().node);
        self
    }
}

macro_rules! descriptor {
    ($ty:ident, $m:ident, $t:ident) => {
        impl<$m, $t> From<$ty<$m, $t>> for Eager<$m, $t> {
            fn from(d: $ty<$m, $t>) -> Self {
                Eager::new(d.rel)
            }
        }
        impl<$m, $t> $ty<$m, $t> {
            /// This relationship, to load with a query, and a relationship of what it loads.
            pub fn with<U>(self, nested: impl Into<Eager<$t, U>>) -> Eager<$m, $t> {
                Eager::from(self).with(nested)
            }
        }
    };
}
descriptor!(BelongsTo, C, P);
descriptor!(HasManyRel, P, C);
descriptor!(HasOneRel, P, C);

/// Loads relationship `node` of the objects in `slots` of store `si`, then its nested ones.
/// `whole`: `slots` are every row of their table that has a parent (the query had no
/// filter, limit or offset, and the levels above it were required keys), so that their
/// children are every row whose key is not `NULL`: read without a list of keys.
pub(crate) fn load(
    db: &mut Session,
    si: usize,
    slots: &[u32],
    node: &Node,
    whole: bool,
) -> Result<()> {
    let meta = db.stores[si].meta();
    let rel = &meta.relations[node.rel];
    let ti = db.store_index_or_create((rel.target)());
    let (found, whole) = match rel.kind {
        RelationKind::BelongsTo { .. } => (parents(db, si, slots, node.rel, ti)?, false),
        RelationKind::HasMany | RelationKind::HasOne => {
            children(db, si, slots, node.rel, ti, whole)?
        }
        RelationKind::ManyToMany { .. } => {
            (db.load_linked_many(si, slots, node.rel, whole)?, false)
        }
    };
    for n in &node.nested {
        load(db, ti, &found, n, whole)?;
    }
    Ok(())
}

/// The parents (store `ti`) that relation `rel` of these children points at: those the
/// session holds, and the others read with `SELECT .. WHERE key IN (..)`.
fn parents(db: &mut Session, si: usize, slots: &[u32], rel: usize, ti: usize) -> Result<Vec<u32>> {
    let target = db.stores[ti].meta();
    let mut out = Vec::new();
    let mut seen = FxHashSet::default();
    let mut missing = Vec::new();
    let mut asked = FxHashSet::default();
    for &slot in slots {
        let id = db.stores[si].foreign_key(slot, rel);
        match db.parent_slot(target, id) {
            Some((_, p)) => {
                if seen.insert(p) {
                    out.push(p);
                }
            }
            None => {
                if let RawId::Stored(k) = id {
                    if asked.insert(k) {
                        missing.push(k);
                    }
                }
            }
        }
    }
    for p in read_in(db, ti, target.key, &missing, false)? {
        if seen.insert(p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The children (store `ci`) of these parents (store `pi`) through has-many or has-one
/// `rel`: collections not loaded yet are read with one `SELECT .. WHERE fk IN (..)` (or
/// `fk IS NOT NULL` for a `whole` table) and filled as a lazy load would fill them. The
/// children of every parent, and whether they are a whole table in turn (a required key).
fn children(
    db: &mut Session,
    pi: usize,
    slots: &[u32],
    rel: usize,
    ci: usize,
    whole: bool,
) -> Result<(Vec<u32>, bool)> {
    let (inv, column, nullable) = child_key(db, pi, rel, ci)?;
    db.settle(ci);
    let unloaded: Vec<u32> = slots
        .iter()
        .copied()
        .filter(|&p| {
            db.stores[pi]
                .collection(p, rel)
                .is_some_and(|c| c.slots().is_none())
        })
        .collect();
    // The whole table only when no collection is loaded yet: otherwise the keys of the
    // parents left (none, often).
    let rows = if unloaded.is_empty() {
        Vec::new()
    } else if whole && unloaded.len() == slots.len() {
        read_with_parents(db, ci, column, nullable)?
    } else {
        let keys: Vec<i64> = unloaded
            .iter()
            .filter_map(|&p| match db.stores[pi].key_id(p) {
                RawId::Stored(k) => Some(k),
                _ => None,
            })
            .collect();
        read_in(db, ci, column, &keys, true)?
    };
    let (flat, starts) = group(db, pi, &unloaded, ci, inv, &rows);
    for (i, &p) in unloaded.iter().enumerate() {
        let found = &flat[starts[i]..starts[i + 1]];
        db.fill_children(pi, p, rel, inv, ci, found, true);
    }
    let mut out = Vec::with_capacity(rows.len());
    for &p in slots {
        if let Some(c) = db.stores[pi].collection(p, rel) {
            c.append_slots(&mut out);
        }
    }
    Ok((out, whole && !nullable))
}

/// The `belongs_to` of the children (store `ci`) that is the other side of has-many or
/// has-one `rel` of the parents (store `pi`): its index, its column, whether it is nullable.
fn child_key(db: &Session, pi: usize, rel: usize, ci: usize) -> Result<(usize, usize, bool)> {
    let cmeta = db.stores[ci].meta();
    let inv = db.child_inverse(pi, rel, cmeta)?;
    let RelationKind::BelongsTo { column, nullable } = cmeta.relations[inv].kind else {
        unreachable!("child_inverse returns a belongs_to")
    };
    Ok((inv, column, nullable))
}

/// Every row of store `si` that has a parent through `column` (a required key: every row),
/// in key order.
fn read_with_parents(
    db: &mut Session,
    si: usize,
    column: usize,
    nullable: bool,
) -> Result<Vec<u32>> {
    let mut select = Select::new(db.stores[si].meta()).by_key();
    if nullable {
        select.filter = Some(Expr::Not(Box::new(Expr::IsNull { column })));
    }
    let sql = select.render(db.conn.dialect());
    db.load_slots(si, &sql.text, &[])
}

/// The child `rows` (store `ci`, key `inv`) of each of the `parents` (store `pi`), grouped by
/// the key each child holds in the session (its row's, or the one the session gave it; a
/// parent read from the database has a stored key, which the session's ids of a stored
/// object always are): one list of children, and where the children of parent `i` start
/// (`starts[i]..starts[i + 1]`).
fn group(
    db: &Session,
    pi: usize,
    parents: &[u32],
    ci: usize,
    inv: usize,
    rows: &[u32],
) -> (Vec<u32>, Vec<usize>) {
    // The position in `parents` of each parent slot (the parents' store is small beside
    // the children's rows, and a slot is found from a key through the identity map).
    const NONE: u32 = u32::MAX;
    let mut at = vec![NONE; db.stores[pi].slot_count()];
    for (i, &p) in parents.iter().enumerate() {
        at[p as usize] = i as u32;
    }
    let parent_store = &db.stores[pi];
    let store = &db.stores[ci];
    let owner: Vec<Option<usize>> = rows
        .iter()
        .map(|&c| {
            if store.state(c) == State::Discarded {
                return None;
            }
            let slot = match store.foreign_key(c, inv) {
                RawId::Stored(k) => parent_store.lookup(&KeyValue::Int(k))?,
                RawId::Pending { session, slot } if session == db.id => slot,
                _ => return None,
            };
            let i = *at.get(slot as usize)?;
            (i != NONE).then_some(i as usize)
        })
        .collect();
    let mut starts = vec![0usize; parents.len() + 1];
    for i in owner.iter().flatten() {
        starts[i + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut flat = vec![0u32; starts[parents.len()]];
    for (&c, i) in rows.iter().zip(&owner) {
        if let Some(i) = *i {
            flat[next[i]] = c;
            next[i] += 1;
        }
    }
    (flat, starts)
}

/// Reads the rows of store `si` whose `column` is one of `keys`, in chunks of an `IN` list
/// under the dialect's parameter limit (sized so that a model has few statement shapes),
/// ordered by that column, then key, if `ordered`; their slots.
fn read_in(
    db: &mut Session,
    si: usize,
    column: usize,
    keys: &[i64],
    ordered: bool,
) -> Result<Vec<u32>> {
    let meta = db.stores[si].meta();
    let chunk = in_chunk(db.conn.dialect().max_params());
    let mut out = Vec::new();
    for keys in keys.chunks(chunk) {
        let params = padded_keys(keys);
        let mut select = Select::new(meta).filter(Expr::in_params(column, params.len()));
        if ordered {
            select.order_by = [column, meta.key]
                .map(|column| Order {
                    column,
                    descending: false,
                })
                .to_vec();
        }
        let sql = select.render(db.conn.dialect()).text;
        out.extend(db.load_slots(si, &sql, &params)?);
    }
    Ok(out)
}

/// The most keys in one `IN` list: the largest power of two the dialect can bind.
fn in_chunk(max_params: usize) -> usize {
    1 << (usize::BITS - 1 - max_params.max(1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_have_few_shapes_and_fit() {
        assert_eq!(in_chunk(32766), 16384);
        assert_eq!(in_chunk(65535), 32768);
    }
}
