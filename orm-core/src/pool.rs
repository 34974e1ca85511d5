//! A pool of database connections that hands out sessions, for programs that serve many
//! requests at once (cargo feature `pool`). Built on [r2d2](https://docs.rs/r2d2).
//!
//! ```
//! # fn main() -> orm_core::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("orm-pool-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let url = format!("sqlite://{}", dir.join("app.db").display());
//! use orm_core::pool::Pool;
//!
//! let pool = Pool::connect(&url, 4)?; // at most 4 connections
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let pool = pool.clone();
//!         std::thread::spawn(move || -> orm_core::Result<()> {
//!             let mut db = pool.session()?; // a Session on a free connection
//!             db.commit() // the connection goes back to the pool when `db` is dropped
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap()?;
//! }
//! # drop(pool); // its connections close, with their WAL files
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok(())
//! # }
//! ```

use crate::backend::{self, Connection};
use crate::error::{Error, Result};
use crate::model::RawRow;
use crate::sql::Dialect;
use crate::value::ValueRef;
use crate::Session;
use std::time::Duration;

/// Opens connections to one database for the pool, and checks each before it is handed out.
#[derive(Debug)]
struct Manager {
    url: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Box<dyn Connection>;
    type Error = Error;

    fn connect(&self) -> Result<Box<dyn Connection>> {
        backend::connect(&self.url)
    }

    fn is_valid(&self, conn: &mut Box<dyn Connection>) -> Result<()> {
        conn.execute_batch("SELECT 1")
    }

    fn has_broken(&self, _: &mut Box<dyn Connection>) -> bool {
        false
    }
}

/// A pool of connections to one database that hands out [`Session`]s. Clone it into each
/// thread: clones share the connections.
///
/// A session from the pool is an ordinary `Session`; dropping it rolls back what it did not
/// commit and gives its connection back to the pool.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: r2d2::Pool<Manager>,
    /// The URL without its password, for messages.
    shown: std::sync::Arc<str>,
}

impl Pool {
    /// A pool of at most `max_size` connections to the database `url` names (as
    /// [`Session::connect`] takes it: a SQLite file or a PostgreSQL server; an in-memory
    /// SQLite database would be a different one on every connection). One connection is
    /// opened now, so a wrong URL fails here.
    pub fn connect(url: &str, max_size: u32) -> Result<Pool> {
        Self::with_timeout(url, max_size, Duration::from_secs(30))
    }

    /// As [`connect`](Pool::connect), waiting at most `timeout` for a free connection in
    /// [`session`](Pool::session).
    pub fn with_timeout(url: &str, max_size: u32, timeout: Duration) -> Result<Pool> {
        let manager = Manager {
            url: url.to_owned(),
        };
        let shown: std::sync::Arc<str> = backend::redact_password(url).into();
        let inner = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(manager)
            .map_err(|e| pool_error(&shown, e))?;
        Ok(Pool { inner, shown })
    }

    /// A session on a free connection of the pool, waiting for one up to the pool's timeout.
    pub fn session(&self) -> Result<Session> {
        let conn = self.inner.get().map_err(|e| pool_error(&self.shown, e))?;
        Ok(Session::with_connection(Box::new(Pooled(conn))))
    }

    /// The connections the pool holds now, and how many of them are idle.
    pub fn state(&self) -> (u32, u32) {
        let s = self.inner.state();
        (s.connections, s.idle_connections)
    }
}

/// The error for a pool that could not hand out a connection (`shown`: the URL, redacted).
fn pool_error(shown: &str, e: r2d2::Error) -> Error {
    Error::Connect {
        message: format!("{shown}: no connection from the pool ({e})"),
        source: Box::new(e),
    }
}

/// A connection on loan from the pool: it goes back when the session that holds it is
/// dropped.
struct Pooled(r2d2::PooledConnection<Manager>);

impl Connection for Pooled {
    fn dialect(&self) -> &'static dyn Dialect {
        self.0.dialect()
    }
    fn execute_many(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        row_len: usize,
    ) -> Result<Vec<usize>> {
        self.0.execute_many(sql, params, row_len)
    }
    fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.0.query(sql, params, each)
    }
    fn query_streaming(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.0.query_streaming(sql, params, each)
    }
    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.0.execute_batch(sql)
    }
    fn last_failure_reached_database(&self) -> bool {
        self.0.last_failure_reached_database()
    }
    fn transaction_open(&self) -> Option<bool> {
        self.0.transaction_open()
    }
    fn set_busy_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.0.set_busy_timeout(timeout)
    }
    fn column_names(&mut self, sql: &str) -> Result<Vec<String>> {
        self.0.column_names(sql)
    }
}
