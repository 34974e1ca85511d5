//! Taking one object out of the session ([`Session::expunge`]) and reading one again from
//! the database ([`Session::refresh`]).

use super::store::State;
use super::Session;
use crate::error::{Error, Result};
use crate::id::{Handle, RawId};
use crate::model::{Model, RelationKind, RowReader};
use crate::value::Value;

impl Session {
    /// Detaches an object from the session: its handle stops working
    /// ([`contains`](Session::contains) is false), its unflushed edits and a pending
    /// [`delete`](Session::delete) are dropped, and it leaves the loaded collections of its
    /// parents and the many-to-many collections that hold it (its links not yet flushed are
    /// dropped). Its row stays in the database; a later `get` or query reads it into a new
    /// object. A new object is simply never inserted (children still pointing at it make
    /// the flush fail with [`Error::DiscardedParent`]). `rollback` does not bring it back.
    ///
    /// For reads of many rows (a [`Cursor`](crate::Cursor)), expunging each object once it
    /// is used keeps the session's memory bounded.
    ///
    /// ```
    /// # use orm_core::prelude::*;
    /// # #[derive(Model, Debug)]
    /// # struct Note { #[key] id: Id<Note>, text: String }
    /// # fn main() -> orm_core::Result<()> {
    /// let mut db = Session::open_in_memory()?;
    /// db.create_all::<(Note,)>()?;
    /// let note = db.add(Note::new("kept"));
    /// db.commit()?;
    /// db[note].text = "not saved".into();
    /// db.expunge(note)?;
    /// assert!(!db.contains(note));
    /// db.commit()?;
    /// let again = db.query::<Note>().one()?;
    /// assert_eq!(db[again].text, "kept");
    /// # Ok(())
    /// # }
    /// ```
    pub fn expunge<T: Model>(&mut self, h: Handle<T>) -> Result<()> {
        self.check_handle(h)?;
        let si = self.store_index_or_create(T::META);
        self.settle(si);
        // Out of its parents' loaded collections (and the index of pending children).
        let moves: Vec<_> = belongs_to::<T>()
            .map(|r| {
                let linked = self.stores[si].linked_fk(h.slot, r);
                (si, h.slot, r, linked, RawId::Unset)
            })
            .collect();
        self.move_children(&moves, false);
        self.unlinked
            .retain(|&(s, slot, _)| (s, slot) != (si, h.slot));
        // Out of the other sides' many-to-many collections, its pending links dropped.
        self.forget_links(&[(si, h.slot)]);
        self.typed_store_mut::<T>(si).detach(h.slot);
        Ok(())
    }

    /// Reads an object again from its row: every column takes the database's value, and
    /// **its unflushed edits are dropped** (the object is no longer changed). A foreign key
    /// that another program changed moves the object between its parents' loaded
    /// collections; its own loaded collections are kept (their children are objects of
    /// their own). A pending [`delete`](Session::delete) stays.
    ///
    /// `PendingId` for a new object (it has no row yet); `RowGone` if its row was deleted.
    /// What is read is the database's: a `rollback` does not undo it (unless the session's
    /// own flush wrote it), nor where the object now belongs. A has-one parent that the row
    /// now names keeps the child it held in the session as it is (that object is stale, and
    /// never written for it). A row read again after its object was expunged in a loaded
    /// collection does not join that collection until it is loaded again.
    pub fn refresh<T: Model>(&mut self, h: Handle<T>) -> Result<()> {
        self.check_handle(h)?;
        let si = self.store_index_or_create(T::META);
        if self.stores[si].state(h.slot) != State::Persistent {
            return Err(Error::PendingId {
                model: T::META.name,
            });
        }
        self.settle(si);
        let key = stored_key::<T>(self, si, h.slot);
        let fresh = self.read_row::<T>(&key)?.ok_or_else(|| Error::RowGone {
            model: T::META.name,
            key: key.to_string(),
        })?;
        let moves: Vec<_> = belongs_to::<T>()
            .map(|r| {
                let linked = self.stores[si].linked_fk(h.slot, r);
                (si, h.slot, r, linked, fresh.foreign_key(r))
            })
            .collect();
        let session = self.id;
        self.typed_store_mut::<T>(si)
            .replace_with_row(h.slot, fresh, session);
        self.move_children_with(&moves, true, false);
        Ok(())
    }

    /// The row of `T` with this key, decoded into a new object (not into the session).
    fn read_row<T: Model>(&mut self, key: &Value) -> Result<Option<T>> {
        let meta = T::META;
        let sql = self.conn.by_column_sql(meta, meta.key);
        let mut found = None;
        self.conn.query(&sql, &[key.as_ref()], &mut |row| {
            found = Some(T::from_row(&mut RowReader::new(row, meta))?);
            Ok(())
        })?;
        Ok(found)
    }
}

/// The key the database knows the object by (before an unflushed edit of it).
fn stored_key<T: Model>(db: &Session, si: usize, slot: u32) -> Value {
    let store = &db.stores[si];
    match store.snapshot_value(slot, T::META.key) {
        Some(v) => v.clone(),
        None => store.column(slot, T::META.key).into_owned(),
    }
}

/// The `belongs_to` relations of `T`.
fn belongs_to<T: Model>() -> impl Iterator<Item = usize> {
    (0..T::META.relations.len())
        .filter(|&r| matches!(T::META.relations[r].kind, RelationKind::BelongsTo { .. }))
}
