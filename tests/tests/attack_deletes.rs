//! Hostile scenarios for deletes through the session: deletes mixed with edits, moves,
//! rollbacks, failures in the middle of a flush and other programs, then a property test of
//! random sequences against a model of what the session and the database must hold.

use orm_core::prelude::*;
use orm_tests::*;

/// A blog's author: deleting one deletes its posts (loaded or not); its drafts must be dealt
/// with first (required key, no cascade).
#[derive(Model, Debug)]
pub struct Author {
    #[key]
    pub id: Id<Author>,
    pub name: String,
    #[has_many(back_populates = "author", cascade_delete)]
    pub posts: HasMany<Post>,
    #[has_many(back_populates = "author")]
    pub drafts: HasMany<Draft>,
}

/// A post: its comments go with it and when taken out of it; its likes stay, unattached.
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    #[column(unique)]
    pub title: String,
    #[belongs_to(back_populates = "posts", on_delete = "cascade")]
    pub author: Id<Author>,
    #[has_many(back_populates = "post", delete_orphans)]
    pub comments: HasMany<Comment>,
    #[has_many(back_populates = "post")]
    pub likes: HasMany<Like>,
}

/// A comment on a post (required).
#[derive(Model, Debug)]
pub struct Comment {
    #[key]
    pub id: Id<Comment>,
    pub body: String,
    #[belongs_to(back_populates = "comments")]
    pub post: Id<Post>,
}

/// A like of a post (nullable, set to `NULL` when the post goes).
#[derive(Model, Debug)]
pub struct Like {
    #[key]
    pub id: Id<Like>,
    pub who: String,
    #[belongs_to(back_populates = "likes", on_delete = "set null")]
    pub post: Option<Id<Post>>,
}

/// A draft of an author (required, no cascade).
#[derive(Model, Debug)]
pub struct Draft {
    #[key]
    pub id: Id<Draft>,
    pub text: String,
    #[belongs_to(back_populates = "drafts", on_delete = "restrict")]
    pub author: Id<Author>,
}

/// A shelf whose books the database deletes (`passive_deletes`).
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    pub name: String,
    #[has_many(back_populates = "shelf", cascade_delete, passive_deletes)]
    pub books: HasMany<Book>,
}

/// A book on a shelf.
#[derive(Model, Debug)]
pub struct Book {
    #[key]
    pub id: Id<Book>,
    pub title: String,
    #[belongs_to(back_populates = "books", on_delete = "cascade")]
    pub shelf: Id<Shelf>,
}

/// A tree whose subtrees go with their root.
#[derive(Model, Debug)]
pub struct Folder {
    #[key]
    pub id: Id<Folder>,
    pub name: String,
    #[belongs_to(back_populates = "children")]
    pub parent: Option<Id<Folder>>,
    #[has_many(back_populates = "parent", cascade_delete)]
    pub children: HasMany<Folder>,
}

/// A person whose favourite entry is one of their own: a cycle among the rows deleted.
#[derive(Model, Debug)]
pub struct Person {
    #[key]
    pub id: Id<Person>,
    pub name: String,
    #[belongs_to]
    pub favourite: Option<Id<Entry>>,
    #[has_many(back_populates = "person", cascade_delete)]
    pub entries: HasMany<Entry>,
}

/// An entry written by a person.
#[derive(Model, Debug)]
pub struct Entry {
    #[key]
    pub id: Id<Entry>,
    pub text: String,
    #[belongs_to(back_populates = "entries")]
    pub person: Id<Person>,
}

/// A versioned article with labels, many-to-many (property test).
#[derive(Model, Debug)]
pub struct Article {
    #[key]
    pub id: Id<Article>,
    pub title: String,
    #[version]
    pub version: i64,
    #[has_many(through = "article_labels", back_populates = "articles")]
    pub labels: HasMany<Label>,
}

/// A label on articles, with a 32-bit version (property test).
#[derive(Model, Debug)]
pub struct Label {
    #[key]
    pub id: Id<Label>,
    pub name: String,
    #[version]
    pub version: i32,
    #[has_many(through = "article_labels", back_populates = "labels")]
    pub articles: HasMany<Article>,
}

type Blog = (
    Author,
    Post,
    Comment,
    Like,
    Draft,
    Shelf,
    Book,
    Folder,
    Person,
    Entry,
    Article,
    Label,
);

fn blog(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<Blog>().expect("create tables");
    db.log_statements(true);
    db
}

/// The SQL of the statements logged since the last call that start with `prefix`.
fn logged(db: &mut Session, prefix: &str) -> Vec<String> {
    db.take_statements()
        .into_iter()
        .map(|s| s.sql)
        .filter(|s| s.starts_with(prefix))
        .collect()
}

fn count(t: &TestDb, table: &str) -> i64 {
    t.count(&format!("SELECT count(*) FROM {table}"))
}

fn is_invalid_handle<T>(r: orm_core::Result<T>) -> bool {
    matches!(r, Err(orm_core::Error::InvalidHandle { .. }))
}

/// A trigger that refuses to delete a post while a draft with the text `block` exists.
fn blocking_trigger(t: &TestDb) {
    match t.backend() {
        Backend::Sqlite => t.exec(
            "CREATE TRIGGER no_delete BEFORE DELETE ON post \
             WHEN EXISTS (SELECT 1 FROM draft WHERE text = 'block') \
             BEGIN SELECT RAISE(ABORT, 'blocked'); END;",
        ),
        Backend::Postgres => t.exec(
            "CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF EXISTS (SELECT 1 FROM draft WHERE text = 'block') THEN \
             RAISE EXCEPTION 'blocked'; END IF; RETURN OLD; END $$; \
             CREATE TRIGGER no_delete BEFORE DELETE ON post \
             FOR EACH ROW EXECUTE FUNCTION no_delete();",
        ),
    }
}

backend_tests! {
    fn delete_then_edit_then_flush_writes_only_the_delete_and_rollback_restores_the_commit(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        db.commit()?;
        db.delete(ann)?;
        db.get_mut(ann).name = "edited after delete".into();
        db.take_statements();
        db.flush()?;
        assert_eq!(
            writes(&mut db),
            [t.sql("DELETE FROM \"author\" WHERE \"id\" IN (?1)")]
        );
        assert!(!db.contains(ann));
        db.rollback()?;
        assert!(db.contains(ann) && !db.is_deleted(ann));
        assert_eq!(db[ann].name, "Ann");
        assert_eq!(db.all::<Author>()?, [ann, bob]);
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM author ORDER BY id"), table(&[&["Ann"], &["Bob"]]));
        Ok(())
    }

    fn an_edit_flushed_before_the_delete_is_undone_by_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.commit()?;
        db.get_mut(ann).name = "E1".into();
        db.get_mut(p).title = "p1".into();
        db.flush()?;
        db.get_mut(ann).name = "E2".into();
        db.delete(ann)?;
        db.flush()?;
        assert!(!db.contains(ann) && !db.contains(p));
        db.rollback()?;
        assert_eq!(db[ann].name, "Ann");
        assert_eq!(db[p].title, "p");
        assert_eq!(db.get::<Author>(db[ann].id)?, Some(ann));
        assert_eq!(db.load(ann, Author::posts)?, [p]);
        assert_eq!(t.rows("SELECT name FROM author"), table(&[&["Ann"]]));
        Ok(())
    }

    fn a_new_child_added_to_a_parent_deleted_in_the_same_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        db.commit()?;
        db.delete(p)?;
        // Added after the delete: a comment (cascade) and a like (nullable).
        let c = db.add(Comment::new("late", p));
        let l = db.add(Like::new("late", p));
        let c2 = db.add(Comment::new("appended", Id::unset()));
        db.append(p, Post::comments, c2)?;
        db.take_statements();
        db.commit()?;
        assert!(!db.contains(p) && !db.contains(c) && !db.contains(c2));
        assert!(db.contains(l));
        assert_eq!(db[l].post, None);
        assert_eq!(count(t, "comment"), 0);
        assert_eq!(t.rows("SELECT who, post_id FROM \"like\""), table(&[&["late", "NULL"]]));
        assert_eq!(t.rows("SELECT title FROM post"), table(&[&["q"]]));
        assert_eq!(db.load(q, Post::likes)?, []);
        // A required child without a cascade: refused before any SQL, then fixed.
        let d = db.add(Draft::new("d", ann));
        db.delete(ann)?;
        db.take_statements();
        let err = db.commit().unwrap_err();
        assert!(matches!(err, orm_core::Error::ChildrenLeft { child: "Draft", .. }), "{err}");
        assert!(writes(&mut db).is_empty());
        db.delete(d)?;
        db.commit()?;
        assert!(!db.contains(d) && !db.contains(ann) && !db.contains(q));
        assert_eq!(count(t, "author") + count(t, "post") + count(t, "draft"), 0);
        Ok(())
    }

    fn a_child_and_its_parent_deleted_in_one_flush_in_either_order(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        for child_first in [true, false] {
            let p = db.add(Post::new(format!("p{child_first}"), ann));
            let c = db.add(Comment::new("c", p));
            let l = db.add(Like::new("l", p));
            let root = db.add(Folder::new("root", None));
            let mid = db.add(Folder::new("mid", root));
            let leaf = db.add(Folder::new("leaf", mid));
            db.commit()?;
            if child_first {
                db.delete(c)?;
                db.delete(l)?;
                db.delete(p)?;
                db.delete(leaf)?;
                db.delete(mid)?;
                db.delete(root)?;
            } else {
                db.delete(root)?;
                db.delete(p)?;
                db.delete(mid)?;
                db.delete(l)?;
                db.delete(leaf)?;
                db.delete(c)?;
            }
            db.take_statements();
            db.commit()?;
            let deletes = logged(&mut db, "DELETE");
            // One statement per table, and per level of the tree.
            assert_eq!(deletes.len(), 6, "{deletes:#?}");
            assert!(!db.contains(c));
            assert!(!db.contains(p) && !db.contains(l) && !db.contains(root));
            assert!(!db.contains(mid) && !db.contains(leaf));
            assert_eq!(count(t, "post") + count(t, "comment") + count(t, "\"like\"") + count(t, "folder"), 0);
        }
        Ok(())
    }

    fn delete_reparent_and_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        let c = db.add(Comment::new("c", q));
        db.commit()?;
        assert_eq!(db[ann].posts, [p, q]);
        db.set(q, Post::author, bob)?;
        db.delete(ann)?;
        db.flush()?;
        assert!(!db.contains(ann) && !db.contains(p));
        assert!(db.contains(q) && db.contains(c));
        assert_eq!(db[bob].posts, [q]);
        assert_eq!(db[q].author, db[bob].id);
        db.rollback()?;
        assert!(db.contains(ann) && db.contains(p));
        assert_eq!(db[q].author, db[ann].id);
        assert_eq!(db[ann].posts, [p, q]);
        assert!(db[bob].posts.is_empty());
        assert_eq!(db.load(q, Post::comments)?, [c]);
        // Again, the other way round: delete first, then move, then commit.
        db.delete(ann)?;
        db.set(q, Post::author, bob)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT title, author_id FROM post"), table(&[&["q", "2"]]));
        assert_eq!(t.rows("SELECT body FROM comment"), table(&[&["c"]]));
        assert_eq!(db[bob].posts, [q]);
        Ok(())
    }

    fn loaded_and_unloaded_collections_cost_one_select_per_relationship(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        for a in 0..3 {
            let au = db.add(Author::new(format!("a{a}")));
            for p in 0..2 {
                let post = db.add(Post::new(format!("a{a}p{p}"), au));
                db.add(Comment::new("c", post));
                db.add(Like::new("l", post));
            }
        }
        let keep = db.add(Author::new("keep"));
        db.add(Post::new("kept", keep));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let authors = db.all::<Author>()?;
        // The first author's posts are loaded, the others' not.
        let loaded = db.load(authors[0], Author::posts)?;
        assert_eq!(loaded.len(), 2);
        for &a in &authors[..3] {
            db.delete(a)?;
        }
        db.take_statements();
        db.commit()?;
        let statements: Vec<String> = db.take_statements().into_iter().map(|s| s.sql).collect();
        let selects: Vec<&String> = statements.iter().filter(|s| s.starts_with("SELECT")).collect();
        // posts (of the two unloaded authors), likes, drafts; the comments, which the session
        // does not hold and from which nothing cascades, are deleted by their posts' keys.
        assert_eq!(selects.len(), 3, "{selects:#?}");
        let deletes: Vec<&String> = statements.iter().filter(|s| s.starts_with("DELETE")).collect();
        assert_eq!(deletes.len(), 3, "{deletes:#?}");
        assert_eq!(t.rows("SELECT title FROM post"), table(&[&["kept"]]));
        assert_eq!(count(t, "comment"), 0);
        assert_eq!(t.count("SELECT count(*) FROM \"like\" WHERE post_id IS NULL"), 6);
        Ok(())
    }

    fn three_levels_of_cascades_mixed_with_nullable_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        let p = db.add(Post::new("p", ann));
        db.add(Post::new("bp", bob));
        db.add(Comment::new("c1", p));
        db.add(Comment::new("moved", p));
        db.add(Like::new("l", p));
        db.add(Like::new("ml", p));
        let root = db.add(Folder::new("root", None));
        let a = db.add(Folder::new("a", root));
        let a1 = db.add(Folder::new("a1", a));
        db.add(Folder::new("a11", a1));
        let other = db.add(Folder::new("other", None));
        db.add(Folder::new("adopted", other));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let ann = db.get::<Author>(Id::new(1))?.unwrap();
        let bp = db.get::<Post>(Id::new(2))?.unwrap();
        let moved = db.get::<Comment>(Id::new(2))?.unwrap();
        let ml = db.get::<Like>(Id::new(2))?.unwrap();
        db.set(moved, Comment::post, bp)?;
        // A direct key edit, not through the session.
        db.get_mut(ml).post = Some(db[bp].id);
        let root = db.get::<Folder>(Id::new(1))?.unwrap();
        let a11 = db.get::<Folder>(Id::new(4))?.unwrap();
        let other = db.get::<Folder>(Id::new(5))?.unwrap();
        let adopted = db.get::<Folder>(Id::new(6))?.unwrap();
        db.set(a11, Folder::parent, Some(other))?; // leaves the doomed tree
        db.get_mut(adopted).parent = Some(Id::new(2)); // joins it (folder a), edited directly
        db.delete(ann)?;
        db.delete(root)?;
        db.commit()?;
        assert_eq!(count(t, "author"), 1);
        assert_eq!(t.rows("SELECT title FROM post"), table(&[&["bp"]]));
        assert_eq!(t.rows("SELECT body, post_id FROM comment"), table(&[&["moved", "2"]]));
        assert_eq!(
            t.rows("SELECT who, post_id FROM \"like\" ORDER BY id"),
            table(&[&["l", "NULL"], &["ml", "2"]])
        );
        assert_eq!(
            t.rows("SELECT name, parent_id FROM folder ORDER BY id"),
            table(&[&["a11", "5"], &["other", "NULL"]])
        );
        assert!(db.contains(a11) && db.contains(other) && !db.contains(adopted) && !db.contains(root));
        assert_eq!(db.load(other, Folder::children)?, [a11]);
        assert_eq!(db.load(bp, Post::comments)?, [moved]);
        assert_eq!(db.load(bp, Post::likes)?, [ml]);
        Ok(())
    }

    fn a_trigger_failing_in_the_middle_of_a_flush_leaves_database_and_session_unchanged(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        let boom = db.add(Post::new("boom", ann));
        let ok = db.add(Post::new("ok", ann));
        let kept = db.add(Post::new("kept", bob));
        let c1 = db.add(Comment::new("c1", boom));
        let c2 = db.add(Comment::new("c2", ok));
        let like = db.add(Like::new("like", boom));
        let block = db.add(Draft::new("block", bob));
        db.commit()?;
        blocking_trigger(t);
        assert_eq!(db.load(ann, Author::posts)?, [boom, ok]);
        assert_eq!(db.load(boom, Post::comments)?, [c1]);
        db.get_mut(bob).name = "Bobby".into();
        let carl = db.add(Author::new("Carl"));
        let fresh = db.add(Post::new("fresh", carl));
        db.set(c2, Comment::post, kept)?; // survives
        db.delete(ann)?;
        db.take_statements();
        let err = db.flush().unwrap_err();
        assert!(matches!(err, orm_core::Error::Database { .. }), "{err}");
        assert!(logged(&mut db, "DELETE").len() >= 2, "a delete ran before the failing one");
        // The database as it was.
        assert_eq!(t.rows("SELECT name FROM author ORDER BY id"), table(&[&["Ann"], &["Bob"]]));
        assert_eq!(count(t, "post"), 3);
        assert_eq!(t.rows("SELECT body, post_id FROM comment ORDER BY id"), table(&[&["c1", "1"], &["c2", "2"]]));
        assert_eq!(t.rows("SELECT post_id FROM \"like\""), table(&[&["1"]]));
        // The session as it was.
        assert!(db.is_deleted(ann) && db.contains(ann));
        for h in [boom, ok, kept] {
            assert!(db.contains(h) && !db.is_deleted(h));
        }
        assert!(db.contains(c1) && db.contains(c2) && db.contains(like));
        assert_eq!(db[like].post, Some(db[boom].id));
        assert_eq!(db[bob].name, "Bobby");
        assert!(db.is_new(carl) && db.is_new(fresh));
        assert!(db[carl].id.value().is_err());
        assert_eq!(db[ann].posts, [boom, ok]);
        assert_eq!(db[boom].comments, [c1]);
        assert_eq!(db[c2].post, db[kept].id);
        // Fixed: the retry succeeds.
        db.get_mut(block).text = "free".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM author ORDER BY id"), table(&[&["Bobby"], &["Carl"]]));
        assert_eq!(t.rows("SELECT title FROM post ORDER BY id"), table(&[&["kept"], &["fresh"]]));
        assert_eq!(t.rows("SELECT body, post_id FROM comment"), table(&[&["c2", "3"]]));
        assert_eq!(t.rows("SELECT post_id FROM \"like\""), table(&[&["NULL"]]));
        assert!(!db.contains(ann) && !db.contains(boom) && !db.contains(c1));
        assert_eq!(db[like].post, None);
        assert_eq!(db.load(kept, Post::comments)?, [c2]);
        Ok(())
    }

    fn a_unique_clash_in_a_flush_with_deletes_then_a_retry(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        db.add(Post::new("r", ann));
        let c = db.add(Comment::new("c", p));
        db.commit()?;
        db.delete(p)?;
        db.get_mut(q).title = "r".into(); // clashes with r
        assert!(db.flush().is_err());
        assert!(db.is_deleted(p) && db.contains(c));
        assert_eq!(count(t, "post"), 3);
        assert_eq!(count(t, "comment"), 1);
        db.get_mut(q).title = "q2".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT title FROM post ORDER BY id"), table(&[&["q2"], &["r"]]));
        assert_eq!(count(t, "comment"), 0);
        assert!(!db.contains(c) && !db.contains(p));
        Ok(())
    }

    fn another_program_inserts_children_before_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.commit()?;
        // A loaded collection (a new object's) misses the comment: the flush fails, and
        // changes nothing.
        t.exec("INSERT INTO comment (id, body, post_id) VALUES (100, 'theirs', 1)");
        db.delete(p)?;
        assert!(db.commit().is_err());
        assert!(db.is_deleted(p) && db.contains(p));
        assert_eq!(count(t, "post"), 1);
        assert_eq!(count(t, "comment"), 1);
        db.rollback()?;
        drop(db);
        // Unloaded collections: the cascade reads the new rows.
        let mut db = blog(t);
        let p = db.get::<Post>(Id::new(1))?.unwrap();
        let ann = db.get::<Author>(Id::new(1))?.unwrap();
        db.commit()?;
        t.exec("INSERT INTO comment (id, body, post_id) VALUES (101, 'theirs too', 1)");
        db.delete(p)?;
        db.commit()?;
        assert_eq!(count(t, "comment"), 0);
        assert!(db.get::<Comment>(Id::new(100))?.is_none());
        // A required child without a cascade: refused before any SQL.
        t.exec("INSERT INTO draft (id, text, author_id) VALUES (100, 'theirs', 1)");
        db.delete(ann)?;
        db.take_statements();
        let err = db.commit().unwrap_err();
        assert!(matches!(err, orm_core::Error::ChildrenLeft { child: "Draft", count: 1, .. }), "{err}");
        assert!(writes(&mut db).is_empty());
        db.rollback()?;
        assert!(db.contains(ann) && !db.is_deleted(ann));
        // The draft read by the cascade is in the session: deleting it too works.
        let d = db.get::<Draft>(Id::new(100))?.unwrap();
        db.delete(d)?;
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(count(t, "author") + count(t, "draft"), 0);
        Ok(())
    }

    fn another_program_deletes_a_child_of_a_loaded_collection(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let c1 = db.add(Comment::new("c1", p));
        let c2 = db.add(Comment::new("c2", p));
        let other = db.add(Author::new("other"));
        db.commit()?;
        assert_eq!(db[p].comments, [c1, c2]);
        t.exec("DELETE FROM comment WHERE body = 'c2'");
        db.get_mut(other).name = "renamed".into();
        db.delete(p)?;
        let err = db.commit().unwrap_err();
        assert!(matches!(err, orm_core::Error::StaleData { model: "Comment", .. }), "{err}");
        assert_eq!(t.rows("SELECT name FROM author ORDER BY id"), table(&[&["Ann"], &["other"]]));
        assert_eq!(t.rows("SELECT body FROM comment"), table(&[&["c1"]]));
        assert!(db.is_deleted(p) && db.contains(c1) && db.contains(c2));
        assert_eq!(db[other].name, "renamed");
        // After a rollback the session deletes what is there.
        db.rollback()?;
        drop(db);
        let mut db = blog(t);
        let p = db.get::<Post>(Id::new(1))?.unwrap();
        db.delete(p)?;
        db.commit()?;
        assert_eq!(count(t, "post") + count(t, "comment"), 0);
        Ok(())
    }

    fn delete_orphans_with_remove_and_append_sequences(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        let back = db.add(Comment::new("back", p));
        let moved = db.add(Comment::new("moved", p));
        let gone = db.add(Comment::new("gone", p));
        let twice = db.add(Comment::new("twice", p));
        let set_away = db.add(Comment::new("set_away", p));
        db.commit()?;
        db.remove(p, Post::comments, back)?;
        db.append(p, Post::comments, back)?; // back home: stays
        db.remove(p, Post::comments, moved)?;
        db.append(q, Post::comments, moved)?; // stays, under q
        db.remove(p, Post::comments, gone)?; // goes
        db.remove(p, Post::comments, twice)?;
        db.append(q, Post::comments, twice)?;
        db.remove(q, Post::comments, twice)?; // goes
        db.remove(p, Post::comments, set_away)?;
        db.set(set_away, Comment::post, q)?; // stays, under q
        db.take_statements();
        db.commit()?;
        assert_eq!(
            t.rows("SELECT body, post_id FROM comment ORDER BY id"),
            table(&[&["back", "1"], &["moved", "2"], &["set_away", "2"]])
        );
        assert!(!db.contains(gone) && !db.contains(twice));
        assert_eq!(db[p].comments, [back]);
        assert_eq!(db[q].comments, [moved, set_away]);
        // set() on the collection orphans the children left out.
        db.set(q, Post::comments, [set_away])?;
        db.commit()?;
        assert!(!db.contains(moved));
        assert_eq!(t.rows("SELECT body FROM comment ORDER BY id"), table(&[&["back"], &["set_away"]]));
        Ok(())
    }

    fn a_new_child_taken_out_of_a_delete_orphans_collection_is_not_inserted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.commit()?;
        let c = db.add(Comment::new("new", p));
        db.remove(p, Post::comments, c)?;
        db.commit()?;
        assert_eq!(count(t, "comment"), 0);
        assert!(!db.contains(c));
        Ok(())
    }

    fn deleting_twice_and_deleting_after_a_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.commit()?;
        db.delete(p)?;
        db.delete(p)?;
        db.take_statements();
        db.flush()?;
        assert_eq!(logged(&mut db, "DELETE"), [t.sql("DELETE FROM \"post\" WHERE \"id\" IN (?1)")]);
        assert!(is_invalid_handle(db.delete(p)));
        db.rollback()?;
        // A delete cancelled by a rollback before any flush.
        db.delete(p)?;
        db.rollback()?;
        assert!(!db.is_deleted(p) && db.contains(p));
        db.commit()?;
        assert_eq!(count(t, "post"), 1);
        // An object discarded by the rollback cannot be deleted.
        let fresh = db.add(Post::new("fresh", ann));
        db.rollback()?;
        assert!(is_invalid_handle(db.delete(fresh)));
        // One edited then rolled back, then deleted.
        db.get_mut(p).title = "edited".into();
        db.rollback()?;
        db.delete(p)?;
        db.commit()?;
        assert_eq!(count(t, "post"), 0);
        assert!(!db.contains(p));
        Ok(())
    }

    fn handles_of_deleted_objects_are_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        let c = db.add(Comment::new("c", p));
        let l = db.add(Like::new("l", q));
        db.commit()?;
        db.delete(p)?;
        db.commit()?;
        assert!(!db.contains(c));
        assert!(db.set(l, Like::post, p).is_err());
        assert!(is_invalid_handle(db.set(p, Post::author, ann)));
        assert!(is_invalid_handle(db.append(p, Post::comments, c)));
        assert!(is_invalid_handle(db.append(q, Post::comments, c)));
        assert!(is_invalid_handle(db.remove(p, Post::comments, c)));
        assert!(is_invalid_handle(db.load(p, Post::comments)));
        assert!(is_invalid_handle(db.load(c, Comment::post)));
        assert!(db.set(q, Post::comments, [c]).is_err());
        assert!(db.try_get_mut(p).is_none());
        assert!(db.try_get(c).is_none());
        assert_eq!(db.handle_of(db[l].post.unwrap()), Some(q));
        // Nothing was changed by the refused calls.
        db.take_statements();
        db.commit()?;
        assert!(writes(&mut db).is_empty());
        assert_eq!(db[l].post, Some(db[q].id));
        assert_eq!(db.load(q, Post::likes)?, [l]);
        Ok(())
    }

    fn a_kept_id_of_a_deleted_row_is_refused_before_any_sql(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.commit()?;
        let pid = db[p].id;
        db.delete(p)?;
        db.commit()?;
        let c = db.add(Comment::new("c", pid));
        db.take_statements();
        assert!(db.commit().is_err());
        assert!(writes(&mut db).is_empty(), "the session knows it deleted that row");
        assert!(db.is_new(c));
        Ok(())
    }

    fn get_after_delete_and_after_rollback_keeps_one_object_per_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        for i in 0..3 {
            let p = db.add(Post::new(format!("p{i}"), ann));
            db.add(Comment::new("c", p));
        }
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let ann = db.get::<Author>(Id::new(1))?.unwrap();
        db.delete(ann)?;
        assert_eq!(db.get::<Author>(Id::new(1))?, Some(ann)); // until the flush
        assert_eq!(db.all::<Author>()?, [ann]);
        db.flush()?;
        db.take_statements();
        assert_eq!(db.get::<Author>(Id::new(1))?, None);
        assert_eq!(logged(&mut db, "SELECT").len(), 1);
        assert!(db.all::<Post>()?.is_empty());
        let of_ann = Comment::post.eq(Id::<Post>::new(1));
        assert!(db.query::<Comment>().filter(of_ann).all()?.is_empty());
        db.rollback()?;
        assert!(db.contains(ann));
        assert_eq!(db.get::<Author>(Id::new(1))?, Some(ann));
        // The posts and comments the cascade read come back once each.
        let posts = db.all::<Post>()?;
        assert_eq!(posts.len(), 3);
        assert_eq!(db.load(ann, Author::posts)?, posts);
        assert_eq!(db.all::<Post>()?, posts);
        let comments = db.all::<Comment>()?;
        assert_eq!(comments.len(), 3);
        assert_eq!(db.load(posts[0], Post::comments)?, [comments[0]]);
        for (i, &p) in posts.iter().enumerate() {
            assert_eq!(db.get::<Post>(Id::new(i as i64 + 1))?, Some(p));
            assert_eq!(db[p].author, db[ann].id);
        }
        Ok(())
    }

    fn keys_of_deleted_rows_are_not_reused_by_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        db.add(Post::new("bob's", bob));
        db.add(Post::new("ann1", ann));
        db.add(Post::new("ann2", ann));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let bob = db.get::<Author>(Id::new(2))?.unwrap();
        let ann = db.get::<Author>(Id::new(1))?.unwrap();
        let bobs = db.get::<Post>(Id::new(1))?.unwrap();
        db.set(bobs, Post::author, ann)?;
        db.delete(bob)?; // the highest key, and no posts left
        db.commit()?;
        let carl = db.add(Author::new("Carl"));
        db.commit()?;
        assert_ne!(db[carl].id.value()?, 2);
        // Posts 2 and 3 read and deleted by the cascade.
        db.delete(ann)?;
        db.flush()?;
        let post = db.add(Post::new("new", carl));
        db.flush()?;
        let key = db[post].id.value()?;
        assert!(key > 3, "{key}");
        // Deleted, then brought back by rollback, another new key is still new.
        db.rollback()?;
        assert!(db.contains(ann) && !db.contains(post));
        let again = db.add(Post::new("again", ann));
        db.commit()?;
        let k2 = db[again].id.value()?;
        assert!(k2 > 3 && k2 != key, "{k2}");
        assert_eq!(count(t, "post"), 4);
        Ok(())
    }

    fn a_one_way_reference_to_a_deleted_row_is_seen_by_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Person::new("Ann", None));
        let e = db.add(Entry::new("mine", ann));
        let bob = db.add(Person::new("Bob", None));
        db.commit()?;
        // Bob's favourite is Ann's entry (no back-reference), and Bob is not edited after.
        db.get_mut(bob).favourite = Some(db[e].id);
        db.commit()?;
        db.delete(ann)?; // cascades to the entry
        db.take_statements();
        match db.commit() {
            Err(e) => {
                assert!(matches!(e, orm_core::Error::ParentDeleted { .. }), "{e}");
                assert!(writes(&mut db).is_empty());
            }
            Ok(()) => {
                assert_eq!(db[bob].favourite, None);
                assert_eq!(t.rows("SELECT favourite_id FROM person"), table(&[&["NULL"]]));
            }
        }
        Ok(())
    }

    fn a_row_the_database_deletes_for_passive_deletes_leaves_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let s = db.add(Shelf::new("s"));
        db.add(Book::new("b", s));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let s = db.get::<Shelf>(Id::new(1))?.unwrap();
        let b = db.get::<Book>(Id::new(1))?.unwrap(); // in the session, the collection not loaded
        db.delete(s)?;
        db.commit()?;
        assert_eq!(count(t, "book"), 0);
        assert_eq!(db.get::<Book>(Id::new(1))?, None, "get reads the database: no such row");
        assert!(!db.contains(b));
        Ok(())
    }

    fn a_stored_child_moved_to_a_new_parent_that_is_deleted_goes_with_it(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let q = db.add(Post::new("q", ann));
        let l = db.add(Like::new("l", q));
        db.commit()?;
        let carl = db.add(Author::new("Carl"));
        db.set(q, Post::author, carl)?;
        let nq = db.add(Post::new("nq", carl));
        db.set(l, Like::post, nq)?;
        db.delete(carl)?;
        db.commit()?;
        assert!(!db.contains(q) && !db.contains(carl) && !db.contains(nq));
        assert_eq!(count(t, "post"), 0);
        assert_eq!(t.rows("SELECT post_id FROM \"like\""), table(&[&["NULL"]]));
        assert_eq!(db[l].post, None);
        assert!(db[ann].posts.is_empty());
        Ok(())
    }

    fn a_nulled_child_read_by_the_cascade_comes_back_on_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.add(Like::new("l", p));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let p = db.get::<Post>(Id::new(1))?.unwrap();
        db.delete(p)?;
        db.flush()?;
        let l = db.get::<Like>(Id::new(1))?.unwrap();
        assert_eq!(db[l].post, None);
        db.rollback()?;
        assert!(db.contains(p));
        assert_eq!(db[l].post, Some(db[p].id));
        assert_eq!(db.load(p, Post::likes)?, [l]);
        db.commit()?;
        assert_eq!(t.rows("SELECT post_id FROM \"like\""), table(&[&["1"]]));
        Ok(())
    }

    fn a_folder_moved_out_by_a_direct_key_edit_survives_its_old_tree(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let root = db.add(Folder::new("root", None));
        let a = db.add(Folder::new("a", root));
        let x = db.add(Folder::new("x", a));
        let y = db.add(Folder::new("y", x));
        let other = db.add(Folder::new("other", None));
        db.commit()?;
        assert_eq!(db[a].children, [x]);
        db.get_mut(x).parent = Some(db[other].id);
        db.delete(root)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, parent_id FROM folder ORDER BY id"),
            table(&[&["x", "5"], &["y", "3"], &["other", "NULL"]])
        );
        assert!(db.contains(x) && db.contains(y) && !db.contains(a));
        assert_eq!(db[other].children, [x]);
        Ok(())
    }

    fn deleting_a_middle_folder_and_moving_its_parent_under_its_child(t: &TestDb) -> orm_core::Result<()> {
        // a -> b -> c; b is deleted (and c with it) while a is moved under c: a goes too.
        let mut db = blog(t);
        let a = db.add(Folder::new("a", None));
        let b = db.add(Folder::new("b", a));
        let c = db.add(Folder::new("c", b));
        let keep = db.add(Folder::new("keep", None));
        db.commit()?;
        db.set(a, Folder::parent, Some(c))?;
        db.delete(b)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM folder"), table(&[&["keep"]]));
        assert!(!db.contains(a) && !db.contains(b) && !db.contains(c) && db.contains(keep));
        Ok(())
    }

    fn a_handle_of_another_session_is_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let mut other = blog(t);
        let ann = db.add(Author::new("Ann"));
        db.commit()?;
        assert!(!other.contains(ann) && !other.is_deleted(ann));
        assert!(is_invalid_handle(other.delete(ann)));
        assert!(!db.is_deleted(ann));
        Ok(())
    }
}

backend_tests! {
    fn a_deep_unloaded_tree_costs_one_select_per_level(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let root = db.add(Folder::new("root", None));
        for i in 0..3 {
            let a = db.add(Folder::new(format!("a{i}"), root));
            for j in 0..3 {
                let b = db.add(Folder::new(format!("a{i}b{j}"), a));
                db.add(Folder::new(format!("a{i}b{j}c"), b));
            }
        }
        db.add(Folder::new("other", None));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let root = db.get::<Folder>(Id::new(1))?.unwrap();
        db.delete(root)?;
        db.take_statements();
        db.commit()?;
        let selects = logged(&mut db, "SELECT");
        // Children of the root, of 3 folders, of 9, of 9 leaves.
        assert!(selects.len() <= 4, "{selects:#?}");
        assert_eq!(t.rows("SELECT name FROM folder"), table(&[&["other"]]));
        Ok(())
    }

    fn a_failed_flush_after_an_earlier_delete_flush_then_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        let c = db.add(Comment::new("c", p));
        let l = db.add(Like::new("l", p));
        db.commit()?;
        db.delete(p)?;
        db.flush()?;
        assert!(!db.contains(p) && !db.contains(c));
        assert_eq!(db[l].post, None);
        // A second flush fails: the first one's deletes stand until the rollback.
        db.get_mut(q).title = "x".into();
        let clash = db.add(Post::new("x", ann));
        assert!(db.flush().is_err());
        assert!(!db.contains(p) && db.is_new(clash));
        assert_eq!(db[l].post, None);
        db.rollback()?;
        assert!(db.contains(p) && db.contains(c) && !db.contains(clash));
        assert_eq!(db[q].title, "q");
        assert_eq!(db[l].post, Some(db[p].id));
        assert_eq!(db.load(p, Post::comments)?, [c]);
        assert_eq!(db.load(p, Post::likes)?, [l]);
        db.commit()?;
        assert_eq!(t.rows("SELECT title FROM post ORDER BY id"), table(&[&["p"], &["q"]]));
        assert_eq!(count(t, "comment"), 1);
        Ok(())
    }

    fn a_required_child_moved_to_a_new_parent_survives_its_old_parents_delete(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let d = db.add(Draft::new("d", ann));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let ann = db.get::<Author>(Id::new(1))?.unwrap();
        let d = {
            let _ = d;
            db.get::<Draft>(Id::new(1))?.unwrap()
        };
        let carl = db.add(Author::new("Carl"));
        db.get_mut(d).author = db[carl].id; // a direct edit to a pending id
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM author"), table(&[&["Carl"]]));
        assert_eq!(t.rows("SELECT text, author_id FROM draft"), table(&[&["d", "2"]]));
        assert_eq!(db.load(carl, Author::drafts)?, [d]);
        Ok(())
    }
}

// ----- property test ------------------------------------------------------------------------

mod property {
    use super::*;
    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::{
        Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
    };
    use std::collections::{BTreeSet, HashSet};

    const POSTS: usize = 6;
    const COMMENTS: usize = 8;
    const LIKES: usize = 5;
    const ARTICLES: usize = 4;
    const LABELS: usize = 4;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        AddPost,
        AddComment(usize),
        AddLike(Option<usize>),
        DeletePost(usize),
        DeleteComment(usize),
        DeleteLike(usize),
        Rename(usize),
        /// `db.set(comment, Comment::post, post)`.
        Move(usize, usize),
        /// `db[comment].post = db[post].id`, reconciled at the flush.
        EditKey(usize, usize),
        Append(usize, usize),
        Remove(usize, usize),
        SetLike(usize, Option<usize>),
        Load(usize),
        /// Post a takes post b's title: a flush fails on the UNIQUE column and must change
        /// nothing; then a gets a fresh title.
        FailedFlush(usize, usize),
        Flush,
        Commit,
        Rollback,
        Reload,
        AddArticle,
        AddLabel,
        EditArticle(usize),
        EditLabel(usize),
        DeleteArticle(usize),
        DeleteLabel(usize),
        /// Article, label, from the label's side.
        Link(usize, usize, bool),
        Unlink(usize, usize, bool),
        /// `db.set(article, Article::labels, ..)`: the labels whose bit is set.
        SetLabels(usize, u8),
        LoadArticle(usize),
        LoadLabel(usize),
        /// Commit, then another writer bumps the version of an article (`false`) or label
        /// with plain SQL: the next flush that writes that row must fail with StaleData. Then
        /// the session edits it (1), deletes it (2) or neither (0).
        Bump(bool, usize, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = 0..POSTS;
        let c = 0..COMMENTS;
        let l = 0..LIKES;
        let a = 0..ARTICLES;
        let g = 0..LABELS;
        proptest::prop_oneof![
            1 => Just(Op::AddPost),
            2 => p.clone().prop_map(Op::AddComment),
            1 => proptest::option::of(p.clone()).prop_map(Op::AddLike),
            4 => p.clone().prop_map(Op::DeletePost),
            2 => c.clone().prop_map(Op::DeleteComment),
            1 => l.clone().prop_map(Op::DeleteLike),
            1 => p.clone().prop_map(Op::Rename),
            2 => (c.clone(), p.clone()).prop_map(|(c, p)| Op::Move(c, p)),
            1 => (c.clone(), p.clone()).prop_map(|(c, p)| Op::EditKey(c, p)),
            2 => (p.clone(), c.clone()).prop_map(|(p, c)| Op::Append(p, c)),
            2 => (p.clone(), c.clone()).prop_map(|(p, c)| Op::Remove(p, c)),
            2 => (l.clone(), proptest::option::of(p.clone())).prop_map(|(l, p)| Op::SetLike(l, p)),
            3 => p.clone().prop_map(Op::Load),
            2 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::FailedFlush(a, b)),
            3 => Just(Op::Flush),
            2 => Just(Op::Commit),
            2 => Just(Op::Rollback),
            2 => Just(Op::Reload),
            1 => Just(Op::AddArticle),
            1 => Just(Op::AddLabel),
            2 => a.clone().prop_map(Op::EditArticle),
            2 => g.clone().prop_map(Op::EditLabel),
            1 => a.clone().prop_map(Op::DeleteArticle),
            1 => g.clone().prop_map(Op::DeleteLabel),
            3 => (a.clone(), g.clone(), proptest::bool::ANY).prop_map(|(a, g, s)| Op::Link(a, g, s)),
            2 => (a.clone(), g.clone(), proptest::bool::ANY).prop_map(|(a, g, s)| Op::Unlink(a, g, s)),
            1 => (a.clone(), 0u8..16).prop_map(|(a, m)| Op::SetLabels(a, m)),
            1 => a.clone().prop_map(Op::LoadArticle),
            1 => g.clone().prop_map(Op::LoadLabel),
            3 => (proptest::bool::ANY, 0..ARTICLES.max(LABELS), 0u8..3).prop_map(|(k, i, then)| Op::Bump(k, i, then)),
        ]
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(op(), 1..=30)
    }

    /// One object of the world as the session must hold it.
    struct Obj<T> {
        h: Handle<T>,
        /// In the session (`contains`).
        live: bool,
        /// Marked with `delete` since the last flush.
        doomed: bool,
        /// Has a row (in the session's transaction).
        stored: bool,
        /// The post its key names (comments and likes).
        parent: Option<usize>,
        /// Its parent at the last commit, if it had a row then.
        at_commit: Option<Option<usize>>,
        key: Option<i64>,
        title: String,
        title_at_commit: String,
    }

    impl<T> Obj<T> {
        fn new(h: Handle<T>, parent: Option<usize>, title: String) -> Self {
            Obj {
                h,
                live: true,
                doomed: false,
                stored: false,
                parent,
                at_commit: None,
                key: None,
                title: title.clone(),
                title_at_commit: title,
            }
        }
    }

    /// A versioned object (article or label) as the session and the database must hold it.
    struct VObj<T> {
        h: Handle<T>,
        live: bool,
        doomed: bool,
        /// Has a row (in the session's transaction).
        stored: bool,
        /// Had a row at the last commit.
        at_commit: bool,
        key: Option<i64>,
        title: String,
        title_at_commit: String,
        /// Edited since the last flush (the next flush writes it).
        dirty: bool,
        /// The version the session's object holds.
        ver: i64,
        ver_at_commit: i64,
        /// The version of the committed row (another writer may have moved it on).
        db_ver: i64,
    }

    impl<T> VObj<T> {
        fn new(h: Handle<T>, title: String) -> Self {
            VObj {
                h,
                live: true,
                doomed: false,
                stored: false,
                at_commit: false,
                key: None,
                title: title.clone(),
                title_at_commit: title,
                dirty: false,
                ver: 1,
                ver_at_commit: 1,
                db_ver: 1,
            }
        }

        /// Another writer changed its row since the session read it.
        fn stale(&self) -> bool {
            self.live && self.at_commit && self.db_ver != self.ver_at_commit
        }

        /// Stale, and the next flush writes its row.
        fn writes_stale(&self) -> bool {
            self.stale() && (self.dirty || self.doomed)
        }

        fn usable(&self) -> bool {
            self.live && !self.doomed
        }
    }

    struct World<'t> {
        t: &'t TestDb,
        db: Session,
        root: Handle<Author>,
        root_key: i64,
        posts: Vec<Obj<Post>>,
        comments: Vec<Obj<Comment>>,
        likes: Vec<Obj<Like>>,
        names: usize,
        /// Keys this session has seen, per table (posts, comments, likes, articles, labels).
        seen: [HashSet<i64>; 5],
        articles: Vec<VObj<Article>>,
        labels: Vec<VObj<Label>>,
        /// (article, label) links the session holds, and those committed.
        links: BTreeSet<(usize, usize)>,
        links_at_commit: BTreeSet<(usize, usize)>,
        /// A flush succeeded since the last commit or rollback.
        wrote: bool,
    }

    type Check = Result<(), String>;

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    fn live<T>(v: &[Obj<T>], i: usize) -> Option<Handle<T>> {
        v.get(i).filter(|o| o.live).map(|o| o.h)
    }

    impl<'t> World<'t> {
        fn new(t: &'t TestDb) -> Result<World<'t>, String> {
            t.exec(
                "DELETE FROM comment; DELETE FROM \"like\"; DELETE FROM post; DELETE FROM author; \
                 DELETE FROM article_labels; DELETE FROM article; DELETE FROM label",
            );
            let mut db = t.open();
            let root = db.add(Author::new("root"));
            let mut w = World {
                t,
                db,
                root,
                root_key: 0,
                posts: Vec::new(),
                comments: Vec::new(),
                likes: Vec::new(),
                names: 0,
                seen: Default::default(),
                articles: Vec::new(),
                labels: Vec::new(),
                links: BTreeSet::new(),
                links_at_commit: BTreeSet::new(),
                wrote: false,
            };
            for op in [
                Op::AddArticle,
                Op::AddArticle,
                Op::AddLabel,
                Op::AddLabel,
                Op::Link(0, 0, false),
                Op::Link(1, 0, true),
            ] {
                w.step(op)?;
            }
            for _ in 0..3 {
                w.step(Op::AddPost)?;
            }
            for p in [0, 0, 1, 2] {
                w.step(Op::AddComment(p))?;
            }
            for p in [Some(0), Some(1), None] {
                w.step(Op::AddLike(p))?;
            }
            w.step(Op::Commit)?;
            w.step(Op::Reload)?;
            Ok(w)
        }

        fn name(&mut self) -> String {
            self.names += 1;
            format!("t{}", self.names)
        }

        fn step(&mut self, op: Op) -> Check {
            match op {
                Op::AddPost => {
                    let title = self.name();
                    let h = self.db.add(Post::new(title.clone(), self.root));
                    self.posts.push(Obj::new(h, None, title));
                }
                Op::AddComment(p) => {
                    if let Some(ph) = live(&self.posts, p) {
                        let h = self.db.add(Comment::new("c", ph));
                        self.comments.push(Obj::new(h, Some(p), String::new()));
                    }
                }
                Op::AddLike(p) => {
                    let h = match p {
                        None => self.db.add(Like::new("l", None)),
                        Some(p) => match live(&self.posts, p) {
                            Some(ph) => self.db.add(Like::new("l", ph)),
                            None => return Ok(()),
                        },
                    };
                    self.likes.push(Obj::new(h, p, String::new()));
                }
                Op::DeletePost(i) => delete(&mut self.db, &mut self.posts, i)?,
                Op::DeleteComment(i) => delete(&mut self.db, &mut self.comments, i)?,
                Op::DeleteLike(i) => delete(&mut self.db, &mut self.likes, i)?,
                Op::Rename(p) => {
                    if let Some(ph) = live(&self.posts, p) {
                        let title = self.name();
                        self.db.get_mut(ph).title = title.clone();
                        self.posts[p].title = title;
                    }
                }
                Op::Move(c, p) => {
                    if let (Some(ch), Some(ph)) = (live(&self.comments, c), live(&self.posts, p)) {
                        self.db.set(ch, Comment::post, ph).map_err(e2s)?;
                        self.comments[c].parent = Some(p);
                    }
                }
                Op::EditKey(c, p) => {
                    if let (Some(ch), Some(ph)) = (live(&self.comments, c), live(&self.posts, p)) {
                        let id = self.db[ph].id;
                        self.db.get_mut(ch).post = id;
                        self.comments[c].parent = Some(p);
                    }
                }
                Op::Append(p, c) => {
                    if let (Some(ch), Some(ph)) = (live(&self.comments, c), live(&self.posts, p)) {
                        self.db.append(ph, Post::comments, ch).map_err(e2s)?;
                        self.comments[c].parent = Some(p);
                    }
                }
                Op::Remove(p, c) => {
                    if let (Some(ch), Some(ph)) = (live(&self.comments, c), live(&self.posts, p)) {
                        let o = &self.comments[c];
                        self.db.remove(ph, Post::comments, ch).map_err(e2s)?;
                        if o.parent == Some(p) {
                            self.comments[c].parent = None;
                        }
                    }
                }
                Op::SetLike(l, p) => {
                    if let Some(lh) = live(&self.likes, l) {
                        let ph = match p {
                            None => None,
                            Some(p) => match live(&self.posts, p) {
                                Some(ph) => Some(ph),
                                None => return Ok(()),
                            },
                        };
                        self.db.set(lh, Like::post, ph).map_err(e2s)?;
                        self.likes[l].parent = p;
                    }
                }
                Op::Load(p) => {
                    if let Some(ph) = live(&self.posts, p) {
                        let got: HashSet<Handle<Comment>> = self
                            .db
                            .load(ph, Post::comments)
                            .map_err(e2s)?
                            .into_iter()
                            .collect();
                        let want: HashSet<Handle<Comment>> = self
                            .comments
                            .iter()
                            .filter(|o| o.live && o.parent == Some(p))
                            .map(|o| o.h)
                            .collect();
                        if got != want {
                            return Err(format!("post {p}'s comments: {got:?}, expected {want:?}"));
                        }
                        let got: HashSet<Handle<Like>> = self
                            .db
                            .load(ph, Post::likes)
                            .map_err(e2s)?
                            .into_iter()
                            .collect();
                        let want: HashSet<Handle<Like>> = self
                            .likes
                            .iter()
                            .filter(|o| o.live && o.parent == Some(p))
                            .map(|o| o.h)
                            .collect();
                        if got != want {
                            return Err(format!("post {p}'s likes: {got:?}, expected {want:?}"));
                        }
                    }
                }
                Op::FailedFlush(a, b) => {
                    let (Some(ah), Some(bh)) = (live(&self.posts, a), live(&self.posts, b)) else {
                        return Ok(());
                    };
                    let (pa, pb) = (&self.posts[a], &self.posts[b]);
                    // (A post deleted by this flush gives its title up before the updates.)
                    if a == b || pa.doomed || pb.doomed {
                        return Ok(());
                    }
                    let title = self.db[bh].title.clone();
                    self.db.get_mut(ah).title = title.clone();
                    self.posts[a].title = title;
                    if self.db.flush().is_ok() {
                        return Err("a flush with a UNIQUE clash succeeded".into());
                    }
                    self.check()
                        .map_err(|e| format!("after the failed flush: {e}"))?;
                    let title = self.name();
                    self.db.get_mut(ah).title = title.clone();
                    self.posts[a].title = title;
                }
                Op::Flush => {
                    if self.expect_stale() {
                        let r = self.db.flush();
                        return self.refused(r);
                    }
                    self.db.flush().map_err(e2s)?;
                    self.wrote = true;
                    self.flushed()?;
                }
                Op::Commit => {
                    if self.expect_stale() {
                        let r = self.db.commit();
                        return self.refused(r);
                    }
                    self.db.commit().map_err(e2s)?;
                    self.flushed()?;
                    self.committed()?;
                }
                Op::Rollback => {
                    self.db.rollback().map_err(e2s)?;
                    self.rolled_back();
                }
                Op::Reload => {
                    self.rolled_back();
                    self.db = self.t.open();
                    self.root = self
                        .db
                        .get::<Author>(Id::new(self.root_key))
                        .map_err(e2s)?
                        .ok_or("the root author is gone")?;
                    self.seen = Default::default();
                    reload(&mut self.db, &mut self.posts, &mut self.seen[0])?;
                    reload(&mut self.db, &mut self.comments, &mut self.seen[1])?;
                    reload(&mut self.db, &mut self.likes, &mut self.seen[2])?;
                    vreload(&mut self.db, &mut self.articles, &mut self.seen[3])?;
                    vreload(&mut self.db, &mut self.labels, &mut self.seen[4])?;
                }
                Op::AddArticle => {
                    let title = self.name();
                    let h = self.db.add(Article::new(title.clone()));
                    self.articles.push(VObj::new(h, title));
                }
                Op::AddLabel => {
                    let title = self.name();
                    let h = self.db.add(Label::new(title.clone()));
                    self.labels.push(VObj::new(h, title));
                }
                Op::EditArticle(a) => {
                    if self.articles.get(a).is_some_and(VObj::usable) {
                        let title = self.name();
                        let o = &mut self.articles[a];
                        self.db.get_mut(o.h).title = title.clone();
                        o.title = title;
                        o.dirty = true;
                    }
                }
                Op::EditLabel(g) => {
                    if self.labels.get(g).is_some_and(VObj::usable) {
                        let title = self.name();
                        let o = &mut self.labels[g];
                        self.db.get_mut(o.h).name = title.clone();
                        o.title = title;
                        o.dirty = true;
                    }
                }
                Op::DeleteArticle(a) => vdelete(&mut self.db, &mut self.articles, a)?,
                Op::DeleteLabel(g) => vdelete(&mut self.db, &mut self.labels, g)?,
                Op::Link(a, g, from_label) | Op::Unlink(a, g, from_label) => {
                    let (Some(ao), Some(go)) = (self.articles.get(a), self.labels.get(g)) else {
                        return self.check();
                    };
                    if !ao.usable() || !go.usable() {
                        return self.check();
                    }
                    let (ah, gh) = (ao.h, go.h);
                    if matches!(op, Op::Link(..)) {
                        if from_label {
                            self.db.append(gh, Label::articles, ah).map_err(e2s)?;
                        } else {
                            self.db.append(ah, Article::labels, gh).map_err(e2s)?;
                        }
                        self.links.insert((a, g));
                    } else if self.links.contains(&(a, g)) {
                        if from_label {
                            self.db.remove(gh, Label::articles, ah).map_err(e2s)?;
                        } else {
                            self.db.remove(ah, Article::labels, gh).map_err(e2s)?;
                        }
                        self.links.remove(&(a, g));
                    }
                }
                Op::SetLabels(a, mask) => {
                    let Some(ao) = self.articles.get(a) else {
                        return self.check();
                    };
                    if !ao.usable() || self.labels.iter().any(|o| o.live && o.doomed) {
                        return self.check();
                    }
                    let chosen: Vec<usize> = (0..self.labels.len().min(8))
                        .filter(|&g| mask & (1 << g) != 0 && self.labels[g].live)
                        .collect();
                    let hs: Vec<Handle<Label>> = chosen.iter().map(|&g| self.labels[g].h).collect();
                    self.db.set(ao.h, Article::labels, hs).map_err(e2s)?;
                    self.links.retain(|&(x, _)| x != a);
                    self.links.extend(chosen.into_iter().map(|g| (a, g)));
                }
                Op::LoadArticle(a) => {
                    if self.articles.get(a).is_some_and(VObj::usable) {
                        let got: HashSet<Handle<Label>> = self
                            .db
                            .load(self.articles[a].h, Article::labels)
                            .map_err(e2s)?
                            .into_iter()
                            .collect();
                        if !self.any_doomed() {
                            let want: HashSet<Handle<Label>> = self
                                .links
                                .iter()
                                .filter(|l| l.0 == a)
                                .map(|l| self.labels[l.1].h)
                                .collect();
                            if got != want {
                                return Err(format!(
                                    "article {a}'s labels: {got:?}, expected {want:?}"
                                ));
                            }
                        }
                    }
                }
                Op::LoadLabel(g) => {
                    if self.labels.get(g).is_some_and(VObj::usable) {
                        let got: HashSet<Handle<Article>> = self
                            .db
                            .load(self.labels[g].h, Label::articles)
                            .map_err(e2s)?
                            .into_iter()
                            .collect();
                        if !self.any_doomed() {
                            let want: HashSet<Handle<Article>> = self
                                .links
                                .iter()
                                .filter(|l| l.1 == g)
                                .map(|l| self.articles[l.0].h)
                                .collect();
                            if got != want {
                                return Err(format!(
                                    "label {g}'s articles: {got:?}, expected {want:?}"
                                ));
                            }
                        }
                    }
                }
                Op::Bump(label, i, then) => {
                    // The program commits and waits; another writer changes the row meanwhile.
                    self.step(Op::Commit)?;
                    self.db.commit().map_err(e2s)?;
                    let (table, o) = if label {
                        let Some(o) = self.labels.get_mut(i) else {
                            return self.check();
                        };
                        ("label", (o.live, o.key, &mut o.db_ver))
                    } else {
                        let Some(o) = self.articles.get_mut(i) else {
                            return self.check();
                        };
                        ("article", (o.live, o.key, &mut o.db_ver))
                    };
                    if let (true, Some(k)) = (o.0, o.1) {
                        self.t.exec(&format!(
                            "UPDATE {table} SET version = version + 1 WHERE id = {k}"
                        ));
                        *o.2 += 1;
                    }
                    self.check()?;
                    return match (then, label) {
                        (1, false) => self.step(Op::EditArticle(i)),
                        (1, true) => self.step(Op::EditLabel(i)),
                        (2, false) => self.step(Op::DeleteArticle(i)),
                        (2, true) => self.step(Op::DeleteLabel(i)),
                        _ => Ok(()),
                    };
                }
            }
            self.check()
        }

        /// What a successful flush did, in the model.
        fn flushed(&mut self) -> Check {
            let gone: Vec<bool> = self.posts.iter().map(|o| o.live && o.doomed).collect();
            for o in &mut self.comments {
                let goes = o.live
                    && (o.doomed
                        || match o.parent {
                            Some(p) => gone[p],
                            None => o.stored,
                        });
                settle(o, goes);
            }
            for o in &mut self.likes {
                let goes = o.live && o.doomed;
                if o.live && !goes && o.parent.is_some_and(|p| gone[p]) {
                    o.parent = None;
                }
                settle(o, goes);
            }
            for o in &mut self.posts {
                let goes = o.live && o.doomed;
                settle(o, goes);
            }
            keys(&self.db, &mut self.posts, &mut self.seen[0], "post")?;
            keys(&self.db, &mut self.comments, &mut self.seen[1], "comment")?;
            keys(&self.db, &mut self.likes, &mut self.seen[2], "like")?;
            for o in self.articles.iter_mut() {
                vsettle(o);
            }
            for o in self.labels.iter_mut() {
                vsettle(o);
            }
            let (articles, labels) = (&self.articles, &self.labels);
            self.links
                .retain(|&(a, g)| articles[a].live && labels[g].live);
            vkeys(&self.db, &mut self.articles, &mut self.seen[3], "article")?;
            vkeys(&self.db, &mut self.labels, &mut self.seen[4], "label")?;
            // Every row the session reads is one of the live objects, once.
            same("posts", &self.db.all::<Post>().map_err(e2s)?, &self.posts)?;
            same(
                "comments",
                &self.db.all::<Comment>().map_err(e2s)?,
                &self.comments,
            )?;
            same("likes", &self.db.all::<Like>().map_err(e2s)?, &self.likes)?;
            vsame(
                "articles",
                &self.db.all::<Article>().map_err(e2s)?,
                &self.articles,
            )?;
            vsame(
                "labels",
                &self.db.all::<Label>().map_err(e2s)?,
                &self.labels,
            )?;
            Ok(())
        }

        /// Whether the next flush writes a row another writer changed (so must fail).
        fn expect_stale(&self) -> bool {
            self.articles.iter().any(VObj::writes_stale)
                || self.labels.iter().any(VObj::writes_stale)
        }

        fn any_doomed(&self) -> bool {
            self.articles.iter().any(|o| o.live && o.doomed)
                || self.labels.iter().any(|o| o.live && o.doomed)
        }

        /// A flush that writes a stale row: refused with StaleData, the session and the
        /// database unchanged; then rollback, the stale rows read again, and commit.
        fn refused(&mut self, r: orm_core::Result<()>) -> Check {
            match r {
                Err(orm_core::Error::StaleData { model, .. })
                    if model == "Article" || model == "Label" => {}
                Ok(()) => return Err("a flush writing a stale row succeeded".into()),
                Err(e) => return Err(format!("expected StaleData, got {e}")),
            }
            self.check()
                .map_err(|e| format!("after the refused flush: {e}"))?;
            if !self.wrote {
                self.db_matches()
                    .map_err(|e| format!("after the refused flush: {e}"))?;
            }
            self.db.rollback().map_err(e2s)?;
            self.rolled_back();
            for o in self.articles.iter_mut().filter(|o| o.stale()) {
                self.db.refresh(o.h).map_err(e2s)?;
                (o.ver, o.ver_at_commit) = (o.db_ver, o.db_ver);
            }
            for o in self.labels.iter_mut().filter(|o| o.stale()) {
                self.db.refresh(o.h).map_err(e2s)?;
                (o.ver, o.ver_at_commit) = (o.db_ver, o.db_ver);
            }
            self.step(Op::Commit)
        }

        /// The committed rows of articles, labels and their links, as the model has them.
        fn db_matches(&self) -> Check {
            fn rows<T>(objs: &[VObj<T>]) -> Vec<Vec<String>> {
                let mut want: Vec<(i64, Vec<String>)> = objs
                    .iter()
                    .filter(|o| o.at_commit)
                    .map(|o| {
                        let k = o.key.expect("a committed row has a key");
                        (
                            k,
                            vec![
                                k.to_string(),
                                o.title_at_commit.clone(),
                                o.db_ver.to_string(),
                            ],
                        )
                    })
                    .collect();
                want.sort_by_key(|r| r.0);
                want.into_iter().map(|r| r.1).collect()
            }
            for (table, col, want) in [
                ("article", "title", rows(&self.articles)),
                ("label", "name", rows(&self.labels)),
            ] {
                let got = self.t.rows(&format!(
                    "SELECT id, {col}, version FROM {table} ORDER BY id"
                ));
                if got != want {
                    return Err(format!("{table} rows {got:?}, expected {want:?}"));
                }
            }
            let mut want: Vec<(i64, i64)> = self
                .links_at_commit
                .iter()
                .map(|&(a, g)| (self.articles[a].key.unwrap(), self.labels[g].key.unwrap()))
                .collect();
            want.sort_unstable();
            let want: Vec<Vec<String>> = want
                .into_iter()
                .map(|(a, g)| vec![a.to_string(), g.to_string()])
                .collect();
            let got = self.t.rows(
                "SELECT article_id, label_id FROM article_labels ORDER BY article_id, label_id",
            );
            if got != want {
                return Err(format!("article_labels rows {got:?}, expected {want:?}"));
            }
            Ok(())
        }

        fn committed(&mut self) -> Check {
            self.wrote = false;
            for o in self.articles.iter_mut() {
                vcommitted(o);
            }
            for o in self.labels.iter_mut() {
                vcommitted(o);
            }
            self.links_at_commit = self.links.clone();
            self.db_matches()?;
            self.root_key = self.db[self.root].id.value().map_err(e2s)?;
            for o in &mut self.posts {
                o.at_commit = o.live.then_some(None);
                o.title_at_commit = o.title.clone();
            }
            for o in &mut self.comments {
                o.at_commit = o.live.then_some(o.parent);
            }
            for o in &mut self.likes {
                o.at_commit = o.live.then_some(o.parent);
            }
            let pkey = |p: Option<usize>| {
                p.map_or("NULL".to_owned(), |p| {
                    self.posts[p].key.unwrap().to_string()
                })
            };
            let mut want: Vec<Vec<String>> = self
                .posts
                .iter()
                .filter(|o| o.live)
                .map(|o| vec![o.key.unwrap().to_string(), o.title.clone()])
                .collect();
            want.sort_by_key(|r| r[0].parse::<i64>().unwrap());
            let got = self.t.rows("SELECT id, title FROM post ORDER BY id");
            if got != want {
                return Err(format!("post rows {got:?}, expected {want:?}"));
            }
            let rows = |objs: Vec<(bool, Option<i64>, Option<usize>)>| {
                objs.into_iter()
                    .filter(|o| o.0)
                    .map(|o| vec![o.1.unwrap().to_string(), pkey(o.2)])
                    .collect::<Vec<_>>()
            };
            let comments = rows(
                self.comments
                    .iter()
                    .map(|o| (o.live, o.key, o.parent))
                    .collect(),
            );
            let likes = rows(
                self.likes
                    .iter()
                    .map(|o| (o.live, o.key, o.parent))
                    .collect(),
            );
            for (table, mut want) in [("comment", comments), ("\"like\"", likes)] {
                want.sort_by_key(|r| r[0].parse::<i64>().unwrap());
                let got = self
                    .t
                    .rows(&format!("SELECT id, post_id FROM {table} ORDER BY id"));
                if got != want {
                    return Err(format!("{table} rows {got:?}, expected {want:?}"));
                }
            }
            Ok(())
        }

        fn rolled_back(&mut self) {
            for o in &mut self.posts {
                restore(o);
                o.title = o.title_at_commit.clone();
            }
            self.comments.iter_mut().for_each(restore);
            self.likes.iter_mut().for_each(restore);
            self.articles.iter_mut().for_each(vrestore);
            self.labels.iter_mut().for_each(vrestore);
            self.links = self.links_at_commit.clone();
            self.wrote = false;
        }

        fn check(&self) -> Check {
            let db = &self.db;
            status(db, "post", &self.posts)?;
            status(db, "comment", &self.comments)?;
            status(db, "like", &self.likes)?;
            for (i, o) in self.articles.iter().enumerate() {
                vstatus(db, "article", i, o)?;
                if o.live && (db[o.h].title != o.title || db[o.h].version != o.ver) {
                    return Err(format!(
                        "article {i}: ({:?}, version {}), expected ({:?}, version {})",
                        db[o.h].title, db[o.h].version, o.title, o.ver
                    ));
                }
            }
            for (i, o) in self.labels.iter().enumerate() {
                vstatus(db, "label", i, o)?;
                if o.live && (db[o.h].name != o.title || i64::from(db[o.h].version) != o.ver) {
                    return Err(format!(
                        "label {i}: ({:?}, version {}), expected ({:?}, version {})",
                        db[o.h].name, db[o.h].version, o.title, o.ver
                    ));
                }
            }
            for (i, o) in self.posts.iter().enumerate().filter(|(_, o)| o.live) {
                if db[o.h].title != o.title {
                    return Err(format!(
                        "post {i} title {:?}, expected {:?}",
                        db[o.h].title, o.title
                    ));
                }
            }
            for (i, o) in self.comments.iter().enumerate().filter(|(_, o)| o.live) {
                let id = db[o.h].post;
                let ok = match o.parent {
                    None => id.is_unset(),
                    Some(p) => db.handle_of(id) == Some(self.posts[p].h),
                };
                if !ok {
                    return Err(format!(
                        "comment {i}.post is {id:?}, expected post {:?}",
                        o.parent
                    ));
                }
            }
            for (i, o) in self.likes.iter().enumerate().filter(|(_, o)| o.live) {
                let id = db[o.h].post;
                let ok = match (id, o.parent) {
                    (None, None) => true,
                    (Some(id), Some(p)) => db.handle_of(id) == Some(self.posts[p].h),
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "like {i}.post is {id:?}, expected post {:?}",
                        o.parent
                    ));
                }
            }
            Ok(())
        }
    }

    fn delete<T: Model>(db: &mut Session, objs: &mut [Obj<T>], i: usize) -> Check {
        let Some(o) = objs.get_mut(i) else {
            return Ok(());
        };
        if o.live {
            db.delete(o.h).map_err(e2s)?;
            o.doomed = true;
        } else if !is_invalid_handle(db.delete(o.h)) {
            return Err(format!(
                "deleting {} #{i}, gone, was not refused",
                T::META.name
            ));
        }
        Ok(())
    }

    fn vdelete<T: Model>(db: &mut Session, objs: &mut [VObj<T>], i: usize) -> Check {
        let Some(o) = objs.get_mut(i) else {
            return Ok(());
        };
        if o.live {
            db.delete(o.h).map_err(e2s)?;
            o.doomed = true;
        } else if !is_invalid_handle(db.delete(o.h)) {
            return Err(format!(
                "deleting {} #{i}, gone, was not refused",
                T::META.name
            ));
        }
        Ok(())
    }

    /// What a successful flush did to a versioned object: an edited stored row has the
    /// version read plus one.
    fn vsettle<T>(o: &mut VObj<T>) {
        if o.live && o.doomed {
            o.live = false;
        } else if o.live {
            if o.stored && o.dirty {
                o.ver += 1;
            }
            o.stored = true;
        }
        o.doomed = false;
        o.dirty = false;
    }

    fn vcommitted<T>(o: &mut VObj<T>) {
        // A row another writer changed and this session did not write keeps their version.
        if !o.stale() {
            o.db_ver = o.ver;
        }
        o.at_commit = o.live;
        o.title_at_commit = o.title.clone();
        o.ver_at_commit = o.ver;
    }

    fn vrestore<T>(o: &mut VObj<T>) {
        o.doomed = false;
        o.dirty = false;
        if o.at_commit {
            o.live = true;
            o.stored = true;
            o.title = o.title_at_commit.clone();
            o.ver = o.ver_at_commit;
        } else {
            o.live = false;
        }
    }

    fn vkeys<T: Model>(
        db: &Session,
        objs: &mut [VObj<T>],
        seen: &mut HashSet<i64>,
        what: &str,
    ) -> Check {
        for (i, o) in objs.iter_mut().enumerate() {
            if o.live && o.key.is_none() {
                let id: Id<T> = db.id(o.h);
                let k = id.value().map_err(e2s)?;
                if !seen.insert(k) {
                    return Err(format!(
                        "new {what} {i} got key {k}, a key the session had seen"
                    ));
                }
                o.key = Some(k);
            }
        }
        Ok(())
    }

    fn vreload<T: Model>(db: &mut Session, objs: &mut [VObj<T>], seen: &mut HashSet<i64>) -> Check
    where
        T::Key: From<Id<T>>,
    {
        for (i, o) in objs.iter_mut().enumerate().filter(|(_, o)| o.live) {
            let k = o.key.expect("a committed object has a key");
            o.h = db
                .get::<T>(Id::<T>::new(k))
                .map_err(e2s)?
                .ok_or_else(|| format!("{} #{i} (key {k}) is not in the database", T::META.name))?;
            seen.insert(k);
            // Read now: the version the row holds.
            (o.ver, o.ver_at_commit) = (o.db_ver, o.db_ver);
        }
        Ok(())
    }

    fn vsame<T: Model>(what: &str, rows: &[Handle<T>], objs: &[VObj<T>]) -> Check {
        let set: HashSet<Handle<T>> = rows.iter().copied().collect();
        let want: HashSet<Handle<T>> = objs.iter().filter(|o| o.live).map(|o| o.h).collect();
        if set.len() != rows.len() || set != want {
            return Err(format!("all {what}: {rows:?}, expected {want:?}"));
        }
        Ok(())
    }

    fn vstatus<T: Model>(db: &Session, what: &str, i: usize, o: &VObj<T>) -> Check {
        if db.contains(o.h) != o.live {
            return Err(format!(
                "{what} {i}: contains is {}, expected {}",
                !o.live, o.live
            ));
        }
        if db.is_deleted(o.h) != (o.live && o.doomed) {
            return Err(format!(
                "{what} {i}: is_deleted is {}",
                !(o.live && o.doomed)
            ));
        }
        Ok(())
    }

    fn settle<T>(o: &mut Obj<T>, goes: bool) {
        if goes {
            o.live = false;
        } else if o.live {
            o.stored = true;
        }
        o.doomed = false;
    }

    fn restore<T>(o: &mut Obj<T>) {
        o.doomed = false;
        match o.at_commit {
            Some(parent) => {
                o.live = true;
                o.stored = true;
                o.parent = parent;
            }
            None => o.live = false,
        }
    }

    /// The keys of newly stored objects: never one the session has seen.
    fn keys<T: Model>(
        db: &Session,
        objs: &mut [Obj<T>],
        seen: &mut HashSet<i64>,
        what: &str,
    ) -> Check {
        for (i, o) in objs.iter_mut().enumerate() {
            if o.live && o.key.is_none() {
                let id: Id<T> = db.id(o.h);
                let k = id.value().map_err(e2s)?;
                if !seen.insert(k) {
                    return Err(format!(
                        "new {what} {i} got key {k}, a key the session had seen"
                    ));
                }
                o.key = Some(k);
            }
        }
        Ok(())
    }

    fn reload<T: Model>(db: &mut Session, objs: &mut [Obj<T>], seen: &mut HashSet<i64>) -> Check
    where
        T::Key: From<Id<T>>,
    {
        for (i, o) in objs.iter_mut().enumerate().filter(|(_, o)| o.live) {
            let k = o.key.expect("a committed object has a key");
            o.h = db
                .get::<T>(Id::<T>::new(k))
                .map_err(e2s)?
                .ok_or_else(|| format!("{} #{i} (key {k}) is not in the database", T::META.name))?;
            seen.insert(k);
        }
        Ok(())
    }

    fn same<T: Model>(what: &str, rows: &[Handle<T>], objs: &[Obj<T>]) -> Check {
        let got: Vec<Handle<T>> = rows.to_vec();
        let set: HashSet<Handle<T>> = got.iter().copied().collect();
        let want: HashSet<Handle<T>> = objs.iter().filter(|o| o.live).map(|o| o.h).collect();
        if set.len() != got.len() || set != want {
            return Err(format!("all {what}: {got:?}, expected {want:?}"));
        }
        Ok(())
    }

    fn status<T: Model>(db: &Session, what: &str, objs: &[Obj<T>]) -> Check {
        for (i, o) in objs.iter().enumerate() {
            if db.contains(o.h) != o.live {
                return Err(format!(
                    "{what} {i}: contains is {}, expected {}",
                    !o.live, o.live
                ));
            }
            if db.is_deleted(o.h) != (o.live && o.doomed) {
                return Err(format!(
                    "{what} {i}: is_deleted is {}",
                    !(o.live && o.doomed)
                ));
            }
        }
        Ok(())
    }

    fn run_case(t: &TestDb, ops: &[Op]) -> Check {
        let mut w = World::new(t).map_err(|e| format!("setup: {e}"))?;
        for (i, &op) in ops.iter().enumerate() {
            w.step(op)
                .map_err(|e| format!("step {} ({op:?}): {e}", i + 1))?;
        }
        Ok(())
    }

    fn property(t: &TestDb, cases: u32) {
        drop(blog(t));
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases);
        let config = Config {
            cases,
            max_shrink_iters: 500,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        match runner.run(&ops(), |ops| run_case(t, &ops).map_err(TestCaseError::fail)) {
            Ok(()) => {}
            Err(TestError::Fail(reason, ops)) => {
                panic!(
                    "minimal failing sequence ({:?}):\n{ops:#?}\n{reason}",
                    t.backend()
                )
            }
            Err(TestError::Abort(reason)) => panic!("property test aborted: {reason}"),
        }
    }

    mod deletes_rule {
        use super::*;

        #[test]
        fn sqlite() {
            property(&TestDb::sqlite(), 128);
        }

        #[test]
        fn postgres() {
            if let Some(t) = TestDb::postgres() {
                property(&t, 128);
            }
        }
    }
}

backend_tests! {
    fn rollback_restores_the_loaded_collection_of_a_deleted_parent(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let c1 = db.add(Comment::new("c1", p));
        db.commit()?;
        assert_eq!(db[p].comments, [c1]);
        let c2 = db.add(Comment::new("c2", p));
        let c3 = db.add(Comment::new("c3", p));
        db.flush()?; // c2 and c3 stored in this transaction
        db.remove(p, Post::comments, c1)?; // orphaned
        db.delete(c3)?;
        db.delete(p)?;
        db.flush()?;
        assert!(!db.contains(p) && !db.contains(c1) && !db.contains(c2) && !db.contains(c3));
        db.rollback()?;
        assert!(db.contains(p) && db.contains(c1) && !db.contains(c2) && !db.contains(c3));
        assert_eq!(db[p].comments, [c1]);
        assert_eq!(db[c1].post, db[p].id);
        assert_eq!(db[ann].posts.as_slice(), [p]);
        db.commit()?;
        assert_eq!(count(t, "comment"), 1);
        Ok(())
    }

    fn natural_keys_deleted_and_added_again(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Country,)>()?;
        db.log_statements(true);
        let fr = db.add(Country::new("FR", "France", Some(1)));
        db.commit()?;
        // Deleted and added again in one flush: done, or refused before any SQL.
        db.delete(fr)?;
        let fr2 = db.add(Country::new("FR", "France 2", Some(2)));
        db.take_statements();
        match db.flush() {
            Ok(()) => {
                assert!(!db.contains(fr) && db.contains(fr2));
                assert_eq!(db.get::<Country>("FR".to_owned())?, Some(fr2));
            }
            Err(e) => {
                assert!(writes(&mut db).is_empty(), "{e}");
                db.rollback()?;
            }
        }
        db.rollback()?;
        assert!(db.contains(fr) && !db.contains(fr2));
        // Deleted by one flush, added again by the next, then rolled back.
        db.delete(fr)?;
        db.flush()?;
        assert_eq!(db.get::<Country>("FR".to_owned())?, None);
        let fr3 = db.add(Country::new("FR", "France 3", Some(3)));
        db.flush()?;
        assert_eq!(db.get::<Country>("FR".to_owned())?, Some(fr3));
        db.rollback()?;
        assert!(db.contains(fr) && !db.contains(fr3));
        assert_eq!(db.get::<Country>("FR".to_owned())?, Some(fr));
        assert_eq!(db[fr].name, "France");
        // And committed.
        db.delete(fr)?;
        db.flush()?;
        let fr4 = db.add(Country::new("FR", "France 4", Some(4)));
        db.commit()?;
        assert_eq!(db.get::<Country>("FR".to_owned())?, Some(fr4));
        assert_eq!(t.rows("SELECT code, name FROM country"), table(&[&["FR", "France 4"]]));
        Ok(())
    }
}

backend_tests! {
    fn an_object_whose_key_was_edited_is_deleted_by_its_stored_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        db.commit()?;
        db.get_mut(ann).id = Id::new(99);
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT id, name FROM author"), table(&[&["2", "Bob"]]));
        assert!(!db.contains(ann) && db.contains(bob));
        assert_eq!(db.get::<Author>(Id::new(1))?, None);
        assert_eq!(db.get::<Author>(Id::new(99))?, None);
        let carl = db.add(Author::new("Carl"));
        db.commit()?;
        assert_ne!(db[carl].id.value()?, 1);
        Ok(())
    }

    fn an_orphan_made_by_a_direct_key_edit_goes(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let c = db.add(Comment::new("c", p));
        let keep = db.add(Comment::new("keep", p));
        db.commit()?;
        db.get_mut(c).post = Id::unset();
        db.commit()?;
        assert!(!db.contains(c));
        assert_eq!(db[p].comments, [keep]);
        assert_eq!(t.rows("SELECT body FROM comment"), table(&[&["keep"]]));
        Ok(())
    }
}
