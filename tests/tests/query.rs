//! Queries: typed filters, order, limit and offset, counting, autoflush and the identity map;
//! each result compared with what plain SQL reads from the same rows.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A writer of posts.
#[derive(Model, Debug)]
pub struct Writer {
    #[key]
    pub id: Id<Writer>,
    pub name: String,
    #[has_many(back_populates = "writer")]
    pub posts: HasMany<Entry>,
}

/// A post, with a nullable subtitle and an optional editor.
#[derive(Model, Debug)]
pub struct Entry {
    #[key]
    pub id: Id<Entry>,
    pub title: String,
    pub stars: i32,
    pub subtitle: Option<String>,
    #[belongs_to(back_populates = "posts")]
    pub writer: Id<Writer>,
    #[belongs_to]
    pub editor: Option<Id<Writer>>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Writer, Entry)>().expect("create tables");
    db
}

/// Ann (posts a, b, c) and Bob (posts d, e), committed; ids 1.. in that order.
fn seed(db: &mut Session) -> orm_core::Result<()> {
    let ann = db.add(Writer::new("Ann"));
    let bob = db.add(Writer::new("Bob"));
    for (title, stars, subtitle, writer) in [
        ("a", 5, Some("first"), ann),
        ("b", 1, None, ann),
        ("c", 9, Some("third"), ann),
        ("d", 5, None, bob),
        ("e", 7, Some("fifth"), bob),
    ] {
        let mut e = Entry::new(title, stars, subtitle.map(String::from), writer, None);
        if title == "e" {
            e.editor = Some(db[ann].id);
        }
        db.add(e);
    }
    db.commit()
}

fn titles(db: &Session, found: &[Handle<Entry>]) -> Vec<String> {
    found.iter().map(|&h| db[h].title.clone()).collect()
}

/// The titles plain SQL finds with `condition`, in key order.
fn sql_titles(t: &TestDb, condition: &str) -> Vec<String> {
    t.rows(&format!(
        "SELECT title FROM entry WHERE {condition} ORDER BY id"
    ))
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

backend_tests! {
    fn every_comparison_finds_what_sql_finds(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let ann = db.query::<Writer>().filter(Writer::name.eq("Ann")).one()?;
        let cases: Vec<(Filter<Entry>, &str)> = vec![
            (Entry::stars.eq(5), "stars = 5"),
            (Entry::stars.ne(5), "stars <> 5"),
            (Entry::stars.lt(5), "stars < 5"),
            (Entry::stars.le(5), "stars <= 5"),
            (Entry::stars.gt(5), "stars > 5"),
            (Entry::stars.ge(5), "stars >= 5"),
            (Entry::stars.between(2, 7), "stars BETWEEN 2 AND 7"),
            (Entry::title.is_in(["a", "e", "zz"]), "title IN ('a', 'e', 'zz')"),
            (Entry::title.is_in(Vec::<String>::new()), "1 = 0"),
            (Entry::subtitle.is_null(), "subtitle IS NULL"),
            (Entry::subtitle.is_not_null(), "subtitle IS NOT NULL"),
            (Entry::subtitle.eq(None), "subtitle IS NULL"),
            (Entry::subtitle.eq("third"), "subtitle = 'third'"),
            (Entry::subtitle.like("fi%"), "subtitle LIKE 'fi%'"),
            (Entry::title.like("_"), "title LIKE '_'"),
            (Entry::writer.eq(ann), "writer_id = 1"),
            (Entry::writer.ne(ann), "writer_id <> 1"),
            (Entry::writer.is_in([Id::<Writer>::new(2)]), "writer_id IN (2)"),
            (Entry::editor.is_null(), "editor_id IS NULL"),
            (Entry::editor.eq(None::<Id<Writer>>), "editor_id IS NULL"),
            (Entry::editor.eq(ann), "editor_id = 1"),
            (Entry::id.gt(Id::new(3)), "id > 3"),
            (
                Entry::stars.ge(5).and(Entry::writer.eq(ann)),
                "stars >= 5 AND writer_id = 1",
            ),
            (Entry::stars.lt(2) | Entry::title.eq("e"), "stars < 2 OR title = 'e'"),
            (!Entry::stars.eq(5), "NOT (stars = 5)"),
            (
                Filter::all([Entry::stars.gt(1), Entry::stars.lt(9), Entry::subtitle.is_not_null()]),
                "stars > 1 AND stars < 9 AND subtitle IS NOT NULL",
            ),
            (Filter::any([]), "1 = 0"),
            (Filter::all([]), "1 = 1"),
        ];
        for (filter, sql) in cases {
            let shown = format!("{filter:?}");
            let found = db.query::<Entry>().filter(filter).all()?;
            assert_eq!(titles(&db, &found), sql_titles(t, sql), "{sql} / {shown}");
        }
        // Filters given one after the other must all hold.
        let found = db
            .query::<Entry>()
            .filter(Entry::stars.ge(5))
            .filter(Entry::subtitle.is_not_null())
            .all()?;
        assert_eq!(titles(&db, &found), sql_titles(t, "stars >= 5 AND subtitle IS NOT NULL"));
        Ok(())
    }

    fn order_limit_offset_count_exists_first_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let found = db
            .query::<Entry>()
            .order_by(Entry::stars.desc())
            .order_by(Entry::title)
            .all()?;
        let expected: Vec<String> = t
            .rows("SELECT title FROM entry ORDER BY stars DESC, title")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(titles(&db, &found), expected);
        let page = db
            .query::<Entry>()
            .order_by(Entry::title.desc())
            .limit(2)
            .offset(1)
            .all()?;
        assert_eq!(titles(&db, &page), ["d", "c"]);
        let rest = db.query::<Entry>().offset(3).all()?;
        assert_eq!(titles(&db, &rest), ["d", "e"]);
        assert_eq!(db.query::<Entry>().count()?, 5);
        assert_eq!(db.query::<Entry>().filter(Entry::stars.eq(5)).count()?, 2);
        assert_eq!(db.query::<Entry>().limit(3).count()?, 3);
        assert_eq!(db.query::<Entry>().offset(4).count()?, 1);
        assert_eq!(db.query::<Entry>().offset(9).count()?, 0);
        assert!(db.query::<Entry>().filter(Entry::title.eq("c")).exists()?);
        assert!(!db.query::<Entry>().filter(Entry::title.eq("z")).exists()?);
        assert!(!db.query::<Entry>().offset(5).exists()?);
        assert!(!db.query::<Entry>().limit(0).exists()?);
        let top = db.query::<Entry>().order_by(Entry::stars.desc()).first()?;
        assert_eq!(top.map(|h| db[h].title.clone()).as_deref(), Some("c"));
        assert_eq!(db.query::<Entry>().filter(Entry::stars.gt(100)).first()?, None);
        let c = db.query::<Entry>().filter(Entry::title.eq("c")).one()?;
        assert_eq!(db[c].stars, 9);
        let none = db.query::<Entry>().filter(Entry::stars.gt(100)).one().unwrap_err();
        assert!(matches!(none, Error::NotOne { model: "Entry", found: 0 }), "{none}");
        let many = db.query::<Entry>().filter(Entry::stars.eq(5)).one().unwrap_err();
        assert!(matches!(many, Error::NotOne { found: 2, .. }), "{many}");
        assert!(many.to_string().contains("more than one"), "{many}");
        Ok(())
    }

    fn results_go_through_the_identity_map_and_keep_edits(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let a = db.get::<Entry>(Id::new(1))?.expect("entry 1");
        db[a].stars = 100;
        // Without autoflush the edit stays in the object, and the row still says 5.
        let found = db
            .query::<Entry>()
            .autoflush(false)
            .filter(Entry::stars.eq(5))
            .all()?;
        assert_eq!(found[0], a, "the row already held is the same object");
        assert_eq!(db[a].stars, 100, "loading again must not overwrite the edit");
        // With autoflush (the default) the query sees the edit.
        let found = db.query::<Entry>().filter(Entry::stars.eq(100)).all()?;
        assert_eq!(found, [a]);
        assert_eq!(t.count("SELECT count(*) FROM entry WHERE stars = 100"), 0, "not committed");
        db.rollback()?;
        assert_eq!(db[a].stars, 5);
        Ok(())
    }

    fn autoflush_finds_new_objects_and_resolves_pending_ids(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let cy = db.add(Writer::new("Cy"));
        let f = db.add(Entry::new("f", 3, None, cy, None));
        // A pending handle in a filter, without autoflush, names no stored row yet.
        let e = db
            .query::<Entry>()
            .autoflush(false)
            .filter(Entry::writer.eq(cy))
            .all()
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { model: "Writer" }), "{e}");
        assert!(db.is_new(f));
        let found = db.query::<Entry>().filter(Entry::writer.eq(cy)).all()?;
        assert_eq!(found, [f]);
        assert!(!db.is_new(f), "the query flushed first");
        // An id copied before the flush works too.
        let copied = db[f].writer;
        assert_eq!(db.query::<Entry>().filter(Entry::writer.eq(copied)).count()?, 1);
        // The session-wide switch.
        db.set_autoflush(false);
        db.add(Entry::new("g", 3, None, cy, None));
        assert_eq!(db.query::<Entry>().filter(Entry::title.eq("g")).count()?, 0);
        db.set_autoflush(true);
        assert_eq!(db.query::<Entry>().filter(Entry::title.eq("g")).count()?, 1);
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM entry WHERE writer_id = 3"), 2);
        Ok(())
    }

    fn hostile_values_are_bound_never_spliced(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let hostile = "a' OR '1'='1";
        db.add(Entry::new(hostile, 1, Some("%_\\".to_owned()), Id::new(1), None));
        assert_eq!(db.query::<Entry>().filter(Entry::title.eq(hostile)).count()?, 1);
        assert_eq!(db.query::<Entry>().filter(Entry::title.like(hostile)).count()?, 1);
        assert_eq!(db.query::<Entry>().filter(Entry::subtitle.eq("%_\\")).count()?, 1);
        assert_eq!(db.query::<Entry>().filter(Entry::title.eq("a'")).count()?, 0);
        assert_eq!(
            db.query::<Entry>()
                .filter(Entry::stars.between(i32::MIN, i32::MAX))
                .limit(u64::MAX)
                .offset(0)
                .count()?,
            6
        );
        Ok(())
    }

    fn plain_columns_without_objects(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let rows = db
            .query::<Entry>()
            .filter(Entry::stars.ge(5))
            .order_by(Entry::stars)
            .select((Entry::id, Entry::title, Entry::subtitle, Entry::writer, Entry::editor))?;
        let as_text: Vec<Vec<String>> = rows
            .iter()
            .map(|(id, title, subtitle, writer, editor)| {
                vec![
                    id.to_string(),
                    title.clone(),
                    subtitle.clone().unwrap_or_else(|| "NULL".into()),
                    writer.map_or("NULL".into(), |w| w.to_string()),
                    editor.map_or("NULL".into(), |w| w.to_string()),
                ]
            })
            .collect();
        let sql = "SELECT id, title, subtitle, writer_id, editor_id FROM entry \
                   WHERE stars >= 5 ORDER BY stars, id";
        assert_eq!(as_text, t.rows(sql));
        assert!(db.all::<Writer>()?.len() == 2);
        // No objects were made for the rows read as values.
        let mut seen = 0;
        db.query::<Entry>().select_each(Entry::stars, |stars| {
            seen += stars;
            Ok(())
        })?;
        assert_eq!(i64::from(seen), t.count("SELECT sum(stars) FROM entry"));
        let stars: Vec<i32> = db.query::<Entry>().select(Entry::stars)?;
        assert_eq!(stars, [5, 1, 9, 5, 7]);
        Ok(())
    }

    fn a_cursor_reads_pages_and_sees_every_row_once(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        for i in 0..20 {
            db.add(Entry::new(format!("n{i:02}"), i % 4, None, Id::new(2), None));
        }
        db.commit()?;
        db.log_statements(true);
        let mut cursor = db.query::<Entry>().filter(Entry::stars.ge(1)).cursor(4);
        let mut read = Vec::new();
        while let Some(h) = cursor.next(&mut db)? {
            read.push(db[h].title.clone());
        }
        assert_eq!(read, sql_titles(t, "stars >= 1"));
        let selects = db.take_statements().into_iter().filter(|s| s.sql.starts_with("SELECT")).count();
        assert_eq!(selects, read.len().div_ceil(4) + usize::from(read.len() % 4 == 0));
        // Another order, a limit and an offset: pages by offset.
        let mut cursor = db
            .query::<Entry>()
            .order_by(Entry::title.desc())
            .offset(2)
            .limit(7)
            .cursor(3);
        let mut read = Vec::new();
        while let Some(h) = cursor.next(&mut db)? {
            read.push(db[h].title.clone());
        }
        let expected: Vec<String> = t
            .rows("SELECT title FROM entry ORDER BY title DESC")
            .into_iter()
            .skip(2)
            .take(7)
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(read, expected);
        // Rows inserted behind a page by key are neither repeated nor skipped.
        let mut cursor = db.query::<Entry>().cursor(10);
        let first = cursor.next(&mut db)?.expect("a row");
        t.exec("DELETE FROM entry WHERE title = 'a' OR title = 'b'");
        let mut n = 1;
        while cursor.next(&mut db)?.is_some() {
            n += 1;
        }
        assert_eq!(db[first].title, "a");
        assert_eq!(n, 25);
        Ok(())
    }
}

backend_tests! {
    /// A cursor flushes before its first page only: marking each row read (a work queue)
    /// must not shift the pages that follow, in key order or another.
    fn a_cursor_reads_every_row_once_while_the_program_edits_them(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        for ordered in [false, true] {
            db.execute_sql("UPDATE entry SET stars = 0", &[])?;
            db.commit()?;
            let mut db = session(t);
            let mut query = db.query::<Entry>().filter(Entry::stars.eq(0));
            if ordered {
                query = query.order_by(Entry::subtitle.desc());
            }
            let mut cursor = query.cursor(2);
            let mut read = Vec::new();
            while let Some(h) = cursor.next(&mut db)? {
                db[h].stars = 1; // taken from the queue
                read.push(db[h].title.clone());
            }
            read.sort();
            assert_eq!(read, ["a", "b", "c", "d", "e"], "ordered: {ordered}");
            db.commit()?;
            assert_eq!(t.count("SELECT count(*) FROM entry WHERE stars = 1"), 5);
        }
        Ok(())
    }

    /// Rows of equal values come in key order, so pages by offset neither repeat nor skip.
    fn ties_are_broken_by_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let w = db.add(Writer::new("w"));
        for i in 0..40 {
            db.add(Entry::new(format!("t{i:02}"), i % 2, None, w, None));
        }
        db.commit()?;
        let mut cursor = db.query::<Entry>().order_by(Entry::stars).cursor(3);
        let mut read = Vec::new();
        while let Some(h) = cursor.next(&mut db)? {
            read.push(db[h].title.clone());
        }
        let expected: Vec<String> = t
            .rows("SELECT title FROM entry ORDER BY stars, id")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(read, expected);
        Ok(())
    }

    /// Handles of another session, or of objects deleted, are refused in filters; so is a
    /// cursor used with another session.
    fn foreign_and_deleted_handles_are_refused(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let mut other = t.open();
        let stranger = other.add(Writer::new("stranger"));
        let e = db
            .query::<Entry>()
            .filter(Entry::writer.eq(stranger))
            .all()
            .unwrap_err();
        assert!(matches!(e, orm_core::Error::InvalidHandle { model: "Writer" }), "{e}");
        let gone = db.add(Writer::new("gone"));
        db.flush()?;
        db.delete(gone)?;
        db.flush()?;
        let e = db.query::<Entry>().filter(Entry::writer.eq(gone)).all().unwrap_err();
        assert!(matches!(e, orm_core::Error::InvalidHandle { .. }), "{e}");
        let mut cursor = db.query::<Entry>().cursor(2);
        assert!(cursor.next(&mut db)?.is_some());
        let e = cursor.next(&mut other).unwrap_err();
        assert!(matches!(e, orm_core::Error::InvalidHandle { model: "Entry" }), "{e}");
        Ok(())
    }

    /// Borrowed values and options work as operands.
    fn borrowed_and_optional_operands(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed(&mut db)?;
        let third = String::from("third");
        let ids: Vec<Id<Entry>> = vec![Id::new(1), Id::new(3)];
        let by_ref = db.query::<Entry>().filter(Entry::subtitle.eq(&third)).count()?;
        let some = Some(third.clone());
        let by_option = db.query::<Entry>().filter(Entry::subtitle.eq(some)).count()?;
        let none = db.query::<Entry>().filter(Entry::subtitle.eq(None)).count()?;
        let listed = db.query::<Entry>().filter(Entry::id.is_in(ids.iter())).count()?;
        let all_stars: Vec<i32> = vec![5, 9];
        let first: &i32 = &all_stars[0];
        let by_int_ref = db.query::<Entry>().filter(Entry::stars.eq(first)).count()?;
        assert_eq!((by_ref, by_option, none, listed, by_int_ref), (1, 1, 2, 2, 2));
        Ok(())
    }
}

backend_tests! {
    /// `contains`, `starts_with` and `ends_with` take their text literally: `%`, `_` and
    /// backslashes in it match only themselves, on both databases.
    fn literal_text_matches(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let w = db.add(Writer::new("w"));
        for title in ["50%", "50 off", "a_b", "axb", "c\\d", "cd", "x%y_z\\"] {
            db.add(Entry::new(title, 0, None, w, None));
        }
        db.commit()?;
        let found = |db: &mut Session, f: Filter<Entry>| -> orm_core::Result<Vec<String>> {
            let hs = db.query::<Entry>().filter(f).all()?;
            Ok(titles(db, &hs))
        };
        assert_eq!(found(&mut db, Entry::title.contains("0%"))?, ["50%"]);
        assert_eq!(found(&mut db, Entry::title.starts_with("a_"))?, ["a_b"]);
        assert_eq!(found(&mut db, Entry::title.ends_with("\\d"))?, ["c\\d"]);
        assert_eq!(found(&mut db, Entry::title.contains("%y_z\\"))?, ["x%y_z\\"]);
        assert_eq!(found(&mut db, Entry::title.contains(""))?.len(), 7);
        assert!(found(&mut db, Entry::title.starts_with("%"))?.is_empty());
        // `like` keeps its wildcards.
        assert_eq!(found(&mut db, Entry::title.like("a_b"))?, ["a_b", "axb"]);
        Ok(())
    }
}
