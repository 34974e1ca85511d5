//! Raw SQL inside the session (rows become objects through the identity map; any statement
//! for its row count, in the session's transaction) and row locks with `for_update`.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A stock item.
#[derive(Model, Debug)]
pub struct Item {
    #[key]
    pub id: Id<Item>,
    pub name: String,
    pub qty: i64,
    #[belongs_to]
    pub shelf: Option<Id<Shelf>>,
}

/// A shelf items stand on.
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    pub label: String,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Shelf, Item)>().expect("create tables");
    db
}

fn seed(db: &mut Session) -> orm_core::Result<Handle<Shelf>> {
    let top = db.add(Shelf::new("top"));
    db.add(Item::new("bolt", 10, top));
    db.add(Item::new("nut", 0, top));
    db.add(Item::new("gear", 3, None));
    db.commit()?;
    Ok(top)
}

backend_tests! {
    fn a_raw_select_becomes_objects_through_the_identity_map(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let top = seed(&mut db)?;
        let bolt = db.query::<Item>().filter(Item::name.eq("bolt")).one()?;
        db[bolt].qty = 99; // not flushed: autoflush off below
        db.set_autoflush(false);
        // Columns in another order, and one more than the model has: matched by name.
        let sql = t.sql("SELECT qty, shelf_id, 1 AS extra, name, id FROM item WHERE shelf_id = ?1 ORDER BY id");
        let top_id = db[top].id;
        let found = db.query_sql::<Item>(&sql, &[&top_id])?;
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], bolt, "the row the session holds is the same object");
        assert_eq!(db[bolt].qty, 99, "with its edit");
        assert_eq!(db[found[1]].name, "nut");
        assert_eq!(db[found[1]].shelf, Some(db[top].id));
        // With autoflush the edit is written first, so the query sees it.
        db.set_autoflush(true);
        let sql = t.sql("SELECT * FROM item WHERE qty > ?1");
        let found = db.query_sql::<Item>(&sql, &[&50i64])?;
        assert_eq!(found, [bolt]);
        // A pending handle as a parameter is resolved by that flush.
        let low = db.add(Shelf::new("low"));
        db.add(Item::new("washer", 5, low));
        let sql = t.sql("SELECT * FROM item WHERE shelf_id = ?1");
        let on_low = db.query_sql::<Item>(&sql, &[&low])?;
        assert_eq!(on_low.len(), 1);
        assert_eq!(db[on_low[0]].name, "washer");
        Ok(())
    }

    fn a_raw_select_missing_a_column_says_which(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let e = db.query_sql::<Item>("SELECT id, name FROM item", &[]).unwrap_err();
        assert!(
            matches!(e, Error::RawColumnMissing { model: "Item", field: "qty", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("SELECT id, name FROM item"), "{e}");
        // Checked before any row is read: also when none matches.
        let e = db
            .query_sql::<Item>("SELECT id FROM item WHERE 1 = 0", &[])
            .unwrap_err();
        assert!(matches!(e, Error::RawColumnMissing { field: "name", .. }), "{e}");
        Ok(())
    }

    fn execute_sql_runs_in_the_session_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let sql = t.sql("UPDATE item SET qty = qty + ?1 WHERE qty < ?2");
        assert_eq!(db.execute_sql(&sql, &[&100i64, &5i64])?, 2);
        // Inside the transaction: rolled back with it.
        db.rollback()?;
        assert_eq!(t.count("SELECT CAST(sum(qty) AS BIGINT) FROM item"), 13);
        assert_eq!(db.execute_sql(&sql, &[&100i64, &5i64])?, 2);
        let hostile = "x'); DROP TABLE item; --";
        let insert = t.sql("INSERT INTO item (id, name, qty) VALUES (?1, ?2, ?3)");
        assert_eq!(db.execute_sql(&insert, &[&50i64, &hostile, &1i64])?, 1);
        db.commit()?;
        assert_eq!(t.count("SELECT CAST(sum(qty) AS BIGINT) FROM item"), 214);
        assert_eq!(t.rows("SELECT name FROM item WHERE id = 50"), table(&[&[hostile]]));
        // A failing statement is an error, and the session goes on.
        assert!(db.execute_sql("UPDATE no_such_table SET x = 1", &[]).is_err());
        db.rollback()?;
        assert_eq!(db.query::<Item>().count()?, 4);
        Ok(())
    }

    fn for_update_locks_the_rows_read_until_the_transaction_ends(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        db.log_statements(true);
        let bolt = db
            .query::<Item>()
            .filter(Item::name.eq("bolt"))
            .for_update()
            .one()?;
        let select = db
            .take_statements()
            .into_iter()
            .map(|s| s.sql)
            .find(|s| s.starts_with("SELECT"))
            .expect("the query");
        match t.backend() {
            Backend::Postgres => {
                assert!(select.ends_with(" FOR UPDATE"), "{select}");
                // Another connection cannot take the lock (it waits, then times out).
                let mut other = t.raw();
                // (The raw connection's lock_timeout is 2 s; its error says only "db error".)
                let blocked = other.exec("UPDATE item SET qty = 0 WHERE name = 'bolt'");
                assert!(blocked.is_err(), "the row is locked");
                // Rows not read are not locked.
                other.exec("UPDATE item SET qty = 1 WHERE name = 'gear'").expect("unlocked row");
            }
            Backend::Sqlite => {
                // The session's write transaction already keeps other writers out.
                assert!(!select.contains("FOR UPDATE"), "{select}");
                let e = t.raw().exec("UPDATE item SET qty = 0 WHERE name = 'bolt'").unwrap_err();
                assert!(e.contains("locked"), "{e}");
            }
        }
        db[bolt].qty -= 1;
        db.commit()?;
        // Once committed, the lock is gone.
        t.raw().exec("UPDATE item SET qty = qty + 1 WHERE name = 'bolt'").expect("unlocked");
        assert_eq!(t.count("SELECT qty FROM item WHERE name = 'bolt'"), 10);
        Ok(())
    }
}

backend_tests! {
    /// A join whose tables share column names cannot be matched to one model's columns.
    fn a_raw_join_with_two_columns_of_a_name_is_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let sql = "SELECT * FROM shelf s JOIN item i ON i.shelf_id = s.id";
        let e = db.query_sql::<Item>(sql, &[]).unwrap_err();
        assert!(
            matches!(&e, Error::RawColumnAmbiguous { model: "Item", column, .. } if column == "id"),
            "{e}"
        );
        // Naming the model's columns works.
        let sql = "SELECT i.* FROM shelf s JOIN item i ON i.shelf_id = s.id WHERE s.label = 'top'";
        assert_eq!(db.query_sql::<Item>(sql, &[])?.len(), 2);
        Ok(())
    }
}
