//! The small connection interface the session drives, its implementations, and opening one
//! from a URL.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
#[cfg(feature = "postgres")]
mod tls;
mod transaction;

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresConnection;
pub use sqlite::SqliteConnection;
pub(crate) use transaction::TxState;

use crate::error::{Error, Params, Result};
use crate::model::RawRow;
use crate::sql::Dialect;
use crate::value::ValueRef;

/// One open database connection.
pub trait Connection: Send {
    /// The SQL dialect of this database.
    fn dialect(&self) -> &'static dyn Dialect;
    /// Runs a statement (prepared once and cached) and returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[ValueRef<'_>]) -> Result<usize> {
        Ok(self.execute_many(sql, params, params.len())?.iter().sum())
    }
    /// Runs a statement (prepared once and cached) once for each `row_len` parameters of
    /// `params` (see [`rows`]), and returns the rows each execution changed, in order.
    fn execute_many(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        row_len: usize,
    ) -> Result<Vec<usize>>;
    /// Runs a query (prepared once and cached), calling `each` for every row.
    fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()>;
    /// Like [`query`](Connection::query), holding as few rows at once as the driver allows
    /// (for reads of any size), where that costs more per row than `query`.
    fn query_streaming(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.query(sql, params, each)
    }
    /// Runs a statement without parameters or caching (transaction control, DDL).
    fn execute_batch(&mut self, sql: &str) -> Result<()>;
    /// The names of the columns a query returns (it is prepared, and cached, not run).
    fn column_names(&mut self, sql: &str) -> Result<Vec<String>>;
    /// Whether a transaction is open on the connection, where the driver knows (SQLite: a
    /// failure can end the transaction on its own).
    fn transaction_open(&self) -> Option<bool> {
        None
    }
    /// How long a statement waits for a lock another connection holds before it fails with
    /// [`DbErrorKind::Busy`](crate::DbErrorKind::Busy) (SQLite: the write lock, 5 s by
    /// default; PostgreSQL: row and table locks, `lock_timeout`).
    fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<()>;
    /// Whether the last failed statement reached the database (and so, where
    /// [`Dialect::error_aborts_transaction`], aborted the open transaction), rather than
    /// being refused by the driver before it was sent.
    fn last_failure_reached_database(&self) -> bool {
        true
    }
}

/// The parameters of each execution of [`Connection::execute_many`]: `params` cut into rows
/// of `row_len`, or one execution without parameters when `row_len` is 0.
pub fn rows(params_len: usize, row_len: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = params_len.checked_div(row_len).unwrap_or(1);
    (0..n).map(move |i| i * row_len..(i + 1) * row_len)
}

/// Opens the connection a URL names (see [`Session::connect`](crate::Session::connect)).
pub fn connect(url: &str) -> Result<Box<dyn Connection>> {
    if url == ":memory:" || url.eq_ignore_ascii_case("sqlite::memory:") {
        return Ok(Box::new(SqliteConnection::open_in_memory()?));
    }
    // Schemes are case-insensitive; the rest of the URL is kept as written.
    let (scheme, rest) = match url.split_once(':') {
        Some((scheme, rest)) if !scheme.contains(['/', '\\']) && scheme.len() > 1 => {
            (scheme.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), url),
    };
    match scheme.as_str() {
        // A plain path (a one-letter "scheme" is a Windows drive).
        "" => Ok(Box::new(SqliteConnection::open(std::path::Path::new(url))?)),
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            Ok(Box::new(SqliteConnection::open(std::path::Path::new(
                path,
            ))?))
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            return Ok(Box::new(PostgresConnection::connect(&format!(
                "{scheme}:{rest}"
            ))?));
            #[cfg(not(feature = "postgres"))]
            return Err(Error::Connect {
                message: format!(
                    "{}: orm-core was built without its `postgres` feature",
                    redact_password(url)
                ),
                source: "PostgreSQL support not compiled in".into(),
            });
        }
        _ => Err(Error::Connect {
            message: format!(
                "{}: unknown scheme `{scheme}`; use postgres://, sqlite:// or a file path",
                redact_password(url)
            ),
            source: "unsupported URL scheme".into(),
        }),
    }
}

/// The URL with the password in `scheme://user:password@host` replaced by `***`, for messages.
pub(crate) fn redact_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
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
    /// A SELECT of the rows whose column is one of this many values.
    SelectIn(usize, usize),
    /// A SELECT of the keys of the rows whose column is one of this many values.
    KeysIn(usize, usize),
    /// A DELETE of this many rows by key.
    Delete(usize),
    /// A DELETE of the rows whose column is one of this many values.
    DeleteWhereIn(usize, usize),
    /// A DELETE of one row by key and `#[version]`.
    DeleteVersioned,
    /// The rows linked through many-to-many relation `.0` to this many rows, each row ending
    /// with the key it is linked to or not (`.2`).
    JoinTargets(usize, usize, bool),
    /// An INSERT of this many links of many-to-many relation `.0`.
    JoinInsert(usize, usize),
    /// A DELETE of this many links of many-to-many relation `.0`.
    JoinDelete(usize, usize),
}

/// The most SQL texts a connection keeps built; the cache starts again when full.
const SQL_TEXTS: usize = 1024;

/// The `log` target of the event each statement reports: `RUST_LOG=orm_core::sql=debug`
/// (or `orm_core=debug`) shows them.
pub const LOG_TARGET: &str = "orm_core::sql";

/// The most statements the in-memory log keeps: past this, the oldest are dropped.
pub const MAX_LOGGED: usize = 100_000;

/// The session's connection, with the statement log and the SQL texts built so far in
/// front of it.
pub(crate) struct Conn {
    pub(crate) inner: Box<dyn Connection>,
    pub(crate) log: Option<Vec<LoggedStatement>>,
    pub(crate) texts: rustc_hash::FxHashMap<(std::any::TypeId, SqlKey), std::sync::Arc<str>>,
    /// Where the session's transaction is.
    pub(crate) tx: TxState,
    /// Whether a statement that may write ran in the open transaction.
    pub(crate) tx_written: bool,
    /// Whether the statement events of the `log` crate show the parameters.
    pub(crate) log_params: bool,
}

impl Conn {
    /// Wraps a connection, with the log off.
    pub(crate) fn new(inner: Box<dyn Connection>) -> Conn {
        Conn {
            inner,
            log: None,
            texts: Default::default(),
            tx: TxState::Idle,
            tx_written: false,
            log_params: true,
        }
    }

    /// Notes a failure that aborts the open transaction where the database does that, or
    /// that ended it (SQLite rolls the transaction back itself on some errors).
    fn watch<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(Error::Database { message, .. }) = &result {
            let aborts = self.dialect().error_aborts_transaction()
                && self.inner.last_failure_reached_database();
            if aborts || self.inner.transaction_open() == Some(false) {
                let message = message.clone();
                self.abort(&message);
            }
        }
        result
    }

    /// The SQL text of a statement of `meta`, built by `build` the first time it is needed.
    pub(crate) fn sql(
        &mut self,
        meta: &'static crate::model::ModelMeta,
        key: SqlKey,
        build: impl FnOnce(&dyn Dialect) -> String,
    ) -> std::sync::Arc<str> {
        let key = ((meta.type_id)(), key);
        if let Some(text) = self.texts.get(&key) {
            return text.clone();
        }
        if self.texts.len() >= SQL_TEXTS {
            // Bounded: a model has a handful of INSERT shapes, but UPDATEs of every set of
            // changed columns could grow the cache without end.
            self.texts.clear();
        }
        let text: std::sync::Arc<str> = build(self.inner.dialect()).into();
        self.texts.insert(key, text.clone());
        text
    }

    /// The `SELECT` of `meta`'s rows whose `column` equals one parameter, in key order
    /// (built once).
    pub(crate) fn by_column_sql(
        &mut self,
        meta: &'static crate::model::ModelMeta,
        column: usize,
    ) -> std::sync::Arc<str> {
        self.sql(meta, SqlKey::Select(Some(column)), |d| {
            crate::sql::Select::by_column(meta, column).render(d).text
        })
    }

    pub(crate) fn dialect(&self) -> &'static dyn Dialect {
        self.inner.dialect()
    }

    fn record(&mut self, sql: &str, params: &[ValueRef<'_>]) {
        if let Some(log) = &mut self.log {
            if log.len() >= MAX_LOGGED {
                log.drain(..MAX_LOGGED / 2);
            }
            log.push(LoggedStatement {
                sql: sql.to_owned(),
                params: params.iter().map(|p| p.into_owned()).collect(),
            });
        }
    }

    /// Runs `run` on the connection; where the `log` crate wants debug events of
    /// [`LOG_TARGET`], reports the statement with its parameters (unless hidden), the rows
    /// `rows` says it touched, and its duration.
    fn traced<R>(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        run: impl FnOnce(&mut dyn Connection) -> Result<R>,
        rows: impl FnOnce(&R) -> usize,
    ) -> Result<R> {
        if !log::log_enabled!(target: LOG_TARGET, log::Level::Debug) {
            let result = run(&mut *self.inner);
            return self.watch(result);
        }
        let start = std::time::Instant::now();
        let result = run(&mut *self.inner);
        let took = start.elapsed();
        let shown = if params.is_empty() {
            String::new()
        } else if self.log_params {
            format!(
                "; params {}",
                Params(params.iter().map(|p| p.into_owned()).collect())
            )
        } else {
            format!("; {} params (hidden)", params.len())
        };
        match &result {
            Ok(r) => log::debug!(
                target: LOG_TARGET,
                "{sql}{shown}; {} rows in {took:?}",
                rows(r)
            ),
            // With the parameters hidden, so is the database's message (it may quote them).
            Err(Error::Database { kind, .. }) if !self.log_params => {
                log::debug!(target: LOG_TARGET, "{sql}{shown}; failed in {took:?}: {kind}")
            }
            Err(e) => log::debug!(target: LOG_TARGET, "{sql}{shown}; failed in {took:?}: {e}"),
        }
        self.watch(result)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[ValueRef<'_>]) -> Result<usize> {
        self.tx_written |= self.in_transaction();
        self.record(sql, params);
        self.traced(sql, params, |c| c.execute(sql, params), |&n| n)
    }

    pub(crate) fn execute_many(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        row_len: usize,
    ) -> Result<Vec<usize>> {
        self.tx_written |= self.in_transaction();
        if self.log.is_some() {
            // Row by row, so that the log holds only the statements that ran (each is still
            // prepared once: the driver caches it).
            let mut changed = Vec::new();
            for row in rows(params.len(), row_len) {
                changed.push(self.execute(sql, &params[row])?);
            }
            return Ok(changed);
        }
        self.traced(
            sql,
            params,
            |c| c.execute_many(sql, params, row_len),
            |changed| changed.iter().sum(),
        )
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.run_query(sql, params, each, false)
    }

    /// [`query`](Conn::query) through [`Connection::query_streaming`].
    pub(crate) fn query_streaming(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        self.run_query(sql, params, each, true)
    }

    fn run_query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
        streaming: bool,
    ) -> Result<()> {
        self.record(sql, params);
        let n = std::cell::Cell::new(0usize);
        let mut counting = |row: &dyn RawRow| {
            n.set(n.get() + 1);
            each(row)
        };
        let mut run = |c: &mut dyn Connection| {
            if streaming {
                c.query_streaming(sql, params, &mut counting)
            } else {
                c.query(sql, params, &mut counting)
            }
        };
        self.traced(sql, params, |c| run(c).map(|()| n.get()), |&n| n)
            .map(|_| ())
    }

    pub(crate) fn column_names(&mut self, sql: &str) -> Result<Vec<String>> {
        let result = self.inner.column_names(sql);
        self.watch(result)
    }

    pub(crate) fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.tx_written |= self.in_transaction();
        self.record(sql, &[]);
        self.traced(sql, &[], |c| c.execute_batch(sql), |_| 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_log_is_bounded_and_keeps_the_newest() {
        let mut conn = Conn::new(Box::new(SqliteConnection::open_in_memory().unwrap()));
        conn.log = Some(Vec::new());
        for i in 0..MAX_LOGGED + 10 {
            conn.record(&i.to_string(), &[]);
        }
        let log = conn.log.as_ref().unwrap();
        assert!(log.len() <= MAX_LOGGED, "{}", log.len());
        assert_eq!(log.last().unwrap().sql, (MAX_LOGGED + 9).to_string());
        let first: usize = log[0].sql.parse().unwrap();
        assert_eq!(first + log.len(), MAX_LOGGED + 10, "no gap in what is kept");
    }
}
