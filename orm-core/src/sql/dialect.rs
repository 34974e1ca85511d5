//! How each database spells what differs between databases: quoting, placeholders, types,
//! transaction control, limits.

use crate::value::SqlType;

/// A statement of transaction control, spelled by [`Dialect::transaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStep {
    /// Starts a write transaction.
    Begin,
    /// Commits it.
    Commit,
    /// Rolls it back.
    Rollback,
    /// Starts the savepoint of a flush.
    Savepoint,
    /// Keeps what the flush wrote (the savepoint ends).
    Release,
    /// Undoes what the flush wrote (the savepoint stays).
    RollbackTo,
}

/// How a database spells what differs between databases.
pub trait Dialect: Sync {
    /// Appends a quoted identifier.
    fn quote(&self, ident: &str, out: &mut String) {
        out.push('"');
        for c in ident.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    }
    /// Appends the placeholder of parameter `n` (1-based).
    fn placeholder(&self, n: usize, out: &mut String);
    /// The column type for `ty`.
    fn column_type(&self, ty: SqlType) -> &'static str;
    /// The type and constraint of a generated integer key column.
    fn generated_key(&self) -> &'static str;
    /// The statement that starts a write transaction.
    fn begin(&self) -> &'static str;
    /// The statement of a step of transaction control (the flush's savepoint is
    /// `orm_flush`).
    fn transaction(&self, step: TxStep) -> &'static str {
        match step {
            TxStep::Begin => self.begin(),
            TxStep::Commit => "COMMIT",
            TxStep::Rollback => "ROLLBACK",
            TxStep::Savepoint => "SAVEPOINT orm_flush",
            TxStep::Release => "RELEASE orm_flush",
            TxStep::RollbackTo => "ROLLBACK TO orm_flush",
        }
    }
    /// The most parameters one statement may bind.
    fn max_params(&self) -> usize;
    /// What follows `ORDER BY column [DESC]` on a nullable column so that `NULL`s come first
    /// in ascending order and last in descending order, as in SQLite (and as Rust orders
    /// `Option`s); PostgreSQL puts them the other way by default.
    fn nulls_order(&self, descending: bool) -> Option<&'static str> {
        let _ = descending;
        None
    }
    /// What follows `LIKE pattern` so that only `%` and `_` are special in the pattern
    /// (PostgreSQL: a backslash escapes by default; SQLite has no escape character unless
    /// one is given).
    fn like_escape(&self) -> Option<&'static str> {
        None
    }
    /// What stands for "no limit" where an `OFFSET` needs a `LIMIT` before it (SQLite).
    fn limit_all(&self) -> Option<&'static str> {
        None
    }
    /// The clause that locks the rows a `SELECT` reads until the transaction ends, where the
    /// database has row locks (PostgreSQL; SQLite's write transaction already excludes every
    /// other writer).
    fn row_lock(&self) -> Option<&'static str> {
        None
    }
    /// How the flush picks the keys of new rows before inserting them.
    fn key_allocation(&self) -> KeyAllocation;
    /// Whether a `FOREIGN KEY` in `CREATE TABLE` may name a table not created yet (SQLite
    /// checks references only when rows are written). Where it may not, references to later
    /// tables are added by [`add_foreign_keys`](super::add_foreign_keys) once every table exists.
    fn forward_references(&self) -> bool;
    /// Wraps a DDL statement so that running it when its object already exists does nothing
    /// (for statements with no `IF NOT EXISTS` form).
    fn ignore_if_exists(&self, ddl: String) -> String {
        ddl
    }
    /// The statement that defers foreign-key checks to the end of the open transaction
    /// (`on`) or makes them immediate again, if one is needed to drop tables that reference
    /// each other.
    fn defer_foreign_keys(&self, on: bool) -> Option<&'static str> {
        let _ = on;
        None
    }
    /// Whether a failed statement aborts the whole open transaction (PostgreSQL), rather
    /// than only itself (SQLite).
    fn error_aborts_transaction(&self) -> bool {
        false
    }
    /// A query of a table's columns (parameter: the table's name): name, declared type, NOT
    /// NULL, part of the primary key, has a default (or is generated). No rows: no table.
    fn describe_columns(&self) -> &'static str;
    /// A query of a table's foreign keys (parameter: the table's name): column, table
    /// referenced.
    fn describe_foreign_keys(&self) -> &'static str;
    /// Whether a column declared as `declared` holds values of `ty` as the session writes and
    /// reads them.
    fn same_type(&self, declared: &str, ty: SqlType) -> bool;
}

/// SQLite's type affinity of a declared column type (its documented rules, in order).
fn affinity(declared: &str) -> &'static str {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.is_empty() {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// How the flush picks the keys of new rows, so that whole tables go in multi-row INSERTs
/// and children can reference their parents' keys in the same flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAllocation {
    /// After the highest key in use ([`max_key`](super::max_key)) or read by the session, skipping keys the
    /// session knows are taken: safe because the session's transaction holds the
    /// database's only write lock.
    AfterMax,
    /// From the key column's sequence ([`next_keys`](super::next_keys)), which concurrent transactions share
    /// without waiting; the sequence is moved past explicit keys once they are written
    /// ([`skip_keys`](super::skip_keys)).
    Sequence,
}

/// SQLite: `?N` placeholders, rowid keys, `BEGIN IMMEDIATE` so a session holds the write lock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

impl Dialect for Sqlite {
    fn placeholder(&self, n: usize, out: &mut String) {
        out.push('?');
        push_num(out, n);
    }
    fn column_type(&self, ty: SqlType) -> &'static str {
        match ty {
            SqlType::Bool => "BOOLEAN",
            SqlType::I16 | SqlType::I32 | SqlType::I64 => "INTEGER",
            SqlType::F32 | SqlType::F64 => "REAL",
            SqlType::Text => "TEXT",
            SqlType::Blob => "BLOB",
        }
    }
    fn generated_key(&self) -> &'static str {
        "INTEGER PRIMARY KEY"
    }
    fn begin(&self) -> &'static str {
        "BEGIN IMMEDIATE"
    }
    fn max_params(&self) -> usize {
        32766
    }
    fn limit_all(&self) -> Option<&'static str> {
        Some("LIMIT -1")
    }
    fn key_allocation(&self) -> KeyAllocation {
        KeyAllocation::AfterMax
    }
    fn defer_foreign_keys(&self, on: bool) -> Option<&'static str> {
        Some(if on {
            "PRAGMA defer_foreign_keys = ON"
        } else {
            "PRAGMA defer_foreign_keys = OFF"
        })
    }
    fn forward_references(&self) -> bool {
        true
    }
    fn describe_columns(&self) -> &'static str {
        "SELECT name, type, \"notnull\", pk > 0, \
         dflt_value IS NOT NULL OR (pk > 0 AND upper(type) = 'INTEGER') \
         FROM pragma_table_info(?1)"
    }
    fn describe_foreign_keys(&self) -> &'static str {
        "SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?1)"
    }
    fn same_type(&self, declared: &str, ty: SqlType) -> bool {
        affinity(declared) == affinity(self.column_type(ty))
    }
}

/// PostgreSQL: `$N` placeholders, identity keys drawn from their sequences, `BEGIN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    fn placeholder(&self, n: usize, out: &mut String) {
        out.push('$');
        push_num(out, n);
    }
    fn column_type(&self, ty: SqlType) -> &'static str {
        match ty {
            SqlType::Bool => "BOOLEAN",
            SqlType::I16 => "SMALLINT",
            SqlType::I32 => "INTEGER",
            SqlType::I64 => "BIGINT",
            SqlType::F32 => "REAL",
            SqlType::F64 => "DOUBLE PRECISION",
            SqlType::Text => "TEXT",
            SqlType::Blob => "BYTEA",
        }
    }
    fn generated_key(&self) -> &'static str {
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    }
    fn begin(&self) -> &'static str {
        "BEGIN"
    }
    fn max_params(&self) -> usize {
        65535
    }
    fn row_lock(&self) -> Option<&'static str> {
        Some("FOR UPDATE")
    }
    fn nulls_order(&self, descending: bool) -> Option<&'static str> {
        Some(if descending {
            " NULLS LAST"
        } else {
            " NULLS FIRST"
        })
    }
    fn like_escape(&self) -> Option<&'static str> {
        Some(" ESCAPE ''")
    }
    fn key_allocation(&self) -> KeyAllocation {
        KeyAllocation::Sequence
    }
    fn forward_references(&self) -> bool {
        false
    }
    fn error_aborts_transaction(&self) -> bool {
        true
    }
    fn describe_columns(&self) -> &'static str {
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
         COALESCE(a.attnum = ANY(i.indkey::int2[]), false), a.atthasdef OR a.attidentity <> '' \
         FROM pg_attribute a \
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
         WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum"
    }
    fn describe_foreign_keys(&self) -> &'static str {
        "SELECT a.attname::text, cf.relname::text FROM pg_constraint k \
         JOIN pg_class cf ON cf.oid = k.confrelid \
         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] \
         WHERE k.contype = 'f' AND k.conrelid = to_regclass(quote_ident($1))"
    }
    fn same_type(&self, declared: &str, ty: SqlType) -> bool {
        match ty {
            SqlType::Text => {
                declared == "text"
                    || declared.starts_with("character varying")
                    || declared.starts_with("character(")
            }
            _ => declared == self.column_type(ty).to_ascii_lowercase(),
        }
    }
    fn ignore_if_exists(&self, ddl: String) -> String {
        // A dollar-quote tag that the statement does not contain, so no identifier in it can
        // end the quoted body early.
        let tag = (0u32..)
            .map(|i| format!("$orm{i}$"))
            .find(|tag| !ddl.contains(tag.as_str()))
            .expect("a tag the statement does not contain");
        format!("DO {tag} BEGIN {ddl}; EXCEPTION WHEN duplicate_object THEN NULL; END {tag}")
    }
}

fn push_num(out: &mut String, n: usize) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_doubles_quotes() {
        let mut s = String::new();
        Sqlite.quote("we\"ird", &mut s);
        assert_eq!(s, "\"we\"\"ird\"");
    }

    #[test]
    fn numbers_placeholders() {
        let mut s = String::new();
        Sqlite.placeholder(12, &mut s);
        assert_eq!(s, "?12");
        s.clear();
        Postgres.placeholder(12, &mut s);
        assert_eq!(s, "$12");
    }
}
