//! Optimistic concurrency: a `#[version]` column that every UPDATE and DELETE of a row checks
//! and every UPDATE bumps, so that a second writer is refused instead of overwriting, checked
//! with two sessions on one database and the rows read back with plain SQL.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A wiki page that several people edit.
#[derive(Model, Debug)]
pub struct Page {
    #[key]
    pub id: Id<Page>,
    pub title: String,
    pub body: String,
    #[version]
    pub version: i64,
    #[has_many(back_populates = "page")]
    pub notes: HasMany<Note>,
}

/// A note on a page (or on none), with a 32-bit version.
#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    pub text: String,
    #[belongs_to(back_populates = "notes")]
    pub page: Option<Id<Page>>,
    #[version]
    pub rev: i32,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Page, Note)>().expect("create tables");
    db
}

/// Pages "a" and "b", committed.
fn seed(db: &mut Session) -> orm_core::Result<[Handle<Page>; 2]> {
    let a = db.add(Page::new("a", "first"));
    let b = db.add(Page::new("b", "second"));
    db.commit()?;
    Ok([a, b])
}

fn page(db: &mut Session, title: &str) -> orm_core::Result<Handle<Page>> {
    db.query::<Page>().filter(Page::title.eq(title)).one()
}

backend_tests! {
    fn a_new_row_starts_at_one_and_each_update_adds_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = seed(&mut db)?;
        assert_eq!(db[a].version, 1);
        assert_eq!(t.rows("SELECT version FROM page WHERE title = 'a'"), table(&[&["1"]]));
        db[a].body = "edited".into();
        db.commit()?;
        assert_eq!(db[a].version, 2);
        db[a].body = "again".into();
        db.flush()?;
        db[a].title = "A".into();
        db.commit()?;
        assert_eq!(db[a].version, 4);
        assert_eq!(
            t.rows("SELECT title, body, version FROM page ORDER BY id"),
            table(&[&["A", "again", "4"], &["b", "second", "1"]])
        );
        // Nothing changed: nothing written, the version stays.
        db.log_statements(true);
        let _ = &mut db[a];
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        assert_eq!(db[a].version, 4);
        Ok(())
    }

    fn a_second_writer_is_refused_and_the_session_is_unchanged(t: &TestDb) -> orm_core::Result<()> {
        let mut first = session(t);
        seed(&mut first)?;
        let mut mine = t.open();
        let a = page(&mut mine, "a")?;
        mine.commit()?; // read, then the program waits for its user
        let mut theirs = t.open();
        let a2 = page(&mut theirs, "a")?;
        theirs[a2].body = "theirs".into();
        theirs.commit()?;
        mine[a].body = "mine".into();
        let e = mine.commit().unwrap_err();
        match &e {
            Error::StaleData { model, key } => {
                assert_eq!(*model, "Page");
                assert_eq!(key, &mine[a].id.value()?.to_string());
            }
            other => panic!("expected StaleData, got {other}"),
        }
        assert_eq!(t.rows("SELECT body, version FROM page WHERE title = 'a'"), table(&[&["theirs", "2"]]));
        // The session kept the edit and the version it read.
        assert_eq!(mine[a].body, "mine");
        assert_eq!(mine[a].version, 1);
        mine.rollback()?;
        // Read again, then edit: accepted.
        mine.refresh(a)?;
        assert_eq!((mine[a].body.as_str(), mine[a].version), ("theirs", 2));
        mine[a].body = "mine, on theirs".into();
        mine.commit()?;
        assert_eq!(
            t.rows("SELECT body, version FROM page WHERE title = 'a'"),
            table(&[&["mine, on theirs", "3"]])
        );
        Ok(())
    }

    fn one_stale_row_fails_the_whole_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = seed(&mut db)?;
        t.exec("UPDATE page SET version = version + 1 WHERE title = 'b'");
        db[a].body = "x".into();
        db[b].body = "y".into();
        let c = db.add(Page::new("c", "new"));
        assert!(matches!(db.commit(), Err(Error::StaleData { model: "Page", .. })));
        assert_eq!(
            t.rows("SELECT title, body, version FROM page ORDER BY id"),
            table(&[&["a", "first", "1"], &["b", "second", "2"]])
        );
        assert_eq!((db[a].version, db[b].version), (1, 1));
        assert!(db[c].id.is_pending());
        Ok(())
    }

    fn deleting_a_row_another_writer_changed_is_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = seed(&mut db)?;
        t.exec("UPDATE page SET body = 'changed', version = 2 WHERE title = 'a'");
        db.delete(b)?;
        db.delete(a)?;
        let e = db.commit().unwrap_err();
        assert!(matches!(e, Error::StaleData { model: "Page", .. }), "{e}");
        assert_eq!(t.count("SELECT COUNT(*) FROM page"), 2);
        assert!(db.contains(a) && db.contains(b));
        db.rollback()?;
        db.refresh(a)?;
        db.delete(a)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT title FROM page"), table(&[&["b"]]));
        Ok(())
    }

    fn keys_the_flush_sets_to_null_bump_the_version_too(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = seed(&mut db)?;
        let n = db.add(Note::new("n", a));
        db.commit()?;
        assert_eq!(db[n].rev, 1);
        db.delete(a)?;
        db.commit()?;
        assert_eq!(db[n].page, None);
        assert_eq!(db[n].rev, 2);
        assert_eq!(t.count("SELECT COUNT(*) FROM note WHERE page_id IS NULL AND rev = 2"), 1);
        Ok(())
    }

    fn rollback_brings_back_the_version_read(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = seed(&mut db)?;
        db[a].body = "x".into();
        db.flush()?;
        assert_eq!(db[a].version, 2);
        db.rollback()?;
        assert_eq!(db[a].version, 1);
        db[a].body = "y".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT body, version FROM page WHERE title = 'a'"), table(&[&["y", "2"]]));
        Ok(())
    }

    fn a_version_set_by_the_program_is_not_trusted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = seed(&mut db)?;
        t.exec("UPDATE page SET version = 5 WHERE title = 'a'");
        // Setting the field to the database's value does not make a stale object current.
        db[a].version = 5;
        db[a].body = "x".into();
        assert!(matches!(db.commit(), Err(Error::StaleData { .. })));
        assert_eq!(t.rows("SELECT body, version FROM page WHERE title = 'a'"), table(&[&["first", "5"]]));
        Ok(())
    }

    fn on_postgres_a_writer_whose_transaction_is_still_open_is_refused_too(t: &TestDb) -> orm_core::Result<()> {
        // SQLite's write lock keeps the second writer out while the first session's
        // transaction is open; PostgreSQL lets it commit, and the first one's UPDATE then
        // matches no row.
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let mut first = session(t);
        seed(&mut first)?;
        let mut mine = t.open();
        let a = page(&mut mine, "a")?;
        let mut theirs = t.open();
        let a2 = page(&mut theirs, "a")?;
        theirs[a2].body = "theirs".into();
        theirs.commit()?;
        mine[a].body = "mine".into();
        assert!(matches!(mine.flush(), Err(Error::StaleData { model: "Page", .. })));
        mine.rollback()?;
        assert_eq!(t.rows("SELECT body, version FROM page WHERE title = 'a'"), table(&[&["theirs", "2"]]));
        Ok(())
    }
}
