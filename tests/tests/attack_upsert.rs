//! Attacks on `Session::upsert` / `upsert_all`: targeted cases (identity map, rollback,
//! failures in any statement, keys, relationships, hostile values) and a property test of
//! random operation sequences against a model of the rows and of the session, on both
//! backends.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A team of members.
#[derive(Model, Debug)]
pub struct Team {
    #[key]
    pub id: Id<Team>,
    pub name: String,
    #[has_many(back_populates = "team")]
    pub members: HasMany<Member>,
}

/// A member, known by email; `handle` is another unique column.
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
    #[has_many(through = "member_badges", back_populates = "holders")]
    pub badges: HasMany<Badge>,
}

/// A badge members hold (many-to-many).
#[derive(Model, Debug)]
pub struct Badge {
    #[key]
    pub id: Id<Badge>,
    pub label: String,
    #[has_many(through = "member_badges", back_populates = "badges")]
    pub holders: HasMany<Member>,
}

/// A country, keyed by its code.
#[derive(Model, Debug)]
pub struct Country {
    #[key]
    pub code: String,
    pub name: String,
}

/// Nothing but a natural key.
#[derive(Model, Debug)]
pub struct Word {
    #[key]
    pub text: String,
}

/// Nothing but a generated key and a unique column.
#[derive(Model, Debug)]
pub struct Slim {
    #[key]
    pub id: Id<Slim>,
    #[column(unique)]
    pub code: String,
}

/// A table and a unique column with names SQL reserves, and an `i32` version.
#[derive(Model, Debug)]
#[model(table = "order")]
pub struct Order {
    #[key]
    pub id: Id<Order>,
    #[column(unique, name = "select")]
    pub reference: String,
    #[column(name = "from")]
    pub amount: i64,
    #[version]
    pub rev: i32,
}

/// An account with at most one profile.
#[derive(Model, Debug)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    pub name: String,
    #[has_one(back_populates = "account")]
    pub profile: HasOne<Profile>,
}

/// The profile of an account: its account column is unique (has-one).
#[derive(Model, Debug)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    #[column(unique)]
    pub slug: String,
    pub bio: String,
    #[belongs_to(back_populates = "profile")]
    pub account: Id<Account>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(
        Team,
        Member,
        Badge,
        Country,
        Word,
        Slim,
        Order,
        Account,
        Profile,
    )>()
    .expect("create tables");
    db
}

fn member(email: &str, name: &str) -> Member {
    Member::new(email, name, None::<String>, None::<Id<Team>>)
}

fn member_in(email: &str, name: &str, team: impl Into<Option<Id<Team>>>) -> Member {
    Member::new(email, name, None::<String>, team.into())
}

/// Rows of `member`: id, email, name, handle, team_id, version, ordered by id.
fn member_rows(t: &TestDb) -> Vec<Vec<String>> {
    t.rows("SELECT id, email, name, handle, team_id, version FROM member ORDER BY id")
}

/// The session's live objects of `hs` as `member_rows` writes them, ordered by id.
fn session_rows(db: &Session, hs: &[Handle<Member>]) -> Vec<Vec<String>> {
    let mut rows: Vec<(i64, Vec<String>)> = hs
        .iter()
        .filter(|&&h| db.contains(h))
        .map(|&h| {
            let m = &db[h];
            let id = m.id.value().expect("stored");
            (
                id,
                vec![
                    id.to_string(),
                    m.email.clone(),
                    m.name.clone(),
                    m.handle.clone().unwrap_or_else(|| "NULL".into()),
                    m.team
                        .map_or("NULL".into(), |t| t.value().expect("stored").to_string()),
                    m.version.to_string(),
                ],
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|r| r.1).collect()
}

/// Every member row, read through a query of the session (flushing nothing).
fn all_members(db: &mut Session) -> orm_core::Result<Vec<Handle<Member>>> {
    db.query::<Member>().autoflush(false).all()
}

fn id_of<T: Model + HasId>(db: &Session, h: Handle<T>) -> i64 {
    db[h].raw_id()
}

/// The key of a model with a generated key (test helper).
pub trait HasId {
    fn raw_id(&self) -> i64;
}

impl HasId for Member {
    fn raw_id(&self) -> i64 {
        self.id.value().expect("stored")
    }
}

impl HasId for Team {
    fn raw_id(&self) -> i64 {
        self.id.value().expect("stored")
    }
}

// ---------------------------------------------------------------------------------------
// 1. Targeted cases
// ---------------------------------------------------------------------------------------

backend_tests! {
    fn identity_map_holds_one_object_per_row_through_gets_queries_and_eager_loads(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let red = db.add(Team::new("red"));
        let ann = db.add(member_in("ann@x", "Ann", red));
        db.commit()?;
        let mut db = t.open();
        // Read first by an eager load, then upserted, then read again every way.
        let teams = db.query::<Team>().with(Team::members).all()?;
        let red = teams[0];
        let held = db[red].members.as_slice().to_vec();
        assert_eq!(held.len(), 1);
        let ann2 = db.upsert(member_in("ann@x", "Ann 2", red_id(&db, red)), Member::email)?;
        assert_eq!(ann2, held[0]);
        let ann_id = id_of(&db, ann2);
        assert_eq!(db.get::<Member>(Id::new(ann_id))?, Some(ann2));
        assert_eq!(all_members(&mut db)?, vec![ann2]);
        let again = db.query::<Team>().with(Team::members).all()?;
        assert_eq!(db[again[0]].members, [ann2]);
        assert_eq!(db[ann2].name, "Ann 2");
        // Refresh keeps the same object and the values of the row.
        db.refresh(ann2)?;
        assert_eq!((db[ann2].name.as_str(), db[ann2].version), ("Ann 2", 2));
        db.commit()?;
        let _ = ann;
        assert_eq!(member_rows(t), session_rows(&db, &[ann2]));
        Ok(())
    }

    fn upsert_of_a_value_a_pending_new_object_holds_returns_that_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let p = db.add(member("ann@x", "Ann"));
        let h = db.upsert(member("ann@x", "Ann 2"), Member::email)?;
        assert_eq!(h, p);
        assert_eq!((db[p].name.as_str(), db[p].version), ("Ann 2", 2));
        assert_eq!(member_rows(t).len(), 0, "not committed yet");
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[p]));
        // And a rollback of such a pending-then-upserted object discards it.
        let q = db.add(member("bob@x", "Bob"));
        let h = db.upsert(member("bob@x", "Bob 2"), Member::email)?;
        assert_eq!(h, q);
        db.rollback()?;
        assert!(!db.contains(q));
        assert_eq!(member_rows(t), session_rows(&db, &[p]));
        Ok(())
    }

    fn the_same_value_twice_in_two_calls_is_one_object_and_one_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.upsert(member("ann@x", "A1"), Member::email)?;
        let b = db.upsert(member("ann@x", "A2"), Member::email)?;
        assert_eq!(a, b);
        assert_eq!((db[a].name.as_str(), db[a].version), ("A2", 2));
        assert_eq!(member_rows(t).len(), 0);
        db.rollback()?;
        assert!(!db.contains(a));
        let c = db.upsert(member("ann@x", "A3"), Member::email)?;
        let d = db.upsert(member("ann@x", "A4"), Member::email)?;
        assert_eq!(c, d);
        assert_ne!(c, a);
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[c]));
        assert_eq!(db[c].version, 2);
        Ok(())
    }

    fn upsert_after_a_doomed_delete_of_that_row_makes_a_new_row_and_rollback_brings_the_old_back(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let before = member_rows(t);
        let old_id = id_of(&db, ann);
        db.delete(ann)?;
        let h = db.upsert(member("ann@x", "New"), Member::email)?;
        assert_ne!(h, ann);
        assert!(!db.contains(ann));
        assert_ne!(id_of(&db, h), old_id);
        assert_eq!(db[h].version, 1);
        assert_eq!(all_members(&mut db)?, vec![h]);
        db.rollback()?;
        assert!(db.contains(ann));
        assert!(!db.contains(h));
        assert_eq!(db.get::<Member>(Id::new(old_id))?, Some(ann));
        assert_eq!(member_rows(t), before);
        assert_eq!(session_rows(&db, &[ann]), before);
        // Committed this time.
        db.delete(ann)?;
        let h = db.upsert(member("ann@x", "New"), Member::email)?;
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[h]));
        assert_eq!(all_members(&mut db)?, vec![h]);
        Ok(())
    }

    fn natural_key_deleted_then_upserted_then_rolled_back(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let fr = db.add(Country::new("fr", "France"));
        db.commit()?;
        db.delete(fr)?;
        db.flush()?;
        let fr2 = db.upsert(Country::new("fr", "Again"), Country::code)?;
        assert_ne!(fr2, fr);
        assert!(!db.contains(fr));
        assert_eq!(db.get::<Country>("fr".to_owned())?, Some(fr2));
        db.rollback()?;
        assert!(db.contains(fr));
        assert!(!db.contains(fr2));
        assert_eq!(db[fr].name, "France");
        assert_eq!(db.get::<Country>("fr".to_owned())?, Some(fr));
        let all = db.query::<Country>().all()?;
        assert_eq!(all, vec![fr]);
        // And without the explicit flush, committed.
        db.delete(fr)?;
        let fr3 = db.upsert(Country::new("fr", "Third"), Country::code)?;
        db.commit()?;
        assert_eq!(db.get::<Country>("fr".to_owned())?, Some(fr3));
        assert_eq!(t.rows("SELECT code, name FROM country"), table(&[&["fr", "Third"]]));
        Ok(())
    }

    fn upsert_after_expunge_makes_one_new_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let id = id_of(&db, ann);
        db.expunge(ann)?;
        let h = db.upsert(member("ann@x", "Ann 2"), Member::email)?;
        assert_ne!(h, ann);
        assert!(!db.contains(ann));
        assert_eq!(id_of(&db, h), id);
        assert_eq!(db.get::<Member>(Id::new(id))?, Some(h));
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[h]));
        Ok(())
    }

    fn an_upserted_object_survives_a_later_rollback_once_committed(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let bob = db.upsert(member("bob@x", "Bob"), Member::email)?;
        db.commit()?;
        db[bob].name = "edited".into();
        db.flush()?;
        db.rollback()?;
        assert!(db.contains(bob));
        assert_eq!((db[bob].name.as_str(), db[bob].version), ("Bob", 1));
        // Updated by an upsert, committed, then changed in another transaction rolled back:
        // back to the second commit's values.
        db.upsert(member("bob@x", "Bob 2"), Member::email)?;
        db.commit()?;
        db.upsert(member("bob@x", "Bob 3"), Member::email)?;
        db[bob].name = "Bob 4".into();
        db.flush()?;
        db.rollback()?;
        assert_eq!((db[bob].name.as_str(), db[bob].version), ("Bob 2", 2));
        assert_eq!(member_rows(t), session_rows(&db, &[bob]));
        db[bob].name = "Bob 5".into();
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[bob]));
        Ok(())
    }

    fn a_row_changed_by_another_program_is_overwritten_and_the_version_follows_the_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        t.exec("UPDATE member SET name = 'other', version = 5 WHERE email = 'ann@x'");
        let h = db.upsert(member("ann@x", "Mine"), Member::email)?;
        assert_eq!(h, ann);
        assert_eq!((db[ann].name.as_str(), db[ann].version), ("Mine", 6));
        // The object is current: an edit flushes with no stale-data error.
        db[ann].name = "Mine 2".into();
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[ann]));
        assert_eq!(db[ann].version, 7);
        // A row another program inserted, never read: one new object; rollback discards it
        // and a get reads the committed row again.
        t.exec("INSERT INTO member (email, name, version) VALUES ('cy@x', 'Cy', 3)");
        let cy = db.upsert(member("cy@x", "Cyrus"), Member::email)?;
        assert_eq!(db[cy].version, 4);
        let cy_id = id_of(&db, cy);
        db.rollback()?;
        assert!(!db.contains(cy));
        let cy2 = db.get::<Member>(Id::new(cy_id))?.expect("row");
        assert_eq!((db[cy2].name.as_str(), db[cy2].version), ("Cy", 3));
        Ok(())
    }

    fn keys_of_upserted_rows_never_collide_with_held_or_rolled_back_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let bob = db.upsert(member("bob@x", "Bob"), Member::email)?;
        let bob_id = id_of(&db, bob);
        db.rollback()?;
        // A normal add after the rollback: a key of its own.
        let cy = db.add(member("cy@x", "Cy"));
        db.flush()?;
        assert_ne!(id_of(&db, cy), bob_id, "the key of an object a rollback discarded");
        let dan = db.upsert(member("dan@x", "Dan"), Member::email)?;
        assert_ne!(id_of(&db, dan), bob_id);
        assert_ne!(id_of(&db, dan), id_of(&db, cy));
        // An add + flush after upserts works.
        let eve = db.add(member("eve@x", "Eve"));
        db.commit()?;
        let ids: Vec<i64> = [ann, cy, dan, eve].iter().map(|&h| id_of(&db, h)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "{ids:?}");
        assert_eq!(member_rows(t), session_rows(&db, &[ann, cy, dan, eve]));
        // Another program took the next keys: upsert and add still find free ones.
        t.exec("INSERT INTO member (id, email, name, version) VALUES (100, 'o1@x', 'O', 1)");
        let f = db.upsert(member("f@x", "F"), Member::email)?;
        let g = db.add(member("g@x", "G"));
        db.commit()?;
        assert_ne!(id_of(&db, f), 100);
        assert_ne!(id_of(&db, g), 100);
        assert_eq!(t.count("SELECT COUNT(*) FROM member"), 7);
        Ok(())
    }

    fn an_explicit_generated_key_is_written_and_a_clash_on_it_changes_nothing(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let before = member_rows(t);
        let mut m = member("x@x", "X");
        m.id = Id::new(50);
        let x = db.upsert(m, Member::email)?;
        assert_eq!(id_of(&db, x), 50);
        assert_eq!(db.get::<Member>(Id::new(50))?, Some(x));
        // The key of a row that exists, with a new email: a key clash, nothing written.
        let mut m = member("new@x", "New");
        m.id = Id::new(id_of(&db, ann));
        let e = db.upsert(m, Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!((db[ann].email.as_str(), db[ann].version), ("ann@x", 1));
        // An explicit key with an email that exists: the row keeps its key.
        let mut m = member("ann@x", "Ann 2");
        m.id = Id::new(77);
        let h = db.upsert(m, Member::email)?;
        assert_eq!(h, ann);
        assert_ne!(id_of(&db, ann), 77);
        db.rollback()?;
        assert!(!db.contains(x));
        assert_eq!(member_rows(t), before);
        assert_eq!(session_rows(&db, &[ann]), before);
        Ok(())
    }

    fn rollback_puts_an_upserted_child_back_in_its_old_parents_collection(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let red = db.add(Team::new("red"));
        let blue = db.add(Team::new("blue"));
        let ann = db.add(member_in("ann@x", "Ann", red));
        db.commit()?;
        let mut db = t.open();
        let red = db.query::<Team>().filter(Team::name.eq("red")).one()?;
        let blue_h = db.query::<Team>().filter(Team::name.eq("blue")).one()?;
        let _ = blue;
        let reds = db.load(red, Team::members)?;
        assert_eq!(reds.len(), 1);
        let ann = {
            let _ = ann;
            reds[0]
        };
        assert!(db.load(blue_h, Team::members)?.is_empty());
        db.commit()?; // loaded at a commit: a rollback keeps the collections
        let blue_id = db[blue_h].id;
        let red_id = db[red].id;
        // Moved by the upsert, and a new child for red.
        let h = db.upsert(member_in("ann@x", "Ann", blue_id), Member::email)?;
        assert_eq!(h, ann);
        let bob = db.upsert(member_in("bob@x", "Bob", red_id), Member::email)?;
        assert_eq!(db[red].members, [bob]);
        assert_eq!(db[blue_h].members, [ann]);
        db.rollback()?;
        assert_eq!(db[red].members, [ann]);
        assert!(db[blue_h].members.is_empty());
        assert_eq!(db[ann].team, Some(red_id));
        // Committed: the collections stay as the rows say.
        let h = db.upsert(member_in("ann@x", "Ann", blue_id), Member::email)?;
        let bob = db.upsert(member_in("bob@x", "Bob", red_id), Member::email)?;
        db.commit()?;
        assert_eq!(db[red].members, [bob]);
        assert_eq!(db[blue_h].members, [h]);
        let fresh = t.open();
        drop(fresh);
        assert_eq!(
            t.rows("SELECT m.email, t.name FROM member m JOIN team t ON t.id = m.team_id ORDER BY m.email"),
            table(&[&["ann@x", "blue"], &["bob@x", "red"]])
        );
        Ok(())
    }

    fn upsert_with_a_parent_the_session_deleted_fails_and_changes_nothing(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let red = db.add(Team::new("red"));
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let red_id = db[red].id;
        db.delete(red)?;
        let e = db.upsert(member_in("ann@x", "Ann 2", red_id), Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!((db[ann].name.as_str(), db[ann].version, db[ann].team), ("Ann", 1, None));
        // A parent that never was.
        let e = db.upsert(member_in("zed@x", "Zed", Id::new(999)), Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(all_members(&mut db)?, vec![ann]);
        // A pending parent added and deleted before any flush.
        let gone = db.add(Team::new("gone"));
        let gone_id = db[gone].id;
        db.delete(gone)?;
        let e = db.upsert(member_in("zed@x", "Zed", gone_id), Member::email).unwrap_err();
        assert!(!matches!(e, Error::Database { .. }), "{e}");
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[ann]));
        assert_eq!(t.count("SELECT COUNT(*) FROM team"), 0);
        Ok(())
    }

    fn many_to_many_collections_of_an_upserted_row_are_kept(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        let gold = db.add(Badge::new("gold"));
        let blue = db.add(Badge::new("blue"));
        db.append(ann, Member::badges, gold)?;
        db.commit()?;
        assert_eq!(db[ann].badges, [gold]);
        let h = db.upsert(member("ann@x", "Ann 2"), Member::email)?;
        assert_eq!(h, ann);
        assert_eq!(db[ann].badges, [gold]);
        assert_eq!(db[gold].holders, [ann]);
        db.append(ann, Member::badges, blue)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT b.label FROM member_badges mb JOIN badge b ON b.id = mb.badge_id ORDER BY b.label"),
            table(&[&["blue"], &["gold"]])
        );
        // Upsert then rollback: the links as committed.
        db.upsert(member("ann@x", "Ann 3"), Member::email)?;
        db.remove(ann, Member::badges, gold)?;
        db.rollback()?;
        let mut got = db[ann].badges.as_slice().to_vec();
        got.sort_by_key(|h| format!("{h:?}"));
        let mut want = vec![gold, blue];
        want.sort_by_key(|h| format!("{h:?}"));
        assert_eq!(got, want);
        assert_eq!(db[ann].name, "Ann 2");
        // A fresh session sees the links after an upsert of the member.
        let mut db2 = t.open();
        let a2 = db2.upsert(member("ann@x", "Ann 4"), Member::email)?;
        assert_eq!(db2.load(a2, Member::badges)?.len(), 2);
        db2.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM member_badges"), 2);
        Ok(())
    }

    fn hostile_values_round_trip(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let long = "x".repeat(20_000);
        let values = [
            "",
            "'",
            "''; DROP TABLE member; --",
            "\"quoted\"",
            "back\\slash",
            "ünïcødé 日本語 🎉",
            "e\u{301}",
            "\u{e9}",
            " trailing ",
            "tab\tnew\nline",
            long.as_str(),
        ];
        let objs: Vec<Member> = values
            .iter()
            .map(|v| Member::new(*v, format!("name {v}"), Some(format!("h{v}")), None::<Id<Team>>))
            .collect();
        let hs = db.upsert_all(objs, Member::email)?;
        for (h, v) in hs.iter().zip(values) {
            assert_eq!(db[*h].email, v);
        }
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &hs));
        // Again: every one updated, the same objects.
        let objs: Vec<Member> = values
            .iter()
            .map(|v| Member::new(*v, format!("again {v}'"), Some(format!("h{v}")), None::<Id<Team>>))
            .collect();
        let again = db.upsert_all(objs, Member::email)?;
        assert_eq!(again, hs);
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &hs));
        assert!(db.query::<Member>().all()?.len() == values.len());
        Ok(())
    }

    fn a_model_of_key_and_unique_column_only_and_a_natural_key_only(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.upsert(Slim::new("a"), Slim::code)?;
        let b = db.upsert(Slim::new("a"), Slim::code)?;
        assert_eq!(a, b);
        let hs = db.upsert_all(vec![Slim::new("a"), Slim::new("b")], Slim::code)?;
        assert_eq!(hs[0], a);
        db.commit()?;
        assert_eq!(t.rows("SELECT code FROM slim ORDER BY code"), table(&[&["a"], &["b"]]));
        let w = db.upsert(Word::new("hi"), Word::text)?;
        let hs = db.upsert_all(vec![Word::new("hi"), Word::new("yo")], Word::text)?;
        assert_eq!(hs[0], w);
        db.rollback()?;
        assert!(!db.contains(w));
        let w = db.upsert_all(vec![Word::new("hi"), Word::new("yo")], Word::text)?;
        db.commit()?;
        assert_eq!(db.get::<Word>("hi".to_owned())?, Some(w[0]));
        assert_eq!(t.rows("SELECT text FROM word ORDER BY text"), table(&[&["hi"], &["yo"]]));
        Ok(())
    }

    fn reserved_names_and_an_i32_version(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.upsert(Order::new("r1", 10), Order::reference)?;
        assert_eq!(db[a].rev, 1);
        let b = db.upsert(Order::new("r1", 20), Order::reference)?;
        assert_eq!(a, b);
        assert_eq!((db[a].amount, db[a].rev), (20, 2));
        db[a].amount = 30;
        db.commit()?;
        assert_eq!(db[a].rev, 3);
        assert_eq!(
            t.rows("SELECT \"select\", \"from\", rev FROM \"order\""),
            table(&[&["r1", "30", "3"]])
        );
        Ok(())
    }

    fn has_one_slots_follow_an_upserted_child(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let acc = db.add(Account::new("ann"));
        let p = db.add(Profile::new("p", "old", acc));
        let bob = db.add(Account::new("bob"));
        db.commit()?;
        let (acc_id, bob_id) = (db[acc].id, db[bob].id);
        assert_eq!(db[bob].profile, None);
        // Updated in place.
        let h = db.upsert(Profile::new("p", "new", acc_id), Profile::slug)?;
        assert_eq!(h, p);
        assert_eq!(db[acc].profile, Some(p));
        // Moved to bob by the upsert.
        let h = db.upsert(Profile::new("p", "moved", bob_id), Profile::slug)?;
        assert_eq!(h, p);
        assert_eq!(db[acc].profile, None);
        assert_eq!(db[bob].profile, Some(p));
        // A second profile for bob: the has-one's UNIQUE refuses it, nothing changes.
        let e = db.upsert(Profile::new("q", "dup", bob_id), Profile::slug).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(db[bob].profile, Some(p));
        // A new one for ann, then rollback of it all.
        let q = db.upsert(Profile::new("q", "ann's", acc_id), Profile::slug)?;
        assert_eq!(db[acc].profile, Some(q));
        db.rollback()?;
        assert!(!db.contains(q));
        assert_eq!(db[acc].profile, Some(p));
        assert_eq!(db[bob].profile, None);
        assert_eq!((db[p].bio.as_str(), db[p].account), ("old", acc_id));
        assert_eq!(
            t.rows("SELECT slug, bio, account_id FROM profile"),
            table(&[&["p", "old", &acc_id.value()?.to_string()]])
        );
        Ok(())
    }

    fn a_failure_in_a_later_chunk_leaves_database_and_session_as_before(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let seeded: Vec<Member> = (0..20)
            .map(|i| Member::new(format!("m{i}@x"), "old", Some(format!("h{i}")), None::<Id<Team>>))
            .collect();
        db.upsert_all(seeded, Member::email)?;
        db.add(Member::new("keep@x", "keep", Some("kept".to_owned()), None::<Id<Team>>));
        db.commit()?;
        let held = all_members(&mut db)?;
        let before = member_rows(t);
        db.log_statements(true);
        // 1,200 rows: the first rows update the held ones; the last takes the handle of
        // another row (a UNIQUE clash in the last statement).
        let objs: Vec<Member> = (0..1200)
            .map(|i| {
                let handle = if i == 1199 { "kept".to_owned() } else { format!("n{i}") };
                Member::new(format!("m{i}@x"), "new", Some(handle), None::<Id<Team>>)
            })
            .collect();
        let e = fails(db.upsert_all(objs, Member::email));
        assert!(matches!(e, Error::Database { .. }), "{e}");
        let statements = db
            .take_statements()
            .iter()
            .filter(|s| s.sql.contains("ON CONFLICT"))
            .count();
        assert!(statements >= 2, "{statements} statements: the failure is not in a later one");
        assert_eq!(member_rows(t), before, "visible outside: nothing committed");
        assert_eq!(session_rows(&db, &held), before);
        assert_eq!(all_members(&mut db)?.len(), 21);
        db.commit()?;
        assert_eq!(member_rows(t), before);
        assert_eq!(session_rows(&db, &held), before);
        Ok(())
    }

    fn a_check_or_trigger_failing_mid_statement_changes_nothing(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let held = db.upsert_all((0..5).map(|i| member(&format!("m{i}@x"), "old")).collect(), Member::email)?;
        db.commit()?;
        match t.backend() {
            Backend::Sqlite => t.exec(
                "CREATE TRIGGER no_boom BEFORE UPDATE ON member WHEN NEW.name = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'boom'); END; \
                 CREATE TRIGGER no_bang BEFORE INSERT ON member WHEN NEW.name = 'bang' \
                 BEGIN SELECT RAISE(ABORT, 'bang'); END;",
            ),
            Backend::Postgres => t.exec(
                "ALTER TABLE member ADD CONSTRAINT no_boom CHECK (name <> 'boom'); \
                 CREATE FUNCTION no_bang() RETURNS trigger AS $$ BEGIN \
                 IF NEW.name = 'bang' THEN RAISE EXCEPTION 'bang'; END IF; RETURN NEW; END $$ \
                 LANGUAGE plpgsql; \
                 CREATE TRIGGER no_bang BEFORE INSERT ON member FOR EACH ROW EXECUTE FUNCTION no_bang();",
            ),
        }
        let before = member_rows(t);
        // Updates of held rows and inserts first, then an update that fails.
        let objs = vec![
            member("m0@x", "new"),
            member("m1@x", "new"),
            member("fresh@x", "fresh"),
            member("m3@x", "new"),
            member("m4@x", "boom"),
        ];
        let e = db.upsert_all(objs, Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(session_rows(&db, &held), before);
        assert_eq!(all_members(&mut db)?.len(), 5);
        // An insert that fails after updates.
        let mut objs: Vec<Member> = (0..5).map(|i| member(&format!("m{i}@x"), "new")).collect();
        objs.push(member("late@x", "bang"));
        let e = db.upsert_all(objs, Member::email).unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(session_rows(&db, &held), before);
        db.commit()?;
        assert_eq!(member_rows(t), before);
        // The session works on.
        let ok = db.upsert(member("m0@x", "fine"), Member::email)?;
        assert_eq!(ok, held[0]);
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &held));
        Ok(())
    }

    fn swapping_unique_values_of_two_rows_fails_and_changes_nothing(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Member::new("ann@x", "Ann", Some("a".to_owned()), None::<Id<Team>>));
        let bob = db.add(Member::new("bob@x", "Bob", Some("b".to_owned()), None::<Id<Team>>));
        db.commit()?;
        let before = member_rows(t);
        let e = db
            .upsert_all(
                vec![
                    Member::new("ann@x", "Ann", Some("b".to_owned()), None::<Id<Team>>),
                    Member::new("bob@x", "Bob", Some("a".to_owned()), None::<Id<Team>>),
                ],
                Member::email,
            )
            .unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(session_rows(&db, &[ann, bob]), before);
        db.commit()?;
        assert_eq!(member_rows(t), before);
        Ok(())
    }

    fn pending_changes_flushed_first_are_kept_when_the_upsert_fails(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Member::new("ann@x", "Ann", Some("a".to_owned()), None::<Id<Team>>));
        db.commit()?;
        db[ann].name = "edited".into();
        let cy = db.add(member("cy@x", "Cy"));
        let e = db
            .upsert(Member::new("dan@x", "Dan", Some("a".to_owned()), None::<Id<Team>>), Member::email)
            .unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(all_members(&mut db)?.len(), 2);
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[ann, cy]));
        assert_eq!(db[ann].name, "edited");
        Ok(())
    }
}

/// The error of a call that must fail (without printing a long `Ok`).
fn fails<T>(r: orm_core::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("succeeded"),
        Err(e) => e,
    }
}

fn red_id(db: &Session, red: Handle<Team>) -> Id<Team> {
    db[red].id
}

backend_tests! {
    /// PostgreSQL: a row another session holds locked makes the upsert fail (lock timeout)
    /// with nothing written and no object changed; SQLite: another connection holding the
    /// write lock does the same (busy).
    fn a_row_locked_by_another_session_fails_and_changes_nothing(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(member("ann@x", "Ann"));
        db.commit()?;
        let before = member_rows(t);
        if t.backend() == Backend::Sqlite {
            // A 5 s busy wait; not worth it here.
            return Ok(());
        }
        db.execute_sql("SET lock_timeout = '300ms'", &[])?;
        db.commit()?;
        let mut other = t.raw();
        other
            .exec("BEGIN; UPDATE member SET name = 'locker' WHERE email = 'ann@x'")
            .expect("lock");
        let e = db
            .upsert_all(vec![member("bob@x", "Bob"), member("ann@x", "Mine")], Member::email)
            .unwrap_err();
        assert!(matches!(e, Error::Database { .. }), "{e}");
        assert_eq!(session_rows(&db, &[ann]), before);
        assert_eq!(all_members(&mut db)?, vec![ann]);
        other.exec("ROLLBACK").expect("unlock");
        let h = db.upsert(member("ann@x", "Mine"), Member::email)?;
        assert_eq!(h, ann);
        db.commit()?;
        assert_eq!(member_rows(t), session_rows(&db, &[ann]));
        Ok(())
    }
}

bug_tests! {
    /// An explicitly set generated key written by an upsert was not noted as a flush notes
    /// it, so on PostgreSQL the key sequence was not moved past it at commit and the next
    /// session to add a row drew that key (fixed).
    #[sqlite()]
    #[postgres()]
    fn an_explicit_key_written_by_an_upsert_is_not_drawn_again_by_another_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let mut m = member("x@x", "X");
        m.id = Id::new(1);
        db.upsert(m, Member::email)?;
        let mut m = member("y@x", "Y");
        m.id = Id::new(2);
        db.upsert(m, Member::email)?;
        db.commit()?;
        let mut db2 = t.open();
        let a = db2.add(member("a@x", "A"));
        db2.commit()?;
        assert!(db2[a].id.value()? > 2);
        assert_eq!(t.count("SELECT COUNT(*) FROM member"), 3);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 2. Random operation sequences against a model
// ---------------------------------------------------------------------------------------

/// A bin of items (two bins, their collections loaded).
#[derive(Model, Debug)]
pub struct Bin {
    #[key]
    pub id: Id<Bin>,
    pub label: String,
    #[has_many(back_populates = "bin")]
    pub items: HasMany<Item>,
}

/// An item known by its code.
#[derive(Model, Debug)]
pub struct Item {
    #[key]
    pub id: Id<Item>,
    #[column(unique)]
    pub code: String,
    pub val: i64,
    #[belongs_to(back_populates = "items")]
    pub bin: Option<Id<Bin>>,
    #[version]
    pub version: i64,
}

mod ops {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestError};
    use std::collections::BTreeMap;

    type Check = Result<(), String>;

    const CODES: [&str; 6] = ["a", "b", "c", "d", "é'\"", ""];

    #[derive(Clone, Debug)]
    pub enum Op {
        /// (code, val, bin) each; codes made distinct before the call.
        Upsert(Vec<(usize, i64, Option<usize>)>),
        Edit(usize, i64),
        Delete(usize),
        Get(usize),
        Flush,
        Commit,
        Rollback,
        OtherInsert(usize, i64),
        OtherUpdate(usize, i64),
        OtherDelete(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let c = || 0usize..CODES.len();
        let o = || 0usize..10;
        let b = || proptest::option::of(0usize..2);
        prop_oneof![
            6 => proptest::collection::vec((c(), 0i64..5, b()), 1..4).prop_map(Op::Upsert),
            2 => (o(), 0i64..5).prop_map(|(i, v)| Op::Edit(i, v)),
            2 => o().prop_map(Op::Delete),
            2 => c().prop_map(Op::Get),
            1 => Just(Op::Flush),
            2 => Just(Op::Commit),
            2 => Just(Op::Rollback),
            1 => (c(), 0i64..5).prop_map(|(i, v)| Op::OtherInsert(i, v)),
            1 => (c(), 0i64..5).prop_map(|(i, v)| Op::OtherUpdate(i, v)),
            1 => c().prop_map(Op::OtherDelete),
        ]
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Row {
        id: i64,
        val: i64,
        bin: Option<usize>,
        version: i64,
    }

    #[derive(Debug)]
    struct Obj {
        h: Handle<Item>,
        code: String,
        cur: Row,
        /// Values before the first edit since the last flush.
        snap: Option<Row>,
        /// Values at the last commit, once changed in the open transaction.
        journal: Option<Row>,
        since_commit: bool,
        valid: bool,
        doomed: bool,
        /// Deleted by a flush of the open transaction: its values at the commit.
        deleted: Option<Row>,
    }

    struct World<'t> {
        t: &'t TestDb,
        db: Session,
        bins: [Handle<Bin>; 2],
        bin_ids: [i64; 2],
        committed: BTreeMap<String, Row>,
        tx: Option<BTreeMap<String, Row>>,
        objs: Vec<Obj>,
    }

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    impl World<'_> {
        fn view(&self) -> BTreeMap<String, Row> {
            self.tx.clone().unwrap_or_else(|| self.committed.clone())
        }

        fn live(&self, i: usize) -> Option<usize> {
            let live: Vec<usize> = (0..self.objs.len())
                .filter(|&k| self.objs[k].valid && !self.objs[k].doomed)
                .collect();
            (!live.is_empty()).then(|| live[i % live.len()])
        }

        fn held(&self, id: i64) -> Option<usize> {
            self.objs.iter().position(|o| o.valid && o.cur.id == id)
        }

        fn bin_id(&self, b: Option<usize>) -> Option<Id<Bin>> {
            b.map(|b| Id::new(self.bin_ids[b]))
        }

        fn step(&mut self, op: &Op) -> Check {
            match op {
                Op::Upsert(list) => {
                    let mut seen = std::collections::HashSet::new();
                    let list: Vec<_> = list.iter().filter(|(c, _, _)| seen.insert(*c)).collect();
                    let objs: Vec<Item> = list
                        .iter()
                        .map(|&&(c, v, b)| Item::new(CODES[c], v, self.bin_id(b)))
                        .collect();
                    let hs = self.db.upsert_all(objs, Item::code).map_err(e2s)?;
                    self.flush_model()?;
                    let mut rows = self.view();
                    for (&&(c, v, b), &h) in list.iter().zip(&hs) {
                        let code = CODES[c].to_owned();
                        let row = match rows.get_mut(&code) {
                            Some(r) => {
                                r.val = v;
                                r.bin = b;
                                r.version += 1;
                                r.clone()
                            }
                            None => {
                                let id = self.db[h].id.value().map_err(e2s)?;
                                if rows.values().any(|r| r.id == id) {
                                    return Err(format!("new row with the key {id} of a row"));
                                }
                                let r = Row {
                                    id,
                                    val: v,
                                    bin: b,
                                    version: 1,
                                };
                                rows.insert(code.clone(), r.clone());
                                r
                            }
                        };
                        match self.held(row.id) {
                            Some(k) => {
                                let o = &mut self.objs[k];
                                if o.h != h {
                                    return Err(format!(
                                        "upsert of {code:?} gave {h:?}, the session holds {:?}",
                                        o.h
                                    ));
                                }
                                if !o.since_commit && o.journal.is_none() {
                                    o.journal = Some(o.cur.clone());
                                }
                                o.cur = row;
                            }
                            None => {
                                if self.objs.iter().any(|o| o.h == h) {
                                    return Err(format!("upsert gave an old handle {h:?}"));
                                }
                                self.objs.push(Obj {
                                    h,
                                    code,
                                    cur: row,
                                    snap: None,
                                    journal: None,
                                    since_commit: true,
                                    valid: true,
                                    doomed: false,
                                    deleted: None,
                                });
                            }
                        }
                    }
                    self.tx = Some(rows);
                }
                Op::Edit(i, v) => {
                    let Some(k) = self.live(*i) else {
                        return Ok(());
                    };
                    let o = &mut self.objs[k];
                    if o.snap.is_none() {
                        o.snap = Some(o.cur.clone());
                    }
                    o.cur.val = *v;
                    let h = o.h;
                    self.db[h].val = *v;
                }
                Op::Delete(i) => {
                    let Some(k) = self.live(*i) else {
                        return Ok(());
                    };
                    self.db.delete(self.objs[k].h).map_err(e2s)?;
                    self.objs[k].doomed = true;
                }
                Op::Get(c) => {
                    let code = CODES[*c];
                    let got = self
                        .db
                        .query::<Item>()
                        .filter(Item::code.eq(code))
                        .all()
                        .map_err(e2s)?;
                    // The query flushed.
                    self.flush_model()?;
                    let want = self.view().get(code).cloned();
                    match (got.as_slice(), want) {
                        ([], None) => {}
                        ([h], Some(row)) => match self.held(row.id) {
                            Some(k) if self.objs[k].h == *h => {}
                            Some(k) => {
                                return Err(format!(
                                    "query of {code:?}: {h:?}, the session holds {:?}",
                                    self.objs[k].h
                                ))
                            }
                            None => {
                                if self.objs.iter().any(|o| o.h == *h) {
                                    return Err(format!("query gave an old handle {h:?}"));
                                }
                                self.objs.push(Obj {
                                    h: *h,
                                    code: code.to_owned(),
                                    cur: row,
                                    snap: None,
                                    journal: None,
                                    since_commit: false,
                                    valid: true,
                                    doomed: false,
                                    deleted: None,
                                });
                            }
                        },
                        (got, want) => {
                            return Err(format!("query of {code:?}: {got:?}, row {want:?}"))
                        }
                    }
                }
                Op::Flush => {
                    self.db.flush().map_err(e2s)?;
                    self.flush_model()?;
                }
                Op::Commit => self.commit()?,
                Op::Rollback => {
                    self.db.rollback().map_err(e2s)?;
                    self.tx = None;
                    for o in &mut self.objs {
                        if o.since_commit {
                            o.valid = false;
                        } else if let Some(at) = o.deleted.take() {
                            o.valid = true;
                            o.cur = at;
                        } else if o.valid {
                            if let Some(r) = o.journal.take().or(o.snap.take()) {
                                o.cur = r;
                            }
                        }
                        o.snap = None;
                        o.journal = None;
                        o.doomed = false;
                    }
                }
                Op::OtherInsert(..) | Op::OtherUpdate(..) | Op::OtherDelete(_)
                    if self.tx.is_some() => {}
                Op::OtherInsert(c, v) => {
                    let code = CODES[*c];
                    if self.committed.contains_key(code) {
                        return Ok(());
                    }
                    let id = 1000 + self.committed.len() as i64 * 7 + *c as i64 + 100 * *v;
                    if self.committed.values().any(|r| r.id == id)
                        || self.objs.iter().any(|o| o.cur.id == id)
                    {
                        return Ok(());
                    }
                    let q = code.replace('\'', "''");
                    self.t.exec(&format!(
                        "INSERT INTO item (id, code, val, bin_id, version) VALUES ({id}, '{q}', {v}, NULL, 3)"
                    ));
                    self.committed.insert(
                        code.to_owned(),
                        Row {
                            id,
                            val: *v,
                            bin: None,
                            version: 3,
                        },
                    );
                }
                Op::OtherUpdate(c, _) | Op::OtherDelete(c) => {
                    let code = CODES[*c];
                    let Some(row) = self.committed.get(code).cloned() else {
                        return Ok(());
                    };
                    if self.held(row.id).is_some() {
                        return Ok(());
                    }
                    if let Op::OtherUpdate(_, v) = op {
                        self.t.exec(&format!(
                            "UPDATE item SET val = {v}, version = version + 1 WHERE id = {}",
                            row.id
                        ));
                        let r = self.committed.get_mut(code).unwrap();
                        r.val = *v;
                        r.version += 1;
                    } else {
                        self.t
                            .exec(&format!("DELETE FROM item WHERE id = {}", row.id));
                        self.committed.remove(code);
                    }
                }
            }
            Ok(())
        }

        /// What a successful flush did, in the model.
        fn flush_model(&mut self) -> Check {
            let mut rows = self.view();
            let mut wrote = false;
            for o in &mut self.objs {
                if !o.valid {
                    continue;
                }
                if o.doomed {
                    rows.remove(&o.code);
                    wrote = true;
                    if !o.since_commit {
                        o.deleted = Some(
                            o.journal
                                .clone()
                                .or(o.snap.clone())
                                .unwrap_or(o.cur.clone()),
                        );
                    }
                    o.valid = false;
                } else if let Some(snap) = o.snap.take() {
                    if snap != o.cur {
                        o.cur.version += 1;
                        rows.insert(o.code.clone(), o.cur.clone());
                        wrote = true;
                        if !o.since_commit && o.journal.is_none() {
                            o.journal = Some(snap);
                        }
                    }
                }
                o.doomed = false;
            }
            if wrote || self.tx.is_some() {
                self.tx = Some(rows);
            }
            Ok(())
        }

        fn commit(&mut self) -> Check {
            self.db.commit().map_err(e2s)?;
            self.flush_model()?;
            if let Some(rows) = self.tx.take() {
                self.committed = rows;
            }
            for o in &mut self.objs {
                o.since_commit = false;
                o.journal = None;
                o.deleted = None;
            }
            let got: BTreeMap<String, Row> = self
                .t
                .rows("SELECT code, id, val, bin_id, version FROM item")
                .into_iter()
                .map(|r| {
                    let bin = self.bin_ids.iter().position(|b| b.to_string() == r[3]);
                    let row = Row {
                        id: r[1].parse().unwrap(),
                        val: r[2].parse().unwrap(),
                        bin,
                        version: r[4].parse().unwrap(),
                    };
                    (r[0].clone(), row)
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

        fn check(&self) -> Check {
            let db = &self.db;
            let view = self.view();
            for o in &self.objs {
                if db.contains(o.h) != o.valid {
                    return Err(format!(
                        "{:?} ({:?}): contains is {}",
                        o.h, o.code, !o.valid
                    ));
                }
                if !o.valid {
                    continue;
                }
                let it = &db[o.h];
                let got = Row {
                    id: it.id.value().map_err(e2s)?,
                    val: it.val,
                    bin: it
                        .bin
                        .and_then(|b| self.bin_ids.iter().position(|&k| Id::new(k) == b)),
                    version: it.version,
                };
                if got != o.cur || it.code != o.code {
                    return Err(format!(
                        "{:?} ({:?}): {got:?}, expected {:?}",
                        o.h, o.code, o.cur
                    ));
                }
                if db.handle_of(Id::<Item>::new(got.id)) != Some(o.h) {
                    return Err(format!(
                        "key {} names {:?}, not {:?}",
                        got.id,
                        db.handle_of(Id::<Item>::new(got.id)),
                        o.h
                    ));
                }
                // A clean object equals its row in the open transaction.
                if o.snap.is_none() && !o.doomed && view.get(&o.code) != Some(&o.cur) {
                    return Err(format!(
                        "{:?} ({:?}): {:?}, its row {:?}",
                        o.h,
                        o.code,
                        o.cur,
                        view.get(&o.code)
                    ));
                }
            }
            for (code, row) in &view {
                let n = self
                    .objs
                    .iter()
                    .filter(|o| o.valid && o.cur.id == row.id)
                    .count();
                if n > 1 {
                    return Err(format!("{n} objects for the row {code:?}"));
                }
            }
            for (b, &bin) in self.bins.iter().enumerate() {
                let mut got: Vec<_> = db[bin].items.as_slice().to_vec();
                got.retain(|h| !self.objs.iter().any(|o| o.h == *h && o.valid && o.doomed));
                got.sort_by_key(|h| format!("{h:?}"));
                let mut want: Vec<_> = self
                    .objs
                    .iter()
                    .filter(|o| o.valid && !o.doomed && o.cur.bin == Some(b))
                    .map(|o| o.h)
                    .collect();
                want.sort_by_key(|h| format!("{h:?}"));
                if got != want {
                    return Err(format!("bin {b}: collection {got:?}, expected {want:?}"));
                }
            }
            Ok(())
        }
    }

    pub fn replay(t: &TestDb, ops: &[Op]) -> Check {
        let mut db = t.open();
        db.execute_sql("DELETE FROM item", &[]).map_err(e2s)?;
        db.execute_sql("DELETE FROM bin", &[]).map_err(e2s)?;
        let b = db.add_all([Bin::new("x"), Bin::new("y")]);
        let seeded = db.add_all([Item::new("a", 1, b[0]), Item::new("b", 2, None::<Id<Bin>>)]);
        db.commit().map_err(e2s)?;
        let bin_ids = [db[b[0]].id.value().unwrap(), db[b[1]].id.value().unwrap()];
        let committed: BTreeMap<String, Row> = seeded
            .iter()
            .map(|&h| {
                let i = &db[h];
                let bin = i.bin.map(|_| 0);
                (
                    i.code.clone(),
                    Row {
                        id: i.id.value().unwrap(),
                        val: i.val,
                        bin,
                        version: 1,
                    },
                )
            })
            .collect();
        drop(db);
        let mut db = t.open();
        let bins = [
            db.get::<Bin>(Id::new(bin_ids[0])).map_err(e2s)?.unwrap(),
            db.get::<Bin>(Id::new(bin_ids[1])).map_err(e2s)?.unwrap(),
        ];
        let mut objs = Vec::new();
        for &bin in &bins {
            for h in db.load(bin, Bin::items).map_err(e2s)? {
                let code = db[h].code.clone();
                objs.push(Obj {
                    h,
                    cur: committed[&code].clone(),
                    code,
                    snap: None,
                    journal: None,
                    since_commit: false,
                    valid: true,
                    doomed: false,
                    deleted: None,
                });
            }
        }
        db.commit().map_err(e2s)?;
        let mut w = World {
            t,
            db,
            bins,
            bin_ids,
            committed,
            tx: None,
            objs,
        };
        for (i, op) in ops.iter().enumerate() {
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

    pub fn property(t: &TestDb, cases: u32) -> Check {
        t.open().create_all::<(Bin, Item)>().map_err(e2s)?;
        let (mut runner, cases) = runner(cases);
        let started = std::time::Instant::now();
        let ops = proptest::collection::vec(op(), 1..=25);
        let result = runner.run(&ops, |ops| replay(t, &ops).map_err(TestCaseError::fail));
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "upsert ops {:?}: {cases} cases in {:.1?}",
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
    fn random_sequences_of_upserts_edits_deletes_and_an_outside_writer_agree_with_a_model(t: &TestDb) -> Result<(), String> {
        ops::property(t, 96)
    }
}
