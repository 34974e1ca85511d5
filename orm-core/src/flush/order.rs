//! Order: parents before children, as a topological sort of models (for DDL and for the
//! flush) and of the new rows themselves, cycles broken at a nullable key.

use super::keys::Resolver;
use super::{Row, Targets};
use crate::error::{Error, Result};
use crate::id::RawId;
use crate::model::RelationKind;
use crate::session::store::{AnyStore, KeyValue};
use rustc_hash::FxHashSet as HashSet;

/// Foreign keys (store, slot, relation) inserted as NULL and set by an UPDATE afterwards.
pub(super) type Deferred = HashSet<(usize, u32, usize)>;

/// The nodes `0..n` of a small graph, each after the nodes `parents` names for it (a node
/// that is its own parent is fine; nodes in a cycle keep their order), visiting only the nodes
/// `roots` yields and their parents. Reversed, it is the order to delete in.
pub(crate) fn parents_first<P>(
    n: usize,
    roots: impl IntoIterator<Item = usize>,
    parents: impl Fn(usize) -> P,
) -> Vec<usize>
where
    P: IntoIterator<Item = usize>,
{
    // Depth-first, iterative: (node, its parents left to visit).
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(n);
    let mut stack: Vec<(usize, P::IntoIter)> = Vec::new();
    for root in roots {
        if std::mem::replace(&mut seen[root], true) {
            continue;
        }
        stack.push((root, parents(root).into_iter()));
        while let Some((node, rest)) = stack.last_mut() {
            match rest.next() {
                Some(p) if !seen[p] => {
                    seen[p] = true;
                    stack.push((p, parents(p).into_iter()));
                }
                Some(_) => {}
                None => {
                    out.push(*node);
                    stack.pop();
                }
            }
        }
    }
    out
}

/// The stores with rows in `rows`, parents before children (a cycle between models in any
/// order).
fn model_order(stores: &[Box<dyn AnyStore>], targets: &Targets, rows: &[Vec<u32>]) -> Vec<usize> {
    let has_rows = |si: usize| rows.get(si).is_some_and(|r| !r.is_empty());
    parents_first(
        stores.len(),
        (0..stores.len()).filter(|&si| has_rows(si)),
        |si| {
            let rels = stores[si].meta().relations;
            (0..rels.len()).filter_map(move |i| match rels[i].kind {
                RelationKind::BelongsTo { .. } => targets[si][i].filter(|&ti| has_rows(ti)),
                _ => None,
            })
        },
    )
}

/// Orders the new rows so that every parent comes before its children: models in dependency
/// order, rows of a model in the order they were added, a row's parents (in any table) first.
/// A cycle is broken at a nullable key (inserted `NULL`, set by an UPDATE afterwards); a cycle
/// of required keys is an error naming its tables.
pub(super) fn sort(r: &mut Resolver<'_>) -> Result<(Vec<Row>, Deferred)> {
    let (stores, inserts) = (r.stores, r.inserts);
    let models = model_order(stores, r.targets, inserts);
    let post_update = |si: usize, rel: usize| stores[si].meta().relations[rel].post_update;
    let (order, mut deferred) = sort_rows(stores, &models, inserts, |si, slot, rel| {
        if post_update(si, rel) {
            return None;
        }
        r.parent_row(si, slot, rel)
    })?;
    // `post_update` keys go in as NULL and are set once every row exists.
    let any = stores
        .iter()
        .any(|s| s.meta().relations.iter().any(|r| r.post_update));
    for &(si, slot) in order.iter().filter(|_| any) {
        for rel in 0..stores[si].meta().relations.len() {
            if post_update(si, rel) && r.fk(si, slot, rel) != RawId::Unset {
                deferred.insert((si, slot, rel));
            }
        }
    }
    Ok((order, deferred))
}

/// Orders the stored rows a flush deletes so that every child comes before its parent (by
/// the keys the database holds when the deletes run); a cycle is broken at a nullable key,
/// set to `NULL` by an UPDATE before the deletes.
pub(super) fn sort_deletes(
    stores: &[Box<dyn AnyStore>],
    targets: &Targets,
    rows: &[Vec<u32>],
    db_fk: impl Fn(usize, u32, usize) -> RawId,
) -> Result<(Vec<Row>, Deferred)> {
    let sets: Vec<HashSet<u32>> = rows.iter().map(|r| r.iter().copied().collect()).collect();
    let models = model_order(stores, targets, rows);
    let deleted_parent = |si: usize, slot: u32, rel: usize| {
        if stores[si].meta().relations[rel].kind.holds_children() {
            return None;
        }
        let ti = targets[si][rel]?;
        let RawId::Stored(k) = db_fk(si, slot, rel) else {
            return None;
        };
        let ps = stores[ti].lookup(&KeyValue::Int(k))?;
        sets[ti].contains(&ps).then_some((ti, ps))
    };
    let post_update = |si: usize, rel: usize| stores[si].meta().relations[rel].post_update;
    let (mut order, mut deferred) = sort_rows(stores, &models, rows, |si, slot, rel| {
        if post_update(si, rel) {
            return None;
        }
        deleted_parent(si, slot, rel)
    })?;
    // `post_update` keys that name a deleted row are set to NULL before the deletes.
    for &(si, slot) in &order {
        for rel in 0..stores[si].meta().relations.len() {
            if post_update(si, rel) && deleted_parent(si, slot, rel).is_some() {
                deferred.insert((si, slot, rel));
            }
        }
    }
    order.reverse();
    Ok((order, deferred))
}

/// Orders `rows` (for each store, its rows in the order to keep where nothing else
/// decides) so that each row comes after the row `parent` names for each of its relations,
/// stores in `models` order; see [`sort`].
fn sort_rows(
    stores: &[Box<dyn AnyStore>],
    models: &[usize],
    rows: &[Vec<u32>],
    mut parent: impl FnMut(usize, u32, usize) -> Option<Row>,
) -> Result<(Vec<Row>, Deferred)> {
    let mut deferred = Deferred::default();
    let mut mark: Vec<Vec<u8>> = stores
        .iter()
        .enumerate()
        .map(|(si, s)| {
            if rows.get(si).is_none_or(|r| r.is_empty()) {
                Vec::new()
            } else {
                vec![0u8; s.slot_count()]
            }
        })
        .collect();
    let total: usize = rows.iter().map(Vec::len).sum();
    let mut order = Vec::with_capacity(total);
    // Stack of (row, next relation to look at).
    let mut stack: Vec<(Row, usize)> = Vec::new();
    for &si in models {
        for &root in &rows[si] {
            if mark[si][root as usize] != 0 {
                continue;
            }
            mark[si][root as usize] = 1;
            stack.push(((si, root), 0));
            while let Some(&mut ((csi, cslot), ref mut next)) = stack.last_mut() {
                let rels = stores[csi].meta().relations;
                if *next < rels.len() {
                    let rel = *next;
                    *next += 1;
                    if deferred.contains(&(csi, cslot, rel)) {
                        continue;
                    }
                    let Some((psi, pslot)) = parent(csi, cslot, rel) else {
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
                            (csi, cslot, rel),
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

#[cfg(test)]
mod tests {
    use super::parents_first;

    #[test]
    fn parents_come_first() {
        // 0 <- 1 <- 2, and 3 <- 2: every node after its parents.
        let parents = |n: usize| match n {
            1 => vec![0],
            2 => vec![1, 3],
            _ => vec![],
        };
        let order = parents_first(4, [2, 0, 1, 3], parents);
        assert_eq!(order, [0, 1, 3, 2]);
    }

    #[test]
    fn only_roots_and_their_parents_are_visited() {
        let parents = |n: usize| if n == 2 { vec![1] } else { vec![] };
        assert_eq!(parents_first(4, [2], parents), [1, 2]);
    }

    #[test]
    fn cycles_and_self_references_end() {
        // 0 <-> 1, and 2 is its own parent.
        let parents = |n: usize| match n {
            0 => vec![1],
            1 => vec![0],
            2 => vec![2],
            _ => vec![],
        };
        let order = parents_first(3, 0..3, parents);
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], 2);
    }
}
