//! Execute: the only part of the flush that talks to the connection. It runs a [`Plan`] and
//! the few queries that reserve keys; what the results mean for the objects is
//! [`super::apply`]'s business.

use super::keys::Resolver;
use super::plan::{Plan, Statement};
use super::Row;
use crate::backend::{Conn, SqlKey};
use crate::error::{DbErrorKind, Error, Result};
use crate::model::{ModelMeta, RawRow};
use crate::sql;
use crate::value::{SqlType, ValueRef};
use std::sync::Arc;

/// Runs the statements of `plan` in order. An UPDATE or DELETE that matches no row (deleted
/// or re-keyed behind the session's back) is a stale-data error naming the model and key.
pub(super) fn run<'a>(
    conn: &mut Conn,
    plan: &Plan<'a>,
    r: &Resolver<'a>,
    order: &[Row],
) -> Result<()> {
    let mut values = Vec::new();
    for statement in &plan.statements {
        match *statement {
            Statement::Insert { meta, ref rows } => {
                let n = rows.len();
                plan.insert_params(r, order, rows.clone(), &mut values);
                let text = conn.sql(meta, SqlKey::Insert(n), |d| {
                    sql::Insert { meta, rows: n }.render(d).text
                });
                conn.execute(&text, &values)?;
            }
            Statement::Update {
                meta,
                ref columns,
                ref params,
            } => {
                let columns = &plan.columns[columns.clone()];
                let params = &plan.params[params.clone()];
                let text = update_sql(conn, meta, columns);
                // The key, then the version read where the row has one.
                let versioned = usize::from(meta.version.is_some_and(|v| columns.contains(&v)));
                let row_len = columns.len() + 1 + versioned;
                let changed = conn.execute_many(&text, params, row_len)?;
                if let Some(i) = changed.iter().position(|&n| n == 0) {
                    return Err(stale(meta, params[(i + 1) * row_len - 1 - versioned]));
                }
            }
            Statement::DeleteWhereIn {
                meta,
                column,
                ref params,
            } => {
                let params = &plan.params[params.clone()];
                let n = params.len();
                let text = conn.sql(meta, SqlKey::DeleteWhereIn(column, n), |d| {
                    sql::Delete::where_in(meta, column, n).render(d).text
                });
                conn.execute(&text, params)?;
            }
            Statement::DeleteVersioned { meta, ref params } => {
                delete_versioned(conn, meta, &plan.params[params.clone()])?
            }
            Statement::Delete {
                meta,
                rows,
                ref params,
            } => delete(conn, meta, rows, &plan.params[params.clone()])?,
        }
    }
    Ok(())
}

/// The DELETE of `rows` rows of `meta` by key (`params`: the keys, padded); it must delete
/// them all.
fn delete(
    conn: &mut Conn,
    meta: &'static ModelMeta,
    rows: usize,
    params: &[ValueRef<'_>],
) -> Result<()> {
    let n = params.len();
    let text = conn.sql(meta, SqlKey::Delete(n), |d| {
        sql::Delete::where_in(meta, meta.key, n).render(d).text
    });
    let deleted = conn.execute(&text, params)?;
    if deleted != rows {
        let keys: Vec<String> = params[..rows]
            .iter()
            .take(10)
            .map(|k| k.into_owned().to_string())
            .collect();
        let more = if rows > 10 { ", .." } else { "" };
        return Err(Error::StaleData {
            model: meta.name,
            key: format!("one of {}{more}", keys.join(", ")),
        });
    }
    Ok(())
}

/// The DELETEs of rows of a model with a `#[version]`, by key and version (`params`: pairs);
/// each must delete its row.
fn delete_versioned(
    conn: &mut Conn,
    meta: &'static ModelMeta,
    params: &[ValueRef<'_>],
) -> Result<()> {
    let Some(version) = meta.version else {
        return Ok(());
    };
    let text = conn.sql(meta, SqlKey::DeleteVersioned, |d| {
        sql::Delete::versioned(meta, version).render(d).text
    });
    let deleted = conn.execute_many(&text, params, 2)?;
    match deleted.iter().position(|&n| n == 0) {
        Some(i) => Err(stale(meta, params[2 * i])),
        None => Ok(()),
    }
}

/// The error for a statement on the row with this key that matched no row.
fn stale(meta: &ModelMeta, key: ValueRef<'_>) -> Error {
    Error::StaleData {
        model: meta.name,
        key: key.into_owned().to_string(),
    }
}

/// The UPDATE of these columns of `meta`, cached when the columns fit in a bit set.
fn update_sql(conn: &mut Conn, meta: &'static ModelMeta, columns: &[usize]) -> Arc<str> {
    if columns.iter().all(|&c| c < 64) {
        let mask = columns.iter().fold(0u64, |m, &c| m | 1 << c);
        conn.sql(meta, SqlKey::Update(mask), |d| {
            sql::Update { meta, columns }.render(d).text
        })
    } else {
        sql::Update { meta, columns }
            .render(conn.dialect())
            .text
            .into()
    }
}

/// The highest key in `meta`'s table (0 when it is empty).
pub(super) fn max_key(conn: &mut Conn, meta: &ModelMeta) -> Result<i64> {
    let mut max = 0i64;
    conn.query(&sql::max_key(conn.dialect(), meta), &[], &mut |row| {
        max = int(row).unwrap_or(0);
        Ok(())
    })?;
    Ok(max)
}

/// `n` keys from the sequence of `meta`'s key column, ascending.
pub(super) fn draw_keys(conn: &mut Conn, meta: &ModelMeta, n: usize) -> Result<Vec<i64>> {
    let d = conn.dialect();
    let table = sql::quoted(d, meta.table);
    let column = ValueRef::Text(meta.key_column().name);
    let count = i64::try_from(n).map_err(|_| Error::KeysExhausted { model: meta.name })?;
    let params = [ValueRef::Text(&table), column, ValueRef::I64(count)];
    let mut keys = Vec::with_capacity(n);
    conn.query(&sql::next_keys(d), &params, &mut |row| {
        keys.extend(int(row));
        Ok(())
    })
    .map_err(sequence_error(meta))?;
    if keys.len() != n {
        return Err(Error::NoKeySequence {
            model: meta.name,
            table: meta.table,
        });
    }
    keys.sort_unstable();
    Ok(keys)
}

/// Moves the sequence of `meta`'s key column to at least `key`, so that it never hands out
/// that key or one below it.
pub(super) fn move_sequence(conn: &mut Conn, meta: &ModelMeta, key: i64) -> Result<()> {
    let d = conn.dialect();
    let table = sql::quoted(d, meta.table);
    let params = [
        ValueRef::Text(&table),
        ValueRef::Text(meta.key_column().name),
        ValueRef::I64(key),
    ];
    conn.query(&sql::skip_keys(d), &params, &mut |_| Ok(()))
        .map_err(sequence_error(meta))
}

/// The integer in the first column of a row.
fn int(row: &dyn RawRow) -> Option<i64> {
    match row.value(0, SqlType::I64) {
        Ok(ValueRef::I64(v)) => Some(v),
        _ => None,
    }
}

/// The error for a key sequence at its end.
fn sequence_error(meta: &ModelMeta) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Database {
            kind: DbErrorKind::SequenceExhausted,
            ..
        } => Error::KeysExhausted { model: meta.name },
        e => e,
    }
}
