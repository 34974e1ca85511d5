//! SQL text for every statement the session runs, built through a [`Dialect`]; no I/O here.

use crate::model::{KeyKind, ModelMeta, RelationKind};
use crate::value::SqlType;

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
    /// The most parameters one statement may bind.
    fn max_params(&self) -> usize;
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

/// `SELECT max(key) FROM t`: the highest key in use.
pub fn max_key(d: &dyn Dialect, meta: &ModelMeta) -> String {
    let mut out = String::from("SELECT max(");
    d.quote(meta.key_column().name, &mut out);
    out.push_str(") FROM ");
    d.quote(meta.table, &mut out);
    out
}

/// `CREATE TABLE IF NOT EXISTS` with keys, `NOT NULL`, `UNIQUE` and `FOREIGN KEY`s.
pub fn create_table(d: &dyn Dialect, meta: &ModelMeta) -> String {
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
        if c.unique && i != meta.key {
            out.push_str(" UNIQUE");
        }
    }
    for r in meta.relations {
        if let RelationKind::BelongsTo { column, .. } = r.kind {
            let target = (r.target)();
            out.push_str(", FOREIGN KEY (");
            d.quote(meta.columns[column].name, &mut out);
            out.push_str(") REFERENCES ");
            d.quote(target.table, &mut out);
            out.push_str(" (");
            d.quote(target.key_column().name, &mut out);
            out.push(')');
        }
    }
    out.push(')');
    out
}

/// `CREATE INDEX IF NOT EXISTS` for each indexed column (and every foreign key).
pub fn create_indexes(d: &dyn Dialect, meta: &ModelMeta) -> Vec<String> {
    meta.columns
        .iter()
        .enumerate()
        .filter(|(i, c)| *i != meta.key && !c.unique && (c.index || c.relation.is_some()))
        .map(|(_, c)| {
            let mut out = String::from("CREATE INDEX IF NOT EXISTS ");
            d.quote(&format!("{}_{}_idx", meta.table, c.name), &mut out);
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
    fn numbers_placeholders() {
        let mut s = String::new();
        Sqlite.placeholder(12, &mut s);
        assert_eq!(s, "?12");
    }
}
