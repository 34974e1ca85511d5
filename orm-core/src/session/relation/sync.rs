//! Keeping parents' loaded collections in step with their children's foreign keys: moving
//! children between collections in one pass per collection, settling keys edited directly,
//! and the parent → children index of pending children that `load` reads.
//!
//! The rule kept: a child sits in the loaded collection of the parent it is *linked* under
//! ([`AnyStore::linked_fk`](crate::session::store::AnyStore::linked_fk)) and in no other, and the
//! session links it under the parent its key names whenever it sees the key change: at once
//! for changes made through the session, at the next relationship call or flush for keys
//! edited directly.

use crate::id::RawId;
use crate::model::RelationKind;
use crate::session::store::State;
use crate::session::Session;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// A child to link under another parent: (store, slot, relation, the parent it is linked
/// under, the parent its key names).
pub(crate) type Move = (usize, u32, usize, RawId, RawId);

/// The children of one relation of one store that the database cannot name yet (new ones and
/// ones whose key changed since the last flush), by the key they hold (a parent's stored key
/// or pending id: the parent need not be in the session yet).
#[derive(Default)]
pub(crate) struct PendingChildren {
    by_parent: HashMap<RawId, HashSet<u32>>,
    parent_of: HashMap<u32, RawId>,
}

impl PendingChildren {
    /// Files `child` under the key `parent` (nowhere if unset), wherever it was before.
    fn file(&mut self, child: u32, parent: RawId) {
        if let Some(old) = self.parent_of.remove(&child) {
            if let Some(set) = self.by_parent.get_mut(&old) {
                set.remove(&child);
            }
        }
        if parent != RawId::Unset {
            self.by_parent.entry(parent).or_default().insert(child);
            self.parent_of.insert(child, parent);
        }
    }
}

/// A parent's collection: (parent store, parent slot, relation).
type ParentRel = (usize, u32, usize);
/// The children leaving each collection.
type Removals = HashMap<ParentRel, HashSet<u32>>;
/// The children joining each collection, with their store and relation.
type Additions = HashMap<ParentRel, (usize, usize, Vec<u32>)>;

impl Session {
    /// Links children under the parents their moves name: each leaves the loaded collection
    /// it was in and joins the new parent's, one pass per collection. With `check`, a child
    /// already in its new collection is not added twice (after keys edited directly, when a
    /// collection may have been loaded since).
    pub(crate) fn move_children(&mut self, moves: &[Move], check: bool) {
        self.move_children_with(moves, check, true);
    }

    /// [`move_children`](Session::move_children); without `release`, a has-one parent given a
    /// child keeps the one it had in the session untouched (moves read from the database:
    /// the other child's row changed too, and that object is merely stale, never to be
    /// written).
    pub(crate) fn move_children_with(&mut self, moves: &[Move], check: bool, release: bool) {
        let mut removals = Removals::default();
        let mut additions = Additions::default();
        for &(si, slot, r, linked, now) in moves {
            self.stores[si].set_linked(slot, r, now);
            if let Some(index) = self.pending_children.get_mut(&(si, r)) {
                index.file(slot, now);
            }
            let meta = self.stores[si].meta();
            let target = (meta.relations[r].target)();
            let new = self.parent_slot(target, now);
            let Some(inv) = self.links[si][r].inverse else {
                continue;
            };
            let old = self.parent_slot(target, linked);
            if new.is_none() && now != RawId::Unset {
                self.unlinked.push((si, slot, r));
            }
            if old == new {
                continue;
            }
            if let Some((pi, ps)) = old {
                removals.entry((pi, ps, inv)).or_default().insert(slot);
            }
            if let Some((pi, ps)) = new {
                additions
                    .entry((pi, ps, inv))
                    .or_insert_with(|| (si, r, Vec::new()))
                    .2
                    .push(slot);
            }
        }
        let session = self.id;
        if !release {
            self.move_as_read(removals, additions);
            return;
        }
        for ((pi, ps, inv), slots) in removals {
            if let Some(c) = self.stores[pi].collection_mut(ps, inv) {
                c.remove_slots(&slots);
            }
        }
        let mut let_go = Vec::new();
        for ((pi, ps, inv), (si, r, slots)) in additions {
            let one = self.stores[pi].meta().relations[inv].kind == RelationKind::HasOne;
            let Some(c) = self.stores[pi].collection_mut(ps, inv) else {
                continue;
            };
            if one {
                // A has-one parent given another child lets go of the one it had.
                let kept = slots.last().copied();
                let_go.extend(
                    c.slots()
                        .unwrap_or_default()
                        .into_iter()
                        .chain(slots.iter().copied())
                        .filter(|&old| Some(old) != kept)
                        .map(|old| (si, old, r, (pi, ps))),
                );
            }
            if !check {
                for slot in slots {
                    c.push_slot(session, slot);
                }
                continue;
            }
            let existing: HashSet<u32> = c.slots().unwrap_or_default().into_iter().collect();
            for slot in slots {
                if !existing.contains(&slot) {
                    c.push_slot(session, slot);
                }
            }
        }
        self.let_go(&let_go);
    }

    /// The moves of rows as read from the database: collections and their journaled copies
    /// edited alike, and a has-one parent keeps the one child the database gives it, the one
    /// it held left as it is (merely stale: its row changed too, and it is never written).
    fn move_as_read(&mut self, removals: Removals, additions: Additions) {
        let session = self.id;
        let mut parents: HashMap<ParentRel, (HashSet<u32>, Vec<u32>)> = HashMap::default();
        for (key, slots) in removals {
            parents.entry(key).or_default().0 = slots;
        }
        for (key, (_, _, slots)) in additions {
            parents.entry(key).or_default().1 = slots;
        }
        for ((pi, ps, inv), (remove, add)) in parents {
            self.stores[pi].move_as_read(ps, inv, &remove, &add, session);
        }
    }

    /// Children (store, slot, relation, parent) a has-one parent let go of: their key becomes
    /// unset, if it still names that parent.
    fn let_go(&mut self, children: &[(usize, u32, usize, (usize, u32))]) {
        let mut moves = Vec::new();
        for &(si, slot, r, parent) in children {
            let target = (self.stores[si].meta().relations[r].target)();
            let key = self.stores[si].foreign_key(slot, r);
            if self.parent_slot(target, key) == Some(parent) {
                self.stores[si].set_foreign_key(slot, r, RawId::Unset);
                moves.push((si, slot, r, RawId::Unset, RawId::Unset));
            }
        }
        for &(si, slot, r, _, _) in &moves {
            self.stores[si].set_linked(slot, r, RawId::Unset);
            if let Some(index) = self.pending_children.get_mut(&(si, r)) {
                index.file(slot, RawId::Unset);
            }
        }
    }

    /// Links again the children whose parent could not be found when they were linked, now
    /// that the flush has given every parent its key (after it succeeded).
    pub(crate) fn link_unlinked(&mut self) {
        let unlinked = std::mem::take(&mut self.unlinked);
        let moves: Vec<Move> = unlinked
            .into_iter()
            .filter(|&(si, slot, r)| {
                let store = &self.stores[si];
                store.state(slot) != State::Discarded
                    && store.linked_fk(slot, r) == store.foreign_key(slot, r)
            })
            .map(|(si, slot, r)| {
                (
                    si,
                    slot,
                    r,
                    RawId::Unset,
                    self.stores[si].foreign_key(slot, r),
                )
            })
            .collect();
        self.move_children(&moves, true);
        self.unlinked.clear();
    }

    /// After a flush changed the keys of these parents (store, slot): children in their loaded
    /// collections whose key now names another parent (a key one parent gave up and another
    /// took) move to that parent's collection.
    pub(crate) fn relink_children_of(&mut self, parents: &[(usize, u32)]) {
        let session = self.id;
        for &(pi, ps) in parents {
            let meta = self.stores[pi].meta();
            for (rel, r) in meta.relations.iter().enumerate() {
                // A many-to-many's objects hold no key naming this one: its links follow a
                // changed key in the table (`ON UPDATE CASCADE`), the collection stays.
                if !r.kind.holds_children() || r.kind.is_many_to_many() {
                    continue;
                }
                let link = self.links[pi][rel];
                let (Some(inv), Some(ci)) = (link.inverse, link.target) else {
                    continue;
                };
                let Some(children) = self.stores[pi].collection(ps, rel).and_then(|c| c.slots())
                else {
                    continue;
                };
                let mut leaving: HashSet<u32> = HashSet::default();
                let mut arriving: HashMap<(usize, u32), Vec<u32>> = HashMap::default();
                for child in children {
                    let now = self.parent_slot(meta, self.stores[ci].foreign_key(child, inv));
                    if now != Some((pi, ps)) {
                        leaving.insert(child);
                        if let Some(p) = now {
                            arriving.entry(p).or_default().push(child);
                        }
                    }
                }
                if leaving.is_empty() {
                    continue;
                }
                if let Some(c) = self.stores[pi].collection_mut(ps, rel) {
                    c.remove_slots(&leaving);
                }
                for ((npi, nps), slots) in arriving {
                    if let Some(c) = self.stores[npi].collection_mut(nps, rel) {
                        let existing: HashSet<u32> =
                            c.slots().unwrap_or_default().into_iter().collect();
                        for slot in slots {
                            if !existing.contains(&slot) {
                                c.push_slot(session, slot);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The moves that bring these slots of store `si` under the parents their keys name.
    pub(crate) fn moves_of(&self, si: usize, slots: &[u32]) -> Vec<Move> {
        let store = &self.stores[si];
        let meta = store.meta();
        let mut out = Vec::new();
        for (r, rel) in meta.relations.iter().enumerate() {
            if rel.kind.holds_children() || self.links[si][r].inverse.is_none() {
                continue;
            }
            for &slot in slots {
                let linked = store.linked_fk(slot, r);
                let now = store.foreign_key(slot, r);
                if linked != now {
                    out.push((si, slot, r, linked, now));
                }
            }
        }
        out
    }

    /// Brings the children of store `si` whose keys were edited directly (taken with
    /// `get_mut`) since they were last settled under the parents their keys name.
    pub(crate) fn settle(&mut self, si: usize) {
        let touched = self.stores[si].take_touched();
        if touched.is_empty() {
            return;
        }
        let moves = self.moves_of(si, &touched);
        self.move_children(&moves, false);
    }

    /// The new or changed children of relation `rel` of store `ci` whose key names the parent
    /// `parent` (its stored key, or its pending id), in slot order. The index behind it is
    /// built on first use after a flush (from the store's new and changed objects) and kept up
    /// to date until the next one.
    pub(crate) fn pending_children(&mut self, ci: usize, rel: usize, parent: &[RawId]) -> Vec<u32> {
        if !self.has_pending_children(ci, rel) {
            return Vec::new();
        }
        let index = &self.pending_children[&(ci, rel)];
        let mut out: Vec<u32> = parent
            .iter()
            .filter_map(|id| index.by_parent.get(id))
            .flatten()
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether store `ci` holds new or changed children with a key in relation `rel` (the
    /// index of [`pending_children`](Session::pending_children), built if needed, is not
    /// empty).
    pub(crate) fn has_pending_children(&mut self, ci: usize, rel: usize) -> bool {
        if !self.pending_children.contains_key(&(ci, rel)) {
            let store = &self.stores[ci];
            let mut index = PendingChildren::default();
            for &slot in store.new_slots().iter().chain(store.marked_slots()) {
                if store.state(slot) != State::Discarded {
                    index.file(slot, store.foreign_key(slot, rel));
                }
            }
            self.pending_children.insert((ci, rel), index);
        }
        !self.pending_children[&(ci, rel)].parent_of.is_empty()
    }

    /// Files a new child in the pending index of relation `rel`, where that index is built.
    pub(crate) fn file_new_child(&mut self, si: usize, slot: u32, rel: usize, parent: RawId) {
        if self.pending_children.is_empty() {
            return;
        }
        if let Some(index) = self.pending_children.get_mut(&(si, rel)) {
            index.file(slot, parent);
        }
    }

    /// Puts a new child into the loaded collection of the parent its key `rel` points at (a
    /// new object is in no collection yet, so there is nothing to look for).
    pub(crate) fn link_new(&mut self, si: usize, slot: u32, rel: usize, fk: RawId) {
        self.file_new_child(si, slot, rel, fk);
        let meta = self.stores[si].meta();
        let Some(inv) = self.links[si][rel].inverse else {
            return;
        };
        match self.parent_slot((meta.relations[rel].target)(), fk) {
            Some((pi, ps)) => {
                let session = self.id;
                let one = self.stores[pi].meta().relations[inv].kind == RelationKind::HasOne;
                let mut old = Vec::new();
                if let Some(c) = self.stores[pi].collection_mut(ps, inv) {
                    if one {
                        old = c.slots().unwrap_or_default();
                    }
                    c.push_slot(session, slot);
                }
                // A has-one parent given a new child lets go of the one it had.
                let old: Vec<_> = old.into_iter().map(|o| (si, o, rel, (pi, ps))).collect();
                self.let_go(&old);
            }
            None if fk != RawId::Unset => self.unlinked.push((si, slot, rel)),
            None => {}
        }
    }
}
