//! The unit of work, one module per phase: what [`changes`] the session holds, the [`keys`]
//! of new rows, the [`order`] rows go in, the [`plan`] of statements (data), [`execute`]
//! (the only part that talks to the connection), and what the objects learn ([`apply`]).
//!
//! Nothing in the session changes until every statement has succeeded, so a failed flush
//! leaves the objects exactly as they were (the savepoint leaves the database as it was).

mod apply;
mod changes;
mod deletes;
mod execute;
mod keys;
pub(crate) mod order;
mod plan;

use crate::error::Result;
use crate::session::Session;

pub(crate) use keys::before_commit;

/// A row of the session: (store, slot).
type Row = (usize, u32);

/// For each store and relation, the store of the model at the other end (if it has one).
type Targets = Vec<Vec<Option<usize>>>;

fn targets(db: &Session) -> Targets {
    db.links
        .iter()
        .map(|links| links.iter().map(|l| l.target).collect())
        .collect()
}

/// Writes every change of the session in one savepoint, then brings the objects in line.
pub(crate) fn flush(db: &mut Session) -> Result<()> {
    db.conn.check_not_aborted()?;
    let deletes = deletes::collect(db)?;
    changes::validate(db, &deletes)?;
    let updates = changes::changed_columns(db, &deletes);
    let inserts = deletes::inserts(db, &deletes);
    let removed = deletes::stored_rows(db, &deletes);
    let targets = targets(db);
    let writes = !updates.is_empty() || inserts.iter().chain(&removed).any(|rows| !rows.is_empty());
    let written = if writes {
        let scope = db.conn.begin_flush()?;
        match write(db, &targets, &updates, (&inserts, &removed), &deletes) {
            Ok(done) => {
                db.conn.end_flush(scope)?;
                Some(done)
            }
            Err(e) => {
                // The database is restored (to the savepoint, or by rolling back a
                // transaction that held nothing else); the session was not touched.
                db.conn.undo_flush(scope, &e);
                return Err(e);
            }
        }
    } else {
        None
    };
    apply::after_flush(db, &targets, written.as_ref(), &updates, &deletes);
    Ok(())
}

/// Reserves keys, orders the rows, plans the statements and runs them.
fn write(
    db: &mut Session,
    targets: &Targets,
    updates: &changes::Updates,
    (inserts, removed): (&[Vec<u32>], &[Vec<u32>]),
    deletes: &deletes::Deletes,
) -> Result<apply::Written> {
    let reserved = keys::reserve_all(db, updates, inserts)?;
    let (conn, stores) = (&mut db.conn, &db.stores[..]);
    let mut resolver =
        keys::Resolver::new(stores, db.id, targets, (inserts, deletes), reserved.keys);
    let inserted = order::sort(&mut resolver)?;
    let deleted = order::sort_deletes(stores, targets, removed, |si, slot, rel| {
        resolver.stored_fk(si, slot, rel)
    })?;
    let plan = plan::build(
        &mut resolver,
        conn.dialect(),
        updates,
        (&inserted.0, inserted.1),
        (&deleted.0, deleted.1),
    );
    execute::run(conn, &plan, &resolver, &inserted.0)?;
    drop(plan);
    Ok(apply::Written {
        keys: resolver.keys,
        inserted: inserted.0,
        explicit: reserved.explicit,
    })
}
