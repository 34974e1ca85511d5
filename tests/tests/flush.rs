//! The flush: statement order and batching, trees and cycles, keys, and atomicity.

use orm_core::prelude::*;
use orm_tests::*;

backend_tests! {
    fn inserts_go_parents_first_one_statement_per_table(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        // Children added before their parents.
        let mut users = Vec::new();
        for i in 0..3 {
            users.push(db.add(User::new(format!("u{i}"))));
        }
        let orphans: Vec<_> = (0..6).map(|i| db.add(product(&format!("p{i}")))).collect();
        for (i, &p) in orphans.iter().enumerate() {
            db.set(p, Product::user, users[i % 3])?;
        }
        db.add(User::new("late"));
        db.take_statements();
        db.commit()?;
        assert_eq!(
            writes(&mut db),
            [
                t.sql("INSERT INTO \"user\" (\"id\", \"name\") VALUES (?1, ?2), (?3, ?4), (?5, ?6), (?7, ?8)"),
                t.sql("INSERT INTO \"product\" (\"id\", \"name\", \"user_id\") VALUES (?1, ?2, ?3), (?4, ?5, ?6), (?7, ?8, ?9), (?10, ?11, ?12), (?13, ?14, ?15), (?16, ?17, ?18)"),
            ]
        );
        // Rows within a table go in the order they were added.
        assert_eq!(
            t.rows(r#"SELECT id, name FROM "user" ORDER BY id"#),
            table(&[&["1", "u0"], &["2", "u1"], &["3", "u2"], &["4", "late"]])
        );
        assert_eq!(
            t.rows("SELECT name, user_id FROM product ORDER BY id"),
            table(&[
                &["p0", "1"],
                &["p1", "2"],
                &["p2", "3"],
                &["p3", "1"],
                &["p4", "2"],
                &["p5", "3"]
            ])
        );
        Ok(())
    }

    fn large_graphs_are_split_into_bounded_batches(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        for i in 0..300 {
            let u = db.add(User::new(format!("u{i}")));
            for j in 0..4 {
                db.add(Product::new(format!("p{i}-{j}"), u));
            }
        }
        db.take_statements();
        db.commit()?;
        let w = writes(&mut db);
        let users = w
            .iter()
            .filter(|s| s.starts_with("INSERT INTO \"user\""))
            .count();
        let products = w
            .iter()
            .filter(|s| s.starts_with("INSERT INTO \"product\""))
            .count();
        // At most 500 rows a statement, in a few fixed sizes (full batches, then powers of two
        // down to 16 rows and the rest in one): 300 = 256 + 32 + 12, 1,200 = 2 × 500 + 128 +
        // 64 + 8.
        assert_eq!((users, products), (3, 5), "{} statements", w.len());
        assert_eq!(t.count(r#"SELECT count(*) FROM product p JOIN "user" u ON u.id = p.user_id AND p.name LIKE 'p' || substr(u.name, 2) || '-%'"#), 1200);
        Ok(())
    }

    fn a_tree_is_inserted_parents_first_level_by_level(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        // Added leaves first.
        let leaf1 = db.add(Category::new("leaf1", None));
        let leaf2 = db.add(Category::new("leaf2", None));
        let mid = db.add(Category::new("mid", None));
        let root = db.add(Category::new("root", None));
        db.set(mid, Category::parent, root)?;
        db.set(root, Category::children, [mid])?;
        db.set(mid, Category::children, [leaf1, leaf2])?;
        db.take_statements();
        db.commit()?;
        // One statement per level, parents first: a row never shares a statement with its parent.
        let names: Vec<Vec<String>> = db
            .take_statements()
            .into_iter()
            .filter(|s| s.sql.starts_with("INSERT"))
            .map(|s| {
                s.params
                    .iter()
                    .filter_map(|p| match p {
                        orm_core::Value::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        assert_eq!(names, [vec!["root"], vec!["mid"], vec!["leaf1", "leaf2"]]);
        assert_eq!(db[leaf1].parent, Some(db[mid].id));
        assert_eq!(
            t.rows("SELECT c.name, p.name FROM category c LEFT JOIN category p ON p.id = c.parent_id ORDER BY c.name"),
            table(&[&["leaf1", "mid"], &["leaf2", "mid"], &["mid", "root"], &["root", "NULL"]])
        );
        Ok(())
    }

    fn rows_linked_only_by_explicit_keys_are_sorted_too(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let mut child = Category::new("child", Id::new(100));
        child.id = Id::new(101);
        let mut parent = Category::new("parent", None);
        parent.id = Id::new(100);
        db.add(child);
        db.add(parent);
        db.commit()?;
        assert_eq!(
            t.rows("SELECT id, name, parent_id FROM category ORDER BY id"),
            table(&[&["100", "parent", "NULL"], &["101", "child", "100"]])
        );
        Ok(())
    }

    fn a_cycle_through_a_nullable_key_is_broken_with_an_update(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let team = db.add(Team::new("red", None));
        let cap = db.add(Member::new("cap", team));
        db.set(team, Team::captain, cap)?;
        db.take_statements();
        db.commit()?;
        let w = writes(&mut db);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("INSERT INTO \"team\""), "{w:?}");
        assert!(w[1].starts_with("INSERT INTO \"member\""), "{w:?}");
        assert_eq!(
            w[2],
            t.sql("UPDATE \"team\" SET \"captain_id\" = ?1 WHERE \"id\" = ?2")
        );
        assert_eq!(db[team].captain, Some(db[cap].id));
        assert_eq!(t.rows("SELECT t.name, m.name FROM team t JOIN member m ON m.id = t.captain_id AND m.team_id = t.id"), table(&[&["red", "cap"]]));
        Ok(())
    }

    fn a_cycle_of_required_keys_is_refused_before_any_sql(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Egg, Chicken)>()?;
        db.log_statements(true);
        let egg = db.add(Egg::new(Id::unset()));
        let chicken = db.add(Chicken::new(egg));
        db.get_mut(egg).chicken = db[chicken].id;
        let err = db.flush().unwrap_err();
        match &err {
            orm_core::Error::Cycle { tables } => {
                assert!(
                    tables.contains(&"egg") && tables.contains(&"chicken"),
                    "{tables:?}"
                );
            }
            other => panic!("expected a cycle error, got {other}"),
        }
        assert!(writes(&mut db).is_empty());
        assert!(db.is_new(egg) && db.is_new(chicken));
        Ok(())
    }

    fn a_required_parent_left_unset_is_reported_before_any_sql(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let u = db.add(User::new("u"));
        let p = db.add(product("no user"));
        db.take_statements();
        let err = db.commit().unwrap_err();
        assert!(
            matches!(
                err,
                orm_core::Error::RequiredRelationUnset {
                    model: "Product",
                    field: "user"
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("`Product.user` is required"),
            "{err}"
        );
        assert!(
            db.statements().is_empty(),
            "no SQL at all: {:?}",
            db.statements()
        );
        assert!(db.is_new(u) && db.is_new(p));
        db.set(p, Product::user, u)?;
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM product"), 1);
        Ok(())
    }

    fn a_failed_flush_changes_nothing_and_a_retry_succeeds(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let existing = db.add(User::new("existing"));
        db.add(Product::new("taken", existing));
        db.commit()?;

        let ann = db.add(User::new("Ann"));
        let a = db.add(Product::new("a", ann));
        let bad = db.add(Product::new("taken", ann)); // UNIQUE violation on the last row
        db[existing].name = "edited".into();
        let err = db.commit().unwrap_err();
        match &err {
            orm_core::Error::Database {
                kind, sql, params, ..
            } => {
                assert_eq!(*kind, orm_core::DbErrorKind::UniqueViolation);
                assert!(sql.starts_with("INSERT INTO \"product\""), "{sql}");
                assert!(
                    params.0.contains(&orm_core::Value::Text("taken".into())),
                    "{params:?}"
                );
            }
            other => panic!("expected a database error, got {other}"),
        }
        assert!(
            err.to_string().contains("sql: INSERT INTO \"product\""),
            "{err}"
        );
        // The session is as before: pending stays pending, no id half-assigned, edits kept.
        assert!(db.is_new(ann) && db.is_new(a) && db.is_new(bad));
        assert!(db[ann].id.is_pending());
        assert!(db[a].user.is_pending());
        assert_eq!(db[existing].name, "edited");
        // The database too (read from another connection once the session ends its transaction).
        db.rollback()?;
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 1);
        assert_eq!(t.count("SELECT count(*) FROM product"), 1);
        assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["existing"]]));

        // Rollback discarded those objects; build the graph again, fail, fix and retry.
        let ann = db.add(User::new("Ann"));
        db.add(Product::new("a", ann));
        let bad = db.add(Product::new("taken", ann));
        assert!(db.flush().is_err());
        db[bad].name = "b".into();
        db.commit()?;
        assert_eq!(
            t.rows(
                r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id ORDER BY p.id"#
            ),
            table(&[&["taken", "existing"], &["a", "Ann"], &["b", "Ann"]])
        );
        match t.backend() {
            Backend::Sqlite => assert_eq!(db[ann].id, 2),
            // The failed flushes used up sequence values, which PostgreSQL does not give back.
            Backend::Postgres => {
                let stored = t.count(r#"SELECT id FROM "user" WHERE name = 'Ann'"#);
                assert_eq!(db[ann].id, stored);
            }
        }
        Ok(())
    }

    fn an_earlier_flush_survives_a_failed_one_in_the_same_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.add(Product::new("first", ann));
        db.flush()?;
        let bad = db.add(Product::new("first", ann));
        assert!(db.flush().is_err());
        db[bad].name = "second".into();
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name FROM product ORDER BY id"),
            table(&[&["first"], &["second"]])
        );
        Ok(())
    }

    fn generated_keys_follow_existing_rows_and_explicit_keys(t: &TestDb) -> orm_core::Result<()> {
        drop(t.session());
        // Without an id, so that the database assigns it on both backends (key 1).
        t.exec(r#"INSERT INTO "user" (name) VALUES ('raw')"#);
        let mut db = t.session();
        let a = db.add(User::new("a"));
        let mut explicit = User::new("explicit");
        explicit.id = Id::new(20);
        let e = db.add(explicit);
        let b = db.add(User::new("b"));
        db.commit()?;
        assert_eq!(db[e].id, 20);
        // Generated keys never collide with the explicit one, nor with rows already there.
        // SQLite: after the highest key. PostgreSQL: the sequence moves past an explicit key
        // only once the flush that writes it succeeded (a failed flush must not move it), so
        // the keys drawn in that flush skip it instead.
        let (ka, kb) = match t.backend() {
            Backend::Sqlite => ("21", "22"),
            Backend::Postgres => ("2", "3"),
        };
        assert_eq!(db[a].id.to_string(), ka);
        assert_eq!(db[b].id.to_string(), kb);
        let mut expected = [["1", "raw"], ["20", "explicit"], [ka, "a"], [kb, "b"]];
        expected.sort_by_key(|r| r[0].parse::<i64>().unwrap_or(0));
        let expected: Vec<&[&str]> = expected.iter().map(|r| &r[..]).collect();
        assert_eq!(
            t.rows(r#"SELECT id, name FROM "user" ORDER BY id"#),
            table(&expected)
        );
        // And the next flush's keys come after the explicit one.
        let c = db.add(User::new("c"));
        db.commit()?;
        assert_eq!(db[c].id, 21 + i64::from(t.backend() == Backend::Sqlite) * 2);
        Ok(())
    }

    fn a_second_writer_never_gets_the_same_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("session 1"));
        db.flush()?; // the session's transaction is now open, holding key 1
        let insert = r#"INSERT INTO "user" (name) VALUES ('other')"#;
        match t.raw() {
            Raw::Sqlite(other) => {
                // The session's transaction holds SQLite's write lock.
                other
                    .busy_timeout(std::time::Duration::from_millis(50))
                    .unwrap();
                let blocked = other.execute(insert, []);
                assert!(
                    blocked.is_err(),
                    "a second writer must wait for the session's transaction"
                );
                db.commit()?;
                other.execute(insert, []).unwrap(); // takes key 2
            }
            Raw::Postgres(mut other) => {
                // PostgreSQL does not block a writer of other rows: it takes the next sequence
                // value while the session's transaction is open.
                other
                    .batch_execute(insert)
                    .expect("a second writer inserts beside the session's transaction"); // takes key 2
                assert_eq!(
                    t.rows(r#"SELECT id, name FROM "user" ORDER BY id"#),
                    table(&[&["2", "other"]])
                );
                db.commit()?;
            }
        }
        let u = db.add(User::new("session 2"));
        db.commit()?;
        assert_eq!(db[u].id, 3);
        assert_eq!(
            t.rows(r#"SELECT id, name FROM "user" ORDER BY id"#),
            table(&[&["1", "session 1"], &["2", "other"], &["3", "session 2"]])
        );
        Ok(())
    }

    fn many_cycles_in_one_flush_are_each_broken(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        // Each team: a plain member added first, then the captain (the cycle's closing key is the
        // required member.team, so the flush must defer the nullable team.captain instead).
        for i in 0..200 {
            let team = db.add(Team::new(format!("t{i}"), None));
            db.add(Member::new(format!("m{i}"), team));
            let cap = db.add(Member::new(format!("c{i}"), team));
            db.set(team, Team::captain, cap)?;
        }
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM team t JOIN member m ON m.id = t.captain_id AND m.team_id = t.id AND m.name = 'c' || substr(t.name, 2)"), 200);
        assert_eq!(
            t.count("SELECT count(*) FROM member m JOIN team t ON t.id = m.team_id"),
            400
        );
        Ok(())
    }
}

/// SQLite only: the session waits for SQLite's write lock held by another connection.
#[test]
fn a_flush_waits_for_another_writer_to_finish() -> orm_core::Result<()> {
    let t = TestDb::sqlite();
    drop(t.session());
    let Raw::Sqlite(other) = t.raw() else {
        unreachable!("a SQLite database")
    };
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut db = t.open();
    // Another writer holds the lock briefly, from another thread.
    let u = db.add(User::new("waits"));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        other.execute_batch("COMMIT").unwrap();
    });
    // busy_timeout (5 s) waits for the other writer, then the flush goes through.
    db.commit()?;
    releaser.join().unwrap();
    assert_eq!(db[u].id, 1);
    assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 1);
    Ok(())
}
