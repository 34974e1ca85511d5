//! Attacks on many-to-many through an association table: hostile sequences (self links,
//! links to deleted, doomed, expunged and new objects, duplicates, concurrent writers, failed
//! flushes, handles of another session), then random operation sequences checked against a
//! plain model of the links after every step and against the table after every commit.

use orm_core::prelude::*;
use orm_tests::*;

/// A post with its tags (unique titles, so that a flush can fail on a row).
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[column(unique)]
    pub title: String,
    #[has_many(through = "post_tags", back_populates = "posts")]
    pub tags: HasMany<Tag>,
}

/// A tag on posts (unique labels).
#[derive(Model, Debug)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    #[column(unique)]
    pub label: String,
    #[has_many(through = "post_tags", back_populates = "tags")]
    pub posts: HasMany<Post>,
}

/// A person following others: a many-to-many of a model with itself.
#[derive(Model, Debug)]
pub struct Person {
    #[key]
    pub id: Id<Person>,
    pub name: String,
    #[has_many(
        through = "follows",
        foreign_key = "follower_id",
        target_foreign_key = "followee_id",
        back_populates = "followers"
    )]
    pub following: HasMany<Person>,
    #[has_many(
        through = "follows",
        foreign_key = "followee_id",
        target_foreign_key = "follower_id",
        back_populates = "following"
    )]
    pub followers: HasMany<Person>,
}

/// A many-to-many declared on one side only.
#[derive(Model, Debug)]
pub struct Doc {
    #[key]
    pub id: Id<Doc>,
    pub name: String,
    #[has_many(through = "doc_labels")]
    pub labels: HasMany<Label>,
}

/// The undeclared side of `Doc::labels`.
#[derive(Model, Debug)]
pub struct Label {
    #[key]
    pub id: Id<Label>,
    pub name: String,
}

/// A natural (text) key on one side.
#[derive(Model, Debug)]
pub struct Lang {
    #[key]
    pub code: String,
    #[has_many(through = "speaks", back_populates = "langs")]
    pub speakers: HasMany<Speaker>,
}

/// The other side of `Lang::speakers`.
#[derive(Model, Debug)]
pub struct Speaker {
    #[key]
    pub id: Id<Speaker>,
    pub name: String,
    #[has_many(through = "speaks", back_populates = "speakers")]
    pub langs: HasMany<Lang>,
}

type Models = (Post, Tag, Person, Doc, Label, Lang, Speaker);

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<Models>().expect("create tables");
    db
}

/// The links as (post title, tag label), sorted.
fn links(t: &TestDb) -> Vec<Vec<String>> {
    t.rows(
        "SELECT p.title, g.label FROM post_tags pt JOIN post p ON p.id = pt.post_id \
         JOIN tag g ON g.id = pt.tag_id ORDER BY p.title, g.label",
    )
}

/// The follows as (follower, followee), sorted.
fn follows(t: &TestDb) -> Vec<Vec<String>> {
    t.rows(
        "SELECT a.name, b.name FROM follows f JOIN person a ON a.id = f.follower_id \
         JOIN person b ON b.id = f.followee_id ORDER BY a.name, b.name",
    )
}

fn labels(db: &Session, tags: &[Handle<Tag>]) -> Vec<String> {
    let mut v: Vec<String> = tags.iter().map(|&t| db[t].label.clone()).collect();
    v.sort();
    v
}

fn titles(db: &Session, posts: &[Handle<Post>]) -> Vec<String> {
    let mut v: Vec<String> = posts.iter().map(|&p| db[p].title.clone()).collect();
    v.sort();
    v
}

fn names(db: &Session, people: &[Handle<Person>]) -> Vec<String> {
    let mut v: Vec<String> = people.iter().map(|&p| db[p].name.clone()).collect();
    v.sort();
    v
}

/// Posts and tags of a seed.
type Seeded = ([Handle<Post>; 2], [Handle<Tag>; 3]);

/// Posts a (tags x, y) and b (tag y), and tag z on none, committed.
fn seed(db: &mut Session) -> orm_core::Result<Seeded> {
    let a = db.add(Post::new("a"));
    let b = db.add(Post::new("b"));
    let x = db.add(Tag::new("x"));
    let y = db.add(Tag::new("y"));
    let z = db.add(Tag::new("z"));
    db.append(a, Post::tags, x)?;
    db.append(a, Post::tags, y)?;
    db.append(y, Tag::posts, b)?;
    db.commit()?;
    Ok(([a, b], [x, y, z]))
}

fn post(db: &mut Session, title: &str) -> orm_core::Result<Handle<Post>> {
    db.query::<Post>().filter(Post::title.eq(title)).one()
}

fn tag(db: &mut Session, label: &str) -> orm_core::Result<Handle<Tag>> {
    db.query::<Tag>().filter(Tag::label.eq(label)).one()
}

// ---------------------------------------------------------------------------------------
// 1. Hostile sequences that the feature gets right
// ---------------------------------------------------------------------------------------

backend_tests! {
    fn a_person_following_itself_is_one_row_on_both_of_its_sides(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Person::new("ann"));
        let bob = db.add(Person::new("bob"));
        db.append(ann, Person::following, ann)?;
        db.append(ann, Person::followers, ann)?;
        db.append(bob, Person::followers, ann)?;
        assert_eq!(db[ann].following, [ann, bob]);
        assert_eq!(db[ann].followers, [ann]);
        db.commit()?;
        assert_eq!(follows(t), table(&[&["ann", "ann"], &["ann", "bob"]]));
        // Read back in a new session, lazily and eagerly.
        let mut db2 = t.open();
        let ann2 = db2.query::<Person>().filter(Person::name.eq("ann")).one()?;
        let got = db2.load(ann2, Person::following)?;
        assert_eq!(names(&db2, &got), ["ann", "bob"]);
        let got = db2.load(ann2, Person::followers)?;
        assert_eq!(names(&db2, &got), ["ann"]);
        let mut db3 = t.open();
        let all = db3
            .query::<Person>()
            .with(Person::following.with(Person::followers))
            .all()?;
        let ann3 = all.iter().copied().find(|&p| db3[p].name == "ann").unwrap();
        assert_eq!(names(&db3, db3[ann3].following.as_slice()), ["ann", "bob"]);
        assert_eq!(names(&db3, db3[ann3].followers.as_slice()), ["ann"]);
        // Unlinking from itself, then set to itself again, then deleting it.
        db.remove(ann, Person::followers, ann)?;
        assert_eq!(db[ann].following, [bob]);
        assert!(db[ann].followers.is_empty());
        db.set(ann, Person::following, [ann])?;
        assert_eq!(db[ann].followers, [ann]);
        assert!(db[bob].followers.is_empty());
        db.commit()?;
        assert_eq!(follows(t), table(&[&["ann", "ann"]]));
        db.delete(ann)?;
        db.commit()?;
        assert!(!db.contains(ann));
        assert_eq!(t.count("SELECT COUNT(*) FROM follows"), 0);
        Ok(())
    }

    fn linking_to_a_doomed_object_writes_no_row_and_leaves_no_trace(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        db.load(b, Post::tags)?;
        db.delete(z)?;
        db.append(a, Post::tags, z)?;
        db.append(z, Tag::posts, b)?;
        assert!(db[a].tags.contains(z));
        db.commit()?;
        assert!(!db.contains(z));
        assert_eq!(db[a].tags, [x, y]);
        assert_eq!(db[b].tags, [y]);
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        Ok(())
    }

    fn a_new_object_linked_then_deleted_before_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, _]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        db.load(y, Tag::posts)?;
        let n = db.add(Tag::new("n"));
        let p = db.add(Post::new("p"));
        db.append(a, Post::tags, n)?;
        db.append(p, Post::tags, y)?;
        db.append(p, Post::tags, n)?;
        db.delete(n)?;
        db.delete(p)?;
        db.commit()?;
        assert!(!db.contains(n) && !db.contains(p));
        assert_eq!(db[a].tags, [x, y]);
        assert_eq!(db[y].posts, [a, b]);
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        assert_eq!(t.count("SELECT COUNT(*) FROM tag"), 3);
        Ok(())
    }

    fn expunging_a_linked_new_object_drops_its_links(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, _], [x, y, _]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        let n = db.add(Tag::new("n"));
        db.append(a, Post::tags, n)?;
        db.append(n, Tag::posts, a)?;
        db.expunge(n)?;
        assert_eq!(db[a].tags, [x, y]);
        // The expunged handle is refused everywhere, and no panic.
        assert!(db.append(a, Post::tags, n).is_err());
        assert!(db.remove(a, Post::tags, n).is_err());
        assert!(db.set(a, Post::tags, [x, n]).is_err());
        assert!(db.load(n, Tag::posts).is_err());
        assert_eq!(db[a].tags, [x, y]);
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        assert_eq!(t.count("SELECT COUNT(*) FROM tag"), 3);
        Ok(())
    }

    fn expunging_a_stored_object_drops_its_pending_links_and_keeps_its_rows(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        db.append(b, Post::tags, z)?;
        db.remove(a, Post::tags, x)?;
        db.expunge(x)?;
        db.expunge(b)?;
        assert_eq!(db[a].tags, [y]);
        db.commit()?;
        // The unlink of the expunged x and the link of the expunged b were dropped.
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        assert!(db.load(z, Tag::posts)?.is_empty());
        Ok(())
    }

    fn set_with_duplicates_links_each_once(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(z, Tag::posts)?;
        db.set(a, Post::tags, [z, x, z, x, z])?;
        assert_eq!(db[a].tags, [z, x]);
        assert_eq!(db[z].posts, [a]);
        db.set(z, Tag::posts, vec![b, a, b, a])?;
        assert_eq!(db[z].posts, [b, a]);
        assert!(db[a].tags.contains(z));
        assert_eq!(db[a].tags.len(), 2);
        db.commit()?;
        assert_eq!(
            links(t),
            table(&[&["a", "x"], &["a", "z"], &["b", "y"], &["b", "z"]])
        );
        db.set(y, Tag::posts, Vec::<Handle<Post>>::new())?;
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "z"], &["b", "z"]]));
        Ok(())
    }

    fn a_second_writer_linking_the_same_pair_first_does_not_fail_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, _, z]) = seed(&mut db)?;
        db.append(a, Post::tags, z)?;
        db.remove(b, Post::tags, x)?; // not linked: a DELETE of nothing
        // The other program links the pair and commits before the flush.
        let (pa, pz) = (db[a].id.value()?, db[z].id.value()?);
        t.exec(&format!("INSERT INTO post_tags (post_id, tag_id) VALUES ({pa}, {pz})"));
        db.commit()?;
        assert_eq!(
            links(t),
            table(&[&["a", "x"], &["a", "y"], &["a", "z"], &["b", "y"]])
        );
        // And unlinking a pair the other program already unlinked.
        db.remove(a, Post::tags, z)?;
        t.exec(&format!("DELETE FROM post_tags WHERE post_id = {pa} AND tag_id = {pz}"));
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        Ok(())
    }

    fn eager_loading_keeps_loaded_collections_and_adds_pending_links(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut db = t.open();
        let (a, b) = (post(&mut db, "a")?, post(&mut db, "b")?);
        let (x, y, z) = (tag(&mut db, "x")?, tag(&mut db, "y")?, tag(&mut db, "z")?);
        // z's posts loaded (empty) eagerly, before another program links a to z: a stale
        // collection the session keeps.
        db.query::<Tag>().filter(Tag::label.eq("z")).with(Tag::posts).all()?;
        let (pa, tz) = (db[a].id.value()?, db[z].id.value()?);
        t.exec(&format!("INSERT INTO post_tags (post_id, tag_id) VALUES ({pa}, {tz})"));
        // a's collection loaded (with the new link) and an unflushed unlink; b's not loaded,
        // with a pending link made from z's side; a new post linked to y.
        db.query::<Post>().filter(Post::title.eq("a")).with(Post::tags).all()?;
        db.remove(a, Post::tags, x)?;
        db.append(z, Tag::posts, b)?;
        let c = db.add(Post::new("c"));
        db.append(c, Post::tags, y)?;
        let posts = db
            .query::<Post>()
            .autoflush(false)
            .with(Post::tags.with(Tag::posts))
            .all()?;
        assert_eq!(titles(&db, &posts), ["a", "b"]);
        assert_eq!(db[a].tags, [y, z]);
        assert_eq!(labels(&db, db[b].tags.as_slice()), ["y", "z"]);
        // The tags' posts: y from the table with the new c, x without a.
        assert_eq!(titles(&db, db[y].posts.as_slice()), ["a", "b", "c"]);
        // x is no longer reached (a's unlink): not loaded; lazily, without a.
        assert!(!db[x].posts.is_loaded());
        assert!(db.load(x, Tag::posts)?.is_empty());
        // z's collection was loaded: kept, with the pending link (not the other program's).
        assert_eq!(db[z].posts, [b]);
        // Lazy loads agree.
        assert_eq!(db.load(b, Post::tags)?.len(), 2);
        db.commit()?;
        assert_eq!(
            links(t),
            table(&[&["a", "y"], &["a", "z"], &["b", "y"], &["b", "z"], &["c", "y"]])
        );
        Ok(())
    }

    fn a_failed_flush_on_a_link_writes_nothing_and_a_fixed_one_works(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        db.load(z, Tag::posts)?;
        let c = db.add(Post::new("c"));
        let w = db.add(Tag::new("w"));
        db.append(c, Post::tags, w)?;
        db.append(c, Post::tags, z)?;
        db.append(a, Post::tags, z)?;
        db.remove(a, Post::tags, y)?;
        db.append(b, Post::tags, x)?;
        // Another program deletes x: linking b to it fails, after the rows were inserted.
        t.exec("DELETE FROM tag WHERE label = 'x'");
        for _ in 0..2 {
            assert!(db.flush().is_err());
            assert!(db.is_new(c) && db.is_new(w));
            assert_eq!(db[a].tags, [x, z]);
            assert_eq!(db[c].tags, [w, z]);
            assert_eq!(db[z].posts, [c, a]);
            // x's rows went with it (the other program's delete); nothing of the flush's.
            assert_eq!(links(t), table(&[&["a", "y"], &["b", "y"]]));
            assert_eq!(t.count("SELECT COUNT(*) FROM post"), 2);
        }
        // Fixed by taking the link back: the rest is written.
        db.remove(b, Post::tags, x)?;
        db.commit()?;
        assert_eq!(
            links(t),
            table(&[&["a", "z"], &["b", "y"], &["c", "w"], &["c", "z"]])
        );
        Ok(())
    }

    fn a_failed_flush_on_a_row_keeps_the_pending_links(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, _], [x, y, z]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        let c = db.add(Post::new("c"));
        db.append(c, Post::tags, z)?;
        db.remove(a, Post::tags, x)?;
        db.append(a, Post::tags, z)?;
        // A second tag "y": the INSERT of tags fails on the unique label.
        let dup = db.add(Tag::new("y"));
        db.append(a, Post::tags, dup)?;
        assert!(db.commit().is_err());
        assert_eq!(db[a].tags, [y, z, dup]);
        assert_eq!(db[c].tags, [z]);
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        // Fixed: the duplicate renamed.
        db[dup].label = "v".into();
        db.commit()?;
        assert_eq!(
            links(t),
            table(&[&["a", "v"], &["a", "y"], &["a", "z"], &["b", "y"], &["c", "z"]])
        );
        let on_z = db.load(z, Tag::posts)?;
        assert_eq!(titles(&db, &on_z), ["a", "c"]);
        Ok(())
    }

    fn handles_of_another_session_are_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, _], [x, _, z]) = seed(&mut db)?;
        let mut other = t.open();
        let z2 = tag(&mut other, "z")?;
        let a2 = post(&mut other, "a")?;
        db.load(a, Post::tags)?;
        // The other session's handles (whose slots name objects here too) are errors.
        assert!(db.append(a, Post::tags, z2).is_err());
        assert!(db.append(a2, Post::tags, z).is_err());
        assert!(db.remove(a, Post::tags, z2).is_err());
        assert!(db.set(a, Post::tags, [x, z2]).is_err());
        assert!(db.set(a2, Post::tags, [z]).is_err());
        assert!(db.load(a2, Post::tags).is_err());
        assert!(db.delete(a2).is_err());
        assert!(db.expunge(a2).is_err());
        assert_eq!(labels(&db, db[a].tags.as_slice()), ["x", "y"]);
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        Ok(())
    }

    fn rollback_of_a_flushed_delete_brings_the_object_back_in_collections(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, _]) = seed(&mut db)?;
        db.load(a, Post::tags)?;
        db.load(b, Post::tags)?;
        db.commit()?;
        db.delete(y)?;
        db.flush()?;
        assert_eq!(db[a].tags, [x]);
        assert!(db[b].tags.is_empty());
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        db.rollback()?;
        assert!(db.contains(y));
        assert_eq!(db[a].tags, [x, y]);
        assert_eq!(db[b].tags, [y]);
        let on_y = db.load(y, Tag::posts)?;
        assert_eq!(titles(&db, &on_y), ["a", "b"]);
        Ok(())
    }

    /// The other way round: eager for one object first, then a lazy load.
    fn a_lazy_load_after_eager_loading_one_object(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut db = t.open();
        let b = db.query::<Post>().filter(Post::title.eq("b")).with(Post::tags).one()?;
        assert_eq!(labels(&db, db[b].tags.as_slice()), ["y"]);
        let a = post(&mut db, "a")?;
        let got = db.load(a, Post::tags)?;
        assert_eq!(labels(&db, &got), ["x", "y"]);
        Ok(())
    }

    /// Eager and lazy loads through a text key.
    fn loading_through_a_natural_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let en = db.add(Lang::new("en"));
        let fr = db.add(Lang::new("fr"));
        let s = db.add(Speaker::new("s"));
        let u = db.add(Speaker::new("u"));
        db.set(s, Speaker::langs, [en, fr])?;
        db.append(fr, Lang::speakers, u)?;
        db.commit()?;
        let mut db = t.open();
        let langs = db.query::<Lang>().with(Lang::speakers.with(Speaker::langs)).all()?;
        assert_eq!(langs.len(), 2);
        let fr = langs.iter().copied().find(|&l| db[l].code == "fr").unwrap();
        assert_eq!(db[fr].speakers.len(), 2);
        let mut db = t.open();
        let speakers = db.query::<Speaker>().with(Speaker::langs.with(Lang::speakers)).all()?;
        let s = speakers.iter().copied().find(|&p| db[p].name == "s").unwrap();
        assert_eq!(db[s].langs.len(), 2);
        let en = db[s].langs.as_slice().iter().copied().find(|&l| db[l].code == "en").unwrap();
        assert_eq!(db.load(en, Lang::speakers)?, [s]);
        Ok(())
    }

    fn many_unlinks_go_in_few_statements(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let posts: Vec<_> = (0..300).map(|i| db.add(Post::new(format!("p{i:03}")))).collect();
        let tags: Vec<_> = (0..4).map(|i| db.add(Tag::new(format!("t{i}")))).collect();
        for &p in &posts {
            db.set(p, Post::tags, tags.clone())?;
        }
        db.commit()?;
        for &p in &posts {
            db.set(p, Post::tags, [tags[0]])?;
        }
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 300);
        let mut db = t.open();
        let got = db.query::<Post>().with(Post::tags.with(Tag::posts)).all()?;
        assert_eq!(got.len(), 300);
        assert!(got.iter().all(|&p| db[p].tags.len() == 1));
        let t0 = db[got[0]].tags.as_slice()[0];
        assert_eq!(db[t0].posts.len(), 300);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 2. Defects the attack found (fixed)
// ---------------------------------------------------------------------------------------

bug_tests! {
    /// A lazy load of one object's collection, then an eager load that reads one object's:
    /// both statements are cached under `SqlKey::JoinTargets(rel, 1)`, the lazy one without
    /// the owner's key column, so the eager one reads a column that is not there.
    #[sqlite()]
    #[postgres()]
    fn eager_loading_one_object_after_a_lazy_load_reads_its_owner_column(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut db = t.open();
        let a = post(&mut db, "a")?;
        db.load(a, Post::tags)?;
        let b = db.query::<Post>().filter(Post::title.eq("b")).with(Post::tags).one()?;
        assert_eq!(labels(&db, db[b].tags.as_slice()), ["y"]);
        Ok(())
    }

    /// A many-to-many declared on one side only: deleting an object of the undeclared side
    /// leaves it in the loaded collections that hold it.
    #[sqlite()]
    #[postgres()]
    fn deleting_an_object_of_the_undeclared_side_leaves_collections(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let d = db.add(Doc::new("d"));
        let l1 = db.add(Label::new("l1"));
        let l2 = db.add(Label::new("l2"));
        db.set(d, Doc::labels, [l1, l2])?;
        db.commit()?;
        db.delete(l1)?;
        db.commit()?;
        assert!(!db.contains(l1));
        assert_eq!(t.count("SELECT COUNT(*) FROM doc_labels"), 1);
        assert_eq!(db[d].labels, [l2]);
        Ok(())
    }

    /// The same with expunge.
    #[sqlite()]
    #[postgres()]
    fn expunging_an_object_of_the_undeclared_side_leaves_collections(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let d = db.add(Doc::new("d"));
        let l1 = db.add(Label::new("l1"));
        let l2 = db.add(Label::new("l2"));
        db.set(d, Doc::labels, [l1, l2])?;
        db.commit()?;
        db.expunge(l1)?;
        assert!(!db.contains(l1));
        assert_eq!(db[d].labels, [l2]);
        Ok(())
    }

    /// An object read again after an expunge is not in the other side's loaded collections
    /// (as documented), but its own loaded collection names them: deleting one of those
    /// leaves the deleted object in that collection.
    #[sqlite()]
    #[postgres()]
    fn deleting_an_object_whose_collection_misses_a_holder(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, _], [_, y, _]) = seed(&mut db)?;
        db.load(y, Tag::posts)?;
        db.expunge(a)?;
        let a2 = post(&mut db, "a")?;
        let tags = db.load(a2, Post::tags)?;
        assert!(tags.contains(&y));
        db.delete(y)?;
        db.commit()?;
        assert!(!db.contains(y));
        assert!(!db[a2].tags.contains(y), "a deleted tag in a loaded collection");
        Ok(())
    }

    /// A natural key edited on an object with links.
    #[sqlite()]
    #[postgres()]
    fn editing_a_linked_natural_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let en = db.add(Lang::new("en"));
        let s = db.add(Speaker::new("s"));
        db.append(s, Speaker::langs, en)?;
        db.commit()?;
        db[en].code = "eng".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT lang_id FROM speaks"), table(&[&["eng"]]));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 3. Random operation sequences against a model
// ---------------------------------------------------------------------------------------

mod ops {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestError};
    use std::collections::{BTreeMap, BTreeSet};

    type Check = Result<(), String>;
    type Set = BTreeSet<usize>;

    /// The models; relation 0 links posts (left) and tags (right), relation 1 followers
    /// (left) and followees (right), both people.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Kind {
        Post,
        Tag,
        Person,
    }

    const KINDS: [Kind; 3] = [Kind::Post, Kind::Tag, Kind::Person];

    /// The kinds at the ends (left, right) of relation `rel`.
    fn ends(rel: usize) -> [Kind; 2] {
        if rel == 0 {
            [Kind::Post, Kind::Tag]
        } else {
            [Kind::Person, Kind::Person]
        }
    }

    /// One step. Objects are picked by index (modulo the count) among every object of the
    /// model of their kind, live or not; rows by index among every key seen.
    #[derive(Clone, Copy, Debug)]
    pub enum Op {
        Add(usize),
        /// relation, from the right side, left object, right object, link (or unlink)
        Link(usize, bool, usize, usize, bool),
        /// relation, from the right side, object, picks of the others (two may be equal)
        Set(usize, bool, usize, [usize; 3], usize),
        Load(usize, bool, usize),
        /// kind (Post, Tag, Person), autoflush
        Eager(usize, bool),
        Delete(usize, usize),
        Expunge(usize, usize),
        Get(usize, usize),
        Flush,
        Commit,
        Rollback,
        OtherLink(usize, usize, usize, bool),
        OtherDelete(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let o = || 0usize..16;
        let rel = || 0usize..2;
        let kind = || 0usize..3;
        prop_oneof![
            2 => kind().prop_map(Op::Add),
            8 => (rel(), any::<bool>(), o(), o(), prop::bool::weighted(0.7))
                .prop_map(|(r, s, a, b, l)| Op::Link(r, s, a, b, l)),
            2 => (rel(), any::<bool>(), o(), [o(), o(), o()], 0usize..4)
                .prop_map(|(r, s, a, bs, n)| Op::Set(r, s, a, bs, n)),
            4 => (rel(), any::<bool>(), o()).prop_map(|(r, s, a)| Op::Load(r, s, a)),
            3 => (kind(), any::<bool>()).prop_map(|(k, f)| Op::Eager(k, f)),
            2 => (kind(), o()).prop_map(|(k, i)| Op::Delete(k, i)),
            2 => (kind(), o()).prop_map(|(k, i)| Op::Expunge(k, i)),
            5 => (kind(), o()).prop_map(|(k, i)| Op::Get(k, i)),
            2 => Just(Op::Flush),
            3 => Just(Op::Commit),
            2 => Just(Op::Rollback),
            2 => (rel(), o(), o(), any::<bool>()).prop_map(|(r, a, b, l)| Op::OtherLink(r, a, b, l)),
            1 => (kind(), o()).prop_map(|(k, i)| Op::OtherDelete(k, i)),
        ]
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum H {
        P(Handle<Post>),
        T(Handle<Tag>),
        R(Handle<Person>),
    }

    /// What the model knows of one object of the session.
    #[derive(Clone, Debug)]
    struct Obj {
        kind: Kind,
        h: H,
        key: Option<i64>,
        valid: bool,
        new: bool,
        /// Added, or read again with a row this transaction inserted: gone at a rollback.
        since_commit: bool,
        doomed: bool,
        /// Deleted by a flush of the open transaction (back at a rollback).
        deleted_in_tx: bool,
        /// Another program deleted its row.
        gone: bool,
        /// Its loaded collections: [as the left end, as the right end].
        coll: [Option<Set>; 2],
        coll_at_commit: [Option<Set>; 2],
    }

    impl Obj {
        fn rel(&self) -> usize {
            usize::from(self.kind == Kind::Person)
        }
        /// The ends of its relation it is at.
        fn ends(&self) -> &'static [usize] {
            match self.kind {
                Kind::Post => &[0],
                Kind::Tag => &[1],
                Kind::Person => &[0, 1],
            }
        }
    }

    /// A partner in an expected load: an object of the model, or a row read into a new one.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Partner {
        Known(usize),
        Row(i64),
    }

    #[derive(Clone, Default)]
    struct Model {
        objs: Vec<Obj>,
        rows: BTreeSet<(Kind, i64)>,
        committed_rows: BTreeSet<(Kind, i64)>,
        pairs: BTreeSet<(usize, i64, i64)>,
        committed_pairs: BTreeSet<(usize, i64, i64)>,
        /// (relation, left object, right object) -> linked after the flush.
        pending: BTreeMap<(usize, usize, usize), bool>,
        /// A flush wrote in the open transaction (another program's writes wait for it).
        dirty: bool,
        keys: BTreeMap<Kind, Vec<i64>>,
    }

    impl Model {
        fn of_kind(&self, k: Kind) -> Vec<usize> {
            (0..self.objs.len())
                .filter(|&i| self.objs[i].kind == k)
                .collect()
        }

        fn pick(&self, k: Kind, i: usize) -> Option<usize> {
            let all = self.of_kind(k);
            (!all.is_empty()).then(|| all[i % all.len()])
        }

        fn by_key(&self, k: Kind, key: i64) -> Option<usize> {
            (0..self.objs.len()).find(|&i| {
                let o = &self.objs[i];
                o.valid && o.kind == k && o.key == Some(key)
            })
        }

        fn link(&mut self, rel: usize, l: usize, r: usize, linked: bool) {
            self.pending.insert((rel, l, r), linked);
            for (me, other, end) in [(l, r, 0), (r, l, 1)] {
                if let Some(c) = &mut self.objs[me].coll[end] {
                    if linked {
                        c.insert(other);
                    } else {
                        c.remove(&other);
                    }
                }
            }
        }

        /// What loading collection `end` of `x` gives: the table's rows and pending links.
        fn expected_load(&self, x: usize, end: usize) -> Vec<Partner> {
            let o = &self.objs[x];
            let rel = o.rel();
            let pk = ends(rel)[1 - end];
            let mut out: Vec<Partner> = Vec::new();
            if let (Some(key), false) = (o.key, o.new) {
                for &(r, a, b) in &self.pairs {
                    let (me, other) = if end == 0 { (a, b) } else { (b, a) };
                    if r == rel && me == key {
                        out.push(match self.by_key(pk, other) {
                            Some(i) => Partner::Known(i),
                            None => Partner::Row(other),
                        });
                    }
                }
            }
            for (&(r, l, rr), &linked) in &self.pending {
                let (me, other) = if end == 0 { (l, rr) } else { (rr, l) };
                if r != rel || me != x {
                    continue;
                }
                out.retain(|&p| p != Partner::Known(other));
                if linked {
                    out.push(Partner::Known(other));
                }
            }
            out.retain(|p| match p {
                Partner::Known(i) => self.objs[*i].valid,
                Partner::Row(_) => true,
            });
            out
        }

        /// Drops object `x` from every loaded collection and its pending links.
        fn forget(&mut self, x: usize) {
            for o in &mut self.objs {
                for c in o.coll.iter_mut().flatten() {
                    c.remove(&x);
                }
            }
            self.pending.retain(|&(_, l, r), _| l != x && r != x);
        }

        /// Whether the next flush fails: a pending delete of a row another program deleted,
        /// or a link to one.
        fn flush_fails(&self) -> bool {
            let live = |i: usize| self.objs[i].valid;
            let doomed = |i: usize| self.objs[i].doomed && live(i);
            self.objs
                .iter()
                .any(|o| o.valid && o.doomed && !o.new && o.gone)
                || self.pending.iter().any(|(&(_, l, r), &linked)| {
                    linked && !doomed(l) && !doomed(r) && (self.objs[l].gone || self.objs[r].gone)
                })
        }

        fn remove_row(&mut self, kind: Kind, key: i64) {
            self.rows.remove(&(kind, key));
            self.pairs.retain(|&(rel, a, b)| {
                let [lk, rk] = ends(rel);
                !((lk == kind && a == key) || (rk == kind && b == key))
            });
        }

        /// A successful flush, the new objects' keys given.
        fn flushed(&mut self, keys: &BTreeMap<usize, i64>) {
            let wrote = !self.pending.is_empty()
                || self.objs.iter().any(|o| o.valid && (o.new || o.doomed));
            let gone: Vec<usize> = (0..self.objs.len())
                .filter(|&i| self.objs[i].valid && self.objs[i].doomed)
                .collect();
            for (&i, &k) in keys {
                let o = &mut self.objs[i];
                o.key = Some(k);
                o.new = false;
                self.rows.insert((o.kind, k));
                self.keys.entry(o.kind).or_default().push(k);
            }
            let pending = std::mem::take(&mut self.pending);
            for ((rel, l, r), linked) in pending {
                if gone.contains(&l) || gone.contains(&r) {
                    continue;
                }
                let (Some(a), Some(b)) = (self.objs[l].key, self.objs[r].key) else {
                    continue;
                };
                if linked {
                    self.pairs.insert((rel, a, b));
                } else {
                    self.pairs.remove(&(rel, a, b));
                }
            }
            for &i in &gone {
                let o = &mut self.objs[i];
                o.valid = false;
                o.doomed = false;
                if !o.new {
                    o.deleted_in_tx = true;
                    let (kind, key) = (o.kind, o.key.unwrap());
                    self.remove_row(kind, key);
                }
            }
            for &i in &gone {
                self.forget(i);
            }
            self.dirty |= wrote;
        }

        fn committed(&mut self) {
            self.committed_rows = self.rows.clone();
            self.committed_pairs = self.pairs.clone();
            self.dirty = false;
            for o in &mut self.objs {
                o.since_commit = false;
                o.deleted_in_tx = false;
                o.coll_at_commit = o.coll.clone();
            }
        }

        fn rolled_back(&mut self) {
            self.pending.clear();
            self.rows = self.committed_rows.clone();
            self.pairs = self.committed_pairs.clone();
            self.dirty = false;
            for o in &mut self.objs {
                if o.since_commit {
                    o.valid = false;
                } else if o.deleted_in_tx {
                    o.valid = true;
                    o.deleted_in_tx = false;
                }
                o.doomed = false;
            }
            let valid: Vec<bool> = self.objs.iter().map(|o| o.valid).collect();
            for o in &mut self.objs {
                o.coll = o.coll_at_commit.clone();
                for c in o.coll.iter_mut().flatten() {
                    c.retain(|&i| valid[i]);
                }
            }
        }
    }

    struct World<'t> {
        t: &'t TestDb,
        db: Session,
        m: Model,
        names: usize,
    }

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    impl World<'_> {
        fn key_of(&self, h: H) -> Option<i64> {
            match h {
                H::P(h) => self.db.try_get(h).and_then(|o| o.id.value().ok()),
                H::T(h) => self.db.try_get(h).and_then(|o| o.id.value().ok()),
                H::R(h) => self.db.try_get(h).and_then(|o| o.id.value().ok()),
            }
        }

        fn contains(&self, h: H) -> bool {
            match h {
                H::P(h) => self.db.contains(h),
                H::T(h) => self.db.contains(h),
                H::R(h) => self.db.contains(h),
            }
        }

        /// The model's object of a handle (a live one), or a new object for a row read.
        fn obj_of(&mut self, h: H, kind: Kind) -> Result<usize, String> {
            if let Some(i) =
                (0..self.m.objs.len()).find(|&i| self.m.objs[i].valid && self.m.objs[i].h == h)
            {
                return Ok(i);
            }
            if let Some(i) = (0..self.m.objs.len()).find(|&i| self.m.objs[i].h == h) {
                return Err(format!("dead object {i} ({h:?}) handed out"));
            }
            let key = self.key_of(h).ok_or_else(|| format!("{h:?}: no key"))?;
            if let Some(i) = self.m.by_key(kind, key) {
                return Err(format!(
                    "row {kind:?} {key} read again as {h:?}, the session holds {i}"
                ));
            }
            if !self.m.rows.contains(&(kind, key)) {
                return Err(format!(
                    "{h:?}: read row {kind:?} {key}, which the model does not have"
                ));
            }
            self.m.objs.push(Obj {
                kind,
                h,
                key: Some(key),
                valid: true,
                new: false,
                since_commit: !self.m.committed_rows.contains(&(kind, key)),
                doomed: false,
                deleted_in_tx: false,
                gone: false,
                coll: [None, None],
                coll_at_commit: [None, None],
            });
            Ok(self.m.objs.len() - 1)
        }

        /// The actual collection `end` of object `x`: None when not loaded.
        fn actual(&self, x: usize, end: usize) -> Result<Option<Vec<H>>, String> {
            let o = &self.m.objs[x];
            let c: Option<Vec<H>> = match (o.h, end) {
                (H::P(h), 0) => {
                    let c = &self.db.try_get(h).ok_or("a live post is gone")?.tags;
                    c.is_loaded()
                        .then(|| c.as_slice().iter().map(|&h| H::T(h)).collect())
                }
                (H::T(h), 1) => {
                    let c = &self.db.try_get(h).ok_or("a live tag is gone")?.posts;
                    c.is_loaded()
                        .then(|| c.as_slice().iter().map(|&h| H::P(h)).collect())
                }
                (H::R(h), e) => {
                    let p = self.db.try_get(h).ok_or("a live person is gone")?;
                    let c = if e == 0 { &p.following } else { &p.followers };
                    c.is_loaded()
                        .then(|| c.as_slice().iter().map(|&h| H::R(h)).collect())
                }
                _ => unreachable!(),
            };
            Ok(c)
        }

        fn call_link(
            &mut self,
            rel: usize,
            right: bool,
            l: H,
            r: H,
            linked: bool,
        ) -> orm_core::Result<()> {
            let db = &mut self.db;
            match (rel, right, l, r, linked) {
                (0, false, H::P(p), H::T(t), true) => db.append(p, Post::tags, t),
                (0, false, H::P(p), H::T(t), false) => db.remove(p, Post::tags, t),
                (0, true, H::P(p), H::T(t), true) => db.append(t, Tag::posts, p),
                (0, true, H::P(p), H::T(t), false) => db.remove(t, Tag::posts, p),
                (1, false, H::R(a), H::R(b), true) => db.append(a, Person::following, b),
                (1, false, H::R(a), H::R(b), false) => db.remove(a, Person::following, b),
                (1, true, H::R(a), H::R(b), true) => db.append(b, Person::followers, a),
                (1, true, H::R(a), H::R(b), false) => db.remove(b, Person::followers, a),
                _ => unreachable!(),
            }
        }

        fn call_load(&mut self, x: H, end: usize) -> orm_core::Result<Vec<H>> {
            let db = &mut self.db;
            Ok(match (x, end) {
                (H::P(h), _) => db.load(h, Post::tags)?.into_iter().map(H::T).collect(),
                (H::T(h), _) => db.load(h, Tag::posts)?.into_iter().map(H::P).collect(),
                (H::R(h), 0) => db
                    .load(h, Person::following)?
                    .into_iter()
                    .map(H::R)
                    .collect(),
                (H::R(h), _) => db
                    .load(h, Person::followers)?
                    .into_iter()
                    .map(H::R)
                    .collect(),
            })
        }

        fn call_set(&mut self, x: H, end: usize, to: &[H]) -> orm_core::Result<()> {
            let db = &mut self.db;
            match (x, end) {
                (H::P(h), _) => {
                    let v: Vec<Handle<Tag>> = to
                        .iter()
                        .map(|t| match t {
                            H::T(t) => *t,
                            _ => unreachable!(),
                        })
                        .collect();
                    db.set(h, Post::tags, v)
                }
                (H::T(h), _) => {
                    let v: Vec<Handle<Post>> = to
                        .iter()
                        .map(|t| match t {
                            H::P(t) => *t,
                            _ => unreachable!(),
                        })
                        .collect();
                    db.set(h, Tag::posts, v)
                }
                (H::R(h), e) => {
                    let v: Vec<Handle<Person>> = to
                        .iter()
                        .map(|t| match t {
                            H::R(t) => *t,
                            _ => unreachable!(),
                        })
                        .collect();
                    if e == 0 {
                        db.set(h, Person::following, v)
                    } else {
                        db.set(h, Person::followers, v)
                    }
                }
            }
        }

        /// Loads collection `end` of `x` as the model does (the session loaded it too, into
        /// `got`), checking what it gave.
        fn loaded(&mut self, x: usize, end: usize, got: &[H]) -> Check {
            let expected = self.m.expected_load(x, end);
            let pk = ends(self.m.objs[x].rel())[1 - end];
            let mut got_objs = BTreeSet::new();
            for &h in got {
                let i = self.obj_of(h, pk)?;
                if !got_objs.insert(i) {
                    return Err(format!("load of {x}/{end}: {i} twice"));
                }
            }
            let mut want = BTreeSet::new();
            for p in expected {
                match p {
                    Partner::Known(i) => {
                        want.insert(i);
                    }
                    Partner::Row(k) => {
                        let i = self
                            .m
                            .by_key(pk, k)
                            .ok_or_else(|| format!("load of {x}/{end}: row {pk:?} {k} not read"))?;
                        want.insert(i);
                    }
                }
            }
            if got_objs != want {
                return Err(format!(
                    "load of {x}/{end}: got {got_objs:?}, want {want:?}"
                ));
            }
            self.m.objs[x].coll[end] = Some(want);
            Ok(())
        }

        /// Flushes (or the flush of a commit or query): fails when the model says so, and
        /// then changes nothing.
        fn flush(&mut self, r: orm_core::Result<()>) -> Check {
            if self.m.flush_fails() {
                return match r {
                    Ok(()) => Err("the flush should have failed".into()),
                    Err(_) => Ok(()),
                };
            }
            r.map_err(e2s)?;
            let mut keys = BTreeMap::new();
            for i in 0..self.m.objs.len() {
                let o = &self.m.objs[i];
                if o.valid && o.new && !o.doomed {
                    let k = self.key_of(o.h).ok_or("no key after the flush")?;
                    keys.insert(i, k);
                }
            }
            self.m.flushed(&keys);
            Ok(())
        }

        fn check_table(&self) -> Check {
            let mut got = BTreeSet::new();
            for (rel, sql) in [
                (0, "SELECT post_id, tag_id FROM post_tags"),
                (1, "SELECT follower_id, followee_id FROM follows"),
            ] {
                let rows = self.t.rows(sql);
                for r in rows {
                    let pair = (
                        rel,
                        r[0].parse::<i64>().unwrap(),
                        r[1].parse::<i64>().unwrap(),
                    );
                    if !got.insert(pair) {
                        return Err(format!("{pair:?} twice in the table"));
                    }
                }
            }
            if got != self.m.committed_pairs {
                return Err(format!(
                    "table {got:?}, committed {:?}",
                    self.m.committed_pairs
                ));
            }
            Ok(())
        }

        fn step(&mut self, op: Op) -> Check {
            match op {
                Op::Add(k) => {
                    self.names += 1;
                    let name = format!("n{}", self.names);
                    let kind = KINDS[k];
                    let h = match kind {
                        Kind::Post => H::P(self.db.add(Post::new(name))),
                        Kind::Tag => H::T(self.db.add(Tag::new(name))),
                        Kind::Person => H::R(self.db.add(Person::new(name))),
                    };
                    let mut coll = [None, None];
                    let o = Obj {
                        kind,
                        h,
                        key: None,
                        valid: true,
                        new: true,
                        since_commit: true,
                        doomed: false,
                        deleted_in_tx: false,
                        gone: false,
                        coll: [None, None],
                        coll_at_commit: [None, None],
                    };
                    for &e in o.ends() {
                        coll[e] = Some(Set::new());
                    }
                    self.m.objs.push(Obj { coll, ..o });
                }
                Op::Link(rel, right, a, b, linked) => {
                    let [lk, rk] = ends(rel);
                    let (Some(l), Some(r)) = (self.m.pick(lk, a), self.m.pick(rk, b)) else {
                        return Ok(());
                    };
                    let (lh, rh) = (self.m.objs[l].h, self.m.objs[r].h);
                    let res = self.call_link(rel, right, lh, rh, linked);
                    if self.m.objs[l].valid && self.m.objs[r].valid {
                        res.map_err(e2s)?;
                        self.m.link(rel, l, r, linked);
                    } else if res.is_ok() {
                        return Err("linking a dead object succeeded".into());
                    }
                }
                Op::Set(rel, right, a, bs, n) => {
                    let [lk, rk] = ends(rel);
                    let (xk, ok, end) = if right { (rk, lk, 1) } else { (lk, rk, 0) };
                    let Some(x) = self.m.pick(xk, a) else {
                        return Ok(());
                    };
                    let to: Vec<usize> = bs[..n.min(3)]
                        .iter()
                        .filter_map(|&b| self.m.pick(ok, b))
                        .collect();
                    let all_valid =
                        self.m.objs[x].valid && to.iter().all(|&i| self.m.objs[i].valid);
                    let hs: Vec<H> = to.iter().map(|&i| self.m.objs[i].h).collect();
                    let xh = self.m.objs[x].h;
                    let res = self.call_set(xh, end, &hs);
                    if !all_valid {
                        return match res {
                            Ok(()) => Err("set with a dead object succeeded".into()),
                            Err(_) => Ok(()),
                        };
                    }
                    res.map_err(e2s)?;
                    // The current ones first, as a load gives them.
                    if self.m.objs[x].coll[end].is_none() {
                        let got = self.m.expected_load(x, end);
                        let mut cur = Set::new();
                        for p in got {
                            cur.insert(match p {
                                Partner::Known(i) => i,
                                Partner::Row(k) => {
                                    // Read into a new object by the set: find it by its key.
                                    let h = self.find_read(ok, k)?;
                                    self.obj_of(h, ok)?
                                }
                            });
                        }
                        self.m.objs[x].coll[end] = Some(cur);
                    }
                    let cur = self.m.objs[x].coll[end].clone().unwrap();
                    let new: Set = to.iter().copied().collect();
                    for &c in cur.difference(&new) {
                        let (l, r) = if end == 0 { (x, c) } else { (c, x) };
                        self.m.link(rel, l, r, false);
                    }
                    for &c in new.difference(&cur) {
                        let (l, r) = if end == 0 { (x, c) } else { (c, x) };
                        self.m.link(rel, l, r, true);
                    }
                    self.m.objs[x].coll[end] = Some(new);
                }
                Op::Load(rel, right, a) => {
                    let [lk, rk] = ends(rel);
                    let (xk, end) = if right { (rk, 1) } else { (lk, 0) };
                    let Some(x) = self.m.pick(xk, a) else {
                        return Ok(());
                    };
                    let xh = self.m.objs[x].h;
                    let res = self.call_load(xh, end);
                    if !self.m.objs[x].valid {
                        return match res {
                            Ok(_) => Err("loading a dead object's collection succeeded".into()),
                            Err(_) => Ok(()),
                        };
                    }
                    let got = res.map_err(e2s)?;
                    match self.m.objs[x].coll[end].clone() {
                        Some(c) => {
                            let mut got_objs = Set::new();
                            for h in got {
                                got_objs.insert(self.obj_of(h, ends(rel)[1 - end])?);
                            }
                            if got_objs != c {
                                return Err(format!(
                                    "load of a loaded collection: {got_objs:?}, want {c:?}"
                                ));
                            }
                        }
                        None => self.loaded(x, end, &got)?,
                    }
                }
                Op::Eager(k, autoflush) => self.eager(KINDS[k], autoflush)?,
                Op::Delete(k, i) => {
                    let Some(x) = self.m.pick(KINDS[k], i) else {
                        return Ok(());
                    };
                    let o = &self.m.objs[x];
                    let res = match o.h {
                        H::P(h) => self.db.delete(h),
                        H::T(h) => self.db.delete(h),
                        H::R(h) => self.db.delete(h),
                    };
                    if self.m.objs[x].valid {
                        res.map_err(e2s)?;
                        self.m.objs[x].doomed = true;
                    } else if res.is_ok() {
                        return Err("deleting a dead object succeeded".into());
                    }
                }
                Op::Expunge(k, i) => {
                    let Some(x) = self.m.pick(KINDS[k], i) else {
                        return Ok(());
                    };
                    let res = match self.m.objs[x].h {
                        H::P(h) => self.db.expunge(h),
                        H::T(h) => self.db.expunge(h),
                        H::R(h) => self.db.expunge(h),
                    };
                    if self.m.objs[x].valid {
                        res.map_err(e2s)?;
                        let o = &mut self.m.objs[x];
                        o.valid = false;
                        o.doomed = false;
                        self.m.forget(x);
                    } else if res.is_ok() {
                        return Err("expunging a dead object succeeded".into());
                    }
                }
                Op::Get(k, i) => {
                    let kind = KINDS[k];
                    let keys = self.m.keys.get(&kind).cloned().unwrap_or_default();
                    if keys.is_empty() {
                        return Ok(());
                    }
                    let key = keys[i % keys.len()];
                    let got = match kind {
                        Kind::Post => self.db.get::<Post>(Id::new(key)).map_err(e2s)?.map(H::P),
                        Kind::Tag => self.db.get::<Tag>(Id::new(key)).map_err(e2s)?.map(H::T),
                        Kind::Person => self.db.get::<Person>(Id::new(key)).map_err(e2s)?.map(H::R),
                    };
                    let held = self.m.by_key(kind, key);
                    match (held, got) {
                        (Some(x), Some(h)) if self.m.objs[x].h == h => {}
                        (None, None) if !self.m.rows.contains(&(kind, key)) => {}
                        (None, Some(h)) => {
                            self.obj_of(h, kind)?;
                        }
                        (held, got) => {
                            return Err(format!("get({kind:?} {key}): {got:?}, held {held:?}"))
                        }
                    }
                }
                Op::Flush => {
                    let r = self.db.flush();
                    self.flush(r)?;
                }
                Op::Commit => {
                    let fails = self.m.flush_fails();
                    let r = self.db.commit();
                    self.flush(r)?;
                    if !fails {
                        self.m.committed();
                        self.check_table()?;
                    }
                }
                Op::Rollback => {
                    self.db.rollback().map_err(e2s)?;
                    self.m.rolled_back();
                    self.check_table()?;
                }
                Op::OtherLink(rel, a, b, linked) if !self.m.dirty => {
                    let [lk, rk] = ends(rel);
                    let rows = |k: Kind| -> Vec<i64> {
                        self.m
                            .rows
                            .iter()
                            .filter(|r| r.0 == k)
                            .map(|r| r.1)
                            .collect()
                    };
                    let (ls, rs) = (rows(lk), rows(rk));
                    if ls.is_empty() || rs.is_empty() {
                        return Ok(());
                    }
                    let (l, r) = (ls[a % ls.len()], rs[b % rs.len()]);
                    let (table, cl, cr) = if rel == 0 {
                        ("post_tags", "post_id", "tag_id")
                    } else {
                        ("follows", "follower_id", "followee_id")
                    };
                    if linked {
                        self.t.exec(&format!(
                            "INSERT INTO {table} ({cl}, {cr}) VALUES ({l}, {r}) ON CONFLICT DO NOTHING"
                        ));
                        self.m.pairs.insert((rel, l, r));
                    } else {
                        self.t.exec(&format!(
                            "DELETE FROM {table} WHERE {cl} = {l} AND {cr} = {r}"
                        ));
                        self.m.pairs.remove(&(rel, l, r));
                    }
                    self.m.committed_pairs = self.m.pairs.clone();
                }
                Op::OtherDelete(k, i) if !self.m.dirty => {
                    let kind = KINDS[k];
                    let rows: Vec<i64> = self
                        .m
                        .rows
                        .iter()
                        .filter(|r| r.0 == kind)
                        .map(|r| r.1)
                        .collect();
                    if rows.is_empty() {
                        return Ok(());
                    }
                    let key = rows[i % rows.len()];
                    let table = match kind {
                        Kind::Post => "post",
                        Kind::Tag => "tag",
                        Kind::Person => "person",
                    };
                    self.t
                        .exec(&format!("DELETE FROM {table} WHERE id = {key}"));
                    self.m.remove_row(kind, key);
                    self.m.committed_rows = self.m.rows.clone();
                    self.m.committed_pairs = self.m.pairs.clone();
                    for o in &mut self.m.objs {
                        if o.kind == kind && o.key == Some(key) {
                            o.gone = true;
                        }
                    }
                }
                Op::OtherLink(..) | Op::OtherDelete(..) => {}
            }
            Ok(())
        }

        /// The object a set or load read for row `key` (the newest handle of that key).
        fn find_read(&self, kind: Kind, key: i64) -> Result<H, String> {
            let h = match kind {
                Kind::Post => self.db.handle_of(Id::<Post>::new(key)).map(H::P),
                Kind::Tag => self.db.handle_of(Id::<Tag>::new(key)).map(H::T),
                Kind::Person => self.db.handle_of(Id::<Person>::new(key)).map(H::R),
            };
            h.ok_or_else(|| format!("row {kind:?} {key} not in the session"))
        }

        /// An eager query of every `kind` with both levels.
        fn eager(&mut self, kind: Kind, autoflush: bool) -> Check {
            // The model after the autoflush, to count the keys each level reads.
            let fails = autoflush && self.m.flush_fails();
            let res: orm_core::Result<Vec<H>> = match kind {
                Kind::Post => self
                    .db
                    .query::<Post>()
                    .autoflush(autoflush)
                    .with(Post::tags.with(Tag::posts))
                    .all()
                    .map(|v| v.into_iter().map(H::P).collect()),
                Kind::Tag => self
                    .db
                    .query::<Tag>()
                    .autoflush(autoflush)
                    .with(Tag::posts.with(Post::tags))
                    .all()
                    .map(|v| v.into_iter().map(H::T).collect()),
                Kind::Person => self
                    .db
                    .query::<Person>()
                    .autoflush(autoflush)
                    .with(Person::following.with(Person::followers))
                    .all()
                    .map(|v| v.into_iter().map(H::R).collect()),
            };
            if autoflush {
                if fails {
                    return match res {
                        Ok(_) => Err("the query's flush should have failed".into()),
                        Err(_) => Ok(()),
                    };
                }
                // The flush succeeded if the query did; keys as the objects hold them now.
                let roots = res.map_err(e2s)?;
                self.flush(Ok(()))?;
                self.eager_levels(kind, &roots)
            } else {
                let roots = res.map_err(e2s)?;
                self.eager_levels(kind, &roots)
            }
        }

        fn eager_levels(&mut self, kind: Kind, roots: &[H]) -> Check {
            let mut root_objs = BTreeSet::new();
            for &h in roots {
                root_objs.insert(self.obj_of(h, kind)?);
            }
            let want: BTreeSet<usize> = self
                .m
                .rows
                .iter()
                .filter(|r| r.0 == kind)
                .map(|r| {
                    self.m
                        .by_key(kind, r.1)
                        .ok_or(format!("row {r:?} not read"))
                })
                .collect::<Result<_, _>>()?;
            if root_objs != want {
                return Err(format!("eager roots {root_objs:?}, want {want:?}"));
            }
            // First level, then the second (the other end) of every object reached.
            let (end1, end2) = match kind {
                Kind::Post => (0, 1),
                Kind::Tag => (1, 0),
                Kind::Person => (0, 1),
            };
            let mut reached = BTreeSet::new();
            for &x in &root_objs {
                self.level(x, end1)?;
                reached.extend(self.m.objs[x].coll[end1].clone().unwrap());
            }
            for &x in &reached {
                self.level(x, end2)?;
            }
            Ok(())
        }

        /// Collection `end` of `x` as an eager level leaves it: kept if it was loaded, else
        /// loaded as the model loads it.
        fn level(&mut self, x: usize, end: usize) -> Check {
            let got = self
                .actual(x, end)?
                .ok_or_else(|| format!("eager left {x}/{end} unloaded"))?;
            if self.m.objs[x].coll[end].is_none() {
                self.loaded(x, end, &got)?;
            }
            Ok(())
        }

        /// Every live object's loaded collections are the model's; dead objects are not
        /// in the session.
        fn check(&self) -> Check {
            for (i, o) in self.m.objs.iter().enumerate() {
                if !o.valid {
                    if self.contains(o.h) && !o.deleted_in_tx {
                        return Err(format!("object {i} should be out of the session"));
                    }
                    continue;
                }
                if !self.contains(o.h) {
                    return Err(format!("object {i} should be in the session"));
                }
                for &end in o.ends() {
                    let got = self.actual(i, end)?;
                    match (&o.coll[end], got) {
                        (None, None) => {}
                        (Some(want), Some(got)) => {
                            let mut objs = Set::new();
                            for h in &got {
                                let Some(j) = (0..self.m.objs.len())
                                    .find(|&j| self.m.objs[j].valid && self.m.objs[j].h == *h)
                                else {
                                    return Err(format!(
                                        "collection {i}/{end} holds {h:?}, not a live object"
                                    ));
                                };
                                if !objs.insert(j) {
                                    return Err(format!("collection {i}/{end} holds {j} twice"));
                                }
                            }
                            if &objs != want {
                                return Err(format!(
                                    "collection {i}/{end}: {objs:?}, want {want:?}"
                                ));
                            }
                        }
                        (want, got) => {
                            return Err(format!(
                                "collection {i}/{end}: loaded {}, want {}",
                                got.is_some(),
                                want.is_some()
                            ))
                        }
                    }
                }
            }
            Ok(())
        }
    }

    fn replay(t: &TestDb, ops: &[Op]) -> Check {
        let mut db = t.open();
        t.exec("DELETE FROM post_tags; DELETE FROM follows; DELETE FROM post; DELETE FROM tag; DELETE FROM person");
        // Three of each, a few links, committed.
        let posts: Vec<_> = (0..3).map(|i| db.add(Post::new(format!("p{i}")))).collect();
        let tags: Vec<_> = (0..3).map(|i| db.add(Tag::new(format!("t{i}")))).collect();
        let people: Vec<_> = (0..3)
            .map(|i| db.add(Person::new(format!("r{i}"))))
            .collect();
        let mut m = Model::default();
        let seeded = [(0, 0), (0, 1), (1, 1), (2, 2)];
        db.commit().map_err(e2s)?;
        for &(a, b) in &seeded {
            db.append(posts[a], Post::tags, tags[b]).map_err(e2s)?;
            db.append(people[a], Person::following, people[b])
                .map_err(e2s)?;
        }
        db.commit().map_err(e2s)?;
        let mut hs: Vec<(Kind, H, i64)> = Vec::new();
        for &h in &posts {
            hs.push((Kind::Post, H::P(h), db[h].id.value().map_err(e2s)?));
        }
        for &h in &tags {
            hs.push((Kind::Tag, H::T(h), db[h].id.value().map_err(e2s)?));
        }
        for &h in &people {
            hs.push((Kind::Person, H::R(h), db[h].id.value().map_err(e2s)?));
        }
        for &(kind, _, key) in &hs {
            m.rows.insert((kind, key));
            m.keys.entry(kind).or_default().push(key);
        }
        for &(a, b) in &seeded {
            m.pairs.insert((0, hs[a].2, hs[3 + b].2));
            m.pairs.insert((1, hs[6 + a].2, hs[6 + b].2));
        }
        // A session of its own, that has read nothing yet.
        drop(db);
        let db = t.open();
        m.committed_rows = m.rows.clone();
        m.committed_pairs = m.pairs.clone();
        let mut w = World { t, db, m, names: 0 };
        w.check().map_err(|e| format!("after the seed: {e}"))?;
        w.check_table()?;
        for (i, &op) in ops.iter().enumerate() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                w.step(op).and_then(|()| w.check())
            }));
            match r {
                Ok(r) => r.map_err(|e| format!("step {} ({op:?}): {e}", i + 1))?,
                Err(_) => return Err(format!("step {} ({op:?}): panicked", i + 1)),
            }
        }
        w.step(Op::Rollback)
            .map_err(|e| format!("final rollback: {e}"))
    }

    pub fn property(t: &TestDb, cases: u32) -> Check {
        drop(session(t));
        let (mut runner, cases) = runner(cases);
        let started = std::time::Instant::now();
        let ops = proptest::collection::vec(op(), 1..=25);
        let result = runner.run(&ops, |ops| replay(t, &ops).map_err(TestCaseError::fail));
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "many-to-many ops {:?}: {cases} cases in {:.1?}",
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
    fn random_sequences_of_links_agree_with_a_model(t: &TestDb) -> Result<(), String> {
        ops::property(t, 96)
    }
}
