//! Deleting objects: the flush deletes children before parents, in batches; cascades per
//! relationship (`cascade_delete`, `delete_orphans`, `passive_deletes`), keys set to `NULL`
//! where nothing cascades, an error before any SQL where a required key would be left
//! pointing at a deleted row, `ON DELETE` clauses in the DDL, and cycles among deleted rows.

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

/// A gadget a widget may point at.
#[derive(Model, Debug)]
pub struct Gadget {
    #[key]
    pub id: Id<Gadget>,
    pub name: String,
}

/// A widget whose favourite gadget is written by an UPDATE after the inserts, and cleared by
/// one before the deletes.
#[derive(Model, Debug)]
pub struct Widget {
    #[key]
    pub id: Id<Widget>,
    pub name: String,
    #[belongs_to(post_update)]
    pub favourite: Option<Id<Gadget>>,
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
    Gadget,
    Widget,
);

fn blog(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<Blog>().expect("create tables");
    db.log_statements(true);
    db
}

/// A committed author with `posts` posts of `comments` comments each; the author's key.
fn seed(db: &mut Session, name: &str, posts: usize, comments: usize) -> orm_core::Result<i64> {
    let a = db.add(Author::new(name));
    for p in 0..posts {
        let post = db.add(Post::new(format!("{name}-{p}"), a));
        for c in 0..comments {
            db.add(Comment::new(format!("c{c}"), post));
        }
    }
    db.commit()?;
    db[a].id.value()
}

/// The statements logged since the last call that start with `prefix`.
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

backend_tests! {
    fn a_deleted_object_leaves_the_database_and_the_session(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        db.commit()?;
        let key = db[ann].id.value()?;
        db.delete(ann)?;
        // Until the flush, still there and readable.
        assert!(db.is_deleted(ann) && db.contains(ann));
        assert_eq!(db[ann].name, "Ann");
        db.take_statements();
        db.commit()?;
        assert_eq!(
            logged(&mut db, "DELETE"),
            [t.sql("DELETE FROM \"author\" WHERE \"id\" IN (?1)")]
        );
        assert!(!db.contains(ann) && !db.is_deleted(ann));
        assert!(db.try_get(ann).is_none());
        assert!(db.contains(bob));
        assert_eq!(t.rows("SELECT name FROM author"), table(&[&["Bob"]]));
        // A later get reads the database again: nothing there.
        assert_eq!(db.get::<Author>(Id::new(key))?, None);
        assert_eq!(logged(&mut db, "SELECT").len(), 1);
        // The handle is refused where a live one is needed.
        assert!(matches!(db.delete(ann), Err(orm_core::Error::InvalidHandle { .. })));
        Ok(())
    }

    fn an_object_deleted_before_its_first_flush_is_never_inserted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let post = db.add(Post::new("p", ann));
        let keep = db.add(Author::new("Keep"));
        db.delete(ann)?; // cascades to the new post too
        db.take_statements();
        db.commit()?;
        assert_eq!(
            logged(&mut db, "INSERT"),
            [t.sql("INSERT INTO \"author\" (\"id\", \"name\") VALUES (?1, ?2)")]
        );
        assert!(!db.contains(ann) && !db.contains(post) && db.contains(keep));
        assert_eq!(count(t, "author"), 1);
        assert_eq!(count(t, "post"), 0);
        Ok(())
    }

    fn cascade_delete_reads_unloaded_children_once_per_relationship_and_deletes_children_first(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = seed(&mut db, "ann", 3, 2)?;
        let bob = seed(&mut db, "bob", 1, 1)?;
        drop(db);
        let mut db = blog(t);
        let a = db.get::<Author>(Id::new(ann))?.expect("ann");
        db.delete(a)?;
        db.take_statements();
        db.commit()?;
        let statements: Vec<String> = db.take_statements().into_iter().map(|s| s.sql).collect();
        let selects: Vec<&String> = statements.iter().filter(|s| s.starts_with("SELECT")).collect();
        // Posts of the author, likes of the posts, drafts of the author. The comments (which
        // the session holds none of, and from which nothing cascades) are deleted by their
        // post's key, without being read.
        assert_eq!(selects.len(), 3, "{selects:#?}");
        assert!(!selects.iter().any(|s| s.contains("\"comment\"")), "{selects:#?}");
        let deletes: Vec<&String> = statements.iter().filter(|s| s.starts_with("DELETE")).collect();
        assert_eq!(
            deletes,
            [
                &t.sql("DELETE FROM \"comment\" WHERE \"post_id\" IN (?1, ?2, ?3, ?4)"),
                &t.sql("DELETE FROM \"post\" WHERE \"id\" IN (?1, ?2, ?3, ?4)"),
                &t.sql("DELETE FROM \"author\" WHERE \"id\" IN (?1)"),
            ]
        );
        assert_eq!(t.rows("SELECT name FROM author"), table(&[&["bob"]]));
        assert_eq!(t.rows("SELECT title FROM post"), table(&[&["bob-0"]]));
        assert_eq!(count(t, "comment"), 1);
        assert!(db.get::<Author>(Id::new(bob))?.is_some());
        Ok(())
    }

    fn deletes_go_in_batches_of_at_most_1024_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        seed(&mut db, "ann", 1, 1500)?;
        drop(db);
        let mut db = blog(t);
        let posts = db.all::<Post>()?;
        // The comments are in the session, so they are deleted by their own keys.
        assert_eq!(db.all::<Comment>()?.len(), 1500);
        db.delete(posts[0])?;
        db.take_statements();
        db.commit()?;
        let deletes = logged(&mut db, "DELETE");
        // 1,024 comments, then 476 in a statement of 512 keys, then the post.
        assert_eq!(deletes.len(), 3, "{:?}", deletes.iter().map(|s| s.len()).collect::<Vec<_>>());
        assert!(deletes[0].starts_with("DELETE FROM \"comment\"") && deletes[0].contains("1024)"));
        assert!(deletes[1].contains("512)"));
        assert_eq!(count(t, "comment"), 0);
        assert_eq!(count(t, "post"), 0);
        assert_eq!(count(t, "author"), 1);
        Ok(())
    }

    fn without_a_cascade_a_nullable_key_is_set_to_null(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let post = db.add(Post::new("p", ann));
        let other = db.add(Post::new("q", ann));
        let l1 = db.add(Like::new("x", post));
        let l2 = db.add(Like::new("y", other));
        db.commit()?;
        let l3 = db.add(Like::new("z", post)); // new, inserted with NULL
        db.delete(post)?;
        db.commit()?;
        assert_eq!(db[l1].post, None);
        assert_eq!(db[l3].post, None);
        assert_eq!(db[l2].post, Some(db[other].id));
        assert_eq!(
            t.rows("SELECT who, post_id FROM \"like\" ORDER BY id"),
            table(&[&["x", "NULL"], &["y", "2"], &["z", "NULL"]])
        );
        // The likes left the deleted post's collection and nothing points at it.
        assert_eq!(db.load(other, Post::likes)?, [l2]);
        Ok(())
    }

    fn a_required_key_left_pointing_at_a_deleted_parent_is_an_error_before_any_sql(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let bob = db.add(Author::new("Bob"));
        let d = db.add(Draft::new("d", ann));
        db.commit()?;
        db.delete(ann)?;
        db.take_statements();
        let err = db.commit().unwrap_err();
        assert!(
            matches!(
                err,
                orm_core::Error::ChildrenLeft { parent: "Author", child: "Draft", field: "author", count: 1, .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("cascade_delete"), "{err}");
        assert!(logged(&mut db, "DELETE").is_empty());
        assert_eq!(count(t, "author"), 2);
        // The session is as it was: the author is still to be deleted.
        assert!(db.is_deleted(ann) && db.contains(ann));
        // Giving the draft another author fixes it.
        db.set(d, Draft::author, bob)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM author"), table(&[&["Bob"]]));
        assert_eq!(t.rows("SELECT text, author_id FROM draft"), table(&[&["d", "2"]]));
        Ok(())
    }

    fn a_child_moved_to_another_parent_survives_the_old_parents_cascade(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        db.add(Author::new("Bob"));
        db.add(Post::new("p", ann));
        db.add(Post::new("q", ann));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let ann = db.get::<Author>(Id::new(1))?.expect("ann");
        let bob_h = db.get::<Author>(Id::new(2))?.expect("bob");
        let q = db.get::<Post>(Id::new(2))?.expect("q");
        // Moved away through the session (the collection of ann is not loaded).
        db.set(q, Post::author, bob_h)?;
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT title, author_id FROM post"), table(&[&["q", "2"]]));
        assert!(db.contains(q));
        Ok(())
    }

    fn delete_orphans_deletes_a_child_taken_out_of_its_collection_unless_it_finds_another_parent(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let q = db.add(Post::new("q", ann));
        let c1 = db.add(Comment::new("c1", p));
        let c2 = db.add(Comment::new("c2", p));
        db.commit()?;
        db.remove(p, Post::comments, c1)?;
        db.remove(p, Post::comments, c2)?;
        db.append(q, Post::comments, c2)?; // re-parented before the flush
        db.commit()?;
        assert!(!db.contains(c1));
        assert_eq!(t.rows("SELECT body, post_id FROM comment"), table(&[&["c2", "2"]]));
        assert_eq!(db[q].comments, [c2]);
        assert!(db[p].comments.is_empty());
        Ok(())
    }

    fn passive_deletes_leave_unloaded_children_to_the_database(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let s = db.add(Shelf::new("s"));
        db.add(Book::new("b1", s));
        db.add(Book::new("b2", s));
        let keep = db.add(Shelf::new("keep"));
        db.add(Book::new("b3", keep));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let s = db.get::<Shelf>(Id::new(1))?.expect("shelf");
        db.delete(s)?;
        db.take_statements();
        db.commit()?;
        let statements: Vec<String> = db.take_statements().into_iter().map(|s| s.sql).collect();
        assert!(
            !statements.iter().any(|s| s.starts_with("SELECT") && s.contains("\"book\"")),
            "{statements:#?}"
        );
        assert_eq!(t.rows("SELECT title FROM book"), table(&[&["b3"]]));
        // Loaded children are still deleted by the session.
        let keep = db.get::<Shelf>(Id::new(2))?.expect("keep");
        let books = db.load(keep, Shelf::books)?;
        db.delete(keep)?;
        db.commit()?;
        assert!(!db.contains(books[0]));
        assert_eq!(count(t, "book"), 0);
        Ok(())
    }

    fn on_delete_clauses_are_in_the_schema(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        db.add(Like::new("x", p));
        db.add(Comment::new("c", p));
        let bob = db.add(Author::new("Bob"));
        db.add(Draft::new("d", bob));
        db.commit()?;
        let mut raw = t.raw();
        // RESTRICT: a draft keeps its author.
        assert!(raw.exec("DELETE FROM author WHERE name = 'Bob'").is_err());
        // No action: a comment keeps its post.
        assert!(raw.exec("DELETE FROM post").is_err());
        raw.exec("DELETE FROM comment").expect("delete comments");
        // CASCADE from author to post, SET NULL from post to like.
        raw.exec("DELETE FROM author WHERE name = 'Ann'").expect("delete ann");
        assert_eq!(count(t, "post"), 0);
        assert_eq!(t.rows("SELECT who, post_id FROM \"like\""), table(&[&["x", "NULL"]]));
        Ok(())
    }

    fn a_tree_is_deleted_leaves_first(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let root = db.add(Folder::new("root", None));
        let a = db.add(Folder::new("a", root));
        let b = db.add(Folder::new("b", root));
        let a1 = db.add(Folder::new("a1", a));
        db.add(Folder::new("a1x", a1));
        db.add(Folder::new("b1", b));
        let other = db.add(Folder::new("other", None));
        db.commit()?;
        drop(db);
        let mut db = blog(t);
        let root = db.get::<Folder>(Id::new(1))?.expect("root");
        db.delete(root)?;
        db.commit()?;
        assert_eq!(t.rows("SELECT name FROM folder"), table(&[&["other"]]));
        let _ = other;
        Ok(())
    }

    fn rows_that_reference_each_other_are_deleted_after_clearing_the_nullable_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Person::new("Ann", None));
        let e = db.add(Entry::new("mine", ann));
        db.get_mut(ann).favourite = Some(db[e].id);
        // A folder that is its own parent.
        let selfish = db.add(Folder::new("me", None));
        db.commit()?;
        db.get_mut(selfish).parent = Some(db[selfish].id);
        db.commit()?;
        db.delete(ann)?;
        db.delete(selfish)?;
        db.take_statements();
        db.commit()?;
        let writes = writes(&mut db);
        let mut sorted = writes.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                t.sql("DELETE FROM \"entry\" WHERE \"id\" IN (?1)"),
                t.sql("DELETE FROM \"folder\" WHERE \"id\" IN (?1)"),
                t.sql("DELETE FROM \"person\" WHERE \"id\" IN (?1)"),
                t.sql("UPDATE \"folder\" SET \"parent_id\" = ?1 WHERE \"id\" = ?2"),
                t.sql("UPDATE \"person\" SET \"favourite_id\" = ?1 WHERE \"id\" = ?2"),
            ]
        );
        assert_eq!(writes.len(), 5, "{writes:#?}");
        let pos = |s: &str| writes.iter().position(|w| w.contains(s)).unwrap();
        assert!(pos("UPDATE \"person\"") < pos("DELETE FROM \"entry\""));
        assert!(pos("DELETE FROM \"entry\"") < pos("DELETE FROM \"person\""));
        assert!(pos("UPDATE \"folder\"") < pos("DELETE FROM \"folder\""));
        assert_eq!(count(t, "person") + count(t, "entry") + count(t, "folder"), 0);
        Ok(())
    }

    fn post_update_inserts_the_key_null_and_sets_it_after_and_clears_it_before_deletes(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let g = db.add(Gadget::new("g"));
        let w = db.add(Widget::new("w", g));
        db.take_statements();
        db.commit()?;
        let statements: Vec<(String, Vec<orm_core::Value>)> = db
            .take_statements()
            .into_iter()
            .filter(|s| s.sql.starts_with("INSERT") || s.sql.starts_with("UPDATE"))
            .map(|s| (s.sql, s.params))
            .collect();
        assert_eq!(statements.len(), 3, "{statements:#?}");
        assert!(statements[0].0.contains("\"gadget\""));
        assert!(statements[1].0.contains("\"widget\""));
        assert_eq!(statements[1].1[2], orm_core::Value::Null);
        assert_eq!(
            statements[2].0,
            t.sql("UPDATE \"widget\" SET \"favourite_id\" = ?1 WHERE \"id\" = ?2")
        );
        assert_eq!(t.rows("SELECT name, favourite_id FROM widget"), table(&[&["w", "1"]]));
        db.delete(w)?;
        db.delete(g)?;
        db.commit()?;
        let w = writes(&mut db);
        assert!(w[0].starts_with("UPDATE \"widget\""), "{w:#?}");
        assert_eq!(count(t, "widget") + count(t, "gadget"), 0);
        Ok(())
    }

    fn rollback_brings_deleted_objects_back(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let p = db.add(Post::new("p", ann));
        let like = db.add(Like::new("x", p));
        db.commit()?;
        db.get_mut(ann).name = "edited".into();
        db.delete(ann)?;
        db.delete(p)?;
        db.flush()?;
        assert!(!db.contains(ann) && !db.contains(p));
        assert_eq!(db[like].post, None);
        db.rollback()?;
        assert!(db.contains(ann) && db.contains(p));
        assert_eq!(db[ann].name, "Ann");
        assert_eq!(db[like].post, Some(db[p].id));
        assert_eq!(db.get::<Author>(db[ann].id)?, Some(ann));
        assert_eq!(count(t, "author"), 1);
        assert_eq!(db.load(p, Post::likes)?, [like]);
        // And they can be deleted again.
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(count(t, "author") + count(t, "post"), 0);
        assert_eq!(t.rows("SELECT who, post_id FROM \"like\""), table(&[&["x", "NULL"]]));
        Ok(())
    }

    fn a_failed_flush_keeps_the_deletes_to_do(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        db.add(Post::new("gone", ann));
        let bob = db.add(Author::new("Bob"));
        db.add(Post::new("taken", bob));
        db.commit()?;
        db.delete(ann)?;
        let clash = db.add(Post::new("taken", bob)); // UNIQUE clash with a post that stays
        assert!(db.flush().is_err());
        assert_eq!(count(t, "author"), 2);
        assert_eq!(count(t, "post"), 2);
        assert!(db.is_deleted(ann) && db.contains(ann));
        db.get_mut(clash).title = "fresh".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT title FROM post ORDER BY id"), table(&[&["taken"], &["fresh"]]));
        Ok(())
    }

    fn a_new_row_can_take_a_unique_value_a_deleted_row_gives_up(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        let old = db.add(Post::new("hello", ann));
        db.commit()?;
        db.delete(old)?;
        db.add(Post::new("hello", ann));
        db.take_statements();
        db.commit()?;
        let w = writes(&mut db);
        assert!(w[0].starts_with("DELETE") && w[1].starts_with("INSERT"), "{w:#?}");
        assert_eq!(t.rows("SELECT id, title FROM post"), table(&[&["2", "hello"]]));
        Ok(())
    }

    fn deleting_a_row_another_program_deleted_is_stale_data(t: &TestDb) -> orm_core::Result<()> {
        let mut db = blog(t);
        let ann = db.add(Author::new("Ann"));
        db.commit()?;
        t.exec("DELETE FROM author");
        db.delete(ann)?;
        let err = db.commit().unwrap_err();
        assert!(matches!(err, orm_core::Error::StaleData { model: "Author", .. }), "{err}");
        Ok(())
    }
}
