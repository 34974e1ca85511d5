//! The small connection interface the session drives, its implementations, and opening one
//! from a URL.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresConnection;
pub use sqlite::SqliteConnection;

use crate::error::{Error, Result};
use crate::model::RawRow;
use crate::sql::Dialect;
use crate::value::ValueRef;

/// One open database connection.
pub trait Connection {
    /// The SQL dialect of this database.
    fn dialect(&self) -> &'static dyn Dialect;
    /// Runs a statement (prepared once and cached) and returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[ValueRef<'_>]) -> Result<usize>;
    /// Runs a query (prepared once and cached), calling `each` for every row.
    fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()>;
    /// Runs a statement without parameters or caching (transaction control, DDL).
    fn execute_batch(&mut self, sql: &str) -> Result<()>;
}

/// Opens the connection a URL names (see [`Session::connect`](crate::Session::connect)).
pub fn connect(url: &str) -> Result<Box<dyn Connection>> {
    if url == ":memory:" || url == "sqlite::memory:" {
        return Ok(Box::new(SqliteConnection::open_in_memory()?));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Ok(Box::new(SqliteConnection::open(std::path::Path::new(
            path,
        ))?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(PostgresConnection::connect(url)?));
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Connect {
            message: format!("{url}: orm-core was built without its `postgres` feature"),
            source: "PostgreSQL support not compiled in".into(),
        });
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(Error::Connect {
            message: format!(
                "{url}: unknown scheme `{scheme}`; use postgres://, sqlite:// or a file path"
            ),
            source: "unsupported URL scheme".into(),
        });
    }
    Ok(Box::new(SqliteConnection::open(std::path::Path::new(url))?))
}

/// A statement the session ran, as recorded by [`Session::log_statements`](crate::Session::log_statements).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedStatement {
    /// The SQL text.
    pub sql: String,
    /// The bound parameters.
    pub params: Vec<crate::value::Value>,
}

/// Which statement of a model a cached SQL text is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SqlKey {
    /// A multi-row INSERT of this many rows.
    Insert(usize),
    /// An UPDATE of the columns in this bit set.
    Update(u64),
    /// A SELECT, filtered on this column or not.
    Select(Option<usize>),
}

/// The session's connection, with the statement log and the SQL texts built so far in
/// front of it.
pub(crate) struct Conn {
    pub(crate) inner: Box<dyn Connection>,
    pub(crate) log: Option<Vec<LoggedStatement>>,
    pub(crate) texts: rustc_hash::FxHashMap<(std::any::TypeId, SqlKey), std::sync::Arc<str>>,
}

impl Conn {
    /// Wraps a connection, with the log off.
    pub(crate) fn new(inner: Box<dyn Connection>) -> Conn {
        Conn {
            inner,
            log: None,
            texts: Default::default(),
        }
    }

    /// The SQL text of a statement of `meta`, built by `build` the first time it is needed.
    pub(crate) fn sql(
        &mut self,
        meta: &'static crate::model::ModelMeta,
        key: SqlKey,
        build: impl FnOnce(&dyn Dialect) -> String,
    ) -> std::sync::Arc<str> {
        let d = self.inner.dialect();
        self.texts
            .entry(((meta.type_id)(), key))
            .or_insert_with(|| build(d).into())
            .clone()
    }

    pub(crate) fn dialect(&self) -> &'static dyn Dialect {
        self.inner.dialect()
    }

    fn record(&mut self, sql: &str, params: &[ValueRef<'_>]) {
        if let Some(log) = &mut self.log {
            log.push(LoggedStatement {
                sql: sql.to_owned(),
                params: params.iter().map(|p| p.into_owned()).collect(),
            });
        }
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[ValueRef<'_>]) -> Result<usize> {
        self.record(sql, params);
        self.inner.execute(sql, params)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.record(sql, params);
        self.inner.query(sql, params, each)
    }

    pub(crate) fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.record(sql, &[]);
        self.inner.execute_batch(sql)
    }
}
