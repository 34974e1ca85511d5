//! Eager loading: the relationships of a query's rows in one `SELECT` per relationship and
//! level, nested, matched through the identity map; counted statement by statement.

use orm_core::prelude::*;
use orm_tests::*;

/// An author of posts, with one optional bio.
#[derive(Model, Debug)]
pub struct Author {
    #[key]
    pub id: Id<Author>,
    pub name: String,
    #[has_many(back_populates = "author")]
    pub posts: HasMany<Post>,
    #[has_one(back_populates = "author")]
    pub bio: HasOne<Bio>,
}

/// A post.
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    pub title: String,
    #[belongs_to(back_populates = "posts")]
    pub author: Id<Author>,
    #[has_many(back_populates = "post")]
    pub comments: HasMany<Comment>,
}

/// A comment on a post.
#[derive(Model, Debug)]
pub struct Comment {
    #[key]
    pub id: Id<Comment>,
    pub body: String,
    #[belongs_to(back_populates = "comments")]
    pub post: Id<Post>,
}

/// The bio of an author.
#[derive(Model, Debug)]
pub struct Bio {
    #[key]
    pub id: Id<Bio>,
    pub text: String,
    #[belongs_to(back_populates = "bio")]
    pub author: Option<Id<Author>>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Author, Post, Comment, Bio)>()
        .expect("create tables");
    db
}

/// `authors` authors with `posts` posts each and `comments` comments a post; every third
/// author has a bio.
fn seed(t: &TestDb, authors: usize, posts: usize, comments: usize) -> orm_core::Result<()> {
    let mut db = session(t);
    for a in 0..authors {
        let author = db.add(Author::new(format!("author {a}")));
        if a % 3 == 0 {
            db.add(Bio::new(format!("bio {a}"), author));
        }
        for p in 0..posts {
            let post = db.add(Post::new(format!("post {a}.{p}"), author));
            for c in 0..comments {
                db.add(Comment::new(format!("comment {a}.{p}.{c}"), post));
            }
        }
    }
    db.commit()
}

/// The SELECTs logged since the last call.
fn selects(db: &mut Session) -> Vec<String> {
    db.take_statements()
        .into_iter()
        .map(|s| s.sql)
        .filter(|s| s.starts_with("SELECT"))
        .collect()
}

/// Every author's posts' comments, as the session has them loaded, as
/// `author/post/comment` lines; and the same read by plain SQL.
fn tree(db: &mut Session, authors: &[Handle<Author>]) -> orm_core::Result<Vec<String>> {
    let mut out = Vec::new();
    for &a in authors {
        for p in db.load(a, Author::posts)? {
            for c in db.load(p, Post::comments)? {
                out.push(format!("{}/{}/{}", db[a].name, db[p].title, db[c].body));
            }
        }
    }
    Ok(out)
}

fn sql_tree(t: &TestDb) -> Vec<String> {
    t.rows(
        "SELECT a.name, p.title, c.body FROM author a JOIN post p ON p.author_id = a.id \
         JOIN comment c ON c.post_id = p.id ORDER BY a.id, p.id, c.id",
    )
    .into_iter()
    .map(|r| r.join("/"))
    .collect()
}

backend_tests! {
    fn a_thousand_authors_with_posts_and_comments_is_three_selects(t: &TestDb) -> orm_core::Result<()> {
        seed(t, 1000, 3, 2)?;
        let mut db = session(t);
        db.log_statements(true);
        let authors = db
            .query::<Author>()
            .with(Author::posts.with(Post::comments))
            .all()?;
        let s = selects(&mut db);
        assert_eq!(s.len(), 3, "{:#?}", s.iter().map(|s| &s[..60]).collect::<Vec<_>>());
        assert_eq!(authors.len(), 1000);
        // Every collection is loaded: walking the tree reads nothing more.
        let walked = tree(&mut db, &authors)?;
        assert!(db.take_statements().is_empty());
        assert_eq!(walked, sql_tree(t));
        assert_eq!(walked.len(), 6000);
        Ok(())
    }

    fn belongs_to_and_has_one_load_eagerly_too(t: &TestDb) -> orm_core::Result<()> {
        seed(t, 30, 2, 1)?;
        let mut db = session(t);
        db.log_statements(true);
        let comments = db
            .query::<Comment>()
            .with(Comment::post.with(Post::author.with(Author::bio)))
            .all()?;
        assert_eq!(selects(&mut db).len(), 4);
        let mut lines = Vec::new();
        for c in comments {
            let p = db.load(c, Comment::post)?.expect("a post");
            let a = db.load(p, Post::author)?.expect("an author");
            let bio = db.load(a, Author::bio)?.map(|b| db[b].text.clone());
            lines.push(format!("{}|{}|{}", db[c].body, db[a].name, bio.unwrap_or("NULL".into())));
        }
        assert!(db.take_statements().is_empty(), "everything was loaded");
        let expected: Vec<String> = t
            .rows(
                "SELECT c.body, a.name, COALESCE(b.text, 'NULL') FROM comment c \
                 JOIN post p ON p.id = c.post_id JOIN author a ON a.id = p.author_id \
                 LEFT JOIN bio b ON b.author_id = a.id ORDER BY c.id",
            )
            .into_iter()
            .map(|r| r.join("|"))
            .collect();
        assert_eq!(lines, expected);
        Ok(())
    }

    fn rows_already_in_the_session_are_matched_never_duplicated(t: &TestDb) -> orm_core::Result<()> {
        seed(t, 3, 2, 1)?;
        let mut db = session(t);
        // Held before the query, with edits not flushed.
        let p1 = db.get::<Post>(Id::new(1))?.expect("post 1");
        db[p1].title = "edited".into();
        // Post 2 moves from author 1 to author 2 in the session only.
        let a2 = db.get::<Author>(Id::new(2))?.expect("author 2");
        let p2 = db.get::<Post>(Id::new(2))?.expect("post 2");
        db.set(p2, Post::author, a2)?;
        // A new post of author 1, not flushed.
        let a1 = db.get::<Author>(Id::new(1))?.expect("author 1");
        let fresh = db.add(Post::new("fresh", a1));
        let authors = db
            .query::<Author>()
            .autoflush(false)
            .with(Author::posts)
            .all()?;
        assert_eq!(authors[..2], [a1, a2]);
        assert_eq!(db[a1].posts, [p1, fresh]);
        assert_eq!(db[p1].title, "edited");
        assert!(db[a2].posts.contains(p2));
        assert_eq!(db[a2].posts.len(), 3);
        // Each row is one object: loading again finds the same handles.
        let again = db.query::<Post>().autoflush(false).all()?;
        assert_eq!(again.len(), 6);
        assert!(again.contains(&p1) && again.contains(&p2));
        // With autoflush, the move is written and the database agrees.
        let authors = db.query::<Author>().with(Author::posts).all()?;
        assert_eq!(db[authors[1]].posts.len(), 3);
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM post WHERE author_id = 2"), 3);
        Ok(())
    }

    fn more_parents_than_one_statement_binds_are_read_in_chunks(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Author::new("many"));
        let posts: Vec<_> = (0..20_000).map(|i| db.add(Post::new(format!("p{i}"), a))).collect();
        db.add(Comment::new("last", posts[19_999]));
        db.add(Comment::new("first", posts[0]));
        db.commit()?;
        let mut db = session(t);
        db.log_statements(true);
        // A filter: the comments are read by the posts' keys (without one, the whole table
        // is read in one statement).
        let posts = db
            .query::<Post>()
            .filter(Post::title.ne(""))
            .with(Post::comments)
            .all()?;
        let s = selects(&mut db);
        assert!(s[1].contains(" IN ("), "{}", &s[1][..80]);
        // One for the posts, then the comments in chunks under the parameter limit.
        let chunks = if t.backend() == Backend::Sqlite { 2 } else { 1 };
        assert_eq!(s.len(), 1 + chunks);
        assert_eq!(posts.len(), 20_000);
        let with_comments: Vec<String> = posts
            .iter()
            .filter(|&&p| !db[p].comments.is_empty())
            .map(|&p| db[p].title.clone())
            .collect();
        assert_eq!(with_comments, ["p0", "p19999"]);
        Ok(())
    }
}
