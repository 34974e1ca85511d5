//! `#[belongs_to]`: the child's side, a foreign key. Setting it moves the child between the
//! parents' loaded collections at once.

use super::{BelongsTo, Parent, Relationship};
use crate::error::{Error, Result};
use crate::id::{Handle, Id, RawId};
use crate::model::{Model, RelationKind};
use crate::session::Session;

impl Session {
    /// Points foreign key `rel` of a child at a new parent, moving it between the parents'
    /// loaded collections. Unsetting a required key is refused unless `detach` (a child taken
    /// out of a collection, which may get another parent before the flush).
    pub(super) fn set_parent<C: Model>(
        &mut self,
        child: Handle<C>,
        rel: usize,
        id: RawId,
        detach: bool,
    ) -> Result<()> {
        let meta = C::META;
        let r = &meta.relations[rel];
        let RelationKind::BelongsTo { nullable, .. } = r.kind else {
            unreachable!("descriptor of a belongs_to")
        };
        let id = self.normalize(r.target, id);
        if id == RawId::Unset && !nullable && !detach {
            return Err(Error::NotNullable {
                model: meta.name,
                field: r.field,
            });
        }
        self.check_pending_parent(meta, rel, id)?;
        let si = self.store_index_or_create(meta);
        self.settle(si);
        if self.stores[si].foreign_key(child.slot, rel) != id {
            self.stores[si].set_foreign_key(child.slot, rel, id);
        }
        // The child leaves the collection of the parent it is linked under (after the settle
        // above, the one its key named) for the new parent's.
        let linked = self.stores[si].linked_fk(child.slot, rel);
        self.move_children(&[(si, child.slot, rel, linked, id)], false);
        Ok(())
    }
}

impl<C: Model, P: Model> Relationship<C> for BelongsTo<C, P> {
    type Loaded = Option<Handle<P>>;
    type Value = Parent<P>;

    fn load(self, db: &mut Session, h: Handle<C>) -> Result<Option<Handle<P>>> {
        let id = db[h].foreign_key(self.rel);
        match id {
            RawId::Unset => Ok(None),
            RawId::Pending { .. } => Ok(db.handle_of(Id::<P>::from_raw(id))),
            RawId::Stored(v) => db.get_by_key::<P>(crate::value::ValueRef::I64(v)),
        }
    }

    fn set(self, db: &mut Session, h: Handle<C>, value: Parent<P>) -> Result<()> {
        db.set_parent(h, self.rel, value.0, false)
    }
}
