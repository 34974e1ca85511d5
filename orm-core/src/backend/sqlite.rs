//! SQLite through rusqlite: WAL, foreign keys always on, double-quoted strings off, cached
//! prepared statements.

use super::Connection;
use crate::error::{DbErrorKind, Error, Params, Result, Violated};
use crate::model::RawRow;
use crate::sql::{Dialect, Sqlite};
use crate::value::{SqlType, ValueRef};
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, ValueRef as SqliteRef};

/// SQLite through rusqlite; foreign keys are enforced on every connection.
pub struct SqliteConnection {
    conn: rusqlite::Connection,
}

impl SqliteConnection {
    /// Opens (creating if needed) a database file, with WAL and foreign keys on.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).map_err(connect_error)?;
        let c = Self::configure(conn)?;
        c.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(connect_error)?;
        c.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(connect_error)?;
        // Temporary files in memory: the statement journal of a multi-row INSERT (what the
        // flush writes) would otherwise spill to a file past 64 KiB, doubling the writes.
        c.conn
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(connect_error)?;
        Ok(c)
    }

    /// Opens a private in-memory database, with foreign keys on.
    pub fn open_in_memory() -> Result<Self> {
        Self::configure(rusqlite::Connection::open_in_memory().map_err(connect_error)?)
    }

    fn configure(conn: rusqlite::Connection) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(connect_error)?;
        let on: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .map_err(connect_error)?;
        if !on {
            return Err(Error::Connect {
                message: "this SQLite build cannot enforce foreign keys".into(),
                source: "PRAGMA foreign_keys stayed off".into(),
            });
        }
        // A double-quoted name that matches no column is an error, never a string literal
        // (SQLite's legacy fallback would read a missing column as its own name).
        for dqs in [
            DbConfig::SQLITE_DBCONFIG_DQS_DML,
            DbConfig::SQLITE_DBCONFIG_DQS_DDL,
        ] {
            conn.set_db_config(dqs, false).map_err(connect_error)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(connect_error)?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(SqliteConnection { conn })
    }
}

fn connect_error(e: rusqlite::Error) -> Error {
    Error::Connect {
        message: e.to_string(),
        source: Box::new(e),
    }
}

fn db_error(e: rusqlite::Error, sql: &str, params: &[ValueRef<'_>]) -> Error {
    use rusqlite::ffi::ErrorCode;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match (f.code, f.extended_code) {
            (_, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
            | (_, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => DbErrorKind::UniqueViolation,
            (_, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => DbErrorKind::ForeignKeyViolation,
            (_, rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL) => DbErrorKind::NotNullViolation,
            (_, rusqlite::ffi::SQLITE_BUSY_SNAPSHOT) => DbErrorKind::SerializationFailure,
            (ErrorCode::DatabaseBusy, _) | (ErrorCode::DatabaseLocked, _) => DbErrorKind::Busy,
            _ => DbErrorKind::Other,
        },
        _ => DbErrorKind::Other,
    };
    let mut message = e.to_string();
    if kind == DbErrorKind::Busy {
        message.push_str(
            ": another connection holds the database's write lock (a session holds it from its \
             first flush that writes to its commit or rollback) and did not let go within the \
             busy timeout",
        );
    }
    Error::Database {
        kind,
        violated: Box::new(violated(&message)),
        message,
        sql: sql.to_owned(),
        params: Params(params.iter().map(|p| p.into_owned()).collect()),
        source: Box::new(e),
    }
}

/// The table and columns SQLite's message names: `UNIQUE constraint failed: t.a, t.b`.
fn violated(message: &str) -> Violated {
    let Some((_, names)) = message.split_once(" constraint failed: ") else {
        return Violated::default();
    };
    let mut out = Violated::default();
    for name in names.split(", ") {
        if let Some((table, column)) = name.rsplit_once('.') {
            out.table.get_or_insert_with(|| table.to_owned());
            out.columns.push(column.to_owned());
        }
    }
    out
}

struct Bind<'a>(ValueRef<'a>);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let nan = match self.0 {
            ValueRef::F32(v) => v.is_nan(),
            ValueRef::F64(v) => v.is_nan(),
            _ => false,
        };
        if nan {
            // SQLite would store it as NULL.
            return Err(rusqlite::Error::ToSqlConversionFailure(
                "SQLite cannot store NaN (it would become NULL); use an Option and None".into(),
            ));
        }
        Ok(ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => SqliteRef::Null,
            ValueRef::Bool(v) => SqliteRef::Integer(v.into()),
            ValueRef::I16(v) => SqliteRef::Integer(v.into()),
            ValueRef::I32(v) => SqliteRef::Integer(v.into()),
            ValueRef::I64(v) => SqliteRef::Integer(v),
            ValueRef::F32(v) => SqliteRef::Real(v.into()),
            ValueRef::F64(v) => SqliteRef::Real(v),
            ValueRef::Text(v) => SqliteRef::Text(v.as_bytes()),
            ValueRef::Blob(v) => SqliteRef::Blob(v),
        }))
    }
}

impl RawRow for rusqlite::Row<'_> {
    fn value(&self, index: usize, _ty: SqlType) -> std::result::Result<ValueRef<'_>, String> {
        Ok(match self.get_ref(index).map_err(|e| e.to_string())? {
            SqliteRef::Null => ValueRef::Null,
            SqliteRef::Integer(v) => ValueRef::I64(v),
            SqliteRef::Real(v) => ValueRef::F64(v),
            SqliteRef::Text(t) => {
                ValueRef::Text(std::str::from_utf8(t).map_err(|e| e.to_string())?)
            }
            SqliteRef::Blob(b) => ValueRef::Blob(b),
        })
    }
}

impl Connection for SqliteConnection {
    fn dialect(&self) -> &'static dyn Dialect {
        &Sqlite
    }

    fn execute_many(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        row_len: usize,
    ) -> Result<Vec<usize>> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| db_error(e, sql, params))?;
        let mut changed = Vec::new();
        for row in super::rows(params.len(), row_len) {
            let row = &params[row];
            changed.push(
                stmt.execute(rusqlite::params_from_iter(row.iter().map(|v| Bind(*v))))
                    .map_err(|e| db_error(e, sql, row))?,
            );
        }
        Ok(changed)
    }

    fn column_names(&mut self, sql: &str) -> Result<Vec<String>> {
        let stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| db_error(e, sql, &[]))?;
        Ok(stmt.column_names().map(str::to_owned).collect())
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| db_error(e, sql, params))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(|v| Bind(*v))))
            .map_err(|e| db_error(e, sql, params))?;
        while let Some(row) = rows.next().map_err(|e| db_error(e, sql, params))? {
            each(row)?;
        }
        Ok(())
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| db_error(e, sql, &[]))
    }

    fn transaction_open(&self) -> Option<bool> {
        Some(!self.conn.is_autocommit())
    }

    fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        self.conn
            .busy_timeout(timeout)
            .map_err(|e| db_error(e, "PRAGMA busy_timeout", &[]))
    }
}
