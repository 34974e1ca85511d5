//! `expunge` (one object out of the session, its row kept), `refresh` (one object read
//! again from its row, its unflushed edits dropped) and a query's `populate_existing`,
//! checked against the rows by plain SQL.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A shelf of boxes.
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    pub label: String,
    #[has_many(back_populates = "shelf")]
    pub boxes: HasMany<Crate>,
}

/// A box on a shelf (or on none).
#[derive(Model, Debug)]
pub struct Crate {
    #[key]
    pub id: Id<Crate>,
    pub name: String,
    pub weight: i64,
    #[belongs_to(back_populates = "boxes")]
    pub shelf: Option<Id<Shelf>>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Shelf, Crate)>().expect("create tables");
    db
}

/// Shelves `top` (boxes a, b) and `low` (box c), committed.
fn seed(db: &mut Session) -> orm_core::Result<[Handle<Shelf>; 2]> {
    let top = db.add(Shelf::new("top"));
    let low = db.add(Shelf::new("low"));
    db.add(Crate::new("a", 1, top));
    db.add(Crate::new("b", 2, top));
    db.add(Crate::new("c", 3, low));
    db.commit()?;
    Ok([top, low])
}

fn names(db: &Session, hs: &[Handle<Crate>]) -> Vec<String> {
    hs.iter().map(|&h| db[h].name.clone()).collect()
}

backend_tests! {
    fn an_expunged_object_leaves_the_session_and_its_row_stays(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let boxes = db.load(top, Shelf::boxes)?;
        let a = boxes[0];
        db[a].weight = 100; // dropped with it
        db.expunge(a)?;
        assert!(!db.contains(a));
        assert!(db.try_get(a).is_none());
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"], "out of its parent's collection");
        db.commit()?;
        assert_eq!(t.rows("SELECT name, weight FROM crate WHERE name = 'a'"), table(&[&["a", "1"]]));
        // Read again: a new object with the row's values.
        let again = db.query::<Crate>().filter(Crate::name.eq("a")).one()?;
        assert_ne!(again, a);
        assert_eq!(db[again].weight, 1);
        // Operations on the old handle are refused.
        let e = db.delete(a).unwrap_err();
        assert!(matches!(e, Error::InvalidHandle { .. }), "{e}");
        assert!(matches!(db.expunge(a), Err(Error::InvalidHandle { .. })));
        Ok(())
    }

    fn an_expunged_new_object_is_never_inserted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let d = db.add(Crate::new("d", 4, top));
        let loose = db.add(Shelf::new("loose"));
        db.expunge(d)?;
        assert!(!db[top].boxes.contains(d));
        // A child pointing at an expunged new parent cannot be written.
        let e2 = db.add(Crate::new("e", 5, loose));
        db.expunge(loose)?;
        let e = db.commit().unwrap_err();
        assert!(matches!(e, Error::DiscardedParent { .. }), "{e}");
        db.set(e2, Crate::shelf, None::<Id<Shelf>>)?;
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE name = 'd'"), 0);
        assert_eq!(t.count("SELECT count(*) FROM shelf WHERE label = 'loose'"), 0);
        assert_eq!(t.rows("SELECT shelf_id FROM crate WHERE name = 'e'"), table(&[&["NULL"]]));
        Ok(())
    }

    fn expunge_drops_a_pending_delete_and_rollback_does_not_bring_it_back(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let c = db.load(low, Shelf::boxes)?[0];
        db.delete(c)?;
        db.expunge(c)?;
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE name = 'c'"), 1, "not deleted");
        // Updated by a flush, then expunged, then rolled back: the row goes back, the object
        // stays out.
        let b = db.load(top, Shelf::boxes)?[1];
        db[b].weight = 20;
        db.flush()?;
        db.expunge(b)?;
        db.rollback()?;
        assert!(!db.contains(b));
        assert_eq!(t.count("SELECT weight FROM crate WHERE name = 'b'"), 2);
        // No dead handle in the collection; the row is read again as a new object.
        assert!(!db[top].boxes.contains(b));
        let again = db.query::<Crate>().filter(Crate::name.eq("b")).one()?;
        assert_eq!(db[again].weight, 2);
        Ok(())
    }

    fn refresh_drops_edits_and_reads_what_others_wrote(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let a = db.query::<Crate>().filter(Crate::name.eq("a")).one()?;
        db.load(top, Shelf::boxes)?;
        db.load(low, Shelf::boxes)?;
        db[a].weight = 100;
        // Another program moves the box to the low shelf and renames it.
        t.exec("UPDATE crate SET name = 'a2', shelf_id = 2 WHERE name = 'a'");
        db.refresh(a)?;
        assert_eq!((db[a].name.as_str(), db[a].weight), ("a2", 1));
        assert_eq!(db[a].shelf, Some(db[low].id));
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        // (A child that moves joins the end of its new parent's collection.)
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a2"]);
        // Nothing left to write: the edit is gone.
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        assert_eq!(t.rows("SELECT name, weight FROM crate WHERE id = 1"), table(&[&["a2", "1"]]));
        // A parent's loaded collection is kept through its own refresh.
        t.exec("UPDATE shelf SET label = 'upper' WHERE label = 'top'");
        db.refresh(top)?;
        assert_eq!(db[top].label, "upper");
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        Ok(())
    }

    fn refresh_of_a_deleted_row_or_a_new_object_is_an_error(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let b = db.query::<Crate>().filter(Crate::name.eq("b")).one()?;
        t.exec("DELETE FROM crate WHERE name = 'b'");
        let e = db.refresh(b).unwrap_err();
        assert!(matches!(e, Error::RowGone { model: "Crate", .. }), "{e}");
        let d = db.add(Crate::new("d", 4, top));
        let e = db.refresh(d).unwrap_err();
        assert!(matches!(e, Error::PendingId { model: "Crate" }), "{e}");
        // The session goes on.
        db.expunge(b)?;
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM crate"), 3);
        Ok(())
    }

    fn a_cursor_with_expunge_keeps_the_session_small(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let top = db.add(Shelf::new("top"));
        for i in 0..50 {
            db.add(Crate::new(format!("n{i}"), i, top));
        }
        db.commit()?;
        let mut db = session(t);
        let mut cursor = db.query::<Crate>().cursor(7);
        let mut total = 0;
        while let Some(h) = cursor.next(&mut db)? {
            total += db[h].weight;
            db.expunge(h)?;
        }
        assert_eq!(total, t.count("SELECT CAST(sum(weight) AS BIGINT) FROM crate"));
        assert!(db.all::<Crate>()?.len() == 50, "the rows are still there");
        Ok(())
    }

    fn populate_existing_overwrites_the_objects_a_query_reads(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let boxes = db.query::<Crate>().all()?;
        db.load(top, Shelf::boxes)?;
        db.load(low, Shelf::boxes)?;
        let (a, b) = (boxes[0], boxes[1]);
        db[b].weight = 200; // not flushed
        t.exec("UPDATE crate SET weight = 10, shelf_id = 2 WHERE name = 'a'");
        // Without it, the objects keep what the session has.
        let again = db.query::<Crate>().autoflush(false).all()?;
        assert_eq!(again, boxes);
        assert_eq!((db[a].weight, db[b].weight), (1, 200));
        // With it (and autoflush off, so the edit is not written first), the rows win.
        let fresh = db
            .query::<Crate>()
            .autoflush(false)
            .populate_existing()
            .all()?;
        assert_eq!(fresh, boxes, "the same objects");
        assert_eq!((db[a].weight, db[b].weight), (10, 2));
        assert_eq!(db[a].shelf, Some(db[low].id));
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a"]);
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty(), "nothing left to write");
        // With autoflush on, edits are written first, then read back.
        db[b].weight = 300;
        let found = db.query::<Crate>().populate_existing().filter(Crate::name.eq("b")).one()?;
        assert_eq!(db[found].weight, 300);
        db.commit()?;
        assert_eq!(t.count("SELECT weight FROM crate WHERE name = 'b'"), 300);
        Ok(())
    }
}
