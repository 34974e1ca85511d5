//! Many-to-many through an association table (`#[has_many(through = "..")]`): the table in
//! the schema, linking and unlinking from either side (both sides' collections at once, the
//! rows at the flush), loading lazily and eagerly, deletes and rollback, checked against the
//! rows by plain SQL.

use orm_core::prelude::*;
use orm_tests::*;

/// A post with its tags.
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    pub title: String,
    #[has_many(through = "post_tags", back_populates = "posts")]
    pub tags: HasMany<Tag>,
}

/// A tag on posts.
#[derive(Model, Debug)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
    #[has_many(through = "post_tags", back_populates = "tags")]
    pub posts: HasMany<Post>,
}

/// A person who follows others: a many-to-many of a model with itself.
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

/// A speaker, keyed by name, with the languages (keyed by code) they speak.
#[derive(Model, Debug)]
pub struct Speaker {
    #[key]
    pub name: String,
    #[has_many(through = "speaker_langs", back_populates = "speakers")]
    pub langs: HasMany<Lang>,
}

/// A language, keyed by its code.
#[derive(Model, Debug)]
pub struct Lang {
    #[key]
    pub code: String,
    #[has_many(through = "speaker_langs", back_populates = "langs")]
    pub speakers: HasMany<Speaker>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Post, Tag)>().expect("create tables");
    db
}

/// The links as (post title, tag label), sorted.
fn links(t: &TestDb) -> Vec<Vec<String>> {
    t.rows(
        "SELECT p.title, g.label FROM post_tags pt JOIN post p ON p.id = pt.post_id \
         JOIN tag g ON g.id = pt.tag_id ORDER BY p.title, g.label",
    )
}

fn labels(db: &Session, tags: &[Handle<Tag>]) -> Vec<String> {
    tags.iter().map(|&t| db[t].label.clone()).collect()
}

fn titles(db: &Session, posts: &[Handle<Post>]) -> Vec<String> {
    posts.iter().map(|&p| db[p].title.clone()).collect()
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

backend_tests! {
    fn the_association_table_has_both_keys_cascading_and_goes_with_drop_all(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        assert!(t.tables().contains(&"post_tags".to_string()));
        t.exec("INSERT INTO post (title) VALUES ('p')");
        t.exec("INSERT INTO tag (label) VALUES ('t')");
        t.exec("INSERT INTO post_tags (post_id, tag_id) VALUES (1, 1)");
        // The pair is the primary key.
        assert!(t.raw().exec("INSERT INTO post_tags (post_id, tag_id) VALUES (1, 1)").is_err());
        // Both are foreign keys.
        assert!(t.raw().exec("INSERT INTO post_tags (post_id, tag_id) VALUES (1, 99)").is_err());
        // Deleting either end deletes its links.
        t.exec("DELETE FROM tag WHERE id = 1");
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 0);
        db.check_schema::<(Post, Tag)>()?;
        db.drop_all::<(Post, Tag)>()?;
        let tables = t.tables();
        assert!(!tables.iter().any(|n| n == "post_tags" || n == "post" || n == "tag"), "{tables:?}");
        Ok(())
    }

    fn linking_from_either_side_updates_both_and_writes_one_row_each(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Post::new("a"));
        let x = db.add(Tag::new("x"));
        let y = db.add(Tag::new("y"));
        db.append(a, Post::tags, x)?;
        db.append(y, Tag::posts, a)?;
        // Both sides at once, before any SQL.
        assert_eq!(db[a].tags, [x, y]);
        assert_eq!(db[x].posts, [a]);
        assert_eq!(db[y].posts, [a]);
        // Linking twice, from both sides: one row.
        db.append(a, Post::tags, y)?;
        db.append(x, Tag::posts, a)?;
        assert_eq!(db[a].tags, [x, y]);
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"]]));
        // A link the table already holds, from a session that never loaded it: no error, one row.
        let mut other = t.open();
        let a2 = other.query::<Post>().one()?;
        let x2 = other.query::<Tag>().filter(Tag::label.eq("x")).one()?;
        other.append(a2, Post::tags, x2)?;
        other.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"]]));
        Ok(())
    }

    fn loading_reads_the_table_from_either_side_with_pending_links(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut db = t.open();
        let a = db.query::<Post>().filter(Post::title.eq("a")).one()?;
        let z = db.query::<Tag>().filter(Tag::label.eq("z")).one()?;
        let y = db.query::<Tag>().filter(Tag::label.eq("y")).one()?;
        // Linked and unlinked before the flush: the loads see it.
        db.append(a, Post::tags, z)?;
        db.remove(y, Tag::posts, a)?;
        let tags = db.load(a, Post::tags)?;
        assert_eq!(labels(&db, &tags), ["x", "z"]);
        let posts = db.load(y, Tag::posts)?;
        assert_eq!(titles(&db, &posts), ["b"]);
        let on_z = db.load(z, Tag::posts)?;
        assert_eq!(titles(&db, &on_z), ["a"]);
        // A new post's collection is loaded (empty) from the start; no SQL for it.
        let c = db.add(Post::new("c"));
        db.log_statements(true);
        assert!(db.load(c, Post::tags)?.is_empty());
        assert!(db.statements().is_empty());
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "z"], &["b", "y"]]));
        Ok(())
    }

    fn new_objects_on_both_ends_get_their_keys_in_the_links(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        t.exec("INSERT INTO post (title) VALUES ('old')");
        let posts: Vec<_> = (0..5).map(|i| db.add(Post::new(format!("p{i}")))).collect();
        let tags: Vec<_> = (0..3).map(|i| db.add(Tag::new(format!("t{i}")))).collect();
        for (i, &p) in posts.iter().enumerate() {
            db.set(p, Post::tags, vec![tags[i % 3], tags[(i + 1) % 3]])?;
        }
        db.commit()?;
        let rows = t.rows(
            "SELECT p.id, p.title, g.label FROM post_tags pt JOIN post p ON p.id = pt.post_id \
             JOIN tag g ON g.id = pt.tag_id ORDER BY p.id, g.label",
        );
        assert_eq!(rows.len(), 10);
        for (i, &p) in posts.iter().enumerate() {
            let id = db[p].id.value()?.to_string();
            let mut want = vec![format!("t{}", i % 3), format!("t{}", (i + 1) % 3)];
            want.sort();
            let got: Vec<String> = rows.iter().filter(|r| r[0] == id).map(|r| r[2].clone()).collect();
            assert_eq!(got, want, "post {}", db[p].title);
            assert!(rows.iter().filter(|r| r[0] == id).all(|r| r[1] == db[p].title));
        }
        Ok(())
    }

    fn unlinking_and_set_delete_rows_and_update_both_sides(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(y, Tag::posts)?;
        db.remove(a, Post::tags, y)?;
        assert_eq!(db[a].tags, [x]);
        assert_eq!(db[y].posts, [b]);
        db.set(b, Post::tags, [z, x])?;
        assert_eq!(db[b].tags, [z, x]);
        assert_eq!(db[y].posts.len(), 0);
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["b", "x"], &["b", "z"]]));
        Ok(())
    }

    fn deleting_either_end_removes_its_links_and_its_place_in_collections(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, _]) = seed(&mut db)?;
        db.load(y, Tag::posts)?;
        db.load(b, Post::tags)?;
        db.delete(a)?;
        // A link to an object deleted in the same flush is not written.
        db.append(a, Post::tags, y)?;
        db.commit()?;
        assert_eq!(links(t), table(&[&["b", "y"]]));
        assert_eq!(db[y].posts, [b]);
        assert_eq!(db[x].posts.len(), 0);
        // The other way, the collection of the deleted tag never loaded.
        let fresh = db.query::<Post>().one()?;
        assert_eq!(fresh, b);
        db.delete(y)?;
        db.commit()?;
        assert_eq!(db[b].tags.len(), 0);
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 0);
        Ok(())
    }

    fn rollback_and_a_failed_flush_keep_collections_and_rows_in_step(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ([a, b], [x, y, z]) = seed(&mut db)?;
        db.load(z, Tag::posts)?;
        db.append(a, Post::tags, z)?;
        db.remove(a, Post::tags, x)?;
        db.flush()?;
        db.rollback()?;
        assert_eq!(db[a].tags, [x, y]);
        assert_eq!(db[z].posts.len(), 0);
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        // Another program deletes tag z: linking to it fails at the flush, which writes nothing
        // and keeps the session's pending link.
        t.exec("DELETE FROM tag WHERE label = 'z'");
        db.append(b, Post::tags, z)?;
        db.remove(b, Post::tags, y)?;
        assert!(db.commit().is_err());
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        assert_eq!(db[b].tags, [z]);
        db.rollback()?;
        assert_eq!(db[b].tags, [y]);
        db.commit()?;
        assert_eq!(links(t), table(&[&["a", "x"], &["a", "y"], &["b", "y"]]));
        Ok(())
    }

    fn eager_loading_reads_each_level_in_one_query(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let tags: Vec<_> = (0..50).map(|i| db.add(Tag::new(format!("t{i:02}")))).collect();
        for i in 0..300 {
            let p = db.add(Post::new(format!("p{i:03}")));
            for k in 0..5 {
                db.append(p, Post::tags, tags[(i * 7 + k * 11) % 50])?;
            }
        }
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 1500);
        let mut db = t.open();
        db.log_statements(true);
        let posts = db.query::<Post>().with(Post::tags.with(Tag::posts)).all()?;
        assert_eq!(db.statements().len(), 3, "posts, their tags, the tags' posts");
        db.take_statements();
        assert_eq!(posts.len(), 300);
        for (i, &p) in posts.iter().enumerate() {
            let mut want: Vec<String> =
                (0..5).map(|k| format!("t{:02}", (i * 7 + k * 11) % 50)).collect();
            want.sort();
            let mut got = labels(&db, db[p].tags.as_slice());
            got.sort();
            assert_eq!(got, want);
            for &g in db[p].tags.as_slice() {
                assert!(db[g].posts.contains(p));
            }
        }
        let loaded: i64 = posts.iter().map(|&p| db[p].tags.len() as i64).sum();
        assert_eq!(loaded, 1500);
        assert!(db.statements().is_empty(), "walking the graph runs no SQL");
        Ok(())
    }

    fn a_model_can_link_to_itself_through_named_columns(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Person,)>()?;
        let ann = db.add(Person::new("ann"));
        let bob = db.add(Person::new("bob"));
        let cy = db.add(Person::new("cy"));
        db.append(ann, Person::following, bob)?;
        db.append(ann, Person::following, cy)?;
        db.append(cy, Person::followers, bob)?;
        assert_eq!(db[bob].followers, [ann]);
        assert_eq!(db[cy].followers, [ann, bob]);
        assert_eq!(db[bob].following, [cy]);
        db.commit()?;
        let rows = t.rows(
            "SELECT a.name, b.name FROM follows f JOIN person a ON a.id = f.follower_id \
             JOIN person b ON b.id = f.followee_id ORDER BY a.name, b.name",
        );
        assert_eq!(rows, table(&[&["ann", "bob"], &["ann", "cy"], &["bob", "cy"]]));
        let mut db = t.open();
        let cy = db.query::<Person>().filter(Person::name.eq("cy")).one()?;
        let followers = db.load(cy, Person::followers)?;
        assert_eq!(followers.iter().map(|&p| db[p].name.clone()).collect::<Vec<_>>(), ["ann", "bob"]);
        assert!(db.load(cy, Person::following)?.is_empty());
        Ok(())
    }

    fn many_links_go_in_few_statements(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let posts: Vec<_> = (0..200).map(|i| db.add(Post::new(format!("p{i}")))).collect();
        let tags: Vec<_> = (0..5).map(|i| db.add(Tag::new(format!("t{i}")))).collect();
        for &p in &posts {
            for &g in &tags {
                db.append(p, Post::tags, g)?;
            }
        }
        db.log_statements(true);
        db.commit()?;
        let inserts = writes(&mut db)
            .into_iter()
            .filter(|s| s.contains("post_tags"))
            .count();
        // 1,000 links: 256 + 256 + 256 + 128 + 64 + 32 + 8.
        assert_eq!(inserts, 7);
        assert_eq!(t.count("SELECT COUNT(*) FROM post_tags"), 1000);
        Ok(())
    }

    fn populate_existing_reads_linked_rows_again(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        for (populate, label) in [(false, "x"), (true, "renamed")] {
            t.exec("UPDATE tag SET label = 'x' WHERE id = 1");
            let mut db = t.open();
            let x = db.query::<Tag>().filter(Tag::label.eq("x")).one()?;
            t.exec("UPDATE tag SET label = 'renamed' WHERE label = 'x'");
            let mut query = db.query::<Post>().filter(Post::title.eq("a")).with(Post::tags);
            if populate {
                query = query.populate_existing();
            }
            let a = query.one()?;
            assert_eq!(db[a].tags.as_slice()[0], x);
            assert_eq!(db[x].label, label, "populate_existing: {populate}");
        }
        Ok(())
    }

    fn check_schema_reports_a_missing_association_table(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        t.exec("DROP TABLE post_tags");
        let e = db.check_schema::<(Post, Tag)>().unwrap_err();
        assert!(e.to_string().contains("association table `post_tags`"), "{e}");
        db.create_all::<(Post, Tag)>()?;
        db.check_schema::<(Post, Tag)>()?;
        // One end missing from the set is refused before any SQL.
        let e = db.create_all::<(Post,)>().unwrap_err();
        assert!(e.to_string().contains("Tag"), "{e}");
        Ok(())
    }

    fn text_keys_link_and_load_eagerly_in_one_query_per_level(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Speaker, Lang)>()?;
        let langs: Vec<_> = ["de", "en", "fr"].iter().map(|&c| db.add(Lang::new(c))).collect();
        for (i, name) in ["ana", "bo", "cy", "di"].iter().enumerate() {
            let s = db.add(Speaker::new(*name));
            db.append(s, Speaker::langs, langs[i % 3])?;
            db.append(langs[(i + 1) % 3], Lang::speakers, s)?;
        }
        db.commit()?;
        assert_eq!(t.count("SELECT COUNT(*) FROM speaker_langs"), 8);
        let mut db = t.open();
        db.log_statements(true);
        let speakers = db
            .query::<Speaker>()
            .filter(Speaker::name.ne("nobody"))
            .with(Speaker::langs.with(Lang::speakers))
            .all()?;
        assert_eq!(db.statements().len(), 3, "speakers, their languages, the languages' speakers");
        let spoken: Vec<(String, Vec<String>)> = speakers
            .iter()
            .map(|&s| {
                let codes = db[s].langs.iter().map(|&l| db[l].code.clone()).collect();
                (db[s].name.clone(), codes)
            })
            .collect();
        let want = [("ana", ["de", "en"]), ("bo", ["en", "fr"]), ("cy", ["de", "fr"]), ("di", ["de", "en"])];
        for ((name, codes), (wn, wc)) in spoken.iter().zip(want) {
            assert_eq!((name.as_str(), codes.as_slice()), (wn, &wc.map(String::from)[..]));
        }
        let de = db[speakers[0]].langs.as_slice()[0];
        assert_eq!(db[de].speakers.len(), 3);
        Ok(())
    }
}
