//! Queries on the session: typed filters ([`filter`]), order, limit and offset, counting,
//! eager loading of relationships ([`Eager`]), reading in pages ([`Cursor`]), plain column
//! tuples ([`Selection`]) and raw SQL.
//!
//! ```
//! # use orm_core::prelude::*;
//! # #[derive(Model, Debug)]
//! # struct Post { #[key] id: Id<Post>, title: String, stars: i32 }
//! # fn main() -> orm_core::Result<()> {
//! let mut db = Session::open_in_memory()?;
//! db.create_all::<(Post,)>()?;
//! db.add(Post::new("Rust", 12));
//! db.add(Post::new("Go", 3));
//! // The query flushes the new posts first.
//! let top = db
//!     .query::<Post>()
//!     .filter(Post::stars.gt(5))
//!     .order_by(Post::title.desc())
//!     .limit(10)
//!     .all()?;
//! assert_eq!(top.len(), 1);
//! assert_eq!(db[top[0]].title, "Rust");
//! assert_eq!(db.query::<Post>().count()?, 2);
//! # Ok(())
//! # }
//! ```

mod cursor;
mod eager;
pub mod filter;
mod raw;
mod selection;

pub use cursor::Cursor;
pub use eager::Eager;
pub use filter::{Column, Filter, Operand, OrderBy, Text};
pub use raw::Param;
pub use selection::{ColumnValue, Selection};

use crate::error::{Error, Result};
use crate::id::{Handle, RawId};
use crate::model::Model;
use crate::session::store::State;
use crate::session::Session;
use crate::sql::{Arg, Columns, Expr, Select};
use crate::value::{ColumnType, SqlType};
use std::marker::PhantomData;

/// A query of `T` rows, built on a session with [`Session::query`] and run by
/// [`all`](Query::all), [`first`](Query::first), [`one`](Query::one),
/// [`count`](Query::count), [`exists`](Query::exists), [`cursor`](Query::cursor) or
/// [`select`](Query::select).
///
/// Rows come back as handles through the session's identity map: a row the session already
/// holds keeps its object, with its unflushed edits. Before it reads, a query flushes the
/// session's pending changes (unless [`autoflush`](Query::autoflush) is off), so that it sees
/// them and a pending id in a filter names its row. Without [`order_by`](Query::order_by),
/// rows come in key order.
#[must_use = "a query does nothing until it is run (`all`, `first`, `one`, `count`...)"]
pub struct Query<'s, T: Model> {
    db: &'s mut Session,
    spec: Spec,
    _m: PhantomData<fn() -> T>,
}

/// What a query asks for, apart from the session it runs on.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) select: Select,
    pub(crate) filters: Vec<Expr>,
    pub(crate) autoflush: Option<bool>,
    pub(crate) eager: Vec<eager::Node>,
    /// Rows already in the session overwrite their objects.
    pub(crate) populate: bool,
}

impl Session {
    /// A query of `T` rows: see [`Query`].
    pub fn query<T: Model>(&mut self) -> Query<'_, T> {
        Query {
            db: self,
            spec: Spec {
                select: Select::new(T::META),
                filters: Vec::new(),
                autoflush: None,
                eager: Vec::new(),
                populate: false,
            },
            _m: PhantomData,
        }
    }

    /// Whether queries flush pending changes before they read (on by default; a query can
    /// say otherwise with [`Query::autoflush`]).
    pub fn set_autoflush(&mut self, on: bool) {
        self.autoflush = on;
    }
}

impl<'s, T: Model> Query<'s, T> {
    /// Keeps the rows for which `filter` holds (with the filters given before: all must hold).
    pub fn filter(mut self, filter: Filter<T>) -> Self {
        self.spec.filters.push(filter.expr);
        self
    }

    /// Orders by a column (`Post::title`, ascending) or `Post::title.desc()`; each call adds
    /// a key after those given before.
    pub fn order_by(mut self, order: impl Into<OrderBy<T>>) -> Self {
        self.spec.select.order_by.push(order.into().order);
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.spec.select.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.spec.select.offset = Some(n);
        self
    }

    /// Locks the rows read until the session's transaction ends (which the query starts if
    /// none is open): `SELECT .. FOR UPDATE` on PostgreSQL, where another session that
    /// locks or writes them waits. On SQLite nothing is added: the session's write
    /// transaction already keeps every other writer out.
    pub fn for_update(mut self) -> Self {
        self.spec.select.for_update = true;
        self
    }

    /// Whether this query flushes pending changes first (default: the session's
    /// [`set_autoflush`](Session::set_autoflush), on unless turned off). Without it, new
    /// objects are not found, and a filter on a pending id fails with `PendingId`.
    pub fn autoflush(mut self, on: bool) -> Self {
        self.spec.autoflush = Some(on);
        self
    }

    /// Rows the session already holds take the database's values (SQLAlchemy's
    /// `populate_existing`), also rows its eager loads read (collections already loaded are
    /// not read again): their unflushed edits are dropped (with autoflush on, the query writes
    /// them first), and an object whose key to a parent changed moves between the parents'
    /// loaded collections.
    pub fn populate_existing(mut self) -> Self {
        self.spec.populate = true;
        self
    }

    /// Loads a relationship of the rows found, with one more `SELECT` per relationship and
    /// level (an `IN` over the keys), nested to any depth:
    /// `.with(Author::posts.with(Post::comments))`. Afterwards
    /// [`Session::load`] returns those relationships without reading the database.
    pub fn with<U>(mut self, eager: impl Into<Eager<T, U>>) -> Self {
        self.spec.eager.push(eager.into().node);
        self
    }

    /// Every row found.
    pub fn all(self) -> Result<Vec<Handle<T>>> {
        let Query { db, spec, .. } = self;
        let slots = spec.run(db)?;
        Ok(handles(db, slots))
    }

    /// The first row found, if any.
    pub fn first(mut self) -> Result<Option<Handle<T>>> {
        self.spec.select.limit = Some(self.spec.select.limit.map_or(1, |l| l.min(1)));
        Ok(self.all()?.into_iter().next())
    }

    /// The one row found; [`Error::NotOne`] when there is none or more than one.
    pub fn one(mut self) -> Result<Handle<T>> {
        self.spec.select.limit = Some(self.spec.select.limit.map_or(2, |l| l.min(2)));
        let found = self.all()?;
        match found[..] {
            [h] => Ok(h),
            _ => Err(Error::NotOne {
                model: T::META.name,
                found: found.len(),
            }),
        }
    }

    /// How many rows the query finds (with its limit and offset; eager loads do not apply).
    pub fn count(mut self) -> Result<u64> {
        self.spec.select.columns = Columns::Count;
        let Query { db, spec, .. } = self;
        let mut n = 0;
        spec.query(db, &mut |row| {
            let count = row
                .value(0, SqlType::I64)
                .and_then(|v| i64::from_sql(v).map_err(|e| e.0));
            n = count.map_err(|message| Error::Decode {
                model: T::META.name,
                field: "count(*)",
                message,
            })?;
            Ok(())
        })?;
        Ok(n.max(0) as u64)
    }

    /// Whether the query finds a row.
    pub fn exists(mut self) -> Result<bool> {
        self.spec.select.columns = Columns::Exists;
        let Query { db, spec, .. } = self;
        let mut found = false;
        spec.query(db, &mut |_| {
            found = true;
            Ok(())
        })?;
        Ok(found)
    }

    /// Reads the rows a page at a time (`page` rows a `SELECT`), so that no more than a page
    /// of results is held at once; see [`Cursor`].
    pub fn cursor(self, page: usize) -> Cursor<T> {
        Cursor::new(self.spec, page)
    }

    /// Plain values of some columns of each row, without objects or the identity map (eager
    /// loads given with [`with`](Query::with) do not apply: there are no objects):
    /// `db.query::<Post>().select((Post::id, Post::title))?` gives `(Id<Post>, String)`s.
    pub fn select<S: Selection<T>>(self, columns: S) -> Result<Vec<S::Row>> {
        let mut out = Vec::new();
        self.select_each(columns, |row| {
            out.push(row);
            Ok(())
        })?;
        Ok(out)
    }

    /// Like [`select`](Query::select), calling `each` with each row as it is read, so that
    /// nothing is held: for exports of any size.
    pub fn select_each<S: Selection<T>>(
        mut self,
        columns: S,
        mut each: impl FnMut(S::Row) -> Result<()>,
    ) -> Result<()> {
        self.spec.select.columns = Columns::Only(columns.columns());
        let Query { db, spec, .. } = self;
        spec.query(db, &mut |row| each(columns.decode(row, T::META, &mut 0)?))
    }
}

fn handles<T>(db: &Session, slots: Vec<u32>) -> Vec<Handle<T>> {
    slots.into_iter().map(|s| Handle::new(db.id, s)).collect()
}

impl Spec {
    /// Flushes if asked to, and builds the SELECT with every id resolved.
    fn prepare(&self, db: &mut Session) -> Result<Select> {
        if self.autoflush.unwrap_or(db.autoflush) {
            db.flush()?;
        }
        let mut select = self.select.clone();
        let mut filter = match &self.filters[..] {
            [] => None,
            [one] => Some(one.clone()),
            all => Some(Expr::And(all.to_vec())),
        };
        if let Some(f) = &mut filter {
            resolve_ids(db, f)?;
        }
        select.filter = filter;
        // The key breaks ties, so that the rows of equal values come in one order every time
        // (pages by limit and offset neither repeat nor skip them).
        let key = select.meta.key;
        let rows = matches!(select.columns, Columns::All | Columns::Only(_));
        if rows && !select.order_by.iter().any(|o| o.column == key) {
            select.order_by.push(crate::sql::Order {
                column: key,
                descending: false,
            });
        }
        if select.for_update {
            db.conn.begin()?;
        }
        Ok(select)
    }

    /// Runs the query, calling `each` for every row (streamed: see
    /// [`Connection::query_streaming`](crate::Connection::query_streaming)).
    fn query(
        &self,
        db: &mut Session,
        each: &mut dyn FnMut(&dyn crate::model::RawRow) -> Result<()>,
    ) -> Result<()> {
        let select = self.prepare(db)?;
        let sql = select.render(db.conn.dialect());
        db.conn.query_streaming(&sql.text, &sql.param_refs(), each)
    }

    /// Runs the query for objects, then its eager loads: the slots of the rows found.
    pub(crate) fn run(&self, db: &mut Session) -> Result<Vec<u32>> {
        // After the autoflush, whose reads (of children to cascade to) must not overwrite.
        let select = self.prepare(db)?;
        db.populating = self.populate;
        let result = self.run_loads(db, select);
        db.populating = false;
        result
    }

    fn run_loads(&self, db: &mut Session, select: Select) -> Result<Vec<u32>> {
        let si = db.store_index_or_create(select.meta);
        let sql = select.render(db.conn.dialect());
        let slots = db.load_slots(si, &sql.text, &sql.param_refs())?;
        let whole = select.filter.is_none() && select.limit.is_none() && select.offset.is_none();
        for node in &self.eager {
            eager::load(db, si, &slots, node, whole)?;
        }
        Ok(slots)
    }
}

/// Turns every id in a filter into the key the database knows (see [`resolve_arg`]).
fn resolve_ids(db: &Session, filter: &mut Expr) -> Result<()> {
    let mut result = Ok(());
    filter.visit_args(&mut |arg| {
        if result.is_ok() {
            result = resolve_arg(db, arg);
        }
    });
    result
}

/// A pending id of an object the flush stored becomes its key; one not stored yet is
/// `PendingId`, and one of another session or of an object discarded is `InvalidHandle`.
fn resolve_arg(db: &Session, arg: &mut Arg) -> Result<()> {
    let Arg::Id(raw, meta) = arg else {
        return Ok(());
    };
    if let RawId::Pending { session, slot } = *raw {
        let si = db.store_index_of(meta).filter(|_| session == db.id);
        *raw = match si.map(|si| (si, db.stores[si].state(slot))) {
            Some((si, State::Persistent)) => db.stores[si].key_id(slot),
            Some((_, State::New)) => return Err(Error::PendingId { model: meta.name }),
            _ => return Err(Error::InvalidHandle { model: meta.name }),
        };
    }
    Ok(())
}
