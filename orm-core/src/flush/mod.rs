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
mod links;
pub(crate) mod order;
mod plan;

use crate::error::Result;
use crate::session::Session;

pub(crate) use keys::{before_commit, first_version, reserve_keys_for};

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
    let links = links::collect(db, &deletes);
    let writes = !updates.is_empty()
        || !links.is_empty()
        || inserts.iter().chain(&removed).any(|rows| !rows.is_empty());
    let written = if writes {
        let scope = db.conn.begin_flush()?;
        let changes = (&updates, &links);
        match write(db, &targets, changes, (&inserts, &removed), &deletes) {
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
    (updates, links): (&changes::Updates, &links::Links),
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
    links::run(conn, &resolver, links)?;
    drop(plan);
    Ok(apply::Written {
        keys: resolver.keys,
        inserted: inserted.0,
        explicit: reserved.explicit,
    })
}

/// The order and plan phases on their own: objects added to a session whose connection
/// refuses every statement, so nothing here reaches a database.
#[cfg(all(test, feature = "derive"))]
mod tests {
    use super::plan::{self, Statement};
    use super::{changes, deletes, keys, order, targets};
    use crate::prelude::*;
    use crate::value::ValueRef;

    #[derive(Model, Debug)]
    struct Parent {
        #[key]
        id: Id<Parent>,
        name: String,
        #[has_many(back_populates = "parent")]
        kids: HasMany<Kid>,
    }

    #[derive(Model, Debug)]
    struct Kid {
        #[key]
        id: Id<Kid>,
        name: String,
        #[belongs_to(back_populates = "kids")]
        parent: Id<Parent>,
    }

    #[derive(Model, Debug)]
    struct Node {
        #[key]
        id: Id<Node>,
        #[belongs_to(back_populates = "children")]
        up: Option<Id<Node>>,
        #[has_many(back_populates = "up")]
        children: HasMany<Node>,
    }

    #[test]
    fn parents_are_inserted_first_and_a_chain_one_row_a_statement() {
        let mut db = Session::with_connection(Box::new(crate::session::Closed));
        // Added children first: the order puts the parents before them anyway.
        let n1 = db.add(Node::new(None));
        let n2 = db.add(Node::new(n1));
        db.add(Node::new(n2));
        let a = db.add(Parent::new("a"));
        let b = db.add(Parent::new("b"));
        db.add(Kid::new("x", a));
        db.add(Kid::new("y", b));
        db.add(Kid::new("z", a));
        let targets = targets(&db);
        let nothing = deletes::Deletes::default();
        let inserts = deletes::inserts(&db, &nothing);
        // Keys as a reservation would give them: 1.. per table, in slot order.
        let reserved = db
            .stores
            .iter()
            .map(|s| (1..=s.slot_count() as i64).collect())
            .collect();
        let mut r =
            keys::Resolver::new(&db.stores, db.id, &targets, (&inserts, &nothing), reserved);
        let (rows, deferred) = order::sort(&mut r).unwrap();
        let tables: Vec<&str> = rows
            .iter()
            .map(|&(si, _)| db.stores[si].meta().table)
            .collect();
        assert_eq!(
            tables,
            ["node", "node", "node", "parent", "parent", "kid", "kid", "kid"]
        );
        assert!(deferred.is_empty());
        let updates = changes::Updates::default();
        let p = plan::build(
            &mut r,
            &crate::sql::Sqlite,
            &updates,
            (&rows, deferred),
            (&[], Default::default()),
        );
        let inserts: Vec<(&str, usize)> = p
            .statements
            .iter()
            .map(|s| match s {
                Statement::Insert { meta, rows } => (meta.table, rows.len()),
                _ => panic!("only inserts"),
            })
            .collect();
        // Each node references the one before: one statement each. Parents and kids in one.
        assert_eq!(
            inserts,
            [
                ("node", 1),
                ("node", 1),
                ("node", 1),
                ("parent", 2),
                ("kid", 3)
            ]
        );
        // The kids' keys are their parents' reserved keys.
        let mut values = Vec::new();
        p.insert_params(&r, &rows, 5..8, &mut values);
        let parents: Vec<ValueRef<'_>> = values.chunks(3).map(|row| row[2]).collect();
        assert_eq!(
            parents,
            [ValueRef::I64(1), ValueRef::I64(2), ValueRef::I64(1)]
        );
    }
}
