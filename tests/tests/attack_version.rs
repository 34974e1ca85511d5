//! Hostile tests of `#[version]`: a second writer (another session, or plain SQL) changes or
//! deletes a row between a session's read and its flush, in every flush path that writes a
//! versioned row (column edits, moves to stored and to new parents, keys set to `NULL`,
//! cascades, orphans, has-one replacement, many-to-many, self-referential deletes), checked
//! with plain SQL: no overwrite, nothing of a failed flush written, versions up by exactly
//! one per flush that changed the row.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A parent with every kind of versioned child.
#[derive(Model, Debug)]
pub struct Owner {
    #[key]
    pub id: Id<Owner>,
    pub name: String,
    #[version]
    pub version: i64,
    #[has_many(back_populates = "owner", cascade_delete)]
    pub items: HasMany<Item>,
    #[has_many(back_populates = "owner", delete_orphans)]
    pub parts: HasMany<Part>,
    #[has_many(back_populates = "owner")]
    pub notes: HasMany<Note>,
    #[has_one(back_populates = "owner", delete_orphans)]
    pub badge: HasOne<Badge>,
    #[has_one(back_populates = "holder")]
    pub card: HasOne<Card>,
}

/// Deleted with its owner.
#[derive(Model, Debug)]
pub struct Item {
    #[key]
    pub id: Id<Item>,
    pub label: String,
    #[belongs_to(back_populates = "items", on_delete = "cascade")]
    pub owner: Id<Owner>,
    #[version]
    pub version: i64,
}

/// Deleted when taken out of its owner's parts.
#[derive(Model, Debug)]
pub struct Part {
    #[key]
    pub id: Id<Part>,
    pub label: String,
    #[belongs_to(back_populates = "parts")]
    pub owner: Id<Owner>,
    #[version]
    pub version: i64,
}

/// Let go of (key set to `NULL`) when its owner goes; a 32-bit version.
#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    pub text: String,
    #[belongs_to(back_populates = "notes")]
    pub owner: Option<Id<Owner>>,
    #[version]
    pub rev: i32,
}

/// An owner's one badge, deleted when replaced.
#[derive(Model, Debug)]
pub struct Badge {
    #[key]
    pub id: Id<Badge>,
    pub text: String,
    #[belongs_to(back_populates = "badge")]
    pub owner: Id<Owner>,
    #[version]
    pub version: i64,
}

/// An owner's one card (nullable: let go of when replaced).
#[derive(Model, Debug)]
pub struct Card {
    #[key]
    pub id: Id<Card>,
    pub number: String,
    #[belongs_to(back_populates = "card")]
    pub holder: Option<Id<Owner>>,
    #[version]
    pub version: i64,
}

/// A versioned tree whose subtrees go with their root.
#[derive(Model, Debug)]
pub struct Node {
    #[key]
    pub id: Id<Node>,
    pub name: String,
    #[belongs_to(back_populates = "children")]
    pub parent: Option<Id<Node>>,
    #[has_many(back_populates = "parent", cascade_delete)]
    pub children: HasMany<Node>,
    #[version]
    pub version: i64,
}

/// A versioned post with tags.
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    pub title: String,
    #[version]
    pub version: i64,
    #[has_many(through = "post_tags", back_populates = "posts")]
    pub tags: HasMany<Tag>,
}

/// A versioned tag on posts.
#[derive(Model, Debug)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
    #[version]
    pub version: i64,
    #[has_many(through = "post_tags", back_populates = "tags")]
    pub posts: HasMany<Post>,
}

/// A versioned row with a natural key.
#[derive(Model, Debug)]
pub struct Code {
    #[key]
    pub code: String,
    pub name: String,
    #[version]
    pub version: i32,
}

/// A versioned row pointing one way at an owner, set to `NULL` when the owner goes.
#[derive(Model, Debug)]
pub struct Pin {
    #[key]
    pub id: Id<Pin>,
    pub text: String,
    #[belongs_to(on_delete = "set null")]
    pub owner: Option<Id<Owner>>,
    #[version]
    pub version: i64,
}

type Schema = (
    Owner,
    Item,
    Part,
    Note,
    Badge,
    Card,
    Node,
    Post,
    Tag,
    Code,
    Pin,
);

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<Schema>().expect("create tables");
    db
}

/// Panics unless `r` is a `StaleData` error of `model`.
#[track_caller]
fn assert_stale<T: std::fmt::Debug>(r: orm_core::Result<T>, model: &str) {
    match r {
        Err(Error::StaleData { model: m, .. }) if m == model => {}
        other => panic!("expected StaleData of {model}, got {other:?}"),
    }
}

/// Owners "a" and "b", committed.
fn owners(db: &mut Session) -> orm_core::Result<[Handle<Owner>; 2]> {
    let a = db.add(Owner::new("a"));
    let b = db.add(Owner::new("b"));
    db.commit()?;
    Ok([a, b])
}

fn key_of<T: Model>(db: &Session, h: Handle<T>) -> String {
    key(db, h)
}

fn key<T: Model>(db: &Session, h: Handle<T>) -> String {
    db.id(h).value().expect("stored").to_string()
}

backend_tests! {
    fn an_update_of_a_row_another_writer_deleted_is_stale(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Note::new("n", None));
        db.commit()?;
        t.exec("DELETE FROM note");
        db[a].text = "mine".into();
        assert_stale(db.commit(), "Note");
        assert_eq!(t.count("SELECT COUNT(*) FROM note"), 0);
        assert_eq!((db[a].text.as_str(), db[a].rev), ("mine", 1));
        // Deleting it is refused too.
        db.rollback()?;
        db.delete(a)?;
        assert_stale(db.commit(), "Note");
        Ok(())
    }

    fn moving_a_child_to_another_stored_parent_checks_and_bumps_its_version(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = owners(&mut db)?;
        let i = db.add(Item::new("i", a));
        db.commit()?;
        let (ka, kb) = (key(&db, a), key(&db, b));
        t.exec("UPDATE item SET label = 'theirs', version = 2");
        db.set(i, Item::owner, b)?;
        assert_stale(db.commit(), "Item");
        assert_eq!(t.rows("SELECT label, owner_id, version FROM item"), table(&[&["theirs", &ka, "2"]]));
        assert_eq!(db[i].owner, db[b].id);
        assert_eq!(db[i].version, 1);
        db.rollback()?;
        db.refresh(i)?;
        db.set(i, Item::owner, b)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT label, owner_id, version FROM item"), table(&[&["theirs", &kb, "3"]]));
        assert_eq!(db[i].version, 3);
        // The owners' rows were not written.
        assert_eq!(t.rows("SELECT version FROM owner ORDER BY id"), table(&[&["1"], &["1"]]));
        Ok(())
    }

    fn moving_a_child_to_a_parent_inserted_in_the_same_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let i = db.add(Item::new("i", a));
        let j = db.add(Item::new("j", a));
        db.commit()?;
        t.exec("UPDATE item SET version = 5 WHERE label = 'i'");
        let c = db.add(Owner::new("c"));
        db.set(i, Item::owner, c)?;
        db.set(j, Item::owner, c)?;
        assert_stale(db.commit(), "Item");
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 2);
        assert_eq!(t.rows("SELECT label, version FROM item ORDER BY id"), table(&[&["i", "5"], &["j", "1"]]));
        assert!(db[c].id.is_pending());
        assert_eq!((db[i].version, db[j].version), (1, 1));
        db.rollback()?;
        db.refresh(i)?;
        // Moved and renamed in one flush, to a new parent: one more, not two.
        let d = db.add(Owner::new("d"));
        db.set(i, Item::owner, d)?;
        db[i].label = "i2".into();
        db.set(j, Item::owner, d)?;
        db.commit()?;
        let kd = key(&db, d);
        assert_eq!(
            t.rows("SELECT label, owner_id, version FROM item ORDER BY id"),
            table(&[&["i2", &kd, "6"], &["j", &kd, "2"]])
        );
        assert_eq!((db[i].version, db[j].version), (6, 2));
        Ok(())
    }

    fn a_child_whose_key_the_flush_sets_to_null_is_checked(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let n = db.add(Note::new("n", a));
        let m = db.add(Note::new("m", a));
        db.commit()?;
        let ka = key(&db, a);
        t.exec("UPDATE note SET text = 'theirs', rev = 2 WHERE text = 'n'");
        db.delete(a)?;
        assert_stale(db.commit(), "Note");
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 2);
        assert_eq!(
            t.rows("SELECT text, owner_id, rev FROM note ORDER BY id"),
            table(&[&["theirs", &ka, "2"], &["m", &ka, "1"]])
        );
        assert_eq!(db[n].owner, Some(db[a].id));
        assert_eq!((db[n].rev, db[m].rev), (1, 1));
        db.rollback()?;
        db.refresh(n)?;
        db.delete(a)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT text, owner_id, rev FROM note ORDER BY id"),
            table(&[&["theirs", "NULL", "3"], &["m", "NULL", "2"]])
        );
        assert_eq!((db[n].owner, db[n].rev, db[m].rev), (None, 3, 2));
        Ok(())
    }

    fn children_nulled_from_a_loaded_collection_and_edited_too(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let n = db.add(Note::new("n", a));
        let m = db.add(Note::new("m", a));
        db.commit()?;
        db.load(a, Owner::notes)?;
        db.commit()?;
        // Edited and let go of in one flush: one more.
        db[n].text = "edited".into();
        db.delete(a)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT text, owner_id, rev FROM note ORDER BY id"),
            table(&[&["edited", "NULL", "2"], &["m", "NULL", "2"]])
        );
        assert_eq!((db[n].rev, db[m].rev), (2, 2));
        Ok(())
    }

    fn children_read_by_the_flush_to_be_let_go_of_get_the_current_version_plus_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        db.add(Note::new("n", a));
        db.commit()?;
        // Another session: the note is not in it.
        let mut other = t.open();
        let a2 = other.query::<Owner>().filter(Owner::name.eq("a")).one()?;
        other.commit()?;
        t.exec("UPDATE note SET rev = 7");
        other.delete(a2)?;
        other.commit()?;
        assert_eq!(t.rows("SELECT owner_id, rev FROM note"), table(&[&["NULL", "8"]]));
        let n2 = other.query::<Note>().one()?;
        assert_eq!((other[n2].owner, other[n2].rev), (None, 8));
        // The first session's copy of the note is stale now.
        let n = db.query::<Note>().one()?;
        db.commit()?;
        db[n].text = "mine".into();
        assert_stale(db.commit(), "Note");
        assert_eq!(t.rows("SELECT text, rev FROM note"), table(&[&["n", "8"]]));
        Ok(())
    }

    fn rollback_of_a_flush_that_let_children_go_restores_their_versions(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let n = db.add(Note::new("n", a));
        db.commit()?;
        db.delete(a)?;
        db.flush()?;
        assert_eq!((db[n].owner, db[n].rev), (None, 2));
        db.rollback()?;
        assert_eq!((db[n].owner, db[n].rev), (Some(db[a].id), 1));
        db[n].text = "after".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT text, rev FROM note"), table(&[&["after", "2"]]));
        assert_eq!(db[n].rev, 2);
        Ok(())
    }

    fn cascaded_versioned_children_are_checked(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = owners(&mut db)?;
        let i1 = db.add(Item::new("i1", a));
        let i2 = db.add(Item::new("i2", a));
        db.add(Item::new("k", b));
        db.commit()?;
        db.load(a, Owner::items)?;
        db.commit()?;
        t.exec("UPDATE item SET version = 2 WHERE label = 'i2'");
        db.delete(a)?;
        assert_stale(db.commit(), "Item");
        assert_eq!(t.count("SELECT COUNT(*) FROM item"), 3);
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 2);
        assert!(db.is_deleted(a));
        db.rollback()?;
        assert!(!db.is_deleted(a));
        db.refresh(i2)?;
        assert_eq!(db[i2].version, 2);
        db.delete(a)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT label FROM item"), table(&[&["k"]]));
        assert!(!db.contains(i1) && !db.contains(i2));
        Ok(())
    }

    fn a_cascaded_child_another_writer_deleted_is_stale(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        db.add(Item::new("i1", a));
        db.add(Item::new("i2", a));
        db.commit()?;
        db.load(a, Owner::items)?;
        db.commit()?;
        t.exec("DELETE FROM item WHERE label = 'i2'");
        db.delete(a)?;
        assert_stale(db.commit(), "Item");
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 2);
        assert_eq!(t.rows("SELECT label FROM item"), table(&[&["i1"]]));
        Ok(())
    }

    fn a_cascaded_child_the_session_holds_stale_but_whose_collection_is_not_loaded(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        db.add(Item::new("i1", a));
        db.add(Item::new("i2", a));
        db.commit()?;
        // A fresh session holds one item (read), not the owner's collection.
        let mut db = t.open();
        let i1 = db.query::<Item>().filter(Item::label.eq("i1")).one()?;
        let a = db.query::<Owner>().filter(Owner::name.eq("a")).one()?;
        db.commit()?;
        t.exec("UPDATE item SET version = 9 WHERE label = 'i1'");
        db.delete(a)?;
        assert_stale(db.commit(), "Item");
        assert_eq!(t.count("SELECT COUNT(*) FROM item"), 2);
        db.rollback()?;
        db.refresh(i1)?;
        db.delete(a)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM item"), 0);
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 1);
        Ok(())
    }

    fn an_orphan_another_writer_changed_is_not_deleted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let p = db.add(Part::new("p", a));
        let q = db.add(Part::new("q", a));
        db.commit()?;
        t.exec("UPDATE part SET label = 'theirs', version = 2 WHERE label = 'p'");
        db.remove(a, Owner::parts, p)?;
        db[q].label = "q2".into();
        assert_stale(db.commit(), "Part");
        assert_eq!(
            t.rows("SELECT label, version FROM part ORDER BY id"),
            table(&[&["theirs", "2"], &["q", "1"]])
        );
        assert!(db.contains(p));
        assert_eq!(db[q].label, "q2");
        db.rollback()?;
        db.refresh(p)?;
        db.remove(a, Owner::parts, p)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT label, version FROM part"), table(&[&["q", "1"]]));
        Ok(())
    }

    fn a_replaced_has_one_child_is_checked(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let b1 = db.add(Badge::new("old", a));
        db.commit()?;
        t.exec("UPDATE badge SET version = 2");
        let b2 = db.add(Badge::new("new", a));
        assert_eq!(db[a].badge, Some(b2));
        assert_stale(db.commit(), "Badge");
        assert_eq!(t.rows("SELECT text, version FROM badge"), table(&[&["old", "2"]]));
        assert!(db[b2].id.is_pending());
        db.rollback()?;
        db.refresh(b1)?;
        let b3 = db.add(Badge::new("newer", a));
        db.commit()?;
        assert_eq!(t.rows("SELECT text, version FROM badge"), table(&[&["newer", "1"]]));
        assert_eq!(db[b3].version, 1);
        Ok(())
    }

    fn a_nullable_has_one_swapped_bumps_both_cards_once(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = owners(&mut db)?;
        let c1 = db.add(Card::new("1", a));
        let c2 = db.add(Card::new("2", b));
        db.commit()?;
        let (ka, kb) = (key(&db, a), key(&db, b));
        // c2 takes a's UNIQUE key that c1 gives up (written after c1's UPDATE).
        db.set(a, Owner::card, Some(c2))?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT number, holder_id, version FROM card ORDER BY id"),
            table(&[&["1", "NULL", "2"], &["2", &ka, "2"]])
        );
        assert_eq!((db[c1].version, db[c2].version), (2, 2));
        // Another writer changes c1; giving it back to a is refused.
        t.exec("UPDATE card SET number = 'one', version = 3 WHERE number = '1'");
        db.set(a, Owner::card, Some(c1))?;
        assert_stale(db.commit(), "Card");
        assert_eq!(
            t.rows("SELECT number, holder_id, version FROM card ORDER BY id"),
            table(&[&["one", "NULL", "3"], &["2", &ka, "2"]])
        );
        db.rollback()?;
        db.refresh(c1)?;
        db.set(b, Owner::card, Some(c1))?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT number, holder_id, version FROM card ORDER BY id"),
            table(&[&["one", &kb, "4"], &["2", &ka, "2"]])
        );
        Ok(())
    }

    fn many_to_many_links_and_deletes_of_versioned_rows(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let p = db.add(Post::new("p"));
        let x = db.add(Tag::new("x"));
        let y = db.add(Tag::new("y"));
        db.append(p, Post::tags, x)?;
        db.commit()?;
        let links = || {
            t.rows(
                "SELECT p.title, g.label FROM post_tags pt JOIN post p ON p.id = pt.post_id \
                 JOIN tag g ON g.id = pt.tag_id ORDER BY 1, 2",
            )
        };
        assert_eq!(links(), table(&[&["p", "x"]]));
        // A link changes no row.
        db.append(p, Post::tags, y)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT version FROM post"), table(&[&["1"]]));
        assert_eq!(t.rows("SELECT version FROM tag ORDER BY id"), table(&[&["1"], &["1"]]));
        assert_eq!(db[p].version, 1);
        // A stale post's edit fails the flush, and the link of that flush is not written.
        t.exec("UPDATE post SET version = 2");
        db.remove(p, Post::tags, x)?;
        db[p].title = "mine".into();
        assert_stale(db.commit(), "Post");
        assert_eq!(links(), table(&[&["p", "x"], &["p", "y"]]));
        assert_eq!(db[p].tags, [y]);
        db.rollback()?;
        assert_eq!(db[p].tags, [x, y]);
        // Deleting the stale post: refused, links kept.
        db.delete(p)?;
        assert_stale(db.commit(), "Post");
        assert_eq!(links(), table(&[&["p", "x"], &["p", "y"]]));
        db.rollback()?;
        db.refresh(p)?;
        db.delete(p)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 0);
        assert_eq!(t.count("SELECT COUNT(*) FROM post"), 0);
        Ok(())
    }

    fn a_stale_tag_deleted_with_its_links_from_the_other_side(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let p = db.add(Post::new("p"));
        let x = db.add(Tag::new("x"));
        db.append(x, Tag::posts, p)?;
        db.commit()?;
        db.load(p, Post::tags)?;
        db.commit()?;
        t.exec("UPDATE tag SET label = 'X', version = 2");
        db.delete(x)?;
        db[p].title = "p2".into();
        assert_stale(db.commit(), "Tag");
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 1);
        assert_eq!(t.rows("SELECT title, version FROM post"), table(&[&["p", "1"]]));
        db.rollback()?;
        assert_eq!(db[p].tags, [x]);
        db.refresh(x)?;
        db.delete(x)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 0);
        assert!(db[p].tags.is_empty());
        Ok(())
    }

    fn self_referential_rows_deleted_together_are_checked(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let r = db.add(Node::new("r", None));
        let c = db.add(Node::new("c", r));
        let g = db.add(Node::new("g", c));
        db.commit()?;
        db.load(r, Node::children)?;
        db.load(c, Node::children)?;
        db.load(g, Node::children)?;
        db.commit()?;
        t.exec("UPDATE node SET version = 2 WHERE name = 'g'");
        db.delete(r)?;
        assert_stale(db.commit(), "Node");
        assert_eq!(t.count("SELECT COUNT(*) FROM node"), 3);
        db.rollback()?;
        db.refresh(g)?;
        db.delete(r)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM node"), 0);
        Ok(())
    }

    fn a_cycle_of_versioned_rows_deleted_together(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let n1 = db.add(Node::new("n1", None));
        let n2 = db.add(Node::new("n2", n1));
        db.commit()?;
        db.set(n1, Node::parent, Some(n2))?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name, version FROM node ORDER BY id"), table(&[&["n1", "2"], &["n2", "1"]]));
        t.exec("UPDATE node SET version = 5 WHERE name = 'n2'");
        db.delete(n1)?;
        db.delete(n2)?;
        assert_stale(db.commit(), "Node");
        let (k1, k2) = (key(&db, n1), key(&db, n2));
        assert_eq!(
            t.rows("SELECT name, parent_id, version FROM node ORDER BY id"),
            table(&[&["n1", &k2, "2"], &["n2", &k1, "5"]])
        );
        db.rollback()?;
        db.refresh(n2)?;
        db.delete(n1)?;
        db.delete(n2)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM node"), 0);
        Ok(())
    }

    fn several_stale_rows_in_one_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let hs: Vec<_> = (0..5).map(|i| db.add(Owner::new(format!("o{i}")))).collect();
        db.commit()?;
        t.exec("UPDATE owner SET version = 2 WHERE name IN ('o1', 'o3')");
        for &h in &hs {
            db[h].name.push('!');
        }
        let n = db.add(Owner::new("new"));
        assert_stale(db.commit(), "Owner");
        assert_eq!(t.count("SELECT COUNT(*) FROM owner WHERE name LIKE '%!'"), 0);
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 5);
        assert!(db[n].id.is_pending());
        // One refreshed: still one stale.
        db.refresh(hs[1])?;
        assert_stale(db.commit(), "Owner");
        db.refresh(hs[3])?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, version FROM owner ORDER BY id"),
            table(&[&["o0!", "2"], &["o1", "2"], &["o2!", "2"], &["o3", "2"], &["o4!", "2"], &["new", "1"]])
        );
        Ok(())
    }

    fn an_i32_version_at_its_maximum(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        db.add(Note::new("n", None));
        db.commit()?;
        t.exec("UPDATE note SET rev = 2147483646");
        let mut db = t.open();
        let n = db.query::<Note>().one()?;
        db.commit()?;
        db[n].text = "a".into();
        db.commit()?;
        assert_eq!(db[n].rev, i32::MAX);
        assert_eq!(t.rows("SELECT rev FROM note"), table(&[&["2147483647"]]));
        db[n].text = "b".into();
        let r = db.commit();
        let stored = t.rows("SELECT text, rev FROM note");
        match r {
            Ok(()) => {
                // The version moved on, to a value other than the one read, and the session
                // holds the one written.
                assert_eq!(stored[0][0], "b");
                assert_ne!(stored[0][1], "2147483647");
                assert_eq!(stored[0][1], db[n].rev.to_string());
            }
            Err(e) => {
                assert_eq!(stored, table(&[&["a", "2147483647"]]), "{e}");
                return Ok(());
            }
        }
        // A writer behind its back is still seen after the wrap.
        t.exec("UPDATE note SET rev = 12");
        db[n].text = "c".into();
        assert_stale(db.commit(), "Note");
        Ok(())
    }

    fn a_version_only_edit_by_the_program(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        db[a].version = 42;
        db.commit()?;
        // Whatever is written, the session and the database agree, and it is the session's.
        let v = t.count("SELECT version FROM owner WHERE name = 'a'");
        assert_eq!(db[a].version, v);
        assert!(v == 1 || v == 2, "{v}");
        // A lower version set with an edit: the check uses the one read.
        db[a].version = 0;
        db[a].name = "a2".into();
        db.commit()?;
        assert_eq!(t.count("SELECT version FROM owner WHERE name = 'a2'"), v + 1);
        assert_eq!(db[a].version, v + 1);
        // Rollback brings back the version read, not the one set.
        db[a].version = 1000;
        db[a].name = "a3".into();
        db.flush()?;
        db.rollback()?;
        assert_eq!((db[a].name.as_str(), db[a].version), ("a2", v + 1));
        Ok(())
    }

    fn rollback_after_a_failed_flush_that_followed_a_successful_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = owners(&mut db)?;
        t.exec("UPDATE owner SET name = 'B', version = 2 WHERE name = 'b'");
        db[a].name = "a1".into();
        db.flush()?;
        assert_eq!(db[a].version, 2);
        db[b].name = "b1".into();
        db[a].name = "a2".into();
        assert_stale(db.flush(), "Owner");
        assert_eq!((db[a].name.as_str(), db[a].version), ("a2", 2));
        assert_eq!((db[b].name.as_str(), db[b].version), ("b1", 1));
        db.rollback()?;
        assert_eq!((db[a].name.as_str(), db[a].version), ("a", 1));
        assert_eq!((db[b].name.as_str(), db[b].version), ("b", 1));
        assert_eq!(t.rows("SELECT name, version FROM owner ORDER BY id"), table(&[&["a", "1"], &["B", "2"]]));
        db.refresh(b)?;
        db[a].name = "a3".into();
        db[b].name = "b3".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT name, version FROM owner ORDER BY id"), table(&[&["a3", "2"], &["b3", "3"]]));
        assert_eq!((db[a].version, db[b].version), (2, 3));
        Ok(())
    }

    fn two_sessions_alternating_never_overwrite(t: &TestDb) -> orm_core::Result<()> {
        let mut seed = session(t);
        seed.add(Owner::new("o"));
        seed.add(Note::new("n", None));
        seed.commit()?;
        drop(seed);
        let mut dbs = [t.open(), t.open()];
        let mut owner = Vec::new();
        let mut note = Vec::new();
        // What each session read: (owner version, note rev).
        let mut read = [(0i64, 0i32); 2];
        for (s, db) in dbs.iter_mut().enumerate() {
            owner.push(db.query::<Owner>().one()?);
            note.push(db.query::<Note>().one()?);
            db.commit()?;
            read[s] = (db[owner[s]].version, db[note[s]].rev);
        }
        let (mut stored_v, mut stored_r) = (1i64, 1i32);
        let (mut name, mut text) = ("o".to_string(), "n".to_string());
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for step in 0..60 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let s = (rng % 2) as usize;
            let what = (rng >> 8) % 4;
            let db = &mut dbs[s];
            let value = format!("s{s}-{step}");
            let (edit_owner, edit_note) = match what {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => {
                    // Reads again.
                    db.refresh(owner[s])?;
                    db.refresh(note[s])?;
                    db.commit()?;
                    read[s] = (db[owner[s]].version, db[note[s]].rev);
                    assert_eq!(read[s], (stored_v, stored_r));
                    continue;
                }
            };
            if edit_owner {
                db[owner[s]].name = value.clone();
            }
            if edit_note {
                db[note[s]].text = value.clone();
            }
            let current = (!edit_owner || read[s].0 == stored_v) && (!edit_note || read[s].1 == stored_r);
            match db.commit() {
                Ok(()) => {
                    assert!(current, "step {step}: session {s} wrote over a newer row");
                    if edit_owner {
                        stored_v += 1;
                        name = value.clone();
                    }
                    if edit_note {
                        stored_r += 1;
                        text = value.clone();
                    }
                    read[s] = (db[owner[s]].version, db[note[s]].rev);
                    assert_eq!(read[s].0, if edit_owner { stored_v } else { read[s].0 });
                    assert_eq!(read[s].1, if edit_note { stored_r } else { read[s].1 });
                }
                Err(Error::StaleData { .. }) => {
                    assert!(!current, "step {step}: session {s} refused though current");
                    db.rollback()?;
                }
                Err(e) => panic!("step {step}: {e}"),
            }
            assert_eq!(
                t.rows("SELECT name, version FROM owner"),
                vec![vec![name.clone(), stored_v.to_string()]],
                "step {step}"
            );
            assert_eq!(
                t.rows("SELECT text, rev FROM note"),
                vec![vec![text.clone(), stored_r.to_string()]],
                "step {step}"
            );
        }
        assert!(stored_v > 3 && stored_r > 3, "too few writes: {stored_v} {stored_r}");
        Ok(())
    }

    fn a_writer_waiting_for_the_first_ones_lock_is_refused_once_it_commits(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let mut other = t.open();
        let a2 = other.query::<Owner>().filter(Owner::name.eq("a")).one()?;
        other.commit()?;
        db[a].name = "mine".into();
        db.flush()?; // holds the row (PostgreSQL) or the write lock (SQLite)
        let waiter = std::thread::spawn(move || {
            other[a2].name = "theirs".into();
            let r = other.commit();
            (r, other[a2].version)
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        db.commit()?;
        let (r, v) = waiter.join().expect("thread");
        assert_stale(r, "Owner");
        assert_eq!(v, 1);
        assert_eq!(t.rows("SELECT name, version FROM owner WHERE id = 1"), table(&[&["mine", "2"]]));
        Ok(())
    }

    fn a_delete_waiting_for_the_first_ones_lock_is_refused_once_it_commits(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let mut other = t.open();
        let a2 = other.query::<Owner>().filter(Owner::name.eq("a")).one()?;
        other.commit()?;
        db[a].name = "mine".into();
        db.flush()?;
        let waiter = std::thread::spawn(move || {
            other.delete(a2).expect("delete");
            other.commit()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        db.commit()?;
        assert_stale(waiter.join().expect("thread"), "Owner");
        assert_eq!(t.rows("SELECT name, version FROM owner WHERE id = 1"), table(&[&["mine", "2"]]));
        Ok(())
    }

    fn the_error_names_the_stale_row_among_many(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let hs: Vec<_> = (0..6).map(|i| db.add(Item::new(format!("i{i}"), a))).collect();
        db.commit()?;
        t.exec("UPDATE item SET version = 3 WHERE label = 'i4'");
        for &h in &hs {
            db[h].label.push('!');
        }
        match db.commit() {
            Err(Error::StaleData { model: "Item", key }) => assert_eq!(key, key_of(&db, hs[4])),
            other => panic!("{other:?}"),
        }
        db.rollback()?;
        for &h in hs.iter().rev() {
            db.delete(h)?;
        }
        match db.commit() {
            Err(Error::StaleData { model: "Item", key }) => assert_eq!(key, key_of(&db, hs[4])),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.count("SELECT COUNT(*) FROM item"), 6);
        Ok(())
    }

    fn a_natural_key_edit_of_a_stale_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let c = db.add(Code::new("a", "A"));
        db.commit()?;
        t.exec("UPDATE code SET name = 'theirs', version = 2");
        db[c].code = "b".into();
        match db.commit() {
            Err(Error::StaleData { model: "Code", key }) => assert!(key.contains('a'), "{key}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.rows("SELECT code, name, version FROM code"), table(&[&["a", "theirs", "2"]]));
        db.rollback()?;
        db.refresh(c)?;
        db[c].code = "b".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT code, name, version FROM code"), table(&[&["b", "theirs", "3"]]));
        assert_eq!(db[c].version, 3);
        db.delete(c)?;
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM code"), 0);
        Ok(())
    }

    fn a_one_way_reference_the_flush_sets_to_null_in_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, _] = owners(&mut db)?;
        let p = db.add(Pin::new("p", a));
        db.commit()?;
        t.exec("UPDATE pin SET version = 4");
        db.delete(a)?;
        assert_stale(db.commit(), "Pin");
        assert_eq!(t.count("SELECT COUNT(*) FROM owner"), 2);
        db.rollback()?;
        db.refresh(p)?;
        db.delete(a)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT owner_id, version FROM pin"), table(&[&["NULL", "5"]]));
        assert_eq!((db[p].owner, db[p].version), (None, 5));
        Ok(())
    }

    fn an_update_then_a_delete_in_one_transaction_then_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let [a, b] = owners(&mut db)?;
        db[a].name = "a1".into();
        db.flush()?;
        db.delete(a)?;
        db.flush()?;
        db[b].name = "b1".into();
        db.flush()?;
        db[b].name = "b2".into();
        db.flush()?;
        assert_eq!(db[b].version, 3);
        db.rollback()?;
        assert_eq!((db[a].name.as_str(), db[a].version), ("a", 1));
        assert_eq!((db[b].name.as_str(), db[b].version), ("b", 1));
        db[a].name = "a3".into();
        db[b].name = "b3".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT name, version FROM owner ORDER BY id"), table(&[&["a3", "2"], &["b3", "2"]]));
        Ok(())
    }
}

bug_tests! {
    /// A new object's version set by the program before its INSERT was written as it was (the
    /// row started at 42, not at 1); fixed: the INSERT writes 1 and the object holds it.
    #[sqlite()]
    #[postgres()]
    fn a_new_row_starts_at_one_whatever_the_program_set(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Owner::new("a"));
        db[a].version = 42;
        db.commit()?;
        assert_eq!(t.rows("SELECT version FROM owner"), table(&[&["1"]]));
        assert_eq!(db[a].version, 1);
        Ok(())
    }
}
