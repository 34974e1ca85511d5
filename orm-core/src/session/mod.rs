//! The [`Session`]: a unit of work over one connection, holding every object it loaded or was
//! given, one per row.

mod expunge;
pub(crate) mod relation;
pub mod store;
mod upsert;

use crate::backend::{Conn, Connection, LoggedStatement, SqlKey, SqliteConnection};
use crate::error::{Error, Result};
use crate::id::{Handle, Id, RawId};
use crate::model::{KeyKind, KeyRef, KeyType, Model, ModelMeta, ModelSet, RelationKind};
use crate::value::{SqlType, ValueRef};
use rustc_hash::FxHashMap as HashMap;
use std::any::TypeId;
use std::sync::atomic::{AtomicU32, Ordering};
use store::{AnyStore, KeyValue, State, Store};

pub use relation::{BelongsTo, Children, HasManyRel, HasOneRel, Parent, Relationship};

static NEXT_SESSION: AtomicU32 = AtomicU32::new(1);

/// A unit of work: add and change objects, then `commit` saves the whole graph in one
/// transaction, parents first, with every foreign key filled in.
///
/// ```
/// use orm_core::prelude::*;
///
/// #[derive(Model, Debug)]
/// struct Author {
///     #[key]
///     id: Id<Author>,
///     name: String,
///     #[has_many(back_populates = "author")]
///     books: HasMany<Book>,
/// }
///
/// #[derive(Model, Debug)]
/// struct Book {
///     #[key]
///     id: Id<Book>,
///     title: String,
///     #[belongs_to(back_populates = "books")]
///     author: Id<Author>,
/// }
///
/// # fn main() -> orm_core::Result<()> {
/// let mut db = Session::open_in_memory()?;
/// db.create_all::<(Author, Book)>()?;
/// let ann = db.add(Author::new("Ann"));
/// let book = db.add(Book::new("Poems", ann));
/// assert_eq!(db[ann].books, [book]);
/// db.commit()?;
/// assert_eq!(db[book].author, db[ann].id);
/// assert_eq!(db[ann].id.value()?, 1);
/// # Ok(())
/// # }
/// ```
pub struct Session {
    pub(crate) id: u32,
    pub(crate) conn: Conn,
    pub(crate) stores: Vec<Box<dyn AnyStore>>,
    store_index: HashMap<TypeId, usize>,
    /// For (child store, relation): the new and changed children by parent, built when a
    /// `load` first needs it and dropped by each flush and rollback.
    pub(crate) pending_children: HashMap<(usize, usize), relation::sync::PendingChildren>,
    /// Children (store, slot, relation) whose key names a parent the session could not find
    /// when it linked them (a parent added later with that explicit key, or one whose key
    /// changes to it): linked again once the flush has given every parent its key.
    pub(crate) unlinked: Vec<(usize, u32, usize)>,
    /// For each store and relation, the other end resolved once.
    pub(crate) links: Vec<Vec<relation::Link>>,
    /// The links of many-to-many association tables that the next flush writes or removes.
    pub(crate) joins: relation::many_to_many::Joins,
    /// Whether queries flush pending changes before they read.
    pub(crate) autoflush: bool,
    /// Whether rows loaded now overwrite the objects already there (a query's
    /// `populate_existing`, while it runs).
    pub(crate) populating: bool,
}

impl Session {
    /// Connects to the database a URL names:
    /// - `postgres://user@host:port/db` (or `postgresql://`): PostgreSQL;
    /// - `sqlite://path/to/file.db`, `sqlite:file.db` or a plain path: a SQLite file;
    /// - `sqlite::memory:` or `:memory:`: a private in-memory SQLite database.
    ///
    /// ```
    /// # fn main() -> orm_core::Result<()> {
    /// let db = orm_core::Session::connect("sqlite::memory:")?;
    /// # drop(db);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(url: &str) -> Result<Session> {
        Ok(Self::with_connection(crate::backend::connect(url)?))
    }

    /// Opens a SQLite database file (created if missing), with foreign keys enforced and WAL.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Session> {
        Ok(Self::with_connection(Box::new(SqliteConnection::open(
            path.as_ref(),
        )?)))
    }

    /// Opens a private in-memory SQLite database, with foreign keys enforced.
    pub fn open_in_memory() -> Result<Session> {
        Ok(Self::with_connection(Box::new(
            SqliteConnection::open_in_memory()?,
        )))
    }

    /// A session over any [`Connection`].
    pub fn with_connection(conn: Box<dyn Connection>) -> Session {
        Session {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            conn: Conn::new(conn),
            stores: Vec::new(),
            store_index: HashMap::default(),
            pending_children: HashMap::default(),
            unlinked: Vec::new(),
            links: Vec::new(),
            joins: Default::default(),
            autoflush: true,
            populating: false,
        }
    }

    /// Ends the session and hands back its connection (to keep in a pool, or to start a
    /// fresh session on it), rolling back anything not committed.
    pub fn into_connection(mut self) -> Result<Box<dyn Connection>> {
        self.conn.rollback()?;
        let placeholder: Box<dyn Connection> = Box::new(Closed);
        Ok(std::mem::replace(&mut self.conn.inner, placeholder))
    }

    // ----- schema -------------------------------------------------------------------------

    /// Creates the tables of a set of models (`IF NOT EXISTS`), parents before children,
    /// with their indexes, then the association tables of their many-to-many relationships. References between tables in a cycle are added once both exist
    /// where the database needs that (PostgreSQL).
    pub fn create_all<S: ModelSet>(&mut self) -> Result<()> {
        let order = crate::schema::creation_order(&S::metas())?;
        let d = self.conn.dialect();
        for (i, meta) in order.iter().enumerate() {
            self.conn
                .execute_batch(&crate::sql::create_table(d, meta, &order[..i]))?;
            for index in crate::sql::create_indexes(d, meta) {
                self.conn.execute_batch(&index)?;
            }
        }
        for (i, meta) in order.iter().enumerate() {
            for fk in crate::sql::add_foreign_keys(d, meta, &order[..i]) {
                self.conn.execute_batch(&fk)?;
            }
        }
        for join in crate::schema::join_tables(&order)? {
            self.conn.execute_batch(&join.create(d))?;
            self.conn.execute_batch(&join.create_index(d))?;
        }
        // Tables that existed already are kept: say so if they do not match the models.
        self.check_tables(&order)
    }

    /// Compares the tables of a set of models with the models (columns, types, nullability,
    /// keys, foreign keys): `Error::SchemaMismatch` lists every difference.
    pub fn check_schema<S: ModelSet>(&mut self) -> Result<()> {
        let order = crate::schema::creation_order(&S::metas())?;
        self.check_tables(&order)
    }

    fn check_tables(&mut self, metas: &[&'static ModelMeta]) -> Result<()> {
        let d = self.conn.dialect();
        let mut differences = Vec::new();
        for meta in metas {
            let table = self.describe_table(meta.table)?;
            crate::schema::differences(d, meta, table.as_ref(), &mut differences);
        }
        for join in crate::schema::join_tables(metas)? {
            let table = self.describe_table(join.table)?;
            crate::schema::join_differences(&join, table.as_ref(), &mut differences);
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::SchemaMismatch { differences })
        }
    }

    /// The table as the database describes it, or `None` if it does not exist.
    fn describe_table(&mut self, table: &str) -> Result<Option<crate::schema::DbTable>> {
        let d = self.conn.dialect();
        let name = [ValueRef::Text(table)];
        let text = |row: &dyn crate::model::RawRow, i: usize| match row.value(i, SqlType::Text) {
            Ok(ValueRef::Text(t)) => t.to_owned(),
            _ => String::new(),
        };
        let flag = |row: &dyn crate::model::RawRow, i: usize| {
            matches!(
                row.value(i, SqlType::Bool),
                Ok(ValueRef::Bool(true) | ValueRef::I64(1..) | ValueRef::I32(1..))
            )
        };
        let mut out = crate::schema::DbTable::default();
        self.conn.query(d.describe_columns(), &name, &mut |row| {
            out.columns.push(crate::schema::DbColumn {
                name: text(row, 0),
                declared: text(row, 1),
                not_null: flag(row, 2),
                primary_key: flag(row, 3),
                has_default: flag(row, 4),
            });
            Ok(())
        })?;
        if out.columns.is_empty() {
            return Ok(None);
        }
        self.conn
            .query(d.describe_foreign_keys(), &name, &mut |row| {
                out.foreign_keys.push((text(row, 0), text(row, 1)));
                Ok(())
            })?;
        Ok(Some(out))
    }

    /// Drops the tables of a set of models (`IF EXISTS`), children before parents.
    pub fn drop_all<S: ModelSet>(&mut self) -> Result<()> {
        let order = crate::schema::creation_order(&S::metas())?;
        let d = self.conn.dialect();
        // In a transaction of its own (unless one is open), where references between the
        // tables are checked only at its end: tables in a cycle may hold rows.
        let own = !self.conn.in_transaction();
        if own {
            self.conn.begin()?;
        }
        let mut drop_tables = || -> Result<()> {
            if let Some(defer) = d.defer_foreign_keys(true) {
                self.conn.execute_batch(defer)?;
            }
            for (i, meta) in order.iter().enumerate() {
                for fk in crate::sql::drop_foreign_keys(d, meta, &order[..i]) {
                    self.conn.execute_batch(&fk)?;
                }
            }
            for join in crate::schema::join_tables(&order)? {
                self.conn.execute_batch(&join.drop(d))?;
            }
            for meta in order.iter().rev() {
                self.conn.execute_batch(&crate::sql::drop_table(d, meta))?;
            }
            Ok(())
        };
        let result = drop_tables();
        if !own {
            // The session's own transaction goes on with its checks immediate again.
            if let Some(undefer) = d.defer_foreign_keys(false) {
                self.conn.execute_batch(undefer)?;
            }
            return result;
        }
        let ended = result.and_then(|()| self.conn.commit());
        if ended.is_err() {
            // Also after a failed COMMIT, which SQLite leaves open (deferred foreign keys).
            let _ = self.conn.rollback();
        }
        ended
    }

    /// How long a statement waits for a lock another session holds (SQLite: the write lock,
    /// 5 s by default; PostgreSQL: row locks, no limit by default) before it fails with
    /// [`DbErrorKind::Busy`](crate::DbErrorKind::Busy), whose message says so.
    pub fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        self.conn.inner.set_busy_timeout(timeout)
    }

    // ----- statement log ------------------------------------------------------------------

    /// Starts (`true`) or stops recording every statement the session runs in memory (for
    /// tests; a program logs through the `log` crate instead, see
    /// [`log_parameters`](Session::log_parameters)).
    pub fn log_statements(&mut self, on: bool) {
        self.conn.log = if on { Some(Vec::new()) } else { None };
    }

    /// Whether the events each statement reports through the `log` crate (debug level,
    /// target [`orm_core::sql`](crate::backend::LOG_TARGET)) show its parameters: on by
    /// default; turn it off where values are secrets.
    pub fn log_parameters(&mut self, on: bool) {
        self.conn.log_params = on;
    }

    /// The statements recorded since logging started or was last taken (the last
    /// [`MAX_LOGGED`](crate::backend::MAX_LOGGED) at most).
    pub fn statements(&self) -> &[LoggedStatement] {
        self.conn.log.as_deref().unwrap_or(&[])
    }

    /// Takes the recorded statements, leaving the log empty (and still recording).
    pub fn take_statements(&mut self) -> Vec<LoggedStatement> {
        self.conn
            .log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    // ----- stores -------------------------------------------------------------------------

    pub(crate) fn store_index_of(&self, meta: &ModelMeta) -> Option<usize> {
        self.store_index.get(&(meta.type_id)()).copied()
    }

    pub(crate) fn store_index_or_create(&mut self, meta: &'static ModelMeta) -> usize {
        let tid = (meta.type_id)();
        if let Some(&i) = self.store_index.get(&tid) {
            return i;
        }
        self.stores.push((meta.new_store)());
        let si = self.stores.len() - 1;
        self.store_index.insert(tid, si);
        self.resolve_links(si, meta);
        si
    }

    fn store<T: Model>(&self) -> Option<&Store<T>> {
        let i = *self.store_index.get(&TypeId::of::<T>())?;
        self.stores[i].as_any().downcast_ref()
    }

    pub(crate) fn store_mut<T: Model>(&mut self) -> &mut Store<T> {
        let i = self.store_index_or_create(T::META);
        self.typed_store_mut(i)
    }

    /// Store `i`, which holds `T`s.
    fn typed_store_mut<T: Model>(&mut self, i: usize) -> &mut Store<T> {
        self.stores[i]
            .as_any_mut()
            .downcast_mut()
            .expect("store holds its own model")
    }

    fn check_handle<T: Model>(&self, h: Handle<T>) -> Result<()> {
        if h.session == self.id && self.try_get(h).is_some() {
            Ok(())
        } else {
            Err(Error::InvalidHandle {
                model: T::META.name,
            })
        }
    }

    // ----- objects ------------------------------------------------------------------------

    /// Adds a new object; the flush inserts it. Its key becomes a pending id, and it joins the
    /// loaded collection of each parent it points at.
    pub fn add<T: Model>(&mut self, mut obj: T) -> Handle<T> {
        let session = self.id;
        let meta = T::META;
        let si = self.store_index_or_create(meta);
        let slot = self.stores[si].slot_count() as u32;
        if meta.key_kind == KeyKind::Generated && obj.key_id() == RawId::Unset {
            obj.set_key_id(RawId::Pending { session, slot });
        }
        // A pending id of an object that is already stored is that object's key.
        for (r, rel) in meta.relations.iter().enumerate() {
            if let RelationKind::BelongsTo { .. } = rel.kind {
                let normal = self.normalize(rel.target, obj.foreign_key(r));
                obj.set_foreign_key(r, normal);
            }
        }
        let slot = self.typed_store_mut::<T>(si).insert_new(obj);
        for (r, rel) in meta.relations.iter().enumerate() {
            if let RelationKind::BelongsTo { .. } = rel.kind {
                let fk = self.stores[si].foreign_key(slot, r);
                self.link_new(si, slot, r, fk);
            }
        }
        Handle::new(session, slot)
    }

    /// Marks an object to be deleted by the next flush, with what its relationships cascade
    /// to (see the `#[has_many]` flags `cascade_delete`, `delete_orphans` and
    /// `passive_deletes`): children deleted too, or their key set to `NULL`, or an error
    /// before any SQL when neither is allowed. Until that flush the object can still be read;
    /// once it succeeds the handle no longer works ([`contains`](Session::contains) is
    /// false), and a later `get` of its key reads the database again. An object that was
    /// never flushed is simply not inserted.
    ///
    /// ```
    /// # use orm_core::prelude::*;
    /// # #[derive(Model, Debug)]
    /// # struct Note { #[key] id: Id<Note>, text: String }
    /// # fn main() -> orm_core::Result<()> {
    /// let mut db = Session::open_in_memory()?;
    /// db.create_all::<(Note,)>()?;
    /// let note = db.add(Note::new("draft"));
    /// db.commit()?;
    /// db.delete(note)?;
    /// assert!(db.is_deleted(note) && db.contains(note));
    /// db.commit()?;
    /// assert!(!db.contains(note));
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete<T: Model>(&mut self, h: Handle<T>) -> Result<()> {
        self.check_handle(h)?;
        self.store_mut::<T>().doom(h.slot);
        Ok(())
    }

    /// Whether a handle names an object of this session: false once a flush deleted it, a
    /// rollback discarded it, or for a handle of another session.
    pub fn contains<T: Model>(&self, h: Handle<T>) -> bool {
        self.try_get(h).is_some()
    }

    /// Whether an object is marked to be deleted by the next flush.
    pub fn is_deleted<T: Model>(&self, h: Handle<T>) -> bool {
        h.session == self.id && self.store::<T>().is_some_and(|s| s.is_doomed(h.slot))
    }

    /// Adds several new objects; see [`add`](Session::add).
    pub fn add_all<T: Model>(&mut self, objs: impl IntoIterator<Item = T>) -> Vec<Handle<T>> {
        objs.into_iter().map(|o| self.add(o)).collect()
    }

    /// The object of a handle, or `None` if it was discarded or belongs to another session.
    pub fn try_get<T: Model>(&self, h: Handle<T>) -> Option<&T> {
        if h.session != self.id {
            return None;
        }
        self.store::<T>()?.obj(h.slot)
    }

    /// The object of a handle, to change; the next flush writes the columns that changed.
    ///
    /// # Panics
    /// If the handle belongs to another session or its object was discarded by `rollback`
    /// (like indexing a map with a missing key); [`try_get_mut`](Session::try_get_mut) returns
    /// `None` instead.
    pub fn get_mut<T: Model>(&mut self, h: Handle<T>) -> &mut T {
        match self.try_get_mut(h) {
            Some(obj) => obj,
            None => invalid_handle::<T>(),
        }
    }

    /// The object of a handle, to change, or `None` if the handle is not valid here.
    pub fn try_get_mut<T: Model>(&mut self, h: Handle<T>) -> Option<&mut T> {
        if h.session != self.id {
            return None;
        }
        // Its keys may change behind the session's back: settled at the next relationship
        // call or flush.
        self.store_mut::<T>().touch(h.slot)
    }

    /// The id of an object: pending until its first flush, stored after.
    pub fn id<T: Model>(&self, h: Handle<T>) -> Id<T> {
        self.try_get(h)
            .map_or(Id::unset(), |o| Id::from_raw(o.key_id()))
    }

    /// Whether the object is new (added, not flushed yet).
    pub fn is_new<T: Model>(&self, h: Handle<T>) -> bool {
        self.store::<T>()
            .is_some_and(|s| h.session == self.id && s.state(h.slot) == State::New)
    }

    /// The handle of the object an id points at, if that object is in this session.
    pub fn handle_of<T: Model>(&self, id: Id<T>) -> Option<Handle<T>> {
        let store = self.store::<T>()?;
        match id.raw() {
            RawId::Pending { session, slot } if session == self.id => {
                store.obj(slot).map(|_| Handle::new(self.id, slot))
            }
            RawId::Stored(v) => store
                .identity
                .get(&KeyValue::Int(v))
                .map(|slot| Handle::new(self.id, slot)),
            _ => None,
        }
    }

    // ----- loading ------------------------------------------------------------------------

    /// The object with this key: from the session if it is there (with its unflushed edits),
    /// else read from the database. `None` if there is no such row.
    pub fn get<T: Model>(&mut self, key: impl Into<T::Key>) -> Result<Option<Handle<T>>> {
        let key = key.into();
        let value = match key.key_ref() {
            KeyRef::Id(RawId::Stored(v)) => ValueRef::I64(v),
            KeyRef::Id(RawId::Pending { session, slot }) => {
                let h = Handle::new(session, slot);
                return Ok(self.try_get(h).map(|_| h));
            }
            KeyRef::Id(RawId::Unset) => return Ok(None),
            KeyRef::Value(v) => v,
        };
        self.get_by_key::<T>(value)
    }

    /// The object with this key value, from the identity map or the database.
    pub(crate) fn get_by_key<T: Model>(
        &mut self,
        value: ValueRef<'_>,
    ) -> Result<Option<Handle<T>>> {
        if let Some(k) = KeyValue::from_ref(value) {
            if let Some(slot) = self.store::<T>().and_then(|s| s.identity.get(&k)) {
                return Ok(Some(Handle::new(self.id, slot)));
            }
        }
        let key = T::META.key;
        let sql = self.conn.by_column_sql(T::META, key);
        Ok(self.load_rows::<T>(&sql, &[value])?.into_iter().next())
    }

    /// Every row of a model, in key order (objects already in the session keep their edits;
    /// new objects not flushed yet are not included).
    pub fn all<T: Model>(&mut self) -> Result<Vec<Handle<T>>> {
        let sql = self.conn.sql(T::META, SqlKey::Select(None), |d| {
            crate::sql::Select::new(T::META).by_key().render(d).text
        });
        self.load_rows::<T>(&sql, &[])
    }

    /// The one path from rows to objects: runs a `SELECT` of every column of the model of
    /// store `si` and reads each row into that store (a row already there keeps its object
    /// and its edits, unless [`populating`](Session::populating)); the slots of the rows, in
    /// order.
    pub(crate) fn load_slots(
        &mut self,
        si: usize,
        sql: &str,
        params: &[ValueRef<'_>],
    ) -> Result<Vec<u32>> {
        if self.populating {
            return self.reload_slots(si, sql, params);
        }
        let store = &mut self.stores[si];
        let mut out = Vec::new();
        self.conn.query(sql, params, &mut |row| {
            out.push(store.load_row(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`load_slots`](Session::load_slots) where the objects already there take the rows'
    /// values, moving between their parents' collections where a key changed.
    fn reload_slots(&mut self, si: usize, sql: &str, params: &[ValueRef<'_>]) -> Result<Vec<u32>> {
        self.settle(si);
        let (session, store) = (self.id, &mut self.stores[si]);
        let mut out = Vec::new();
        let mut moves = Vec::new();
        self.conn.query(sql, params, &mut |row| {
            let (slot, changed) = store.reload_row(row, session)?;
            out.push(slot);
            moves.extend(
                changed
                    .into_iter()
                    .map(|(r, linked, now)| (si, slot, r, linked, now)),
            );
            Ok(())
        })?;
        self.move_children_with(&moves, true, false);
        Ok(out)
    }

    /// [`load_slots`](Session::load_slots) for a `T` query: handles.
    pub(crate) fn load_rows<T: Model>(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
    ) -> Result<Vec<Handle<T>>> {
        let si = self.store_index_or_create(T::META);
        let session = self.id;
        let slots = self.load_slots(si, sql, params)?;
        Ok(slots.into_iter().map(|s| Handle::new(session, s)).collect())
    }

    // ----- relationships ------------------------------------------------------------------

    /// Loads a relationship: a `HasMany`'s children (then kept in the parent's field) or a
    /// `belongs_to` parent (`None` if unset).
    pub fn load<M: Model, R: Relationship<M>>(
        &mut self,
        h: Handle<M>,
        rel: R,
    ) -> Result<R::Loaded> {
        self.check_handle(h)?;
        rel.load(self, h)
    }

    /// Sets a relationship through the session, keeping both sides in step: a child's parent
    /// (`db.set(product, Product::user, user)`) or a parent's children
    /// (`db.set(user, User::products, [a, b])`).
    pub fn set<M: Model, R: Relationship<M>>(
        &mut self,
        h: Handle<M>,
        rel: R,
        value: impl Into<R::Value>,
    ) -> Result<()> {
        self.check_handle(h)?;
        rel.set(self, h, value.into())
    }

    /// A pending id of a stored object becomes its stored key; other ids are left as they are.
    pub(crate) fn normalize(&self, target: fn() -> &'static ModelMeta, id: RawId) -> RawId {
        if let RawId::Pending { session, slot } = id {
            if session == self.id {
                if let Some(si) = self.store_index_of(target()) {
                    if self.stores[si].state(slot) == State::Persistent {
                        return self.stores[si].key_id(slot);
                    }
                }
            }
        }
        id
    }

    /// A pending parent id stored in field `rel` of a `meta` object must be of this session
    /// and name an object that was not discarded.
    pub(crate) fn check_pending_parent(
        &self,
        meta: &'static ModelMeta,
        rel: usize,
        id: RawId,
    ) -> Result<()> {
        let r = &meta.relations[rel];
        match id {
            RawId::Pending { session, .. } if session != self.id => Err(Error::ForeignPendingId {
                model: meta.name,
                field: r.field,
            }),
            RawId::Pending { .. } if self.parent_slot((r.target)(), id).is_none() => {
                Err(Error::DiscardedParent {
                    model: meta.name,
                    field: r.field,
                    target: (r.target)().name,
                })
            }
            _ => Ok(()),
        }
    }

    /// The store and slot of the parent an id points at, if it is in this session.
    pub(crate) fn parent_slot(&self, target: &ModelMeta, id: RawId) -> Option<(usize, u32)> {
        let si = self.store_index_of(target)?;
        match id {
            RawId::Pending { session, slot } if session == self.id => {
                (self.stores[si].state(slot) != State::Discarded).then_some((si, slot))
            }
            RawId::Stored(v) => self.stores[si].lookup(&KeyValue::Int(v)).map(|s| (si, s)),
            _ => None,
        }
    }

    // ----- unit of work -------------------------------------------------------------------

    /// Writes every pending insert and update in one step of the transaction (a savepoint):
    /// on failure the database and every object are as they were before the call.
    pub fn flush(&mut self) -> Result<()> {
        crate::flush::flush(self)
    }

    /// Flushes, then commits the transaction.
    pub fn commit(&mut self) -> Result<()> {
        self.flush()?;
        if self.conn.in_transaction() {
            self.conn.check_not_aborted()?;
            crate::flush::before_commit(self)?;
            if let Err(e) = self.conn.commit() {
                if !self.conn.in_transaction() {
                    // The database (PostgreSQL) ended the transaction: the session goes back
                    // to the last commit, as the database did.
                    self.rollback()?;
                }
                return Err(e);
            }
        }
        for s in &mut self.stores {
            s.finish_commit();
        }
        Ok(())
    }

    /// Discards the transaction: objects added since the last commit are discarded, and the
    /// others return to their values at the last commit.
    ///
    /// The session is restored whatever the database answers: if the `ROLLBACK` statement
    /// fails (the connection was lost, say), its error is returned after the restore.
    pub fn rollback(&mut self) -> Result<()> {
        let ended = self.conn.rollback();
        let session = self.id;
        self.pending_children.clear();
        self.unlinked.clear();
        self.joins.clear();
        let mut restored = Ok(());
        for s in &mut self.stores {
            let r = s.rollback(session);
            restored = restored.and(r);
        }
        self.prune_restored_collections();
        ended.and(restored)
    }

    /// Collections a rollback restored as they were at the commit hold no object the
    /// session no longer has (one expunged since).
    fn prune_restored_collections(&mut self) {
        for si in 0..self.stores.len() {
            for (slot, rel) in self.stores[si].take_restored() {
                let Some(ci) = self.links[si][rel].target else {
                    continue;
                };
                let slots = self.stores[si]
                    .collection(slot, rel)
                    .and_then(|c| c.slots());
                let dead: rustc_hash::FxHashSet<u32> = slots
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&c| self.stores[ci].state(c) == State::Discarded)
                    .collect();
                if !dead.is_empty() {
                    self.stores[si].prune_collection(slot, rel, &dead);
                }
            }
        }
    }
}

/// What a session holds once [`Session::into_connection`] took its connection: a
/// connection that refuses every statement (unit tests use it to show that nothing reaches a
/// database).
pub(crate) struct Closed;

impl Connection for Closed {
    fn dialect(&self) -> &'static dyn crate::sql::Dialect {
        &crate::sql::Sqlite
    }
    fn execute_many(&mut self, _: &str, _: &[ValueRef<'_>], _: usize) -> Result<Vec<usize>> {
        unreachable!("the session was consumed")
    }
    fn query(
        &mut self,
        _: &str,
        _: &[ValueRef<'_>],
        _: &mut dyn FnMut(&dyn crate::model::RawRow) -> Result<()>,
    ) -> Result<()> {
        unreachable!("the session was consumed")
    }
    fn execute_batch(&mut self, _: &str) -> Result<()> {
        unreachable!("the session was consumed")
    }
    fn set_busy_timeout(&mut self, _: std::time::Duration) -> Result<()> {
        unreachable!("the session was consumed")
    }
    fn column_names(&mut self, _: &str) -> Result<Vec<String>> {
        unreachable!("the session was consumed")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.conn.rollback();
    }
}

fn invalid_handle<T: Model>() -> ! {
    panic!(
        "{}",
        Error::InvalidHandle {
            model: T::META.name
        }
    )
}

impl<T: Model> std::ops::Index<Handle<T>> for Session {
    type Output = T;
    fn index(&self, h: Handle<T>) -> &T {
        match self.try_get(h) {
            Some(obj) => obj,
            None => invalid_handle::<T>(),
        }
    }
}

impl<T: Model> std::ops::IndexMut<Handle<T>> for Session {
    fn index_mut(&mut self, h: Handle<T>) -> &mut T {
        self.get_mut(h)
    }
}
