//! `#[has_one]`: the parent's side of a one-to-one relationship, at most one child whose
//! foreign key names it (the column is `UNIQUE`). Giving the parent another child lets go of
//! the old one at once: its key becomes unset, and at the flush it is `NULL`, or the child
//! goes (`delete_orphans`), or, for a required key without another parent by then, the flush
//! fails with `RequiredRelationUnset`.

use super::{HasOneRel, Relationship};
use crate::error::Result;
use crate::id::{Handle, RawId};
use crate::model::Model;
use crate::session::Session;

/// The `belongs_to` of `C` that is the other side of `has_one` `rel` of `P`.
fn inverse_of<P: Model, C: Model>(db: &mut Session, rel: usize) -> Result<usize> {
    let pi = db.store_index_or_create(P::META);
    db.child_inverse(pi, rel, C::META)
}

impl<P: Model, C: Model> Relationship<P> for HasOneRel<P, C> {
    type Loaded = Option<Handle<C>>;
    type Value = Option<Handle<C>>;

    fn load(self, db: &mut Session, h: Handle<P>) -> Result<Option<Handle<C>>> {
        inverse_of::<P, C>(db, self.rel)?;
        Ok(db.load_children::<P, C>(h, self.rel)?.pop())
    }

    fn set(self, db: &mut Session, h: Handle<P>, value: Option<Handle<C>>) -> Result<()> {
        let inv = inverse_of::<P, C>(db, self.rel)?;
        if let Some(c) = value {
            db.check_handle(c)?;
        }
        // Loaded first, so that the old child is known and let go of.
        let old = db.load_children::<P, C>(h, self.rel)?;
        match value {
            Some(c) => db.set_parent(c, inv, db.id(h).raw(), false),
            None => {
                for c in old {
                    db.set_parent(c, inv, RawId::Unset, true)?;
                }
                Ok(())
            }
        }
    }
}
