//! SQL text for every statement the session runs, built through a [`Dialect`]; no I/O here.

use crate::model::{KeyKind, ModelMeta, OnDelete, RelationKind};
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
    /// How the flush picks the keys of new rows before inserting them.
    fn key_allocation(&self) -> KeyAllocation;
    /// Whether a `FOREIGN KEY` in `CREATE TABLE` may name a table not created yet (SQLite
    /// checks references only when rows are written). Where it may not, references to later
    /// tables are added by [`add_foreign_keys`] once every table exists.
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
    /// After the highest key in use ([`max_key`]) or read by the session, skipping keys the
    /// session knows are taken: safe because the session's transaction holds the
    /// database's only write lock.
    AfterMax,
    /// From the key column's sequence ([`next_keys`]), which concurrent transactions share
    /// without waiting; the sequence is moved past explicit keys once they are written
    /// ([`skip_keys`]).
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

fn column_list(d: &dyn Dialect, meta: &ModelMeta, out: &mut String) {
    for (i, c) in meta.columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        d.quote(c.name, out);
    }
}

/// `INSERT INTO t (all columns) VALUES (...), (...)` for `rows` rows.
pub fn insert(d: &dyn Dialect, meta: &ModelMeta, rows: usize) -> String {
    let n = meta.columns.len();
    let mut out = String::with_capacity(32 + rows * (n * 4 + 4));
    out.push_str("INSERT INTO ");
    d.quote(meta.table, &mut out);
    out.push_str(" (");
    column_list(d, meta, &mut out);
    out.push_str(") VALUES ");
    let mut p = 1;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..n {
            if c > 0 {
                out.push_str(", ");
            }
            d.placeholder(p, &mut out);
            p += 1;
        }
        out.push(')');
    }
    out
}

/// `UPDATE t SET c1 = ?, ... WHERE key = ?`.
pub fn update(d: &dyn Dialect, meta: &ModelMeta, columns: &[usize]) -> String {
    let mut out = String::with_capacity(48 + columns.len() * 16);
    out.push_str("UPDATE ");
    d.quote(meta.table, &mut out);
    out.push_str(" SET ");
    for (i, &c) in columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        d.quote(meta.columns[c].name, &mut out);
        out.push_str(" = ");
        d.placeholder(i + 1, &mut out);
    }
    out.push_str(" WHERE ");
    d.quote(meta.key_column().name, &mut out);
    out.push_str(" = ");
    d.placeholder(columns.len() + 1, &mut out);
    out
}

/// `SELECT (all columns) FROM t [WHERE column = ?] ORDER BY key`.
pub fn select(d: &dyn Dialect, meta: &ModelMeta, filter: Option<usize>) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("SELECT ");
    column_list(d, meta, &mut out);
    out.push_str(" FROM ");
    d.quote(meta.table, &mut out);
    if let Some(c) = filter {
        out.push_str(" WHERE ");
        d.quote(meta.columns[c].name, &mut out);
        out.push_str(" = ");
        d.placeholder(1, &mut out);
    }
    out.push_str(" ORDER BY ");
    d.quote(meta.key_column().name, &mut out);
    out
}

/// `DELETE FROM t WHERE key IN (?, ..)` for `rows` keys.
pub fn delete(d: &dyn Dialect, meta: &ModelMeta, rows: usize) -> String {
    delete_where_in(d, meta, meta.key, rows)
}

/// `DELETE FROM t WHERE column IN (?, ..)` for `n` values.
pub fn delete_where_in(d: &dyn Dialect, meta: &ModelMeta, column: usize, n: usize) -> String {
    let mut out = String::with_capacity(40 + n * 4);
    out.push_str("DELETE FROM ");
    d.quote(meta.table, &mut out);
    out.push_str(" WHERE ");
    d.quote(meta.columns[column].name, &mut out);
    in_list(d, n, &mut out);
    out
}

/// `SELECT (all columns) FROM t WHERE column IN (?, ..)` for `n` values (in no order).
pub fn select_in(d: &dyn Dialect, meta: &ModelMeta, column: usize, n: usize) -> String {
    let mut out = String::with_capacity(64 + n * 4);
    out.push_str("SELECT ");
    column_list(d, meta, &mut out);
    out.push_str(" FROM ");
    d.quote(meta.table, &mut out);
    out.push_str(" WHERE ");
    d.quote(meta.columns[column].name, &mut out);
    in_list(d, n, &mut out);
    out
}

/// `SELECT key FROM t WHERE column IN (?, ..)` for `n` values.
pub fn select_keys_in(d: &dyn Dialect, meta: &ModelMeta, column: usize, n: usize) -> String {
    let mut out = String::with_capacity(48 + n * 4);
    out.push_str("SELECT ");
    d.quote(meta.key_column().name, &mut out);
    out.push_str(" FROM ");
    d.quote(meta.table, &mut out);
    out.push_str(" WHERE ");
    d.quote(meta.columns[column].name, &mut out);
    in_list(d, n, &mut out);
    out
}

/// ` IN (?1, .., ?n)`.
fn in_list(d: &dyn Dialect, n: usize, out: &mut String) {
    out.push_str(" IN (");
    for i in 1..=n {
        if i > 1 {
            out.push_str(", ");
        }
        d.placeholder(i, out);
    }
    out.push(')');
}

/// `SELECT max(key) FROM t`: the highest key in use.
pub fn max_key(d: &dyn Dialect, meta: &ModelMeta) -> String {
    let mut out = String::from("SELECT max(");
    d.quote(meta.key_column().name, &mut out);
    out.push_str(") FROM ");
    d.quote(meta.table, &mut out);
    out
}

/// `SELECT nextval(..) FROM generate_series(1, n)`: `n` fresh keys from the key column's
/// sequence. Parameters: the quoted table name, the key column's name, `n`.
pub fn next_keys(d: &dyn Dialect) -> String {
    let mut out = String::from("SELECT nextval(pg_get_serial_sequence(");
    d.placeholder(1, &mut out);
    out.push_str(", ");
    d.placeholder(2, &mut out);
    out.push_str(")) FROM generate_series(1, ");
    d.placeholder(3, &mut out);
    out.push(')');
    out
}

/// Moves the key column's sequence forward to the given key, so that it never hands out that
/// key, if it is not past it already. Never moves it back (`setval` only when the key is ahead
/// of the sequence's last value, or of the value it hands out next when it has none: a new or
/// restarted sequence), so keys that concurrent sessions drew are not handed out again, and a
/// sequence at its end is left alone. Parameters as [`next_keys`], with the key third.
pub fn skip_keys(d: &dyn Dialect) -> String {
    let mut p = [String::new(), String::new(), String::new()];
    for (i, p) in p.iter_mut().enumerate() {
        d.placeholder(i + 1, p);
    }
    let [table, column, key] = p;
    format!(
        "SELECT setval(q.s, {key}) FROM (SELECT pg_get_serial_sequence({table}, {column}) AS s) AS q \
         WHERE {key} > COALESCE(pg_sequence_last_value(q.s::regclass), nextval(q.s::regclass))"
    )
}

/// A table name as SQL text that names it (what [`next_keys`] takes as its first parameter).
pub fn quoted(d: &dyn Dialect, ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    d.quote(ident, &mut out);
    out
}

/// `CREATE TABLE IF NOT EXISTS` with keys, `NOT NULL`, `UNIQUE` and `FOREIGN KEY`s. Where the
/// dialect has no [forward references](Dialect::forward_references), only references to
/// tables in `created` (and to itself) are inline; [`add_foreign_keys`] adds the others.
pub fn create_table(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> String {
    let mut out = String::from("CREATE TABLE IF NOT EXISTS ");
    d.quote(meta.table, &mut out);
    out.push_str(" (");
    for (i, c) in meta.columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        d.quote(c.name, &mut out);
        out.push(' ');
        if i == meta.key && meta.key_kind == KeyKind::Generated {
            out.push_str(d.generated_key());
            continue;
        }
        out.push_str(d.column_type(c.sql_type));
        if i == meta.key {
            out.push_str(" PRIMARY KEY");
        }
        if !c.nullable {
            out.push_str(" NOT NULL");
        }
        if is_unique(meta, i) && i != meta.key {
            out.push_str(" UNIQUE");
        }
    }
    for reference in references(meta) {
        let (_, target, _) = reference;
        if inline_reference(d, meta, target, created) {
            out.push_str(", ");
            foreign_key(d, reference, &mut out);
        }
    }
    out.push(')');
    out
}

/// Whether column `c` of `meta` is `UNIQUE`: declared so, or the foreign key of a
/// `belongs_to` whose other side is a `has_one` (one child per parent).
pub fn is_unique(meta: &ModelMeta, c: usize) -> bool {
    let col = &meta.columns[c];
    col.unique
        || col.relation.is_some_and(|r| {
            meta.inverse(r).is_some_and(|i| {
                (meta.relations[r].target)().relations[i].kind == RelationKind::HasOne
            })
        })
}

/// A `belongs_to` reference of a model: column name, model referenced, `ON DELETE`.
type Reference = (&'static str, &'static ModelMeta, OnDelete);

/// The `belongs_to` references of a model.
fn references(meta: &ModelMeta) -> impl Iterator<Item = Reference> + '_ {
    meta.relations.iter().filter_map(|r| match r.kind {
        RelationKind::BelongsTo { column, .. } => {
            Some((meta.columns[column].name, (r.target)(), r.on_delete))
        }
        RelationKind::HasMany | RelationKind::HasOne => None,
    })
}

/// `FOREIGN KEY (column) REFERENCES target (key) [ON DELETE ..]`.
fn foreign_key(d: &dyn Dialect, (column, target, on_delete): Reference, out: &mut String) {
    out.push_str("FOREIGN KEY (");
    d.quote(column, out);
    out.push_str(") REFERENCES ");
    d.quote(target.table, out);
    out.push_str(" (");
    d.quote(target.key_column().name, out);
    out.push(')');
    out.push_str(match on_delete {
        OnDelete::NoAction => "",
        OnDelete::Cascade => " ON DELETE CASCADE",
        OnDelete::SetNull => " ON DELETE SET NULL",
        OnDelete::Restrict => " ON DELETE RESTRICT",
    });
}

/// The name of the foreign-key constraint on `table.column`: `{table}_{column}_fkey`, or,
/// where that is longer than the 63 bytes PostgreSQL keeps, its start and a hash of the
/// whole name, so that two long names never become the same.
pub fn constraint_name(table: &str, column: &str) -> String {
    let full = format!("{table}_{column}_fkey");
    if full.len() <= MAX_IDENTIFIER {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    format!("{}_{hash:016x}", prefix(&full, MAX_IDENTIFIER - 17))
}

/// The most bytes of an identifier PostgreSQL keeps (it cuts longer ones silently).
pub const MAX_IDENTIFIER: usize = 63;

/// The name of the index on `table.column`: `{table}_{column}_{hash}_idx`, where the hash is of
/// the table and column names apart, so that two indexes never get the same name (without it,
/// `a_b` + `c` and `a` + `b_c` would), with the readable part cut to fit 63 bytes.
pub fn index_name(table: &str, column: &str) -> String {
    let mut key = Vec::with_capacity(table.len() + column.len() + 1);
    key.extend_from_slice(table.as_bytes());
    key.push(0);
    key.extend_from_slice(column.as_bytes());
    let hash = fnv1a(&key) & 0xffff_ffff_ffff;
    let readable = format!("{table}_{column}");
    format!("{}_{hash:012x}_idx", prefix(&readable, MAX_IDENTIFIER - 17))
}

/// FNV-1a: stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn inline_reference(
    d: &dyn Dialect,
    meta: &ModelMeta,
    target: &ModelMeta,
    created: &[&ModelMeta],
) -> bool {
    d.forward_references() || meta.same(target) || created.iter().any(|c| c.same(target))
}

/// `ALTER TABLE .. ADD CONSTRAINT .. FOREIGN KEY` for each reference of `meta` that
/// [`create_table`] left out, given the tables created before it; nothing if the constraint
/// already exists.
pub fn add_foreign_keys(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> Vec<String> {
    references(meta)
        .filter(|&(_, target, _)| !inline_reference(d, meta, target, created))
        .map(|reference| {
            let (column, _, _) = reference;
            let mut sql = String::from("ALTER TABLE ");
            d.quote(meta.table, &mut sql);
            sql.push_str(" ADD CONSTRAINT ");
            d.quote(&constraint_name(meta.table, column), &mut sql);
            sql.push(' ');
            foreign_key(d, reference, &mut sql);
            d.ignore_if_exists(sql)
        })
        .collect()
}

/// `ALTER TABLE .. DROP CONSTRAINT IF EXISTS` for the references [`add_foreign_keys`] adds,
/// so that tables in a reference cycle can be dropped.
pub fn drop_foreign_keys(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> Vec<String> {
    references(meta)
        .filter(|&(_, target, _)| !inline_reference(d, meta, target, created))
        .map(|(column, _, _)| {
            let mut sql = String::from("ALTER TABLE IF EXISTS ");
            d.quote(meta.table, &mut sql);
            sql.push_str(" DROP CONSTRAINT IF EXISTS ");
            d.quote(&constraint_name(meta.table, column), &mut sql);
            sql
        })
        .collect()
}

/// `CREATE INDEX IF NOT EXISTS` for each indexed column (and every foreign key).
pub fn create_indexes(d: &dyn Dialect, meta: &ModelMeta) -> Vec<String> {
    meta.columns
        .iter()
        .enumerate()
        .filter(|&(i, c)| i != meta.key && !is_unique(meta, i) && (c.index || c.relation.is_some()))
        .map(|(_, c)| {
            let mut out = String::from("CREATE INDEX IF NOT EXISTS ");
            d.quote(&index_name(meta.table, c.name), &mut out);
            out.push_str(" ON ");
            d.quote(meta.table, &mut out);
            out.push_str(" (");
            d.quote(c.name, &mut out);
            out.push(')');
            out
        })
        .collect()
}

/// `DROP TABLE IF EXISTS t`.
pub fn drop_table(d: &dyn Dialect, meta: &ModelMeta) -> String {
    let mut out = String::from("DROP TABLE IF EXISTS ");
    d.quote(meta.table, &mut out);
    out
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
    fn index_names_are_distinct_and_fit() {
        assert_ne!(index_name("a_b", "c"), index_name("a", "b_c"));
        assert!(index_name("product", "user_id").starts_with("product_user_id_"));
        let long = index_name(&"t".repeat(60), &"é".repeat(40));
        assert!(long.len() <= MAX_IDENTIFIER, "{long}");
        assert_ne!(long, index_name(&"t".repeat(60), &"é".repeat(41)));
        assert!(constraint_name(&"t".repeat(60), "c").len() <= MAX_IDENTIFIER);
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
