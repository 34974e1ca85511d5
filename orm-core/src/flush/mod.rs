//! The unit of work, one module per phase: what [`changes`] the session holds, the [`keys`]
//! of new rows, the [`order`] rows go in, the [`plan`] of statements (data), [`execute`]
//! (the only part that talks to the connection), and what the objects learn ([`apply`]).
//!
//! Nothing in the session changes until every statement has succeeded, so a failed flush
//! leaves the objects exactly as they were (the savepoint leaves the database as it was).

mod apply;
mod changes;
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
    changes::validate(db)?;
    let updates = changes::changed_columns(db);
    let has_inserts = db.stores.iter().any(|s| !s.new_slots().is_empty());
    let targets = targets(db);
    let written = if has_inserts || !updates.is_empty() {
        db.conn.savepoint()?;
        match write(db, &targets, &updates) {
            Ok(done) => {
                db.conn.release()?;
                Some(done)
            }
            Err(e) => {
                // The savepoint restores the database; the session was not touched.
                db.conn.undo_savepoint(&e);
                return Err(e);
            }
        }
    } else {
        None
    };
    apply::after_flush(db, &targets, written.as_ref(), &updates);
    Ok(())
}

/// Reserves keys, orders the new rows, plans the statements and runs them.
fn write(
    db: &mut Session,
    targets: &Targets,
    updates: &changes::Updates,
) -> Result<apply::Written> {
    let reserved = keys::reserve_all(db, updates)?;
    let (conn, stores) = (&mut db.conn, &db.stores[..]);
    let mut resolver = keys::Resolver::new(stores, db.id, targets, reserved.keys);
    let (order, deferred) = order::sort(&mut resolver)?;
    let plan = plan::build(&mut resolver, conn.dialect(), updates, &order, deferred);
    execute::run(conn, &plan)?;
    drop(plan);
    Ok(apply::Written {
        keys: resolver.keys,
        inserted: order,
        explicit: reserved.explicit,
    })
}
