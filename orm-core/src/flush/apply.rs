//! Apply: what the objects learn once every statement of a flush has succeeded (and only
//! then, so that a failed flush leaves the session as it was).

use super::changes::Updates;
use super::deletes::Deletes;
use super::keys::{bumped, pending_key};
use super::{Row, Targets};
use crate::id::RawId;
use crate::model::KeyKind;
use crate::session::relation::sync::Move;
use crate::session::store::State;
use crate::session::Session;
use crate::value::ValueRef;

/// What the statements wrote.
pub(super) struct Written {
    /// For each store, the key of each new slot.
    pub(super) keys: Vec<Vec<i64>>,
    /// The inserted rows.
    pub(super) inserted: Vec<Row>,
    /// For each store, the keys written explicitly.
    pub(super) explicit: Vec<Vec<i64>>,
}

/// Brings the session in line with what the flush wrote: objects get their keys and lose
/// their pending ids, snapshots move on, children whose keys changed join their new
/// parents' collections (found by the ids they held before the keys were resolved), and
/// deleted objects leave the session.
pub(super) fn after_flush(
    db: &mut Session,
    targets: &Targets,
    written: Option<&Written>,
    updates: &Updates,
    deletes: &Deletes,
) {
    let mut moves = Vec::new();
    for si in 0..db.stores.len() {
        moves.extend(db.moves_of(si, db.stores[si].marked_slots()));
    }
    let (leaving, nulled) = let_go(db, deletes, &mut moves);
    let rekeyed: Vec<(usize, u32)> = updates
        .list
        .iter()
        .filter(|u| updates.columns(u).contains(&db.stores[u.store].meta().key))
        .map(|u| (u.store, u.slot))
        .collect();
    apply(db, targets, written, updates);
    for (si, slot) in nulled {
        db.stores[si].apply_update(slot);
    }
    db.move_children(&moves, true);
    db.move_children(&leaving, false);
    let deleted: Vec<Row> = (0..db.stores.len())
        .flat_map(|si| deletes.rows(si).iter().map(move |&slot| (si, slot)))
        .collect();
    db.forget_links(&deleted);
    db.joins.clear();
    let session = db.id;
    for si in 0..db.stores.len() {
        for &slot in deletes.rows(si) {
            db.stores[si].apply_delete(slot, session);
        }
    }
    db.relink_children_of(&rekeyed);
    db.link_unlinked();
    db.pending_children.clear();
    for s in &mut db.stores {
        s.finish_flush();
    }
}

/// The objects that go and the keys set to `NULL`, before anything else is applied: the
/// moves that take them out of the loaded collections they are in (and none that would put
/// a deleted object in another), and the objects whose key is now `NULL` (set in the objects).
fn let_go(db: &mut Session, deletes: &Deletes, moves: &mut Vec<Move>) -> (Vec<Move>, Vec<Row>) {
    let mut leaving = Vec::new();
    let mut nulled = Vec::new();
    if deletes.is_empty() {
        return (leaving, nulled);
    }
    moves.retain(|&(si, slot, ..)| !deletes.contains(si, slot));
    for si in 0..db.stores.len() {
        let store = &db.stores[si];
        for &slot in deletes.rows(si) {
            for r in 0..db.links[si].len() {
                if db.links[si][r].inverse.is_some()
                    && !store.meta().relations[r].kind.holds_children()
                {
                    leaving.push((si, slot, r, store.linked_fk(slot, r), RawId::Unset));
                }
            }
        }
    }
    for (si, slot, rel) in deletes.nulled() {
        let linked = db.stores[si].linked_fk(slot, rel);
        leaving.push((si, slot, rel, linked, RawId::Unset));
        db.stores[si].set_foreign_key(slot, rel, RawId::Unset);
        nulled.push((si, slot));
    }
    (leaving, nulled)
}

/// The `#[version]` that update `u` wrote, if its model has one.
fn next_version(db: &Session, updates: &Updates, u: &super::changes::Update) -> Option<i64> {
    let store = &db.stores[u.store];
    let v = store
        .meta()
        .version
        .filter(|v| updates.columns(u).contains(v))?;
    let read = match store.snapshot_value(u.slot, v) {
        Some(value) => value.as_ref(),
        None => store.column(u.slot, v),
    };
    Some(match bumped(read) {
        ValueRef::I64(i) => i,
        ValueRef::I32(i) => i.into(),
        ValueRef::I16(i) => i.into(),
        _ => 1,
    })
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
            if db.stores[si].meta().version.is_some() {
                // What the INSERT wrote.
                db.stores[si].set_version(slot, 1);
            }
        }
    }
    for u in &updates.list {
        let version = next_version(db, updates, u);
        db.stores[u.store].apply_update(u.slot);
        if let Some(v) = version {
            db.stores[u.store].set_version(u.slot, v);
        }
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
