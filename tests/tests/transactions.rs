//! The session's transaction around failures: what aborts it and what does not, `drop_all`
//! in and out of an open transaction, and the statement log of a failed batch.

use orm_core::prelude::*;
use orm_tests::*;

fn is_kind(e: &orm_core::Error, k: orm_core::DbErrorKind) -> bool {
    matches!(e, orm_core::Error::Database { kind, .. } if *kind == k)
}

backend_tests! {
    /// A value the driver refuses to bind (PostgreSQL: a client-side error, never sent to the
    /// server) fails the query but does not abort the server's transaction: the flushed work
    /// must still commit.
    fn a_bind_error_in_a_query_does_not_poison_the_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("kept"));
        db.flush()?;
        let sql = t.sql("SELECT * FROM everything WHERE a_bytes = ?1");
        let r = db.query_sql::<Everything>(&sql, &[&"text"]);
        if t.backend() == Backend::Postgres {
            assert!(r.is_err());
        }
        // The server's transaction is alive: a query in it still runs and sees the flush.
        assert_eq!(db.all::<User>()?.len(), 1);
        db.commit()?;
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 1);
        Ok(())
    }

    /// Same with an integer that does not fit the column's type (i16 on PostgreSQL).
    fn an_out_of_range_filter_does_not_poison_the_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("kept"));
        db.flush()?;
        let sql = t.sql("SELECT * FROM everything WHERE a_i16 = ?1");
        let r = db.query_sql::<Everything>(&sql, &[&100_000i64]);
        if t.backend() == Backend::Postgres {
            assert!(r.is_err());
        }
        db.add(User::new("more"));
        db.commit()?;
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 2);
        Ok(())
    }

    /// `drop_all` in its own transaction failing at COMMIT (SQLite: deferred foreign keys, a
    /// table outside the set references a row) must not leave that transaction open behind
    /// the session's back.
    fn drop_all_refused_leaves_a_usable_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("a"));
        db.commit()?;
        t.exec(r#"CREATE TABLE extra (u BIGINT REFERENCES "user"(id)); INSERT INTO extra VALUES (1)"#);
        assert!(db.drop_all::<All>().is_err(), "a row of extra references user 1");
        assert!(t.tables().contains(&"user".to_owned()));
        assert_eq!(db.all::<User>()?.len(), 1, "the session sees the table too");
        db.add(User::new("b"));
        db.commit()?;
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 2);
        Ok(())
    }

    /// `drop_all` inside the session's open transaction must not change how the rest of the
    /// transaction checks foreign keys: a flush with a dangling key must still fail (and be
    /// undone by its savepoint).
    fn drop_all_inside_a_transaction_keeps_foreign_key_checks(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("a"));
        db.flush()?;
        db.drop_all::<(Team, Member)>()?;
        let p = db.add(Product::new("p", Id::<User>::new(999)));
        let e = db.flush().expect_err("user 999 does not exist");
        assert!(is_kind(&e, orm_core::DbErrorKind::ForeignKeyViolation), "{e}");
        db[p].user = Id::new(1);
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM product"), 1);
        Ok(())
    }

    /// The statement log holds the statements that ran: a grouped UPDATE that fails on its
    /// second row ran two UPDATEs, not the third.
    fn log_of_failed_grouped_update(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let u = db.add(User::new("u"));
        let ps: Vec<_> = (1..=3).map(|i| db.add(Product::new(format!("p{i}"), u))).collect();
        db.commit()?;
        db.take_statements();
        db[ps[0]].name = "x1".into();
        db[ps[1]].name = "p3".into();
        db[ps[2]].name = "x3".into();
        db.flush().expect_err("p3 still taken");
        let updates: Vec<_> = db
            .take_statements()
            .into_iter()
            .filter(|s| s.sql.starts_with("UPDATE"))
            .map(|s| s.params)
            .collect();
        assert_eq!(updates.len(), 2, "logged UPDATEs: {updates:?}");
        Ok(())
    }
}
