//! Links: the rows of many-to-many association tables that a flush removes and writes (once
//! every row it inserts exists), from the session's pending links.

use super::deletes::Deletes;
use super::keys::Resolver;
use super::Row;
use crate::backend::{Conn, SqlKey};
use crate::error::Result;
use crate::session::store::State;
use crate::session::Session;
use crate::sql::JoinTable;
use crate::value::ValueRef;

/// Most links in one statement (two parameters each).
const MAX_LINKS: usize = 256;

/// The links a flush removes and writes, table by table.
#[derive(Default)]
pub(super) struct Links {
    tables: Vec<Table>,
}

/// The links of one association table, as relation `rel` of its model sees the table; each
/// pair in the table's primary-key order.
struct Table {
    join: JoinTable,
    rel: usize,
    removed: Vec<(Row, Row)>,
    added: Vec<(Row, Row)>,
}

impl Links {
    /// Whether the flush writes no link.
    pub(super) fn is_empty(&self) -> bool {
        self.tables
            .iter()
            .all(|t| t.removed.is_empty() && t.added.is_empty())
    }
}

/// The pending links, without those of rows that the flush deletes (their links go with
/// them) and without removals of links that cannot exist (a new row's).
pub(super) fn collect(db: &Session, deletes: &Deletes) -> Links {
    let gone = |(si, slot): Row| {
        deletes.contains(si, slot) || db.stores[si].state(slot) == State::Discarded
    };
    let new = |(si, slot): Row| db.stores[si].state(slot) == State::New;
    let mut names: Vec<&&'static str> = db.joins.keys().collect();
    names.sort_unstable();
    let mut out = Links::default();
    for name in names {
        let changes = &db.joins[*name];
        let mut table = Table {
            join: changes.join,
            rel: changes.rel,
            removed: Vec::new(),
            added: Vec::new(),
        };
        for ((a, b), linked) in changes.in_order() {
            if gone(a) || gone(b) {
                continue;
            }
            if linked {
                table.added.push((a, b));
            } else if !new(a) && !new(b) {
                table.removed.push((a, b));
            }
        }
        out.tables.push(table);
    }
    out
}

/// Removes and writes the links (a link written twice is one row).
pub(super) fn run(conn: &mut Conn, r: &Resolver<'_>, links: &Links) -> Result<()> {
    for t in &links.tables {
        write(conn, r, t, &t.removed, false)?;
        write(conn, r, t, &t.added, true)?;
    }
    Ok(())
}

/// Runs the INSERTs (or DELETEs) of `pairs`, in statements of a power-of-two number of links.
fn write(
    conn: &mut Conn,
    r: &Resolver<'_>,
    t: &Table,
    pairs: &[(Row, Row)],
    insert: bool,
) -> Result<()> {
    let mut rest = pairs;
    let mut params: Vec<ValueRef<'_>> = Vec::new();
    let join = t.join;
    while !rest.is_empty() {
        let n = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(n);
        params.clear();
        for &(a, b) in chunk {
            params.push(key(r, a));
            params.push(key(r, b));
        }
        let sql = if insert {
            conn.sql(join.meta, SqlKey::JoinInsert(t.rel, n), |d| {
                join.insert(d, n)
            })
        } else {
            conn.sql(join.meta, SqlKey::JoinDelete(t.rel, n), |d| {
                join.delete(d, n)
            })
        };
        conn.execute(&sql, &params)?;
        rest = tail;
    }
    Ok(())
}

/// The largest power of two up to `n`, and at most [`MAX_LINKS`].
fn chunk_len(n: usize) -> usize {
    if n >= MAX_LINKS {
        MAX_LINKS
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The key of a row as the link names it: as this flush leaves it (the links run after the
/// UPDATEs, and the table follows a changed key with `ON UPDATE CASCADE`).
fn key<'a>(r: &Resolver<'a>, (si, slot): Row) -> ValueRef<'a> {
    r.column_value(si, slot, r.stores[si].meta().key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_take_powers_of_two_links() {
        let sizes: Vec<usize> = [1, 2, 3, 255, 256, 700].map(super::chunk_len).to_vec();
        assert_eq!(sizes, [1, 2, 2, 128, 256, 256]);
    }
}
