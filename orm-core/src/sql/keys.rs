//! The statements of key allocation: the highest key in use (SQLite), and drawing from and
//! moving a key sequence (PostgreSQL).

use super::Dialect;
use crate::model::ModelMeta;

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
