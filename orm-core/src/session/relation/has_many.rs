//! `#[has_many]`: the parent's side, a collection of the children whose foreign key names it.
//! Appending, removing and setting children changes their keys and both sides at once;
//! loading reads the database once and keeps the session's view.

use super::{Children, HasManyRel, Relationship};
use crate::error::Result;
use crate::id::{Handle, RawId};
use crate::model::{Model, RelationKind};
use crate::session::store::State;
use crate::session::Session;

impl Session {
    /// Adds a child to a parent's collection (setting the child's key to the parent).
    pub fn append<P: Model, C: Model>(
        &mut self,
        parent: Handle<P>,
        rel: HasManyRel<P, C>,
        child: Handle<C>,
    ) -> Result<()> {
        self.check_handle(parent)?;
        self.check_handle(child)?;
        if let Some(si) = many_to_many::<P, C>(self, rel.rel) {
            return self.link(si, rel.rel, parent.slot, child.slot, true);
        }
        let inv = inverse_of::<P, C>(self, rel.rel)?;
        let id = self.id(parent).raw();
        self.set_parent(child, inv, id, false)
    }

    /// Takes a child out of a parent's collection: its key becomes unset. At the flush that
    /// is `NULL` for a nullable key; a child with a required key must have another parent by
    /// then (or goes, under `delete_orphans`), else the flush fails before any SQL with
    /// [`Error::RequiredRelationUnset`](crate::Error::RequiredRelationUnset).
    pub fn remove<P: Model, C: Model>(
        &mut self,
        parent: Handle<P>,
        rel: HasManyRel<P, C>,
        child: Handle<C>,
    ) -> Result<()> {
        self.check_handle(parent)?;
        self.check_handle(child)?;
        if let Some(si) = many_to_many::<P, C>(self, rel.rel) {
            return self.link(si, rel.rel, parent.slot, child.slot, false);
        }
        let inv = inverse_of::<P, C>(self, rel.rel)?;
        let si = self.store_index_or_create(C::META);
        let pi = self.store_index_or_create(P::META);
        self.settle(si);
        let current = self.stores[si].foreign_key(child.slot, inv);
        if self.parent_slot(P::META, current) != Some((pi, parent.slot)) {
            return Ok(()); // not this parent's child
        }
        self.set_parent(child, inv, RawId::Unset, true)
    }

    /// Reads a parent's children: rows from the database (kept as they are in the session if
    /// already loaded) and objects in the session that now point at the parent. Costs what it
    /// returns: the session's new and changed children are found through an index.
    pub(super) fn load_children<P: Model, C: Model>(
        &mut self,
        parent: Handle<P>,
        rel: usize,
    ) -> Result<Vec<Handle<C>>> {
        let inv = inverse_of::<P, C>(self, rel)?;
        let pi = self.store_index_or_create(P::META);
        let ci = self.store_index_or_create(C::META);
        // Keys edited directly first: every child is then linked under the parent its key
        // names, so rows the database still names as this parent's but whose key the session
        // changed belong to their new parent.
        self.settle(ci);
        if let Some(slots) = self[parent].collection(rel).slots() {
            return Ok(slots.into_iter().map(|s| Handle::new(self.id, s)).collect());
        }
        let key = self.stores[pi].key_id(parent.slot);
        let mut found: Vec<u32> = Vec::new();
        if let RawId::Stored(k) = key {
            let RelationKind::BelongsTo { column, .. } = C::META.relations[inv].kind else {
                unreachable!("inverse of a has_many is a belongs_to")
            };
            let sql = self.conn.by_column_sql(C::META, column);
            found = self
                .load_rows::<C>(&sql, &[crate::value::ValueRef::I64(k)])?
                .into_iter()
                .map(|h| h.slot)
                .collect();
        }
        self.fill_children(pi, parent.slot, rel, inv, ci, &found, false);
        let children = self.stores[pi].collection(parent.slot, rel);
        let slots = children.and_then(|c| c.slots()).unwrap_or_default();
        Ok(slots.into_iter().map(|s| Handle::new(self.id, s)).collect())
    }

    /// Fills the collection `rel` of parent `slot` (store `pi`) with the rows `found` for it
    /// (store `ci`, key `inv`) as the session sees them: children the session moved away are
    /// left out, and new or changed children that now point at the parent are added (`found`
    /// is trusted to point here when `checked`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fill_children(
        &mut self,
        pi: usize,
        slot: u32,
        rel: usize,
        inv: usize,
        ci: usize,
        found: &[u32],
        checked: bool,
    ) {
        let pmeta = self.stores[pi].meta();
        let points_here = |db: &Session, child: u32| {
            db.stores[ci].state(child) != State::Discarded
                && db.parent_slot(pmeta, db.stores[ci].foreign_key(child, inv)) == Some((pi, slot))
        };
        let session = self.id;
        if checked && !self.has_pending_children(ci, inv) {
            if let Some(c) = self.stores[pi].collection_mut(slot, rel) {
                c.set_slots(session, found);
            }
            return;
        }
        let mut children: Vec<u32> = found
            .iter()
            .copied()
            .filter(|&s| checked || points_here(self, s))
            .collect();
        let mut seen: rustc_hash::FxHashSet<u32> = children.iter().copied().collect();
        let ids = [
            self.stores[pi].key_id(slot),
            RawId::Pending {
                session: self.id,
                slot,
            },
        ];
        for child in self.pending_children(ci, inv, &ids) {
            if !seen.contains(&child) && points_here(self, child) {
                seen.insert(child);
                children.push(child);
            }
        }
        if let Some(c) = self.stores[pi].collection_mut(slot, rel) {
            c.set_slots(session, &children);
        }
    }
}

/// The store of `P` if `has_many` `rel` of `P` is a many-to-many (the store of `C` made too).
fn many_to_many<P: Model, C: Model>(db: &mut Session, rel: usize) -> Option<usize> {
    if !P::META.relations[rel].kind.is_many_to_many() {
        return None;
    }
    db.store_index_or_create(C::META);
    Some(db.store_index_or_create(P::META))
}

/// The `belongs_to` of `C` that is the other side of `has_many` `rel` of `P`.
fn inverse_of<P: Model, C: Model>(db: &mut Session, rel: usize) -> Result<usize> {
    let pi = db.store_index_or_create(P::META);
    db.child_inverse(pi, rel, C::META)
}

impl<P: Model, C: Model> Relationship<P> for HasManyRel<P, C> {
    type Loaded = Vec<Handle<C>>;
    type Value = Children<C>;

    fn load(self, db: &mut Session, h: Handle<P>) -> Result<Vec<Handle<C>>> {
        if let Some(si) = many_to_many::<P, C>(db, self.rel) {
            let slots = db.load_linked(si, h.slot, self.rel)?;
            return Ok(slots.into_iter().map(|s| Handle::new(db.id, s)).collect());
        }
        db.load_children::<P, C>(h, self.rel)
    }

    fn set(self, db: &mut Session, h: Handle<P>, value: Children<C>) -> Result<()> {
        let mut new: Vec<Handle<C>> = Vec::with_capacity(value.0.len());
        let mut seen =
            rustc_hash::FxHashSet::with_capacity_and_hasher(value.0.len(), Default::default());
        for c in value.0 {
            db.check_handle(c)?;
            if seen.insert(c) {
                new.push(c);
            }
        }
        if let Some(si) = many_to_many::<P, C>(db, self.rel) {
            return db.set_linked(si, h.slot, self.rel, &new);
        }
        let inv = inverse_of::<P, C>(db, self.rel)?;
        let current = db.load_children::<P, C>(h, self.rel)?;
        let removed: Vec<Handle<C>> = current.into_iter().filter(|c| !seen.contains(c)).collect();
        // The parent is a valid handle of this session, so its id is a valid parent for every
        // child: set the keys directly and move the children in one pass per old collection.
        // Every child is linked here, also one whose key already named this parent.
        let parent_id = db.id(h).raw();
        let ci = db.store_index_or_create(C::META);
        let mut moves = Vec::with_capacity(removed.len() + new.len());
        for c in removed {
            let linked = db.stores[ci].linked_fk(c.slot, inv);
            db.stores[ci].set_foreign_key(c.slot, inv, RawId::Unset);
            moves.push((ci, c.slot, inv, linked, RawId::Unset));
        }
        for &c in &new {
            let linked = db.stores[ci].linked_fk(c.slot, inv);
            if db.stores[ci].foreign_key(c.slot, inv) != parent_id {
                db.stores[ci].set_foreign_key(c.slot, inv, parent_id);
            }
            moves.push((ci, c.slot, inv, linked, parent_id));
        }
        db.move_children(&moves, false);
        let pi = db.store_index_or_create(P::META);
        let session = db.id;
        let slots: Vec<u32> = new.iter().map(|c| c.slot).collect();
        if let Some(col) = db.stores[pi].collection_mut(h.slot, self.rel) {
            col.set_slots(session, &slots);
        }
        Ok(())
    }
}
