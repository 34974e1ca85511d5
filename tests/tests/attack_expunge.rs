//! Attacks on `Session::expunge` and `Session::refresh`: targeted cases (identity map, loaded
//! collections, rollback, has-one, natural and edited keys, failed flushes, foreign handles)
//! and a property test of random operation sequences against a model of the rows and of the
//! session, on both backends. Tests that show a defect are `#[ignore = "BUG: .."]`.

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

/// An account with one profile (required, deleted when let go of) and at most one card
/// (nullable: set to `NULL` when let go of).
#[derive(Model, Debug)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    pub name: String,
    #[has_one(back_populates = "account", delete_orphans)]
    pub profile: HasOne<Profile>,
    #[has_one(back_populates = "owner")]
    pub card: HasOne<Card>,
}

/// The profile of an account.
#[derive(Model, Debug)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    pub bio: String,
    #[belongs_to(back_populates = "profile")]
    pub account: Id<Account>,
}

/// A card an account may own.
#[derive(Model, Debug)]
pub struct Card {
    #[key]
    pub id: Id<Card>,
    pub number: String,
    #[belongs_to(back_populates = "card")]
    pub owner: Option<Id<Account>>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Shelf, Crate, Account, Profile, Card, User, Product, Country)>()
        .expect("create tables");
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
    hs.iter()
        .map(|&h| match db.try_get(h) {
            Some(c) => c.name.clone(),
            None => "<dead handle>".to_owned(),
        })
        .collect()
}

fn by_name(db: &mut Session, name: &str) -> orm_core::Result<Handle<Crate>> {
    db.query::<Crate>().filter(Crate::name.eq(name)).one()
}

// ---------------------------------------------------------------------------------------
// 1. Targeted cases
// ---------------------------------------------------------------------------------------

bug_tests! {
    /// A child expunged after its parent's collection was loaded and committed: rollback
    /// restores the parent's collection as it was at the commit, dead handle included.
    #[sqlite()]
    #[postgres()]
    fn rollback_does_not_put_an_expunged_child_back_in_a_collection(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let boxes = db.load(top, Shelf::boxes)?;
        db.commit()?;
        db.expunge(boxes[0])?;
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        db.rollback()?;
        assert!(!db.contains(boxes[0]));
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"], "no dead handle after rollback");
        // The session goes on: appending to the collection and committing works.
        db.add(Crate::new("d", 4, top));
        db.commit()?;
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b", "d"]);
        Ok(())
    }

    /// A refresh that moved a child between loaded collections, then rollback: the child
    /// keeps the key it read (not undone), so it must stay in its new parent's collection.
    #[sqlite()]
    #[postgres()]
    fn rollback_after_a_refresh_keeps_collections_in_step_with_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let a = db.load(top, Shelf::boxes)?[0];
        db.load(low, Shelf::boxes)?;
        db.commit()?;
        t.exec("UPDATE crate SET shelf_id = 2 WHERE name = 'a'");
        db.refresh(a)?;
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a"]);
        db.rollback()?;
        let low_id = db[low].id;
        assert_eq!(db[a].shelf, Some(low_id), "the value read stays: it is the database's");
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"], "top's collection");
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a"], "low's collection");
        Ok(())
    }

    /// Expunged after the session's own flush updated it, read again in the same
    /// transaction, then rolled back: the new object shows the rolled-back value.
    #[sqlite()]
    #[postgres()]
    fn an_object_read_again_after_expunge_is_restored_by_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let a = by_name(&mut db, "a")?;
        db[a].weight = 50;
        db.flush()?;
        db.expunge(a)?;
        let again = by_name(&mut db, "a")?;
        assert_eq!(db[again].weight, 50, "the transaction's value");
        db.rollback()?;
        assert_eq!(t.count("SELECT weight FROM crate WHERE name = 'a'"), 1);
        // Either the object is gone or it shows the row as it is now.
        if db.contains(again) {
            assert_eq!(db[again].weight, 1, "after rollback the row's weight is 1 again");
        }
        // An edit of another column must not leave the session and the row apart.
        let again = by_name(&mut db, "a")?;
        db[again].name = "a2".into();
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, weight FROM crate WHERE id = 1"),
            table(&[&["a2", &db[again].weight.to_string()]])
        );
        Ok(())
    }

    /// Inserted by the session's flush, expunged, read again by key in the same
    /// transaction, rolled back: the row is gone, the session must not hold an object for it.
    #[sqlite()]
    #[postgres()]
    fn an_inserted_row_read_again_after_expunge_is_gone_after_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let d = db.add(Crate::new("d", 4, top));
        db.flush()?;
        let id = db[d].id;
        db.expunge(d)?;
        let again = db.get::<Crate>(id)?.expect("row of the transaction");
        db.rollback()?;
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE name = 'd'"), 0);
        assert!(!db.contains(again), "an object for a rolled-back insert survives rollback");
        assert!(db.get::<Crate>(id)?.is_none(), "get of a key with no row");
        Ok(())
    }

    /// A has-one child refreshed into a parent whose loaded has-one holds a stale child:
    /// the parent lets go of the stale one, and the next flush writes (NULL) over what
    /// another program wrote to a row the user never touched.
    #[sqlite()]
    #[postgres()]
    fn refreshing_a_has_one_child_does_not_write_to_another_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        let bob = db.add(Account::new("bob"));
        let c1 = db.add(Card::new("1111", ann));
        let c2 = db.add(Card::new("2222", bob));
        db.commit()?;
        assert_eq!(db[bob].card, Some(c2));
        // Another program swaps the cards.
        t.exec("UPDATE card SET owner_id = NULL WHERE id = 2; \
                UPDATE card SET owner_id = 2 WHERE id = 1; \
                UPDATE card SET owner_id = 1 WHERE id = 2");
        db.refresh(c1)?;
        assert_eq!(db[c1].owner, Some(db[bob].id));
        db.log_statements(true);
        db.commit()?;
        let w = writes(&mut db);
        assert_eq!(
            t.rows("SELECT number, owner_id FROM card ORDER BY id"),
            table(&[&["1111", "2"], &["2222", "1"]]),
            "written: {w:?}"
        );
        assert!(w.is_empty(), "a refresh then commit writes nothing");
        // Refreshing one row must not change another object.
        assert_eq!(db[c2].owner, Some(db[bob].id), "c2 is untouched (stale, not unset)");
        Ok(())
    }

    /// The same with a required has-one under `delete_orphans`: the stale profile is let go
    /// of, and the commit deletes a row another program gave to another account.
    #[sqlite()]
    #[postgres()]
    fn refreshing_a_has_one_child_does_not_delete_another_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        let bob = db.add(Account::new("bob"));
        let p1 = db.add(Profile::new("one", ann));
        let p2 = db.add(Profile::new("two", bob));
        db.commit()?;
        // Another program gives bob's profile to a new account carl, and ann's to bob.
        t.exec("INSERT INTO account (id, name) VALUES (3, 'carl'); \
                UPDATE profile SET account_id = 3 WHERE id = 2; \
                UPDATE profile SET account_id = 2 WHERE id = 1");
        db.refresh(p1)?;
        assert_eq!(db[p1].account, db[bob].id);
        let committed = db.commit();
        assert_eq!(
            t.rows("SELECT bio, account_id FROM profile ORDER BY id"),
            table(&[&["one", "2"], &["two", "3"]]),
            "commit: {committed:?}"
        );
        committed?;
        assert_eq!(db[p2].account, db[bob].id, "p2 is untouched (stale)");
        Ok(())
    }

    /// Expunged out of its parent's loaded collection, then read again: the new object's key
    /// names the parent, but the collection (loaded, and returned as is by `load`) never
    /// holds it again, unlike what a fresh query of the parent's children says.
    #[sqlite(ignore = "LEFT: a row read again after expunge does not join a parent's loaded collection (as rows other programs insert do not)")]
    #[postgres(ignore = "LEFT: a row read again after expunge does not join a parent's loaded collection (as rows other programs insert do not)")]
    fn a_child_read_again_after_expunge_is_in_its_parents_loaded_collection(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let a = db.load(top, Shelf::boxes)?[0];
        db.expunge(a)?;
        let again = by_name(&mut db, "a")?;
        assert_eq!(db[again].shelf, Some(db[top].id));
        let top_id = db[top].id;
        let fresh = db.query::<Crate>().filter(Crate::shelf.eq(top_id)).all()?;
        assert_eq!(fresh.len(), 2, "a fresh query");
        let loaded = db.load(top, Shelf::boxes)?;
        assert_eq!(names(&db, &loaded), ["a", "b"], "the loaded collection");
        Ok(())
    }
}

backend_tests! {
    fn expunging_a_loaded_parent_keeps_its_children_and_their_rows(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let boxes = db.load(top, Shelf::boxes)?;
        let d = db.add(Crate::new("d", 4, top)); // new, under a stored parent
        let top_id = db[top].id;
        db.expunge(top)?;
        assert!(!db.contains(top));
        assert!(db.handle_of(top_id).is_none(), "the identity map forgot it");
        for &b in &boxes {
            assert_eq!(db[b].shelf, Some(top_id), "children keep their key");
        }
        db.commit()?;
        assert_eq!(t.rows("SELECT shelf_id FROM crate WHERE name = 'd'"), table(&[&["1"]]));
        // Read again: a new object, whose collection holds the same children.
        let top2 = db.get::<Shelf>(top_id)?.expect("row kept");
        assert_ne!(top2, top);
        let again = db.load(top2, Shelf::boxes)?;
        assert_eq!(again, [boxes[0], boxes[1], d]);
        // Moving a child between the new object and another parent keeps both in step.
        db.load(low, Shelf::boxes)?;
        db.set(boxes[0], Crate::shelf, low)?;
        assert_eq!(names(&db, db[top2].boxes.as_slice()), ["b", "d"]);
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a"]);
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE shelf_id = 2"), 2);
        Ok(())
    }

    fn expunging_a_new_parent_with_new_and_moved_children_fails_the_flush_until_fixed(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let a = db.load(top, Shelf::boxes)?[0];
        let loose = db.add(Shelf::new("loose"));
        let n = db.add(Crate::new("n", 9, loose));
        db.set(a, Crate::shelf, loose)?;
        assert_eq!(db[loose].boxes, [n, a]);
        db.expunge(loose)?;
        for _ in 0..2 {
            let e = db.flush().unwrap_err();
            assert!(matches!(e, Error::DiscardedParent { .. }), "{e}");
        }
        assert_eq!(t.count("SELECT count(*) FROM crate"), 3, "nothing written");
        db.set(n, Crate::shelf, top)?;
        let e = db.commit().unwrap_err();
        assert!(matches!(e, Error::DiscardedParent { .. }), "a still points at it: {e}");
        db.expunge(a)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, shelf_id FROM crate ORDER BY name"),
            table(&[&["a", "1"], &["b", "1"], &["c", "2"], &["n", "1"]])
        );
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b", "n"]);
        assert_eq!(t.count("SELECT count(*) FROM shelf"), 2);
        Ok(())
    }

    fn expunge_after_an_unflushed_key_edit_forgets_both_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let a = by_name(&mut db, "a")?;
        db[a].id = Id::new(77);
        db[a].weight = 5;
        db.expunge(a)?;
        assert!(db.handle_of(Id::<Crate>::new(1)).is_none());
        assert!(db.handle_of(Id::<Crate>::new(77)).is_none());
        // Both keys read the database.
        let again = db.get::<Crate>(Id::new(1))?.expect("row 1 is there");
        assert_ne!(again, a);
        assert_eq!((db[again].name.as_str(), db[again].weight), ("a", 1));
        assert!(db.get::<Crate>(Id::new(77))?.is_none());
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE id = 77"), 0);
        // The same after the key edit was flushed and edited again.
        db[again].id = Id::new(77);
        db.flush()?;
        db[again].id = Id::new(78);
        db.expunge(again)?;
        assert!(db.handle_of(Id::<Crate>::new(1)).is_none());
        assert!(db.handle_of(Id::<Crate>::new(77)).is_none());
        assert!(db.handle_of(Id::<Crate>::new(78)).is_none());
        let at77 = db.get::<Crate>(Id::new(77))?.expect("flushed key");
        assert_eq!(db[at77].name, "a");
        assert!(db.get::<Crate>(Id::new(78))?.is_none());
        assert!(db.get::<Crate>(Id::new(1))?.is_none());
        db.commit()?;
        assert_eq!(t.rows("SELECT id FROM crate WHERE name = 'a'"), table(&[&["77"]]));
        Ok(())
    }

    fn expunge_after_a_natural_key_edit_forgets_both_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let fr = db.add(Country::new("FR", "France", Some(68)));
        let de = db.add(Country::new("DE", "Germany", Some(84)));
        db.commit()?;
        // Edited to the key another object holds, then expunged: that object keeps its key.
        db[fr].code = "DE".into();
        db.expunge(fr)?;
        assert_eq!(db.get::<Country>("DE".to_string())?, Some(de));
        let fr2 = db.get::<Country>("FR".to_string())?.expect("row kept");
        assert_ne!(fr2, fr);
        assert_eq!(db[fr2].name, "France");
        db[fr2].code = "XX".into();
        db.expunge(fr2)?;
        assert!(db.get::<Country>("XX".to_string())?.is_none());
        let fr3 = db.get::<Country>("FR".to_string())?.expect("row kept");
        assert_eq!(db[fr3].code, "FR");
        db.commit()?;
        assert_eq!(
            t.rows("SELECT code, name FROM country ORDER BY code"),
            table(&[&["DE", "Germany"], &["FR", "France"]])
        );
        Ok(())
    }

    fn expunge_then_add_again_with_the_same_explicit_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let a = by_name(&mut db, "a")?;
        let top_id = db[top].id;
        db.expunge(a)?;
        // The row is still there: the insert fails, nothing changes, the session goes on.
        let dup = db.add(Crate {
            id: Id::new(1),
            name: "a-again".into(),
            weight: 7,
            shelf: Some(top_id),
        });
        assert!(db.commit().is_err());
        assert!(db.contains(dup) && db.is_new(dup));
        assert_eq!(t.rows("SELECT name FROM crate WHERE id = 1"), table(&[&["a"]]));
        db.expunge(dup)?;
        db.commit()?;
        // Another program deletes the row: now the same key can be added.
        t.exec("DELETE FROM crate WHERE id = 1");
        let fresh = db.add(Crate {
            id: Id::new(1),
            name: "a-new".into(),
            weight: 8,
            shelf: None,
        });
        db.commit()?;
        assert_eq!(db[fresh].id, Id::new(1));
        assert_eq!(db.get::<Crate>(Id::new(1))?, Some(fresh));
        assert_eq!(t.rows("SELECT name, weight FROM crate WHERE id = 1"), table(&[&["a-new", "8"]]));
        // A natural key: expunged, added again, refused by the database, then expunged too.
        let fr = db.add(Country::new("FR", "France", None));
        db.commit()?;
        db.expunge(fr)?;
        let fr2 = db.add(Country::new("FR", "France 2", None));
        assert!(db.commit().is_err());
        db.expunge(fr2)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM country"), table(&[&["France"]]));
        Ok(())
    }

    fn expunging_a_new_parent_with_an_explicit_key_its_children_name(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let s = db.add(Shelf {
            id: Id::new(40),
            label: "explicit".into(),
            boxes: HasMany::new(),
        });
        let n = db.add(Crate::new("n", 1, Id::<Shelf>::new(40)));
        db.load(s, Shelf::boxes)?;
        db.expunge(s)?;
        let e = db.commit().unwrap_err();
        // The child names the parent by its stored key: the flush fails one way or another,
        // and writes nothing.
        eprintln!("child of an expunged parent with an explicit key: {e}");
        assert_eq!(t.count("SELECT count(*) FROM crate"), 3);
        assert_eq!(t.count("SELECT count(*) FROM shelf"), 2);
        db.rollback()?;
        assert!(!db.contains(n));
        db.commit()?;
        Ok(())
    }

    fn refresh_after_the_sessions_own_flush_then_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let a = db.load(top, Shelf::boxes)?[0];
        db.load(low, Shelf::boxes)?;
        db[a].weight = 10;
        db.set(a, Crate::shelf, low)?;
        db.flush()?;
        db[a].name = "unflushed".into();
        db.refresh(a)?;
        assert_eq!((db[a].name.as_str(), db[a].weight), ("a", 10), "the transaction's row");
        assert_eq!(db[a].shelf, Some(db[low].id));
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "a"]);
        db.rollback()?;
        assert_eq!((db[a].name.as_str(), db[a].weight), ("a", 1));
        assert_eq!(db[a].shelf, Some(db[top].id));
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["a", "b"]);
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c"]);
        db.refresh(a)?;
        assert_eq!((db[a].name.as_str(), db[a].weight), ("a", 1));
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        Ok(())
    }

    fn refresh_of_an_edited_generated_key_reads_the_stored_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let a = by_name(&mut db, "a")?;
        db[a].id = Id::new(99);
        db[a].name = "x".into();
        db.refresh(a)?;
        assert_eq!(db[a].id, Id::new(1));
        assert_eq!(db[a].name, "a");
        assert_eq!(db.get::<Crate>(Id::new(1))?, Some(a));
        assert!(db.get::<Crate>(Id::new(99))?.is_none());
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        // Flushed to 99 in the open transaction, edited to 98, refreshed: 99 it is.
        db[a].id = Id::new(99);
        db.flush()?;
        db[a].id = Id::new(98);
        db.refresh(a)?;
        assert_eq!(db[a].id, Id::new(99));
        assert_eq!(db.get::<Crate>(Id::new(99))?, Some(a));
        assert!(db.get::<Crate>(Id::new(98))?.is_none());
        db.rollback()?;
        assert_eq!(db[a].id, Id::new(1));
        assert_eq!(db.get::<Crate>(Id::new(1))?, Some(a));
        assert!(db.get::<Crate>(Id::new(99))?.is_none());
        Ok(())
    }

    fn refresh_of_an_edited_natural_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let fr = db.add(Country::new("FR", "France", Some(68)));
        db.commit()?;
        t.exec("UPDATE country SET name = 'République' WHERE code = 'FR'");
        db[fr].code = "XX".into();
        db[fr].population = None;
        db.refresh(fr)?;
        assert_eq!(
            (db[fr].code.as_str(), db[fr].name.as_str(), db[fr].population),
            ("FR", "République", Some(68))
        );
        assert_eq!(db.get::<Country>("FR".to_string())?, Some(fr));
        assert!(db.get::<Country>("XX".to_string())?.is_none());
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        // Another program changes the key: the row is gone as far as the object knows.
        t.exec("UPDATE country SET code = 'FX' WHERE code = 'FR'");
        let e = db.refresh(fr).unwrap_err();
        assert!(matches!(e, Error::RowGone { .. }), "{e}");
        db.expunge(fr)?;
        let fx = db.get::<Country>("FX".to_string())?.expect("renamed row");
        assert_eq!(db[fx].name, "République");
        Ok(())
    }

    fn refresh_keeps_a_pending_delete(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let boxes = db.load(top, Shelf::boxes)?;
        let a = boxes[0];
        db[a].weight = 99;
        db.delete(a)?;
        t.exec("UPDATE crate SET name = 'a2' WHERE id = 1");
        db.refresh(a)?;
        assert!(db.is_deleted(a));
        assert_eq!((db[a].name.as_str(), db[a].weight), ("a2", 1));
        db.commit()?;
        assert!(!db.contains(a));
        assert_eq!(t.count("SELECT count(*) FROM crate WHERE id = 1"), 0);
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        // Refreshed after its row went: RowGone, and the pending delete is still there.
        let b = boxes[1];
        db.delete(b)?;
        t.exec("DELETE FROM crate WHERE id = 2");
        assert!(matches!(db.refresh(b), Err(Error::RowGone { .. })));
        assert!(db.is_deleted(b));
        db.expunge(b)?;
        db.commit()?;
        Ok(())
    }

    fn expunge_recovers_from_a_failed_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(User::new("ann"));
        let p = db.add(Product::new("pen", ann));
        db.add(Product::new("ink", ann));
        db.commit()?;
        // A new product with a name that is taken, with a good one beside it.
        let dup = db.add(Product::new("ink", ann));
        let good = db.add(Product::new("cap", ann));
        db[p].name = "pen!".into(); // an update in the same flush
        assert!(db.flush().is_err());
        db.expunge(dup)?;
        db.commit()?;
        assert!(db.contains(good));
        assert_eq!(
            t.rows("SELECT name FROM product ORDER BY id"),
            table(&[&["pen!"], &["ink"], &["cap"]])
        );
        // An update that fails, after a flush that wrote in the same transaction: the
        // savepoint is undone, the failing object expunged, the rest committed.
        let ink = db.get::<Product>(Id::new(2))?.expect("ink");
        db[good].name = "cap2".into();
        db.flush()?;
        db[ink].name = "cap2".into();
        assert!(db.flush().is_err());
        db.expunge(ink)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name FROM product ORDER BY id"),
            table(&[&["pen!"], &["ink"], &["cap2"]])
        );
        // A failed flush, then refresh of the failing object: its edit goes, the flush works.
        let pen = p;
        db[pen].name = "ink".into();
        assert!(db.commit().is_err());
        db.refresh(pen)?;
        assert_eq!(db[pen].name, "pen!");
        db.commit()?;
        Ok(())
    }

    fn expunge_and_refresh_refuse_handles_of_another_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut other = t.open();
        let theirs = by_name(&mut other, "a")?;
        let mine = by_name(&mut db, "a")?;
        // Same slot number in both sessions, most likely: still refused.
        assert!(matches!(db.expunge(theirs), Err(Error::InvalidHandle { .. })));
        assert!(matches!(db.refresh(theirs), Err(Error::InvalidHandle { .. })));
        assert!(db.contains(mine));
        assert!(other.contains(theirs));
        let new_theirs = other.add(Crate::new("z", 0, None));
        assert!(matches!(db.expunge(new_theirs), Err(Error::InvalidHandle { .. })));
        assert!(matches!(db.refresh(new_theirs), Err(Error::InvalidHandle { .. })));
        drop(other);
        // Twice, and refresh after expunge.
        db.expunge(mine)?;
        assert!(matches!(db.expunge(mine), Err(Error::InvalidHandle { .. })));
        assert!(matches!(db.refresh(mine), Err(Error::InvalidHandle { .. })));
        // A handle of a model never used in this session.
        let mut other = t.open();
        let acc = other.add(Account::new("x"));
        other.commit()?;
        let mut fresh = t.open();
        assert!(matches!(fresh.expunge(acc), Err(Error::InvalidHandle { .. })));
        assert!(matches!(fresh.refresh(acc), Err(Error::InvalidHandle { .. })));
        // Deleted by a flush, discarded by rollback.
        let b = by_name(&mut db, "b")?;
        db.delete(b)?;
        db.flush()?;
        assert!(matches!(db.expunge(b), Err(Error::InvalidHandle { .. })));
        assert!(matches!(db.refresh(b), Err(Error::InvalidHandle { .. })));
        let n = db.add(Crate::new("n", 0, None));
        db.rollback()?;
        assert!(matches!(db.expunge(n), Err(Error::InvalidHandle { .. })));
        assert!(matches!(db.refresh(n), Err(Error::InvalidHandle { .. })));
        Ok(())
    }

    fn expunge_a_child_whose_key_was_edited_directly(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let a = db.load(top, Shelf::boxes)?[0];
        db.load(low, Shelf::boxes)?;
        db[a].shelf = Some(db[low].id); // not settled yet
        db.expunge(a)?;
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b"]);
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c"]);
        // Moved through the session, then expunged before the flush.
        let b = db[top].boxes.as_slice()[0];
        db.set(b, Crate::shelf, low)?;
        db.expunge(b)?;
        assert!(db[top].boxes.is_empty());
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c"]);
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, shelf_id FROM crate ORDER BY id"),
            table(&[&["a", "1"], &["b", "1"], &["c", "2"]])
        );
        Ok(())
    }

    fn refresh_a_child_whose_key_was_edited_directly_or_through_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, low] = seed(&mut db)?;
        let [a, b] = <[_; 2]>::try_from(db.load(top, Shelf::boxes)?).unwrap();
        db.load(low, Shelf::boxes)?;
        db[a].shelf = Some(db[low].id); // not settled
        db.refresh(a)?;
        assert_eq!(db[a].shelf, Some(db[top].id));
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["b", "a"], "(it left and came back: at the end)");
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c"]);
        // Moved to a new parent through the session, refreshed: back under top.
        let loose = db.add(Shelf::new("loose"));
        db.set(b, Crate::shelf, loose)?;
        db.refresh(b)?;
        assert_eq!(db[b].shelf, Some(db[top].id));
        assert!(db[loose].boxes.is_empty());
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["a", "b"]);
        // Key edited directly to none, while another program moved it: the database wins.
        db[b].shelf = None;
        t.exec("UPDATE crate SET shelf_id = 2 WHERE id = 2");
        db.refresh(b)?;
        assert_eq!(names(&db, db[top].boxes.as_slice()), ["a"]);
        assert_eq!(names(&db, db[low].boxes.as_slice()), ["c", "b"]);
        db.log_statements(true);
        db.commit()?;
        let w = writes(&mut db);
        assert_eq!(w.len(), 1, "only the new shelf: {w:?}");
        // Refreshed to a parent that is not in the session, which is read later.
        t.exec("INSERT INTO shelf (id, label) VALUES (10, 'far'); UPDATE crate SET shelf_id = 10 WHERE id = 1");
        db.refresh(a)?;
        assert!(db[top].boxes.is_empty());
        db.refresh(a)?; // twice
        let far = db.get::<Shelf>(Id::new(10))?.expect("far");
        assert_eq!(db.load(far, Shelf::boxes)?, [a]);
        db.commit()?;
        assert_eq!(db[far].boxes, [a], "not twice after the flush links again");
        Ok(())
    }

    fn refresh_of_has_one_parent_and_child(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        let bob = db.add(Account::new("bob"));
        let c1 = db.add(Card::new("1111", ann));
        db.commit()?;
        assert_eq!(db[bob].card, None);
        // Another program gives the card to bob and renames ann.
        t.exec("UPDATE card SET owner_id = 2 WHERE id = 1; UPDATE account SET name = 'anna' WHERE id = 1");
        db.refresh(ann)?;
        assert_eq!(db[ann].name, "anna");
        assert_eq!(db[ann].card, Some(c1), "the parent keeps its loaded child");
        db.refresh(c1)?;
        assert_eq!(db[c1].owner, Some(db[bob].id));
        assert_eq!(db[ann].card, None);
        assert_eq!(db[bob].card, Some(c1));
        db.log_statements(true);
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        // Expunging a has-one child empties its parent's slot.
        db.expunge(c1)?;
        assert_eq!(db[bob].card, None);
        db.commit()?;
        assert_eq!(t.rows("SELECT owner_id FROM card"), table(&[&["2"]]));
        Ok(())
    }

    fn refresh_of_a_flushed_new_object_in_the_open_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [top, _] = seed(&mut db)?;
        let d = db.add(Crate::new("d", 4, top));
        db.flush()?;
        db[d].weight = 40;
        db.refresh(d)?;
        assert_eq!(db[d].weight, 4);
        db.rollback()?;
        assert!(!db.contains(d));
        assert!(matches!(db.refresh(d), Err(Error::InvalidHandle { .. })));
        assert_eq!(t.count("SELECT count(*) FROM crate"), 3);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 2. Random operation sequences against a model
// ---------------------------------------------------------------------------------------

mod ops {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestError};
    use std::collections::BTreeMap;

    type Check = Result<(), String>;

    /// One step. Objects are picked by index into the model's list (modulo its length),
    /// rows by index into the seeded keys; shelves are 0 and 1.
    #[derive(Clone, Copy, Debug)]
    pub enum Op {
        Get(usize),
        Add(u8, i64, Option<usize>),
        EditName(usize, u8),
        EditWeight(usize, i64),
        EditShelfDirect(usize, Option<usize>),
        SetShelf(usize, Option<usize>),
        Append(usize, usize),
        Remove(usize, usize),
        Delete(usize),
        Expunge(usize),
        Refresh(usize),
        Flush,
        Commit,
        Rollback,
        OtherWeight(usize, i64),
        OtherShelf(usize, Option<usize>),
        OtherDelete(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let o = || 0usize..12;
        let sh = || proptest::option::of(0usize..2);
        prop_oneof![
            2 => o().prop_map(Op::Get),
            2 => (0u8..4, 0i64..5, sh()).prop_map(|(n, w, s)| Op::Add(n, w, s)),
            2 => (o(), 0u8..4).prop_map(|(i, n)| Op::EditName(i, n)),
            2 => (o(), 0i64..5).prop_map(|(i, w)| Op::EditWeight(i, w)),
            2 => (o(), sh()).prop_map(|(i, s)| Op::EditShelfDirect(i, s)),
            2 => (o(), sh()).prop_map(|(i, s)| Op::SetShelf(i, s)),
            1 => (0usize..2, o()).prop_map(|(s, i)| Op::Append(s, i)),
            1 => (0usize..2, o()).prop_map(|(s, i)| Op::Remove(s, i)),
            2 => o().prop_map(Op::Delete),
            4 => o().prop_map(Op::Expunge),
            4 => o().prop_map(Op::Refresh),
            2 => Just(Op::Flush),
            2 => Just(Op::Commit),
            2 => Just(Op::Rollback),
            2 => (o(), 0i64..5).prop_map(|(i, w)| Op::OtherWeight(i, w)),
            2 => (o(), sh()).prop_map(|(i, s)| Op::OtherShelf(i, s)),
            1 => o().prop_map(Op::OtherDelete),
        ]
    }

    const NAMES: [&str; 4] = ["p", "q", "r", "s"];

    /// A crate row: name, weight, shelf (0 or 1).
    #[derive(Clone, Debug, PartialEq)]
    struct Row {
        name: String,
        weight: i64,
        shelf: Option<usize>,
    }

    /// What the model knows of one object of the session.
    #[derive(Debug)]
    struct Obj {
        h: Handle<Crate>,
        /// Its row's key (none while new).
        id: Option<i64>,
        cur: Row,
        /// Its values at its first edit since the last flush.
        snap: Option<Row>,
        /// Its values at the last commit, once a flush of this transaction updated it.
        journal: Option<Row>,
        /// Added or first inserted since the last commit.
        since_commit: bool,
        valid: bool,
        doomed: bool,
        /// The shelf whose loaded collection holds it.
        in_coll: Option<usize>,
        /// `in_coll` at the last commit.
        coll_at_commit: Option<usize>,
        /// The shelf the session last linked it under (its key before a direct edit that is
        /// not settled yet).
        seen_fk: Option<usize>,
        /// Deleted by a flush of the open transaction: its values then.
        deleted: Option<Row>,
        /// Another program deleted its row.
        gone: bool,
    }

    struct World<'t> {
        t: &'t TestDb,
        db: Session,
        shelves: [Handle<Shelf>; 2],
        shelf_ids: [i64; 2],
        /// Rows as committed, and as the open transaction sees them.
        committed: BTreeMap<i64, Row>,
        tx: Option<BTreeMap<i64, Row>>,
        /// Keys of the seeded rows (for the other program's writes and `get`).
        keys: Vec<i64>,
        objs: Vec<Obj>,
        /// Something since the last commit that a rollback is known to get wrong
        /// (see the ignored tests above): rollbacks become commits until the next commit.
        no_rollback: bool,
        /// Whether to turn those rollbacks into commits.
        avoid_known_bugs: bool,
    }

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    impl World<'_> {
        fn view(&self) -> &BTreeMap<i64, Row> {
            self.tx.as_ref().unwrap_or(&self.committed)
        }

        fn shelf_id(&self, s: Option<usize>) -> Option<Id<Shelf>> {
            s.map(|s| Id::new(self.shelf_ids[s]))
        }

        fn pick(&self, i: usize) -> Option<usize> {
            (!self.objs.is_empty()).then(|| i % self.objs.len())
        }

        /// A valid object the session may write (its row not deleted behind its back).
        fn pick_live(&self, i: usize) -> Option<usize> {
            self.pick(i)
                .filter(|&k| self.objs[k].valid && !self.objs[k].gone)
        }

        fn mark(&mut self, k: usize) {
            let o = &mut self.objs[k];
            if o.snap.is_none() {
                o.snap = Some(o.cur.clone());
            }
        }

        /// Keys edited directly join the collection they name (if they changed).
        fn settle_all(&mut self) {
            for o in &mut self.objs {
                if o.valid && o.seen_fk != o.cur.shelf {
                    o.seen_fk = o.cur.shelf;
                    o.in_coll = o.cur.shelf;
                }
            }
        }

        /// Moves an object's key through the session (both sides in step at once).
        fn move_to(&mut self, k: usize, s: Option<usize>) {
            self.settle_all();
            self.mark(k);
            let o = &mut self.objs[k];
            if o.seen_fk != s {
                o.in_coll = s;
            }
            o.cur.shelf = s;
            o.seen_fk = s;
        }

        fn step(&mut self, op: Op) -> Check {
            match op {
                Op::Get(i) => {
                    let Some(&key) = self.keys.get(i % self.keys.len().max(1)) else {
                        return Ok(());
                    };
                    let got = self.db.get::<Crate>(Id::new(key)).map_err(e2s)?;
                    let held = self.objs.iter().position(|o| o.valid && o.id == Some(key));
                    match (held, got) {
                        (Some(k), Some(h)) if self.objs[k].h == h => {}
                        (Some(k), got) => {
                            return Err(format!(
                                "get({key}): {got:?}, the session holds {:?}",
                                self.objs[k].h
                            ))
                        }
                        (None, None) if !self.view().contains_key(&key) => {}
                        (None, Some(h)) => {
                            let Some(row) = self.view().get(&key).cloned() else {
                                return Err(format!("get({key}) found {h:?}, no such row"));
                            };
                            if self.objs.iter().any(|o| o.h == h) {
                                return Err(format!("get({key}) gave an old handle {h:?}"));
                            }
                            self.objs.push(Obj {
                                h,
                                id: Some(key),
                                cur: row.clone(),
                                snap: None,
                                journal: None,
                                since_commit: false,
                                valid: true,
                                doomed: false,
                                in_coll: None,
                                coll_at_commit: None,
                                seen_fk: row.shelf,
                                deleted: None,
                                gone: false,
                            });
                        }
                        (None, None) => return Err(format!("get({key}): none, the row is there")),
                    }
                }
                Op::Add(n, w, s) => {
                    let row = Row {
                        name: NAMES[n as usize].into(),
                        weight: w,
                        shelf: s,
                    };
                    let h = self
                        .db
                        .add(Crate::new(row.name.clone(), w, self.shelf_id(s)));
                    self.objs.push(Obj {
                        h,
                        id: None,
                        cur: row,
                        snap: None,
                        journal: None,
                        since_commit: true,
                        valid: true,
                        doomed: false,
                        in_coll: s,
                        coll_at_commit: None,
                        seen_fk: s,
                        deleted: None,
                        gone: false,
                    });
                }
                Op::EditName(i, n) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    self.mark(k);
                    self.objs[k].cur.name = NAMES[n as usize].into();
                    let h = self.objs[k].h;
                    self.db[h].name = NAMES[n as usize].into();
                }
                Op::EditWeight(i, w) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    self.mark(k);
                    self.objs[k].cur.weight = w;
                    let h = self.objs[k].h;
                    self.db[h].weight = w;
                }
                Op::EditShelfDirect(i, s) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    self.mark(k);
                    self.objs[k].cur.shelf = s;
                    let (h, id) = (self.objs[k].h, self.shelf_id(s));
                    self.db[h].shelf = id;
                }
                Op::SetShelf(i, s) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    let h = self.objs[k].h;
                    let id = self.shelf_id(s);
                    self.db.set(h, Crate::shelf, id).map_err(e2s)?;
                    self.move_to(k, s);
                }
                Op::Append(s, i) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    let h = self.objs[k].h;
                    self.db
                        .append(self.shelves[s], Shelf::boxes, h)
                        .map_err(e2s)?;
                    self.move_to(k, Some(s));
                }
                Op::Remove(s, i) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    let h = self.objs[k].h;
                    self.db
                        .remove(self.shelves[s], Shelf::boxes, h)
                        .map_err(e2s)?;
                    self.settle_all();
                    if self.objs[k].cur.shelf == Some(s) {
                        self.move_to(k, None);
                    }
                }
                Op::Delete(i) => {
                    let Some(k) = self.pick_live(i) else {
                        return Ok(());
                    };
                    self.db.delete(self.objs[k].h).map_err(e2s)?;
                    self.objs[k].doomed = true;
                }
                Op::Expunge(i) => {
                    let Some(k) = self.pick(i) else { return Ok(()) };
                    let o = &mut self.objs[k];
                    let r = self.db.expunge(o.h);
                    if !o.valid {
                        return match r {
                            Err(Error::InvalidHandle { .. }) => Ok(()),
                            r => Err(format!("expunge of a dead handle: {r:?}")),
                        };
                    }
                    r.map_err(e2s)?;
                    if o.id.is_some() {
                        self.no_rollback = true;
                    }
                    o.valid = false;
                    o.in_coll = None;
                    self.settle_all();
                }
                Op::Refresh(i) => {
                    let Some(k) = self.pick(i) else { return Ok(()) };
                    let r = self.db.refresh(self.objs[k].h);
                    let o = &self.objs[k];
                    if !o.valid {
                        return match r {
                            Err(Error::InvalidHandle { .. }) => Ok(()),
                            r => Err(format!("refresh of a dead handle: {r:?}")),
                        };
                    }
                    let Some(id) = o.id else {
                        return match r {
                            Err(Error::PendingId { .. }) => Ok(()),
                            r => Err(format!("refresh of a new object: {r:?}")),
                        };
                    };
                    // (Keys edited directly are settled first, also when the row is gone.)
                    self.settle_all();
                    let Some(row) = self.view().get(&id).cloned() else {
                        return match r {
                            Err(Error::RowGone { .. }) => Ok(()),
                            r => Err(format!("refresh of a deleted row: {r:?}")),
                        };
                    };
                    r.map_err(e2s)?;
                    let o = &mut self.objs[k];
                    if o.seen_fk != row.shelf {
                        // Where the row belongs is read, not written: a rollback keeps it.
                        o.in_coll = row.shelf;
                        o.coll_at_commit = row.shelf;
                        o.seen_fk = row.shelf;
                        self.no_rollback = true;
                    }
                    o.cur = row;
                    o.snap = None;
                }
                Op::Flush => self.flush()?,
                Op::Commit => self.commit()?,
                Op::Rollback if self.no_rollback && self.avoid_known_bugs => self.commit()?,
                Op::Rollback => {
                    self.db.rollback().map_err(e2s)?;
                    self.tx = None;
                    for o in &mut self.objs {
                        if o.since_commit {
                            o.valid = false;
                            o.in_coll = None;
                        } else if let Some(at) = o.deleted.take() {
                            o.valid = true;
                            o.cur = o.journal.take().unwrap_or(at);
                        } else if o.valid {
                            if let Some(r) = o.journal.take().or(o.snap.take()) {
                                o.cur = r;
                            }
                        }
                        o.snap = None;
                        o.journal = None;
                        o.doomed = false;
                        o.seen_fk = o.cur.shelf;
                        if o.valid {
                            o.in_coll = o.coll_at_commit;
                        }
                    }
                }
                Op::OtherWeight(i, _) | Op::OtherShelf(i, _) | Op::OtherDelete(i)
                    if self.tx.is_none() =>
                {
                    let key = self.keys[i % self.keys.len()];
                    if !self.committed.contains_key(&key) {
                        return Ok(());
                    }
                    let sql = match op {
                        Op::OtherWeight(_, w) => {
                            self.committed.get_mut(&key).unwrap().weight = w;
                            format!("UPDATE crate SET weight = {w} WHERE id = {key}")
                        }
                        Op::OtherShelf(_, s) => {
                            self.committed.get_mut(&key).unwrap().shelf = s;
                            let v = s.map_or("NULL".to_owned(), |s| self.shelf_ids[s].to_string());
                            format!("UPDATE crate SET shelf_id = {v} WHERE id = {key}")
                        }
                        _ => {
                            // Not under an object with edits or a pending delete: its flush
                            // would fail with StaleData, a case of its own.
                            if self.objs.iter().any(|o| {
                                o.valid && o.id == Some(key) && (o.snap.is_some() || o.doomed)
                            }) {
                                return Ok(());
                            }
                            self.committed.remove(&key);
                            for o in &mut self.objs {
                                if o.id == Some(key) {
                                    o.gone = true;
                                }
                            }
                            format!("DELETE FROM crate WHERE id = {key}")
                        }
                    };
                    self.t.exec(&sql);
                }
                Op::OtherWeight(..) | Op::OtherShelf(..) | Op::OtherDelete(_) => {}
            }
            Ok(())
        }

        fn flush(&mut self) -> Check {
            self.db.flush().map_err(e2s)?;
            self.settle_all();
            let mut rows = self.view().clone();
            let mut wrote = false;
            for o in &mut self.objs {
                if !o.valid {
                    continue;
                }
                if o.doomed {
                    if let Some(id) = o.id {
                        rows.remove(&id);
                        wrote = true;
                        if !o.since_commit {
                            o.deleted = Some(o.snap.clone().unwrap_or_else(|| o.cur.clone()));
                        }
                    }
                    o.valid = false;
                    o.in_coll = None;
                } else if o.id.is_none() {
                    let id = self.db[o.h]
                        .id
                        .value()
                        .map_err(|e| format!("no key after the flush: {e}"))?;
                    o.id = Some(id);
                    rows.insert(id, o.cur.clone());
                    wrote = true;
                } else if let Some(snap) = o.snap.take() {
                    if snap != o.cur {
                        let id = o.id.unwrap();
                        let row = rows.get_mut(&id).ok_or("update of a row not there")?;
                        if snap.name != o.cur.name {
                            row.name = o.cur.name.clone();
                        }
                        if snap.weight != o.cur.weight {
                            row.weight = o.cur.weight;
                        }
                        if snap.shelf != o.cur.shelf {
                            row.shelf = o.cur.shelf;
                        }
                        wrote = true;
                        if !o.since_commit && o.journal.is_none() {
                            o.journal = Some(snap);
                        }
                    }
                }
                o.snap = None;
                o.doomed = false;
            }
            if wrote || self.tx.is_some() {
                self.tx = Some(rows);
            }
            Ok(())
        }

        fn commit(&mut self) -> Check {
            self.flush()?;
            self.db.commit().map_err(e2s)?;
            if let Some(rows) = self.tx.take() {
                self.committed = rows;
            }
            for o in &mut self.objs {
                o.since_commit = false;
                o.journal = None;
                o.deleted = None;
                o.coll_at_commit = o.in_coll;
            }
            self.no_rollback = false;
            // The database, by plain SQL.
            let got: BTreeMap<i64, Row> = self
                .t
                .rows("SELECT id, name, weight, shelf_id FROM crate")
                .into_iter()
                .map(|r| {
                    let shelf = self.shelf_ids.iter().position(|s| s.to_string() == r[3]);
                    let row = Row {
                        name: r[1].clone(),
                        weight: r[2].parse().unwrap(),
                        shelf,
                    };
                    (r[0].parse().unwrap(), row)
                })
                .collect();
            if got != self.committed {
                return Err(format!(
                    "database after commit:\n  {got:?}\nexpected\n  {:?}",
                    self.committed
                ));
            }
            Ok(())
        }

        /// The session against the model.
        fn check(&self) -> Check {
            let db = &self.db;
            for o in &self.objs {
                if db.contains(o.h) != o.valid {
                    return Err(format!("{:?}: contains is {}", o.h, !o.valid));
                }
                if !o.valid {
                    continue;
                }
                let c = &db[o.h];
                let got = Row {
                    name: c.name.clone(),
                    weight: c.weight,
                    shelf: c
                        .shelf
                        .and_then(|s| self.shelf_ids.iter().position(|&k| Id::new(k) == s)),
                };
                if got != o.cur {
                    return Err(format!("{:?}: {got:?}, expected {:?}", o.h, o.cur));
                }
                if db.is_deleted(o.h) != o.doomed {
                    return Err(format!("{:?}: is_deleted {}", o.h, !o.doomed));
                }
                if db.is_new(o.h) != o.id.is_none() {
                    return Err(format!("{:?}: is_new {}", o.h, o.id.is_some()));
                }
                if let Some(id) = o.id {
                    if db.handle_of(Id::<Crate>::new(id)) != Some(o.h) {
                        return Err(format!(
                            "key {id} names {:?}, not {:?}",
                            db.handle_of(Id::<Crate>::new(id)),
                            o.h
                        ));
                    }
                }
            }
            // A key no live object holds is in no identity map entry.
            for &key in &self.keys {
                if !self.objs.iter().any(|o| o.valid && o.id == Some(key)) {
                    if let Some(h) = db.handle_of(Id::<Crate>::new(key)) {
                        return Err(format!("key {key} still names {h:?}"));
                    }
                }
            }
            for (s, &sh) in self.shelves.iter().enumerate() {
                let boxes = db[sh].boxes.as_slice();
                let mut got: Vec<_> = boxes.to_vec();
                got.sort_by_key(|h| format!("{h:?}"));
                got.dedup();
                if got.len() != boxes.len() {
                    return Err(format!("shelf {s}: a handle twice in {boxes:?}"));
                }
                let mut want: Vec<_> = self
                    .objs
                    .iter()
                    .filter(|o| o.valid && o.in_coll == Some(s))
                    .map(|o| o.h)
                    .collect();
                want.sort_by_key(|h| format!("{h:?}"));
                if got != want {
                    return Err(format!(
                        "shelf {s}: collection {boxes:?}, expected {want:?}"
                    ));
                }
            }
            Ok(())
        }
    }

    /// Runs a sequence from a few committed rows, in a new session holding the two shelves
    /// and their loaded collections.
    pub fn replay(t: &TestDb, ops: &[Op], avoid_known_bugs: bool) -> Check {
        let mut db = t.open();
        db.execute_sql("DELETE FROM crate", &[]).map_err(e2s)?;
        db.execute_sql("DELETE FROM shelf", &[]).map_err(e2s)?;
        let s = db.add_all([Shelf::new("top"), Shelf::new("low")]);
        let c = db.add_all([
            Crate::new("a", 1, s[0]),
            Crate::new("b", 2, s[0]),
            Crate::new("c", 3, s[1]),
            Crate::new("d", 4, None),
        ]);
        db.commit().map_err(e2s)?;
        let shelf_ids = [db[s[0]].id.value().unwrap(), db[s[1]].id.value().unwrap()];
        let keys: Vec<i64> = c.iter().map(|&h| db[h].id.value().unwrap()).collect();
        let committed: BTreeMap<i64, Row> = c
            .iter()
            .map(|&h| {
                let r = Row {
                    name: db[h].name.clone(),
                    weight: db[h].weight,
                    shelf: db[h].shelf.map(|x| if x == db[s[0]].id { 0 } else { 1 }),
                };
                (db[h].id.value().unwrap(), r)
            })
            .collect();
        drop(db);
        let mut db = t.open();
        let shelves = [
            db.get::<Shelf>(Id::new(shelf_ids[0]))
                .map_err(e2s)?
                .unwrap(),
            db.get::<Shelf>(Id::new(shelf_ids[1]))
                .map_err(e2s)?
                .unwrap(),
        ];
        let mut objs = Vec::new();
        for (i, &sh) in shelves.iter().enumerate() {
            for h in db.load(sh, Shelf::boxes).map_err(e2s)? {
                let id = db[h].id.value().unwrap();
                objs.push(Obj {
                    h,
                    id: Some(id),
                    cur: committed[&id].clone(),
                    snap: None,
                    journal: None,
                    since_commit: false,
                    valid: true,
                    doomed: false,
                    in_coll: Some(i),
                    coll_at_commit: Some(i),
                    seen_fk: Some(i),
                    deleted: None,
                    gone: false,
                });
            }
        }
        // Loaded collections count as loaded at a commit (a rollback keeps them).
        db.commit().map_err(e2s)?;
        let mut w = World {
            t,
            db,
            shelves,
            shelf_ids,
            committed,
            tx: None,
            keys,
            objs,
            no_rollback: false,
            avoid_known_bugs,
        };
        for (i, &op) in ops.iter().enumerate() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                w.step(op).and_then(|()| w.check())
            }));
            match r {
                Ok(r) => r.map_err(|e| format!("step {} ({op:?}): {e}", i + 1))?,
                Err(_) => return Err(format!("step {} ({op:?}): panicked", i + 1)),
            }
        }
        w.commit().map_err(|e| format!("final commit: {e}"))
    }

    pub fn property(t: &TestDb, cases: u32, avoid_known_bugs: bool) -> Check {
        drop(session(t));
        let (mut runner, cases) = runner(cases);
        let started = std::time::Instant::now();
        let ops = proptest::collection::vec(op(), 1..=30);
        let result = runner.run(&ops, |ops| {
            replay(t, &ops, avoid_known_bugs).map_err(TestCaseError::fail)
        });
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "expunge/refresh ops {:?}: {cases} cases in {:.1?}",
            t.backend(),
            started.elapsed()
        );
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, ops)) => {
                let calls: String = ops.iter().map(|op| format!("    Op::{op:?},\n")).collect();
                Err(format!("minimal failing sequence: {reason}\n{calls}"))
            }
            Err(TestError::Abort(reason)) => Err(format!("aborted: {reason}")),
        }
    }
}

backend_tests! {
    /// Rollbacks after an expunge of a stored object or a refresh that moved one are turned
    /// into commits (the ignored tests below and in section 1 show why).
    fn random_sequences_of_expunge_refresh_and_edits_agree_with_a_model(t: &TestDb) -> Result<(), String> {
        ops::property(t, 128, true)
    }
}

bug_tests! {
    /// The same with every rollback kept: finds `Expunge(0), Rollback` (a dead handle back in
    /// the shelf's collection) at once.
    #[sqlite()]
    #[postgres()]
    fn random_sequences_with_every_rollback_agree_with_a_model(t: &TestDb) -> Result<(), String> {
        ops::property(t, 128, false)
    }
}
