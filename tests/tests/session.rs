//! Adding, loading, editing, the identity map, dirty tracking, commit and rollback.

use orm_tests::*;

fn seed(t: &TestDb) -> orm_core::Result<()> {
    let mut db = t.session();
    let ann = db.add(User::new("Ann"));
    let bob = db.add(User::new("Bob"));
    db.add_all([
        Product::new("apple", ann),
        Product::new("pear", ann),
        Product::new("plum", bob),
    ]);
    db.commit()
}

backend_tests! {
    fn add_all_get_all_and_filter(t: &TestDb) -> orm_core::Result<()> {
        seed(t)?;
        let mut db = t.session();
        let users = db.all::<User>()?;
        let names: Vec<&str> = users.iter().map(|&u| db[u].name.as_str()).collect();
        assert_eq!(names, ["Ann", "Bob"]);
        let ann = db.get::<User>(1)?.expect("user 1");
        assert_eq!(db[ann].name, "Ann");
        assert!(db.get::<User>(99)?.is_none());
        let of_ann = Product::user.eq(orm_core::Id::<User>::new(1));
        let anns = db.query::<Product>().filter(of_ann).all()?;
        let names: Vec<&str> = anns.iter().map(|&p| db[p].name.as_str()).collect();
        assert_eq!(names, ["apple", "pear"]);
        // A handle works as well as an id.
        let bob = db.get::<User>(2)?.expect("user 2");
        assert_eq!(db.query::<Product>().filter(Product::user.eq(bob)).count()?, 1);
        let plums = db.query::<Product>().filter(Product::name.eq("plum"));
        assert_eq!(plums.all()?.len(), 1);
        Ok(())
    }

    fn identity_map_returns_the_same_handle_and_keeps_edits(t: &TestDb) -> orm_core::Result<()> {
        seed(t)?;
        let mut db = t.session();
        let a = db.get::<User>(1)?.unwrap();
        db[a].name = "Annie".into();
        let again = db.get::<User>(1)?.unwrap();
        assert_eq!(a, again);
        let from_all = db.all::<User>()?;
        assert_eq!(from_all[0], a);
        assert_eq!(
            db[a].name, "Annie",
            "loading again must not overwrite the edit"
        );
        // A row loaded through a filter is the same object too.
        let apple = db.query::<Product>().filter(Product::name.eq("apple")).one()?;
        assert_eq!(db.get::<Product>(db[apple].id)?, Some(apple));
        db.commit()?;
        assert_eq!(
            t.rows(r#"SELECT name FROM "user" WHERE id = 1"#),
            table(&[&["Annie"]])
        );
        Ok(())
    }

    fn update_writes_only_changed_columns(t: &TestDb) -> orm_core::Result<()> {
        seed(t)?;
        let mut db = t.session();
        let apple = db.get::<Product>(1)?.unwrap();
        db.take_statements();
        db[apple].name = "green apple".into();
        db.commit()?;
        let updates = writes(&mut db);
        assert_eq!(
            updates,
            [t.sql("UPDATE \"product\" SET \"name\" = ?1 WHERE \"id\" = ?2")]
        );
        assert_eq!(
            t.rows("SELECT name, user_id FROM product WHERE id = 1"),
            table(&[&["green apple", "1"]])
        );
        Ok(())
    }

    fn untouched_or_unchanged_objects_write_nothing(t: &TestDb) -> orm_core::Result<()> {
        seed(t)?;
        let mut db = t.session();
        let users = db.all::<User>()?;
        let apple = db.get::<Product>(1)?.unwrap();
        let _ = &db[users[0]].name; // reading is not a change
        db.get_mut(apple).name = "apple".into(); // the value it already holds
        db.take_statements();
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        // Also right after a commit: objects are not expired.
        db[apple].name = "apricot".into();
        db.commit()?;
        assert_eq!(writes(&mut db).len(), 1);
        db[apple].name = "apricot".into();
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        Ok(())
    }

    fn edits_after_a_flush_are_flushed_again(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let u = db.add(User::new("first"));
        db.flush()?;
        db[u].name = "second".into();
        db.flush()?;
        db[u].name = "third".into();
        db.commit()?;
        assert_eq!(
            t.rows(r#"SELECT id, name FROM "user""#),
            table(&[&["1", "third"]])
        );
        Ok(())
    }

    fn rollback_discards_new_objects_and_restores_edits(t: &TestDb) -> orm_core::Result<()> {
        seed(t)?;
        let mut db = t.session();
        let ann = db.get::<User>(1)?.unwrap();
        db[ann].name = "flushed edit".into();
        let carl = db.add(User::new("Carl"));
        db.flush()?;
        db[ann].name = "unflushed edit".into();
        let dora = db.add(User::new("Dora"));
        db.rollback()?;
        assert_eq!(db[ann].name, "Ann");
        assert!(db.try_get(carl).is_none());
        assert!(db.try_get(dora).is_none());
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 2);
        // The session works on after a rollback, and the restored object is clean.
        db.take_statements();
        let eve = db.add(User::new("Eve"));
        db.commit()?;
        assert_eq!(
            writes(&mut db),
            [t.sql("INSERT INTO \"user\" (\"id\", \"name\") VALUES (?1, ?2)")]
        );
        // Carl's key (3) was stored, then rolled back: a key the session has seen is never
        // handed out again (a copy of Carl's id must not name Eve), on either database.
        assert_eq!(db[eve].id, 4);
        assert_eq!(
            t.rows(r#"SELECT name FROM "user" ORDER BY id"#),
            table(&[&["Ann"], &["Bob"], &["Eve"]])
        );
        Ok(())
    }

    fn rollback_keeps_what_was_committed(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let u = db.add(User::new("kept"));
        db.commit()?;
        db[u].name = "lost".into();
        db.flush()?;
        db.rollback()?;
        assert_eq!(db[u].name, "kept");
        assert_eq!(db[u].id, 1);
        assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["kept"]]));
        db[u].name = "changed".into();
        db.commit()?;
        assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["changed"]]));
        Ok(())
    }

    fn dropping_a_session_discards_its_transaction(t: &TestDb) -> orm_core::Result<()> {
        {
            let mut db = t.session();
            db.add(User::new("never committed"));
            db.flush()?;
        }
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 0);
        Ok(())
    }

    fn handles_of_another_session_are_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut one = t.session();
        let mut two = t.session();
        let u = one.add(User::new("one"));
        assert!(two.try_get(u).is_none());
        assert!(matches!(
            two.load(u, User::products),
            Err(orm_core::Error::InvalidHandle { model: "User" })
        ));
        // A pending id of another session cannot be saved here.
        two.add(Product::new("x", one[u].id));
        let err = two.flush().unwrap_err();
        assert!(
            matches!(
                err,
                orm_core::Error::ForeignPendingId {
                    model: "Product",
                    field: "user"
                }
            ),
            "{err}"
        );
        Ok(())
    }

    fn a_changed_generated_key_moves_in_the_identity_map(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let cyd = db.add(User::new("Cyd"));
        db.commit()?;
        db[cyd].id = orm_core::Id::new(50);
        db.commit()?;
        assert_eq!(db.get::<User>(50)?, Some(cyd));
        assert_eq!(
            t.rows(r#"SELECT id, name FROM "user""#),
            table(&[&["50", "Cyd"]])
        );
        // The old key is no longer this object's: reading it finds no row.
        assert_eq!(db.get::<User>(1)?, None);
        Ok(())
    }
}
