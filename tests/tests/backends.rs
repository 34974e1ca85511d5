//! Where the backends differ underneath and the session must hide it or say so: failed
//! statements inside a transaction, failed commits, keys without sequences, long constraint
//! names, NaN, dropping tables in a reference cycle, connection URLs.

use orm_core::prelude::*;
use orm_tests::*;

fn is_kind(e: &orm_core::Error, k: orm_core::DbErrorKind) -> bool {
    matches!(e, orm_core::Error::Database { kind, .. } if *kind == k)
}

/// Half of a reference cycle whose other half has two references with long names.
#[derive(Model, Debug)]
pub struct Depot {
    #[key]
    pub id: Id<Depot>,
    #[belongs_to]
    pub last_shipment: Option<Id<Shipment>>,
}

/// Its two forward references get constraint names that are equal after PostgreSQL
/// truncates them to 63 bytes.
#[derive(Model, Debug)]
#[model(table = "shipment_records_of_the_northern_distribution_warehouse")]
pub struct Shipment {
    #[key]
    pub id: Id<Shipment>,
    #[belongs_to]
    pub origin_depot: Option<Id<Depot>>,
    #[belongs_to]
    pub origin_dock: Option<Id<Depot>>,
}

backend_tests! {
    /// PostgreSQL aborts the whole transaction when a statement fails; the session then
    /// refuses to commit (rather than let COMMIT silently roll back) until `rollback()`.
    /// SQLite only fails the statement, and the commit goes through.
    fn a_failed_query_inside_the_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("kept"));
        db.flush()?;
        assert!(db.all::<Egg>().is_err(), "egg has no table");
        match t.backend() {
            Backend::Sqlite => {
                db.commit()?;
                assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 1);
            }
            Backend::Postgres => {
                let e = db.commit().expect_err("the transaction was aborted");
                assert!(
                    matches!(&e, orm_core::Error::TransactionAborted { cause } if cause.contains("egg")),
                    "{e}"
                );
                assert!(matches!(db.flush(), Err(orm_core::Error::TransactionAborted { .. })));
                db.rollback()?;
                assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 0);
                db.add(User::new("redone"));
                db.commit()?;
                assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["redone"]]));
            }
        }
        Ok(())
    }

    /// A failed flush is undone by its savepoint on both backends, so the transaction goes on.
    fn a_failed_flush_does_not_abort_the_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let a = db.add(User::new("a"));
        let p = db.add(Product::new("p", a));
        let q = db.add(Product::new("q", a));
        db.flush()?;
        db[q].name = "p".into();
        let e = db.flush().expect_err("names are unique");
        assert!(is_kind(&e, orm_core::DbErrorKind::UniqueViolation), "{e}");
        db[q].name = "r".into();
        db.commit()?;
        assert_eq!(db[p].user, db[a].id);
        assert_eq!(
            t.rows("SELECT name FROM product ORDER BY id"),
            table(&[&["p"], &["r"]])
        );
        Ok(())
    }

    /// A generated key needs a sequence on PostgreSQL; a table without one is an error
    /// naming the model, not a panic.
    fn a_key_column_without_a_sequence(t: &TestDb) -> orm_core::Result<()> {
        t.exec(match t.backend() {
            Backend::Sqlite => r#"CREATE TABLE "user" (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"#,
            Backend::Postgres => r#"CREATE TABLE "user" (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"#,
        });
        let mut db = t.open();
        let u = db.add(User::new("a"));
        match t.backend() {
            Backend::Sqlite => {
                db.commit()?;
                assert_eq!(db[u].id, 1);
            }
            Backend::Postgres => {
                let e = db.commit().expect_err("no sequence");
                assert!(
                    matches!(e, orm_core::Error::NoKeySequence { model: "User", table: "user" }),
                    "{e}"
                );
                db[u].id = Id::new(5);
                db.commit()?;
                assert_eq!(t.rows(r#"SELECT id FROM "user""#), table(&[&["5"]]));
            }
        }
        Ok(())
    }

    /// Two references whose constraint names are equal in their first 63 bytes (all that
    /// PostgreSQL keeps) both exist.
    fn long_names_keep_every_foreign_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Depot, Shipment)>()?;
        let d = db.add(Depot::new(None));
        db.commit()?;
        let mut s = Shipment::new(Some(db[d].id), None);
        s.origin_dock = Some(Id::new(999));
        db.add(s);
        let e = db.commit().expect_err("origin_dock references no depot");
        assert!(is_kind(&e, orm_core::DbErrorKind::ForeignKeyViolation), "{e}");
        Ok(())
    }

    /// A value the column's type cannot take names the problem.
    fn a_type_mismatch_error_names_the_problem(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let sql = t.sql("SELECT * FROM everything WHERE a_bytes = ?1");
        let found = db.query_sql::<Everything>(&sql, &[&"text"]);
        match t.backend() {
            // SQLite compares any value with any column.
            Backend::Sqlite => assert!(found?.is_empty()),
            Backend::Postgres => {
                let e = found.expect_err("text is not bytea");
                assert!(e.to_string().contains("cannot bind"), "{e}");
            }
        }
        Ok(())
    }

    /// PostgreSQL stores NaN; SQLite would turn it into NULL, so the session refuses it there
    /// with an error that says so.
    fn nan_is_stored_or_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let e = Everything::new(
            0, 0, 0, 0, 0, 0, f32::NAN, f64::NAN, false, "", vec![], None, None, None, None,
            None, None, None, Some(f64::NAN), None, None, None, Cents(0),
        );
        let h = db.add(e);
        match t.backend() {
            Backend::Sqlite => {
                let e = db.commit().expect_err("NaN");
                assert!(e.to_string().contains("NaN"), "{e}");
                assert_eq!(t.count("SELECT count(*) FROM everything"), 0);
            }
            Backend::Postgres => {
                db.commit()?;
                let id = db[h].id;
                let mut other = t.session();
                let o = other.get::<Everything>(id)?.unwrap();
                assert!(other[o].a_f64.is_nan());
                assert!(other[o].a_f32.is_nan());
                assert!(other[o].o_f64.is_some_and(f64::is_nan));
            }
        }
        Ok(())
    }

    /// Tables in a reference cycle are dropped even when they hold rows.
    fn drop_all_drops_a_cycle_with_rows(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let team = db.add(Team::new("t", None));
        let m = db.add(Member::new("m", db.id(team)));
        db[team].captain = Some(db.id(m));
        db.commit()?;
        db.drop_all::<All>()?;
        assert!(t.tables().is_empty(), "{:?}", t.tables());
        Ok(())
    }
}

/// The connect error does not quote the password.
#[test]
fn a_connect_error_does_not_reveal_the_password() {
    let Err(err) = Session::connect("postgres://postgres:s3cret-pw@127.0.0.1:1/test") else {
        panic!("connected")
    };
    assert!(matches!(err, orm_core::Error::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(err.to_string().contains("postgres:***@127.0.0.1"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret-pw"), "{err:?}");
}

/// Unknown schemes are refused by name; SQLite URLs and paths open.
#[test]
fn urls_pick_the_backend() {
    let Err(err) = Session::connect("mysql://root@127.0.0.1/test") else {
        panic!("connected")
    };
    assert!(err.to_string().contains("unknown scheme `mysql`"), "{err}");
    for url in ["sqlite::memory:", ":memory:", "SQLITE::MEMORY:"] {
        Session::connect(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let t = TestDb::sqlite();
    for url in [
        format!("sqlite://{}", t.path().display()),
        format!("SQLite:{}", t.path().display()),
        t.path().display().to_string(),
    ] {
        let mut db = Session::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        db.create_all::<User>().unwrap();
    }
    assert_eq!(t.tables(), ["user"]);
}

/// URL schemes are case-insensitive.
#[test]
fn an_uppercase_scheme_connects() {
    let Some(t) = TestDb::postgres() else {
        return;
    };
    let url = t.url().replacen("postgres://", "POSTGRES://", 1).replacen(
        "postgresql://",
        "POSTGRESQL://",
        1,
    );
    assert!(url.starts_with("POSTGRES"), "{url}");
    let r = Session::connect(&url);
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
}

/// On PostgreSQL a failed COMMIT ends the transaction; the session goes back to the last
/// commit as the database did (new objects discarded), and stays usable.
#[test]
fn a_failed_commit_on_postgres_leaves_a_usable_session() -> orm_core::Result<()> {
    let Some(t) = TestDb::postgres() else {
        return Ok(());
    };
    drop(t.session());
    t.exec(
        r#"ALTER TABLE "user" ADD CONSTRAINT user_name_deferred UNIQUE (name) DEFERRABLE INITIALLY DEFERRED"#,
    );
    let mut db = t.open();
    let kept = db.add(User::new("kept"));
    db.commit()?;
    db[kept].name = "edited".into();
    let a = db.add(User::new("same"));
    db.add(User::new("same"));
    let e = db
        .commit()
        .expect_err("deferred unique violation at COMMIT");
    assert!(is_kind(&e, orm_core::DbErrorKind::UniqueViolation), "{e}");
    assert!(db.try_get(a).is_none(), "rolled back with the database");
    assert_eq!(db[kept].name, "kept");
    db.add(User::new("same"));
    db.add(User::new("different"));
    db.commit()?;
    assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), 3);
    Ok(())
}
