//! PostgreSQL through the `postgres` crate: cached prepared statements, values bound by the
//! type the server expects, and SQLSTATEs mapped to the same error kinds as SQLite's.

use super::Connection;
use crate::error::{DbErrorKind, Error, Params, Result, Violated};
use crate::model::RawRow;
use crate::sql::{Dialect, Postgres};
use crate::value::{SqlType, ValueRef};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use std::collections::HashMap;

/// Prepared statements kept per connection; the cache is emptied when it grows past this.
const STATEMENT_CACHE: usize = 256;

/// A PostgreSQL connection (no TLS), with a cache of prepared statements.
pub struct PostgresConnection {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// Whether the last failure came from the server (or the connection), which aborts an
    /// open transaction, rather than from binding a value in the driver.
    server_failure: bool,
}

impl PostgresConnection {
    /// Connects with a URL (`postgres://user@host:port/db?options=..`) or a `key=value`
    /// connection string.
    ///
    /// `sslmode=require`, `verify-ca` or `verify-full` (with `sslrootcert=path` naming the
    /// root certificate) connect over TLS, with the `tls` feature.
    pub fn connect(url: &str) -> Result<Self> {
        let (plain, tls) = super::tls::split(url)?;
        let client = match tls.mode {
            None => {
                postgres::Client::connect(&plain, postgres::NoTls).map_err(|e| Error::Connect {
                    message: format!("{}: {e}", super::redact_password(&plain)),
                    source: Box::new(e),
                })?
            }
            #[cfg(feature = "tls")]
            Some(mode) => super::tls::connect(&plain, mode, &tls)?,
            #[cfg(not(feature = "tls"))]
            Some(_) => {
                let message = format!(
                    "{}: the URL asks for TLS (sslmode), which needs orm-core's `tls` feature",
                    super::redact_password(url)
                );
                return Err(Error::Connect {
                    source: message.clone().into(),
                    message,
                });
            }
        };
        Ok(PostgresConnection {
            client,
            statements: HashMap::new(),
            server_failure: false,
        })
    }

    /// Maps a driver error, noting whether it came from the server.
    fn failed(&mut self, e: postgres::Error, sql: &str, params: &[ValueRef<'_>]) -> Error {
        self.server_failure = e.as_db_error().is_some() || e.is_closed();
        db_error(e, sql, params)
    }

    fn prepare(&mut self, sql: &str, params: &[ValueRef<'_>]) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self
            .client
            .prepare(sql)
            .map_err(|e| self.failed(e, sql, params))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

fn db_error(e: postgres::Error, sql: &str, params: &[ValueRef<'_>]) -> Error {
    let kind = match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => DbErrorKind::UniqueViolation,
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => DbErrorKind::ForeignKeyViolation,
        Some(c) if *c == SqlState::NOT_NULL_VIOLATION => DbErrorKind::NotNullViolation,
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            DbErrorKind::SerializationFailure
        }
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => DbErrorKind::Busy,
        Some(c) if *c == SqlState::SEQUENCE_GENERATOR_LIMIT_EXCEEDED => {
            DbErrorKind::SequenceExhausted
        }
        _ => DbErrorKind::Other,
    };
    // The server's message; the driver's own display is only "db error".
    let mut message = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        // A client-side error (a value the server's type cannot take): the cause says which.
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    if kind == DbErrorKind::Busy {
        message.push_str(
            ": another session holds a lock on these rows (it keeps it until its commit or \
             rollback) and did not let go within the lock timeout",
        );
    }
    Error::Database {
        kind,
        violated: Box::new(e.as_db_error().map(violated).unwrap_or_default()),
        message,
        sql: sql.to_owned(),
        params: Params(params.iter().map(|p| p.into_owned()).collect()),
        source: Box::new(e),
    }
}

/// The constraint, table and columns the server names: the columns from its `column` field
/// (a NOT NULL failure) or from the detail `Key (a, b)=(..)` (UNIQUE, FOREIGN KEY).
fn violated(db: &postgres::error::DbError) -> Violated {
    let columns = match (db.column(), db.detail()) {
        (Some(c), _) => vec![c.to_owned()],
        (None, Some(detail)) => detail
            .strip_prefix("Key (")
            .and_then(|rest| rest.split_once(")=("))
            .map(|(names, _)| {
                names
                    .split(", ")
                    .map(|n| n.trim_matches('"').to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    Violated {
        constraint: db.constraint().map(str::to_owned),
        table: db.table().map(str::to_owned),
        columns,
    }
}

/// A value bound as the type the server inferred for its placeholder: integers fit into
/// `SMALLINT`/`INTEGER`/`BIGINT` (or fail with the value named), floats widen or narrow.
#[derive(Debug)]
struct Bind<'a>(ValueRef<'a>);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        let mismatch =
            || -> BoxError { format!("cannot bind {:?} to a {ty} parameter", self.0).into() };
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Bool(v) => match *ty {
                Type::BOOL => v.to_sql(ty, out),
                _ => Bind(ValueRef::I64(v.into())).to_sql(ty, out),
            },
            ValueRef::I16(v) => Bind(ValueRef::I64(v.into())).to_sql(ty, out),
            ValueRef::I32(v) => Bind(ValueRef::I64(v.into())).to_sql(ty, out),
            ValueRef::I64(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            ValueRef::F32(v) => match *ty {
                Type::FLOAT4 => v.to_sql(ty, out),
                Type::FLOAT8 => f64::from(v).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            ValueRef::F64(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            ValueRef::Text(v) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    v.to_sql(ty, out)
                }
                _ => Err(mismatch()),
            },
            ValueRef::Blob(v) => match *ty {
                Type::BYTEA => v.to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column's bytes as the server sent them (`None` for `NULL`), whatever its type: the row
/// checks the type once, by OID, and decodes the bytes itself.
struct RawBytes<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawBytes<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(Some(raw)))
    }
    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The OIDs of the types a column may have (PostgreSQL's fixed catalogue numbers).
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
}

impl RawRow for postgres::Row {
    fn value(&self, index: usize, _ty: SqlType) -> std::result::Result<ValueRef<'_>, String> {
        fn decode<'a, T: FromSql<'a>>(
            ty: &Type,
            raw: &'a [u8],
            wrap: fn(T) -> ValueRef<'a>,
        ) -> std::result::Result<ValueRef<'a>, String> {
            T::from_sql(ty, raw).map(wrap).map_err(|e| e.to_string())
        }
        let column = self
            .columns()
            .get(index)
            .ok_or_else(|| format!("no column {index}"))?;
        let ty = column.type_();
        let Some(raw) = self
            .try_get::<_, RawBytes<'_>>(index)
            .map_err(|e| e.to_string())?
            .0
        else {
            return Ok(ValueRef::Null);
        };
        match ty.oid() {
            oid::BOOL => decode(ty, raw, ValueRef::Bool),
            oid::INT2 => decode(ty, raw, ValueRef::I16),
            oid::INT4 => decode(ty, raw, ValueRef::I32),
            oid::INT8 => decode(ty, raw, ValueRef::I64),
            oid::FLOAT4 => decode(ty, raw, ValueRef::F32),
            oid::FLOAT8 => decode(ty, raw, ValueRef::F64),
            oid::BYTEA => decode(ty, raw, ValueRef::Blob),
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => decode(ty, raw, ValueRef::Text),
            _ => Err(format!("column type {ty} is not supported")),
        }
    }
}

impl Connection for PostgresConnection {
    fn dialect(&self) -> &'static dyn Dialect {
        &Postgres
    }

    fn execute_many(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        row_len: usize,
    ) -> Result<Vec<usize>> {
        let stmt = self.prepare(sql, params)?;
        let binds: Vec<Bind<'_>> = params.iter().map(|v| Bind(*v)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as _).collect();
        let mut changed = Vec::new();
        for row in super::rows(params.len(), row_len) {
            let n = self
                .client
                .execute(&stmt, &refs[row.clone()])
                .map_err(|e| self.failed(e, sql, &params[row]))?;
            changed.push(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Ok(changed)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        // All rows in one exchange with the driver's runtime: reading them one by one
        // (`query_raw`) costs a runtime entry per row, 1.7 times the client's work in all.
        let stmt = self.prepare(sql, params)?;
        let binds: Vec<Bind<'_>> = params.iter().map(|v| Bind(*v)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = binds.iter().map(|b| b as _).collect();
        match self.client.query(&stmt, &refs) {
            Ok(rows) => {
                for row in &rows {
                    each(row)?;
                }
                Ok(())
            }
            Err(e) => Err(self.failed(e, sql, params)),
        }
    }

    fn query_streaming(
        &mut self,
        sql: &str,
        params: &[ValueRef<'_>],
        each: &mut dyn FnMut(&dyn RawRow) -> Result<()>,
    ) -> Result<()> {
        let stmt = self.prepare(sql, params)?;
        let failure = match self
            .client
            .query_raw(&stmt, params.iter().map(|v| Bind(*v)))
        {
            Err(e) => e,
            Ok(mut rows) => loop {
                match rows.next() {
                    Ok(Some(row)) => each(&row)?,
                    Ok(None) => return Ok(()),
                    Err(e) => break e,
                }
            },
        };
        Err(self.failed(failure, sql, params))
    }

    fn last_failure_reached_database(&self) -> bool {
        self.server_failure
    }

    fn column_names(&mut self, sql: &str) -> Result<Vec<String>> {
        let stmt = self.prepare(sql, &[])?;
        Ok(stmt.columns().iter().map(|c| c.name().to_owned()).collect())
    }

    fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        let ms = format!("{}ms", timeout.as_millis().max(1));
        self.query(
            "SELECT set_config('lock_timeout', $1, false)",
            &[ValueRef::Text(&ms)],
            &mut |_| Ok(()),
        )
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .map_err(|e| self.failed(e, sql, &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oids_are_the_types_oids() {
        for (oid, ty) in [
            (oid::BOOL, Type::BOOL),
            (oid::BYTEA, Type::BYTEA),
            (oid::NAME, Type::NAME),
            (oid::INT8, Type::INT8),
            (oid::INT2, Type::INT2),
            (oid::INT4, Type::INT4),
            (oid::TEXT, Type::TEXT),
            (oid::FLOAT4, Type::FLOAT4),
            (oid::FLOAT8, Type::FLOAT8),
            (oid::BPCHAR, Type::BPCHAR),
            (oid::VARCHAR, Type::VARCHAR),
        ] {
            assert_eq!(oid, ty.oid(), "{ty}");
        }
    }
}
