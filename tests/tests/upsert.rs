//! Upsert (`INSERT .. ON CONFLICT .. DO UPDATE`) of one object or many: the rows written, and
//! the objects of the session kept in step with them (no duplicates, current values), checked
//! against the rows by plain SQL.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A member, known by email.
#[derive(Model, Debug)]
pub struct Member {
    #[key]
    pub id: Id<Member>,
    #[column(unique)]
    pub email: String,
    pub name: String,
    #[column(unique)]
    pub handle: Option<String>,
    #[belongs_to(back_populates = "members")]
    pub team: Option<Id<Team>>,
    #[version]
    pub version: i64,
}

/// A team of members.
#[derive(Model, Debug)]
pub struct Team {
    #[key]
    pub id: Id<Team>,
    pub name: String,
    #[has_many(back_populates = "team")]
    pub members: HasMany<Member>,
}

/// A country, keyed by its code.
#[derive(Model, Debug)]
pub struct Country {
    #[key]
    pub code: String,
    pub name: String,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Team, Member, Country)>()
        .expect("create tables");
    db
}

fn member(email: &str, name: &str) -> Member {
    Member::new(email, name, None::<String>, None::<Id<Team>>)
}

fn members(t: &TestDb) -> Vec<Vec<String>> {
    t.rows("SELECT email, name, version FROM member ORDER BY email")
}

backend_tests! {
    fn a_new_value_inserts_and_a_known_one_updates_the_same_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        // The row the session holds: the same handle, its values updated, its version up.
        let again = db.upsert(member("ann@x", "Ann B."), Member::email)?;
        assert_eq!(again, ann);
        assert_eq!((db[ann].name.as_str(), db[ann].version), ("Ann B.", 2));
        // A new value: a new row with a key of its own.
        let bob = db.upsert(member("bob@x", "Bob"), Member::email)?;
        assert_ne!(bob, ann);
        assert!(db[bob].id.is_stored());
        db.commit()?;
        assert_eq!(members(t), table(&[&["ann@x", "Ann B.", "2"], &["bob@x", "Bob", "1"]]));
        let id = db[bob].id.value()?;
        assert_eq!(t.rows(&format!("SELECT name FROM member WHERE id = {id}")), table(&[&["Bob"]]));
        Ok(())
    }

    fn a_row_the_session_does_not_hold_becomes_one_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        t.exec("INSERT INTO member (email, name, version) VALUES ('cy@x', 'Cy', 7)");
        let cy = db.upsert(member("cy@x", "Cyrus"), Member::email)?;
        assert_eq!((db[cy].name.as_str(), db[cy].version), ("Cyrus", 8));
        // Read again: the same object, no duplicate.
        let read = db.query::<Member>().filter(Member::email.eq("cy@x")).one()?;
        assert_eq!(read, cy);
        assert_eq!(db.query::<Member>().count()?, 1);
        db.commit()?;
        assert_eq!(members(t), table(&[&["cy@x", "Cyrus", "8"]]));
        Ok(())
    }

    fn many_at_once_in_order_with_pending_changes_flushed_first(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let red = db.add(Team::new("red"));
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        db[ann].name = "edited".into(); // flushed before the upsert, then overwritten by it
        let blue = db.add(Team::new("blue")); // pending: its id resolves after that flush
        let objs: Vec<Member> = ["dan@x", "ann@x", "eve@x"]
            .iter()
            .map(|&e| Member::new(e, format!("{e} name"), None::<String>, blue))
            .collect();
        let hs = db.upsert_all(objs, Member::email)?;
        assert_eq!(hs[1], ann);
        assert_eq!(db[hs[0]].email, "dan@x");
        assert_eq!(db[hs[2]].email, "eve@x");
        // Collections follow the keys the rows now hold.
        let team_members = db.load(blue, Team::members)?;
        assert_eq!(team_members.len(), 3);
        assert!(db.load(red, Team::members)?.is_empty());
        db.commit()?;
        assert_eq!(
            t.rows("SELECT m.email, m.name, t.name FROM member m JOIN team t ON t.id = m.team_id ORDER BY m.email"),
            table(&[&["ann@x", "ann@x name", "blue"], &["dan@x", "dan@x name", "blue"], &["eve@x", "eve@x name", "blue"]])
        );
        Ok(())
    }

    fn rollback_undoes_the_upsert_in_the_session_too(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let bob = db.upsert(member("bob@x", "Bob"), Member::email)?;
        db.upsert(member("ann@x", "Changed"), Member::email)?;
        db.rollback()?;
        assert_eq!((db[ann].name.as_str(), db[ann].version), ("Ann", 1));
        assert!(!db.contains(bob));
        assert_eq!(members(t), table(&[&["ann@x", "Ann", "1"]]));
        // And again, committed this time.
        db.upsert(member("ann@x", "Changed"), Member::email)?;
        db.commit()?;
        assert_eq!(members(t), table(&[&["ann@x", "Changed", "2"]]));
        Ok(())
    }

    fn a_failing_statement_writes_nothing_and_changes_no_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Member::new("ann@x", "Ann", Some("ann".to_owned()), None::<Id<Team>>));
        db.add(Member::new("bob@x", "Bob", Some("bob".to_owned()), None::<Id<Team>>));
        db.commit()?;
        // The second takes a handle another row has: a UNIQUE clash on another column.
        let objs = vec![
            Member::new("ann@x", "Ann 2", Some("ann".to_owned()), None::<Id<Team>>),
            Member::new("cy@x", "Cy", Some("bob".to_owned()), None::<Id<Team>>),
        ];
        let e = db.upsert_all(objs, Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(db[ann].name, "Ann");
        assert_eq!(db.query::<Member>().count()?, 2);
        db.commit()?;
        assert_eq!(members(t), table(&[&["ann@x", "Ann", "1"], &["bob@x", "Bob", "1"]]));
        Ok(())
    }

    fn misuse_is_refused_before_any_sql(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        db.log_statements(true);
        let e = db.upsert(member("a@x", "A"), Member::name).unwrap_err();
        assert!(matches!(e, Error::Upsert { field: "name", .. }), "{e}");
        let e = db.upsert(member("a@x", "A"), Member::id).unwrap_err();
        assert!(matches!(e, Error::Upsert { field: "id", .. }), "{e}");
        let e = db.upsert(member("a@x", "A"), Member::handle).unwrap_err();
        assert!(e.to_string().contains("no value"), "{e}");
        let e = db
            .upsert_all(vec![member("a@x", "A"), member("a@x", "B")], Member::email)
            .unwrap_err();
        assert!(e.to_string().contains("same value"), "{e}");
        assert!(db.statements().is_empty());
        assert_eq!(t.count("SELECT COUNT(*) FROM member"), 0);
        Ok(())
    }

    fn a_natural_key_is_a_conflict_target(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let fr = db.add(Country::new("fr", "France"));
        db.commit()?;
        let hs = db.upsert_all(
            vec![Country::new("fr", "République française"), Country::new("de", "Germany")],
            Country::code,
        )?;
        assert_eq!(hs[0], fr);
        assert_eq!(db[fr].name, "République française");
        db.commit()?;
        assert_eq!(
            t.rows("SELECT code, name FROM country ORDER BY code"),
            table(&[&["de", "Germany"], &["fr", "République française"]])
        );
        Ok(())
    }

    fn many_rows_in_few_statements(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let first: Vec<Member> = (0..300).map(|i| member(&format!("m{i}@x"), "old")).collect();
        db.upsert_all(first, Member::email)?;
        db.commit()?;
        let mut db = t.open();
        db.log_statements(true);
        let second: Vec<Member> = (150..1150).map(|i| member(&format!("m{i}@x"), "new")).collect();
        let hs = db.upsert_all(second, Member::email)?;
        let upserts = db.statements().iter().filter(|s| s.sql.contains("ON CONFLICT")).count();
        assert!(upserts <= 3, "{upserts} statements");
        assert_eq!(hs.len(), 1000);
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM member"), 1150);
        assert_eq!(t.count("SELECT COUNT(*) FROM member WHERE name = 'new'"), 1000);
        assert_eq!(t.count("SELECT COUNT(*) FROM member WHERE version = 2"), 150);
        Ok(())
    }
}
