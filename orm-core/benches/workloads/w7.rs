//! W7: 1,000 posts, each linked to 5 of 50 tags through an association table, written in one
//! commit, then read back with their tags (in a fresh session), against hand-written
//! rusqlite and `postgres` code: prepared statements, one row per INSERT, the keys read back
//! as they come; the read is the posts, then the tags joined to the links.

use super::*;
use std::collections::HashMap;

#[derive(Model, Debug)]
#[model(table = "w7_post")]
pub(super) struct Post {
    #[key]
    id: Id<Post>,
    title: String,
    #[has_many(through = "w7_post_tag", back_populates = "posts")]
    tags: HasMany<Tag>,
}

#[derive(Model, Debug)]
#[model(table = "w7_tag")]
pub(super) struct Tag {
    #[key]
    id: Id<Tag>,
    label: String,
    #[has_many(through = "w7_post_tag", back_populates = "tags")]
    posts: HasMany<Post>,
}

const POSTS: usize = 1_000;
const TAGS: usize = 50;
const PER_POST: usize = 5;

fn title(p: usize) -> String {
    format!("post {p}")
}

fn label(t: usize) -> String {
    format!("tag {t}")
}

/// The `k`th tag of post `p` (five distinct tags per post).
fn tag_of(p: usize, k: usize) -> usize {
    (p * 7 + k * 11) % TAGS
}

const POSTS_SQL: &str = "SELECT id, title FROM w7_post ORDER BY id";
const LINKED_SQL: &str = "SELECT pt.post_id, t.id, t.label FROM w7_tag t \
     JOIN w7_post_tag pt ON pt.tag_id = t.id ORDER BY t.id";

/// What either side reads: each post's title and its tags' labels.
type Loaded = Vec<(String, Vec<String>)>;

/// Every post has its five tags.
fn check(loaded: &Loaded) {
    assert_eq!(loaded.len(), POSTS);
    for (p, (t, tags)) in loaded.iter().enumerate() {
        assert_eq!(*t, title(p));
        let mut got = tags.clone();
        got.sort();
        let mut want: Vec<String> = (0..PER_POST).map(|k| label(tag_of(p, k))).collect();
        want.sort();
        assert_eq!(got, want, "post {p}");
    }
}

/// A SQLite database with W7's tables.
pub(super) fn sqlite_db() -> TempDb {
    let t = TempDb::new();
    Session::open(&t.path)
        .unwrap()
        .create_all::<(Post, Tag)>()
        .unwrap();
    t
}

pub(super) fn orm_write(db: &mut Session) -> Duration {
    let start = Instant::now();
    let tags: Vec<Handle<Tag>> = (0..TAGS).map(|t| db.add(Tag::new(label(t)))).collect();
    for p in 0..POSTS {
        let post = db.add(Post::new(title(p)));
        for k in 0..PER_POST {
            db.append(post, Post::tags, tags[tag_of(p, k)]).unwrap();
        }
    }
    db.commit().unwrap();
    start.elapsed()
}

pub(super) fn orm_read(db: &mut Session) -> Duration {
    let start = Instant::now();
    let posts = db.query::<Post>().with(Post::tags).all().unwrap();
    let time = start.elapsed();
    let loaded: Loaded = posts
        .iter()
        .map(|&p| {
            let tags = db[p].tags.iter().map(|&t| db[t].label.clone()).collect();
            (db[p].title.clone(), tags)
        })
        .collect();
    check(&loaded);
    time
}

/// W7 through the session on a fresh database: the write, then the read in a new session.
pub(super) fn orm(conn: impl Fn() -> Session) -> (Duration, Duration) {
    let write = orm_write(&mut conn());
    (write, orm_read(&mut conn()))
}

pub(super) fn raw_write(c: &mut rusqlite::Connection) -> Duration {
    let start = Instant::now();
    let tx = c.transaction().unwrap();
    {
        let mut tag = tx
            .prepare_cached("INSERT INTO w7_tag (label) VALUES (?1)")
            .unwrap();
        let mut post = tx
            .prepare_cached("INSERT INTO w7_post (title) VALUES (?1)")
            .unwrap();
        let mut link = tx
            .prepare_cached("INSERT INTO w7_post_tag (post_id, tag_id) VALUES (?1, ?2)")
            .unwrap();
        let mut tags = Vec::with_capacity(TAGS);
        for t in 0..TAGS {
            tag.execute([label(t)]).unwrap();
            tags.push(tx.last_insert_rowid());
        }
        for p in 0..POSTS {
            post.execute([title(p)]).unwrap();
            let id = tx.last_insert_rowid();
            for k in 0..PER_POST {
                link.execute([id, tags[tag_of(p, k)]]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    start.elapsed()
}

/// Posts by key, and where each is in the result.
fn posts_by_key(rows: impl Iterator<Item = (i64, String)>) -> (Loaded, HashMap<i64, usize>) {
    let mut loaded = Vec::new();
    let mut at = HashMap::new();
    for (id, title) in rows {
        at.insert(id, loaded.len());
        loaded.push((title, Vec::new()));
    }
    (loaded, at)
}

pub(super) fn raw_read(c: &rusqlite::Connection) -> Duration {
    let start = Instant::now();
    let mut stmt = c.prepare_cached(POSTS_SQL).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap);
    let (mut loaded, at) = posts_by_key(rows);
    let mut labels: HashMap<i64, String> = HashMap::new();
    let mut stmt = c.prepare_cached(LINKED_SQL).unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let (post, tag): (i64, i64) = (r.get(0).unwrap(), r.get(1).unwrap());
        let label = match labels.get(&tag) {
            Some(l) => l.clone(),
            None => {
                let l: String = r.get(2).unwrap();
                labels.insert(tag, l.clone());
                l
            }
        };
        loaded[at[&post]].1.push(label);
    }
    let time = start.elapsed();
    check(&loaded);
    time
}

/// W7 by hand on a fresh SQLite database.
pub(super) fn raw(t: &TempDb) -> (Duration, Duration) {
    let mut c = raw_connection(&t.path);
    let write = raw_write(&mut c);
    (write, raw_read(&raw_connection(&t.path)))
}

/// W7 on SQLite: the write and read apart, and together.
pub(super) fn run_sqlite(rounds: usize) {
    let (mut raw_times, mut orm_times) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw_times.push(raw(&sqlite_db()));
        let t = sqlite_db();
        orm_times.push(orm(|| Session::open(&t.path).unwrap()));
    }
    report(&raw_times, &orm_times);
}

/// The times of one round: the write, then the read.
type Round = (Duration, Duration);

/// A part of a round's time.
type Part = fn(&Round) -> Duration;

/// Prints the medians of the write, the read and both, and their ratios.
pub(super) fn report(raw: &[Round], orm: &[Round]) {
    let parts: [(&str, Part); 3] = [
        ("W7 1,000 posts × 5 of 50 tags: write", |t| t.0),
        ("W7 read back with their tags", |t| t.1),
        ("W7 write + read", |t| t.0 + t.1),
    ];
    for (name, part) in parts {
        let (r, o) = (
            median(raw.iter().map(part).collect()),
            median(orm.iter().map(part).collect()),
        );
        println!(
            "{name:<34} raw {:>11}   orm {:>11}   orm/raw {:.2}",
            ms(r),
            ms(o),
            o.as_secs_f64() / r.as_secs_f64()
        );
    }
}

/// W7 by hand on PostgreSQL.
pub(super) fn pg_raw(c: &mut postgres::Client) -> (Duration, Duration) {
    let start = Instant::now();
    let mut tx = c.transaction().unwrap();
    let tag = tx
        .prepare("INSERT INTO w7_tag (label) VALUES ($1) RETURNING id")
        .unwrap();
    let post = tx
        .prepare("INSERT INTO w7_post (title) VALUES ($1) RETURNING id")
        .unwrap();
    let link = tx
        .prepare("INSERT INTO w7_post_tag (post_id, tag_id) VALUES ($1, $2)")
        .unwrap();
    let tags: Vec<i64> = (0..TAGS)
        .map(|t| tx.query_one(&tag, &[&label(t)]).unwrap().get(0))
        .collect();
    for p in 0..POSTS {
        let id: i64 = tx.query_one(&post, &[&title(p)]).unwrap().get(0);
        for k in 0..PER_POST {
            tx.execute(&link, &[&id, &tags[tag_of(p, k)]]).unwrap();
        }
    }
    tx.commit().unwrap();
    let write = start.elapsed();
    let start = Instant::now();
    let rows = c.query(POSTS_SQL, &[]).unwrap();
    let (mut loaded, at) = posts_by_key(rows.iter().map(|r| (r.get(0), r.get(1))));
    let mut labels: HashMap<i64, String> = HashMap::new();
    for r in c.query(LINKED_SQL, &[]).unwrap() {
        let (post, tag): (i64, i64) = (r.get(0), r.get(1));
        let label = labels.entry(tag).or_insert_with(|| r.get(2)).clone();
        loaded[at[&post]].1.push(label);
    }
    let read = start.elapsed();
    check(&loaded);
    (write, read)
}
