//! Reading a query's rows a page at a time.

use super::Spec;
use crate::error::{Error, Result};
use crate::id::Handle;
use crate::model::Model;
use crate::session::Session;
use crate::sql::{Arg, Expr, Op};
use std::collections::VecDeque;
use std::marker::PhantomData;

/// The rows of a query, read a page at a time: at most one page of results is held besides
/// the objects themselves. Made by [`Query::cursor`](super::Query::cursor).
///
/// Each row still becomes an object of the session, which keeps it (as every object it
/// loaded) until the session ends: memory grows with the rows read. To read a table of any
/// size without objects, use [`Query::select_each`](super::Query::select_each).
///
/// Pages in key order (no `order_by`) continue after the last key read, so rows that
/// other sessions insert or delete meanwhile neither repeat nor shift the rest; pages in
/// another order are read by `OFFSET` (ties broken by key), which such writes can shift.
/// Pages by key flush (if autoflush is on) before each page, so new objects with later keys
/// are read too; pages by offset flush before the first page only, so that what the program
/// writes to the rows it reads does not move the pages that follow.
///
/// ```
/// # use orm_core::prelude::*;
/// # #[derive(Model, Debug)]
/// # struct Note { #[key] id: Id<Note>, text: String }
/// # fn main() -> orm_core::Result<()> {
/// # let mut db = Session::open_in_memory()?;
/// # db.create_all::<(Note,)>()?;
/// # db.add_all((0..5).map(|i| Note::new(i.to_string())));
/// let mut notes = db.query::<Note>().cursor(2);
/// let mut read = 0;
/// while let Some(note) = notes.next(&mut db)? {
///     read += db[note].text.len();
/// }
/// assert_eq!(read, 5);
/// # Ok(())
/// # }
/// ```
pub struct Cursor<T> {
    spec: Spec,
    page: usize,
    buffer: VecDeque<u32>,
    /// Rows left under the query's own limit.
    remaining: Option<u64>,
    /// Rows read so far (for pages by offset).
    read: u64,
    /// The key of the last row read (for pages by key).
    after: Option<Arg>,
    done: bool,
    session: Option<u32>,
    _m: PhantomData<fn() -> T>,
}

impl<T: Model> Cursor<T> {
    pub(super) fn new(spec: Spec, page: usize) -> Self {
        Cursor {
            remaining: spec.select.limit,
            spec,
            page: page.max(1),
            buffer: VecDeque::new(),
            read: 0,
            after: None,
            done: false,
            session: None,
            _m: PhantomData,
        }
    }

    /// The next row (reading the next page when the last one is used up), or `None` at the
    /// end. `InvalidHandle` with another session than the first one it was used with.
    pub fn next(&mut self, db: &mut Session) -> Result<Option<Handle<T>>> {
        if *self.session.get_or_insert(db.id) != db.id {
            return Err(Error::InvalidHandle {
                model: T::META.name,
            });
        }
        if self.buffer.is_empty() && !self.done {
            self.fetch(db)?;
        }
        Ok(self.buffer.pop_front().map(|s| Handle::new(db.id, s)))
    }

    /// Reads the next page.
    fn fetch(&mut self, db: &mut Session) -> Result<()> {
        let by_key = self.spec.select.order_by.is_empty();
        let mut spec = self.spec.clone();
        let want = self
            .remaining
            .map_or(self.page as u64, |r| r.min(self.page as u64));
        spec.select.limit = Some(want);
        let skip = self.spec.select.offset.unwrap_or(0);
        if by_key {
            spec.select.offset = (self.read == 0 && skip > 0).then_some(skip);
            if let Some(after) = &self.after {
                spec.filters.push(Expr::Compare {
                    column: T::META.key,
                    op: Op::Gt,
                    arg: after.clone(),
                });
            }
        } else {
            spec.select.offset = Some(skip + self.read);
        }
        // Pages by offset are flushed before the first page only: the session's own writes
        // (to rows already read, say) must not shift the pages that follow.
        if !by_key && self.read > 0 {
            spec.autoflush = Some(false);
        }
        let slots = if want == 0 { Vec::new() } else { spec.run(db)? };
        let n = slots.len() as u64;
        self.read += n;
        self.remaining = self.remaining.map(|r| r - n.min(r));
        self.done = n < want || self.remaining == Some(0);
        if let Some(&last) = slots.last() {
            // The key as the row has it (an edit of a natural key not flushed yet is not).
            let (si, key) = (db.store_index_or_create(T::META), T::META.key);
            let store = &db.stores[si];
            let value = match store.snapshot_value(last, key) {
                Some(v) => v.clone(),
                None => store.column(last, key).into_owned(),
            };
            self.after = Some(Arg::Value(value));
        }
        self.buffer.extend(slots);
        Ok(())
    }
}
