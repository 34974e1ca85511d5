//! Errors a program can act on (issue 13, point 7): database errors name the constraint,
//! table and columns where the database gives them, and a lock held by another session is a
//! `Busy` error that says so, after a timeout the program sets.

use orm_core::prelude::*;
use orm_core::DbErrorKind;
use orm_tests::*;
use std::time::{Duration, Instant};

fn kind(e: &orm_core::Error) -> Option<DbErrorKind> {
    match e {
        orm_core::Error::Database { kind, .. } => Some(*kind),
        _ => None,
    }
}

backend_tests! {
    /// A UNIQUE clash names the table and the column (and on PostgreSQL the constraint).
    fn a_unique_clash_names_its_table_and_column(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.add(Product::new("p", ann));
        db.add(Product::new("p", ann));
        let e = db.commit().expect_err("the name is UNIQUE");
        assert_eq!(kind(&e), Some(DbErrorKind::UniqueViolation), "{e}");
        let v = e.violated().expect("a database error");
        assert_eq!(v.table.as_deref(), Some("product"), "{v:?}");
        assert_eq!(v.columns, ["name"], "{v:?}");
        if t.backend() == Backend::Postgres {
            assert_eq!(v.constraint.as_deref(), Some("product_name_key"), "{v:?}");
        }
        Ok(())
    }

    /// A missing parent: PostgreSQL names the constraint, table and column; SQLite says
    /// nothing more than the kind.
    fn a_foreign_key_failure_names_what_the_database_gives(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(Product::new("p", Id::<User>::new(42)));
        let e = db.commit().expect_err("no user 42");
        assert_eq!(kind(&e), Some(DbErrorKind::ForeignKeyViolation), "{e}");
        let v = e.violated().expect("a database error");
        match t.backend() {
            Backend::Postgres => {
                assert_eq!(v.constraint.as_deref(), Some("product_user_id_fkey"), "{v:?}");
                assert_eq!(v.table.as_deref(), Some("product"), "{v:?}");
                assert_eq!(v.columns, ["user_id"], "{v:?}");
            }
            Backend::Sqlite => assert_eq!(*v, orm_core::Violated::default()),
        }
        Ok(())
    }

    /// A session that writes while another holds the lock waits the timeout it was given,
    /// then fails with `Busy`, saying that another session holds the lock; nothing is
    /// written, and it succeeds once the other lets go.
    fn a_held_lock_is_a_busy_error_after_the_timeout(t: &TestDb) -> orm_core::Result<()> {
        let mut first = t.session();
        let ann = first.add(User::new("Ann"));
        first.commit()?;
        let mut second = t.open();
        let ann2 = second.get::<User>(1)?.expect("Ann");
        first[ann].name = "first".into();
        first.flush()?; // holds the lock (SQLite: the database's; PostgreSQL: the row's)
        second.set_busy_timeout(Duration::from_millis(200))?;
        second[ann2].name = "second".into();
        let start = Instant::now();
        let e = second.flush().expect_err("the lock is held");
        assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
        assert_eq!(kind(&e), Some(DbErrorKind::Busy), "{e}");
        assert!(e.to_string().contains("another"), "{e}");
        assert!(e.to_string().contains("holds"), "{e}");
        first.commit()?;
        second.rollback()?;
        second[ann2].name = "second".into();
        second.commit()?;
        assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["second"]]));
        Ok(())
    }
}
