//! Attacks on the query API: random filter trees checked against a model of the rows
//! evaluated in Rust (three-valued logic, never SQL text), random session operations
//! interleaved with eager loading, hostile values, pending ids, cursors beside other writers,
//! row locks, and raw SQL.
//!
//! The five defects this file found (a count with an order or a row lock refused by
//! PostgreSQL, NULLs and backslashes in LIKE treated differently by the two databases, a raw
//! query missing a column accepted while it returns no row) are fixed; their tests stay under
//! `bug_tests!`, which can mark a test `#[ignore = "BUG: .."]` on one backend only.

use orm_core::prelude::*;
use orm_core::query::Operand;
use orm_core::{Column, Error};
use orm_tests::*;

/// A row of the filter property test: every kind of column a filter compares.
#[derive(Model, Debug)]
#[model(table = "rec")]
pub struct Rec {
    #[key]
    pub id: Id<Rec>,
    pub title: String,
    pub n: i64,
    pub m: Option<i32>,
    pub tag: Option<String>,
    pub flag: bool,
}

/// An author, with posts and a bio.
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

/// A post, whose author is optional (deleting an author leaves its posts without one).
#[derive(Model, Debug)]
pub struct Post {
    #[key]
    pub id: Id<Post>,
    pub title: String,
    #[belongs_to(back_populates = "posts")]
    pub author: Option<Id<Author>>,
    #[has_many(back_populates = "post")]
    pub comments: HasMany<Comment>,
}

/// A comment, whose post is optional.
#[derive(Model, Debug)]
pub struct Comment {
    #[key]
    pub id: Id<Comment>,
    pub body: String,
    #[belongs_to(back_populates = "comments")]
    pub post: Option<Id<Post>>,
}

/// The bio of an author (at most one).
#[derive(Model, Debug)]
pub struct Bio {
    #[key]
    pub id: Id<Bio>,
    pub text: String,
    #[belongs_to(back_populates = "bio")]
    pub author: Option<Id<Author>>,
}

/// A natural text key, for cursors by key over text.
#[derive(Model, Debug)]
pub struct Code {
    #[key]
    pub code: String,
    pub rank: i32,
}

type Schema = (Rec, Author, Post, Comment, Bio, Code);

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<Schema>().expect("create tables");
    db
}

/// The SELECTs logged since the last call.
fn selects(db: &mut Session) -> Vec<String> {
    db.take_statements()
        .into_iter()
        .map(|s| s.sql)
        .filter(|s| s.starts_with("SELECT"))
        .collect()
}

/// How many of `sqls` read table `table` (`FROM "table"`).
fn reading(sqls: &[String], table: &str) -> usize {
    let from = format!("FROM \"{table}\"");
    sqls.iter().filter(|s| s.contains(&from)).count()
}

// ---------------------------------------------------------------------------------------
// 1. Random filter trees against a model
// ---------------------------------------------------------------------------------------

pub mod filters {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestError};
    use std::cmp::Ordering;

    /// A comparison.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Cmp {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
    }

    /// A condition on one column.
    #[derive(Clone, Debug)]
    pub enum Leaf {
        N(Cmp, i64),
        NBetween(i64, i64),
        NIn(Vec<i64>),
        M(Cmp, Option<i32>),
        MBetween(Option<i32>, Option<i32>),
        MIn(Vec<Option<i32>>),
        MNull(bool),
        Title(Cmp, String),
        TitleBetween(String, String),
        TitleIn(Vec<String>),
        TitleLike(String),
        Tag(Cmp, Option<String>),
        TagIn(Vec<Option<String>>),
        TagLike(String),
        TagNull(bool),
        Flag(Cmp, bool),
        /// The key of the row at this index (or past the last key).
        Id(Cmp, usize),
        IdIn(Vec<usize>),
    }

    /// A filter tree.
    #[derive(Clone, Debug)]
    pub enum F {
        Leaf(Leaf),
        And(Vec<F>),
        Or(Vec<F>),
        Not(Box<F>),
    }

    /// A column to order by.
    #[derive(Clone, Copy, Debug)]
    pub enum By {
        Id,
        Title,
        N,
        M,
        Tag,
        Flag,
    }

    /// A row, as the model holds it.
    #[derive(Clone, Debug)]
    pub struct RowM {
        pub title: String,
        pub n: i64,
        pub m: Option<i32>,
        pub tag: Option<String>,
        pub flag: bool,
    }

    /// One case: the rows, the filters (all must hold), the order, limit and offset, and a
    /// cursor's page size.
    #[derive(Clone, Debug)]
    pub struct Case {
        pub rows: Vec<RowM>,
        pub filters: Vec<F>,
        pub order: Vec<(By, bool)>,
        pub limit: Option<u64>,
        pub offset: Option<u64>,
        pub page: usize,
    }

    const CHARS: &[char] = &[
        'a', 'A', 'b', 'B', '%', '_', '\'', '"', '\\', ' ', 'é', 'É', '日', '😀', ';', '-',
    ];
    /// Pattern characters, a backslash among them (an ordinary character on both databases;
    /// see `like_with_a_backslash_is_the_same_on_both_backends`).
    const PATTERN: &[char] = &[
        'a', 'A', 'b', '%', '%', '_', '_', '\'', '\\', 'é', 'É', '日', '😀', ' ',
    ];

    fn text(chars: &'static [char], max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(chars), 0..=max)
            .prop_map(|v| v.into_iter().collect())
    }

    fn int64() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MIN + 1),
            Just(i64::MAX - 1),
            Just(i64::MAX),
            -2i64..=2,
        ]
    }

    fn int32() -> impl Strategy<Value = Option<i32>> {
        proptest::option::of(prop_oneof![Just(i32::MIN), Just(i32::MAX), -2i32..=2])
    }

    fn cmp() -> impl Strategy<Value = Cmp> {
        prop_oneof![
            Just(Cmp::Eq),
            Just(Cmp::Ne),
            Just(Cmp::Lt),
            Just(Cmp::Le),
            Just(Cmp::Gt),
            Just(Cmp::Ge)
        ]
    }

    fn row() -> impl Strategy<Value = RowM> {
        (
            text(CHARS, 3),
            int64(),
            int32(),
            proptest::option::of(text(CHARS, 3)),
            any::<bool>(),
        )
            .prop_map(|(title, n, m, tag, flag)| RowM {
                title,
                n,
                m,
                tag,
                flag,
            })
    }

    fn leaf() -> impl Strategy<Value = Leaf> {
        let s = || text(CHARS, 3);
        let os = || proptest::option::of(text(CHARS, 3));
        prop_oneof![
            (cmp(), int64()).prop_map(|(c, v)| Leaf::N(c, v)),
            (int64(), int64()).prop_map(|(a, b)| Leaf::NBetween(a, b)),
            proptest::collection::vec(int64(), 0..4).prop_map(Leaf::NIn),
            (cmp(), int32()).prop_map(|(c, v)| Leaf::M(c, v)),
            (int32(), int32()).prop_map(|(a, b)| Leaf::MBetween(a, b)),
            proptest::collection::vec(int32(), 0..4).prop_map(Leaf::MIn),
            any::<bool>().prop_map(Leaf::MNull),
            (cmp(), s()).prop_map(|(c, v)| Leaf::Title(c, v)),
            (s(), s()).prop_map(|(a, b)| Leaf::TitleBetween(a, b)),
            proptest::collection::vec(s(), 0..4).prop_map(Leaf::TitleIn),
            text(PATTERN, 4).prop_map(Leaf::TitleLike),
            (cmp(), os()).prop_map(|(c, v)| Leaf::Tag(c, v)),
            proptest::collection::vec(os(), 0..4).prop_map(Leaf::TagIn),
            text(PATTERN, 4).prop_map(Leaf::TagLike),
            any::<bool>().prop_map(Leaf::TagNull),
            (cmp(), any::<bool>()).prop_map(|(c, v)| Leaf::Flag(c, v)),
            (cmp(), 0usize..12).prop_map(|(c, v)| Leaf::Id(c, v)),
            proptest::collection::vec(0usize..12, 0..4).prop_map(Leaf::IdIn),
        ]
    }

    fn tree() -> impl Strategy<Value = F> {
        leaf().prop_map(F::Leaf).prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(F::And),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(F::Or),
                inner.prop_map(|f| F::Not(Box::new(f))),
            ]
        })
    }

    fn by() -> impl Strategy<Value = By> {
        prop_oneof![
            Just(By::Id),
            Just(By::Title),
            Just(By::N),
            Just(By::M),
            Just(By::Tag),
            Just(By::Flag)
        ]
    }

    fn count() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(prop_oneof![
            4 => 0u64..6,
            1 => Just(u64::MAX),
            1 => Just(i64::MAX as u64),
            1 => Just(i64::MAX as u64 + 1),
        ])
    }

    pub fn case() -> impl Strategy<Value = Case> {
        (
            proptest::collection::vec(row(), 0..10),
            proptest::collection::vec(tree(), 0..3),
            proptest::collection::vec((by(), any::<bool>()), 0..3),
            count(),
            count(),
            0usize..5,
        )
            .prop_map(|(rows, filters, order, limit, offset, page)| Case {
                rows,
                filters,
                order,
                limit,
                offset,
                page,
            })
    }

    // ----- the ORM's filter ------------------------------------------------------------

    fn compare<V>(c: Column<Rec, V>, op: Cmp, v: impl Operand<V>) -> Filter<Rec> {
        match op {
            Cmp::Eq => c.eq(v),
            Cmp::Ne => c.ne(v),
            Cmp::Lt => c.lt(v),
            Cmp::Le => c.le(v),
            Cmp::Gt => c.gt(v),
            Cmp::Ge => c.ge(v),
        }
    }

    fn orm_leaf(l: &Leaf, ids: &[i64]) -> Filter<Rec> {
        let id = |i: usize| Id::<Rec>::new(key_at(ids, i));
        match l {
            Leaf::N(c, v) => compare(Rec::n, *c, *v),
            Leaf::NBetween(a, b) => Rec::n.between(*a, *b),
            Leaf::NIn(v) => Rec::n.is_in(v.iter().copied()),
            Leaf::M(c, Some(v)) => compare(Rec::m, *c, *v),
            Leaf::M(c, None) => compare(Rec::m, *c, None::<i32>),
            Leaf::MBetween(a, b) => Rec::m.between(*a, *b),
            Leaf::MIn(v) => Rec::m.is_in(v.iter().copied()),
            Leaf::MNull(true) => Rec::m.is_null(),
            Leaf::MNull(false) => Rec::m.is_not_null(),
            Leaf::Title(c, v) => compare(Rec::title, *c, v.as_str()),
            Leaf::TitleBetween(a, b) => Rec::title.between(a.as_str(), b.as_str()),
            Leaf::TitleIn(v) => Rec::title.is_in(v.iter().map(String::as_str)),
            Leaf::TitleLike(p) => Rec::title.like(p),
            Leaf::Tag(c, Some(v)) => compare(Rec::tag, *c, v.as_str()),
            Leaf::Tag(c, None) => compare(Rec::tag, *c, None::<String>),
            Leaf::TagIn(v) => Rec::tag.is_in(v.iter().cloned()),
            Leaf::TagLike(p) => Rec::tag.like(p),
            Leaf::TagNull(true) => Rec::tag.is_null(),
            Leaf::TagNull(false) => Rec::tag.is_not_null(),
            Leaf::Flag(c, v) => compare(Rec::flag, *c, *v),
            Leaf::Id(c, i) => compare(Rec::id, *c, id(*i)),
            Leaf::IdIn(v) => Rec::id.is_in(v.iter().map(|&i| id(i))),
        }
    }

    /// The filter, built with every combinator (`&`, `|`, `!`, `and`, `or`, `not`,
    /// `Filter::all`, `Filter::any`) in turn.
    pub fn orm(f: &F, ids: &[i64]) -> Filter<Rec> {
        match f {
            F::Leaf(l) => orm_leaf(l, ids),
            F::And(v) if v.len() == 2 => orm(&v[0], ids) & orm(&v[1], ids),
            F::And(v) if v.len() == 3 => orm(&v[0], ids).and(orm(&v[1], ids)).and(orm(&v[2], ids)),
            F::And(v) => Filter::all(v.iter().map(|f| orm(f, ids))),
            F::Or(v) if v.len() == 2 => orm(&v[0], ids) | orm(&v[1], ids),
            F::Or(v) if v.len() == 3 => orm(&v[0], ids).or(orm(&v[1], ids).or(orm(&v[2], ids))),
            F::Or(v) => Filter::any(v.iter().map(|f| orm(f, ids))),
            F::Not(f) if matches!(**f, F::Leaf(_)) => !orm(f, ids),
            F::Not(f) => orm(f, ids).not(),
        }
    }

    /// The key a `Leaf::Id` index names: a row's, or keys past the last one.
    fn key_at(ids: &[i64], i: usize) -> i64 {
        match ids.get(i) {
            Some(&k) => k,
            None => ids.iter().copied().max().unwrap_or(0) + i as i64,
        }
    }

    // ----- the model ---------------------------------------------------------------------

    /// SQL's three-valued comparison; `= NULL` and `<> NULL` are `IS [NOT] NULL`, as the
    /// API documents.
    fn cmp3<T: Ord>(x: Option<&T>, op: Cmp, arg: Option<&T>) -> Option<bool> {
        match (op, arg) {
            (Cmp::Eq, None) => return Some(x.is_none()),
            (Cmp::Ne, None) => return Some(x.is_some()),
            _ => {}
        }
        let o = x?.cmp(arg?);
        Some(match op {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        })
    }

    fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    }

    fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        }
    }

    fn between3<T: Ord>(x: Option<&T>, lo: Option<&T>, hi: Option<&T>) -> Option<bool> {
        and3(
            x.and_then(|x| lo.map(|lo| x >= lo)),
            x.and_then(|x| hi.map(|hi| x <= hi)),
        )
    }

    // Unknown (`None`) does not end the fold: a later operand may still decide it.
    #[allow(clippy::manual_try_fold)]
    fn in3<T: Ord>(x: Option<&T>, list: &[Option<&T>]) -> Option<bool> {
        // `x IN (..)` is `x = a OR x = b ..`, where `= NULL` is unknown (not IS NULL);
        // false when the list is empty.
        list.iter().fold(Some(false), |acc, v| {
            or3(
                acc,
                match (x, v) {
                    (Some(x), Some(v)) => Some(x == *v),
                    _ => None,
                },
            )
        })
    }

    /// `LIKE`: `%` any text, `_` one character; SQLite ignores ASCII case.
    pub fn like(s: &str, p: &str, fold: bool) -> bool {
        let s: Vec<char> = s.chars().collect();
        let p: Vec<char> = p.chars().collect();
        let eq = |a: char, b: char| {
            if fold {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        // dp[j]: p[..i] matches s[..j].
        let mut dp = vec![false; s.len() + 1];
        dp[0] = true;
        for &pc in &p {
            let mut next = vec![false; s.len() + 1];
            match pc {
                '%' => {
                    let mut any = false;
                    for j in 0..=s.len() {
                        any |= dp[j];
                        next[j] = any;
                    }
                }
                _ => {
                    for j in 1..=s.len() {
                        next[j] = dp[j - 1] && (pc == '_' || eq(pc, s[j - 1]));
                    }
                }
            }
            dp = next;
        }
        dp[s.len()]
    }

    fn eval_leaf(l: &Leaf, r: &RowM, id: i64, ids: &[i64], fold: bool) -> Option<bool> {
        let key = |i: usize| key_at(ids, i);
        match l {
            Leaf::N(c, v) => cmp3(Some(&r.n), *c, Some(v)),
            Leaf::NBetween(a, b) => between3(Some(&r.n), Some(a), Some(b)),
            Leaf::NIn(v) => in3(Some(&r.n), &v.iter().map(Some).collect::<Vec<_>>()),
            Leaf::M(c, v) => cmp3(r.m.as_ref(), *c, v.as_ref()),
            Leaf::MBetween(a, b) => between3(r.m.as_ref(), a.as_ref(), b.as_ref()),
            Leaf::MIn(v) => in3(
                r.m.as_ref(),
                &v.iter().map(Option::as_ref).collect::<Vec<_>>(),
            ),
            Leaf::MNull(null) => Some(r.m.is_none() == *null),
            Leaf::Title(c, v) => cmp3(Some(&r.title), *c, Some(v)),
            Leaf::TitleBetween(a, b) => between3(Some(&r.title), Some(a), Some(b)),
            Leaf::TitleIn(v) => in3(Some(&r.title), &v.iter().map(Some).collect::<Vec<_>>()),
            Leaf::TitleLike(p) => Some(like(&r.title, p, fold)),
            Leaf::Tag(c, v) => cmp3(r.tag.as_ref(), *c, v.as_ref()),
            Leaf::TagIn(v) => in3(
                r.tag.as_ref(),
                &v.iter().map(Option::as_ref).collect::<Vec<_>>(),
            ),
            Leaf::TagLike(p) => r.tag.as_ref().map(|t| like(t, p, fold)),
            Leaf::TagNull(null) => Some(r.tag.is_none() == *null),
            Leaf::Flag(c, v) => cmp3(Some(&r.flag), *c, Some(v)),
            Leaf::Id(c, i) => cmp3(Some(&id), *c, Some(&key(*i))),
            Leaf::IdIn(v) => in3(
                Some(&id),
                &v.iter()
                    .map(|&i| key(i))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(Some)
                    .collect::<Vec<_>>(),
            ),
        }
    }

    #[allow(clippy::manual_try_fold)] // as in `in3`
    pub fn eval(f: &F, r: &RowM, id: i64, ids: &[i64], fold: bool) -> Option<bool> {
        match f {
            F::Leaf(l) => eval_leaf(l, r, id, ids, fold),
            F::And(v) => v
                .iter()
                .fold(Some(true), |acc, f| and3(acc, eval(f, r, id, ids, fold))),
            F::Or(v) => v
                .iter()
                .fold(Some(false), |acc, f| or3(acc, eval(f, r, id, ids, fold))),
            F::Not(f) => eval(f, r, id, ids, fold).map(|b| !b),
        }
    }

    /// `Option`s in the database's order: SQLite puts NULL first, PostgreSQL last
    /// (ascending).
    fn opt_cmp<T: Ord>(a: Option<&T>, b: Option<&T>, nulls_last: bool) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) if nulls_last => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) if nulls_last => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        }
    }

    /// The keys the model finds, in order.
    pub fn expected(c: &Case, ids: &[i64], backend: Backend) -> Vec<i64> {
        let fold = backend == Backend::Sqlite;
        // NULLs first in ascending order on both databases (the session asks PostgreSQL
        // for SQLite's order).
        let nulls_last = false;
        let mut found: Vec<(i64, &RowM)> = ids
            .iter()
            .copied()
            .zip(&c.rows)
            .filter(|(id, r)| {
                c.filters
                    .iter()
                    .all(|f| eval(f, r, *id, ids, fold) == Some(true))
            })
            .collect();
        found.sort_by(|(ia, a), (ib, b)| {
            for &(by, desc) in &c.order {
                let o = match by {
                    By::Id => ia.cmp(ib),
                    By::Title => a.title.cmp(&b.title),
                    By::N => a.n.cmp(&b.n),
                    By::M => opt_cmp(a.m.as_ref(), b.m.as_ref(), nulls_last),
                    By::Tag => opt_cmp(a.tag.as_ref(), b.tag.as_ref(), nulls_last),
                    By::Flag => a.flag.cmp(&b.flag),
                };
                let o = if desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            ia.cmp(ib)
        });
        let skip = c.offset.map_or(0, |o| o.min(usize::MAX as u64) as usize);
        let take = c
            .limit
            .map_or(usize::MAX, |l| l.min(usize::MAX as u64) as usize);
        found
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|(id, _)| id)
            .collect()
    }

    // ----- running a case ------------------------------------------------------------------

    fn query<'s>(
        db: &'s mut Session,
        c: &Case,
        ids: &[i64],
        order: bool,
    ) -> orm_core::Query<'s, Rec> {
        let mut q = db.query::<Rec>();
        for f in &c.filters {
            q = q.filter(orm(f, ids));
        }
        if order && !c.order.is_empty() {
            for &(by, desc) in &c.order {
                q = match (by, desc) {
                    (By::Id, false) => q.order_by(Rec::id),
                    (By::Id, true) => q.order_by(Rec::id.desc()),
                    (By::Title, false) => q.order_by(Rec::title.asc()),
                    (By::Title, true) => q.order_by(Rec::title.desc()),
                    (By::N, false) => q.order_by(Rec::n),
                    (By::N, true) => q.order_by(Rec::n.desc()),
                    (By::M, false) => q.order_by(Rec::m),
                    (By::M, true) => q.order_by(Rec::m.desc()),
                    (By::Tag, false) => q.order_by(Rec::tag),
                    (By::Tag, true) => q.order_by(Rec::tag.desc()),
                    (By::Flag, false) => q.order_by(Rec::flag),
                    (By::Flag, true) => q.order_by(Rec::flag.desc()),
                };
            }
            // Ties broken by key, as the model breaks them.
            q = q.order_by(Rec::id);
        }
        if let Some(l) = c.limit {
            q = q.limit(l);
        }
        if let Some(o) = c.offset {
            q = q.offset(o);
        }
        q
    }

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    /// Runs one case on a fresh table; `Err` says what differs.
    pub fn check(t: &TestDb, c: &Case) -> Result<(), String> {
        let mut db = t.open();
        db.execute_sql("DELETE FROM rec", &[]).map_err(e2s)?;
        let hs: Vec<Handle<Rec>> = c
            .rows
            .iter()
            .map(|r| db.add(Rec::new(r.title.clone(), r.n, r.m, r.tag.clone(), r.flag)))
            .collect();
        db.commit().map_err(e2s)?;
        let ids: Vec<i64> = hs.iter().map(|&h| db.id(h).value().unwrap()).collect();
        let want = expected(c, &ids, t.backend());
        let filters: Vec<String> = c
            .filters
            .iter()
            .map(|f| format!("{:?}", orm(f, &ids)))
            .collect();
        let ctx = || format!("ids {ids:?}\nfilters {filters:#?}");

        // all(): the keys in order, each row the object the session already holds.
        let found = query(&mut db, c, &ids, true).all().map_err(e2s)?;
        let got: Vec<i64> = found.iter().map(|&h| db.id(h).value().unwrap()).collect();
        if got != want {
            return Err(format!("all(): got {got:?}, expected {want:?}\n{}", ctx()));
        }
        for &h in &found {
            let i = ids
                .iter()
                .position(|&k| k == db.id(h).value().unwrap())
                .unwrap();
            if h != hs[i] || db[h].title != c.rows[i].title {
                return Err(format!(
                    "row {i}: another object, or another title\n{}",
                    ctx()
                ));
            }
        }
        // select(): the same rows as plain values.
        let sel = query(&mut db, c, &ids, true)
            .select((Rec::id, Rec::title, Rec::m, Rec::tag))
            .map_err(e2s)?;
        let sel_ids: Vec<i64> = sel.iter().map(|r| r.0.value().unwrap()).collect();
        if sel_ids != want {
            return Err(format!(
                "select(): got {sel_ids:?}, expected {want:?}\n{}",
                ctx()
            ));
        }
        for (id, title, m, tag) in &sel {
            let i = ids.iter().position(|k| k == &id.value().unwrap()).unwrap();
            let r = &c.rows[i];
            if *title != r.title || *m != r.m || *tag != r.tag {
                return Err(format!(
                    "select(): row {i} read back as {title:?} {m:?} {tag:?}"
                ));
            }
        }
        // count() and exists() (without the order, see `counting_an_ordered_query`).
        let n = query(&mut db, c, &ids, false).count().map_err(e2s)?;
        if n != want.len() as u64 {
            return Err(format!(
                "count(): got {n}, expected {}\n{}",
                want.len(),
                ctx()
            ));
        }
        let e = query(&mut db, c, &ids, true).exists().map_err(e2s)?;
        if e == want.is_empty() {
            return Err(format!("exists(): got {e}, expected {}\n{}", !e, ctx()));
        }
        // first() and one().
        let first = query(&mut db, c, &ids, true).first().map_err(e2s)?;
        let first = first.map(|h| db.id(h).value().unwrap());
        if first != want.first().copied() {
            return Err(format!(
                "first(): got {first:?}, expected {:?}\n{}",
                want.first(),
                ctx()
            ));
        }
        match (query(&mut db, c, &ids, true).one(), &want[..]) {
            (Ok(h), [k]) if db.id(h).value().unwrap() == *k => {}
            (Err(Error::NotOne { found, .. }), w) if w.len() != 1 && found == w.len().min(2) => {}
            (got, w) => return Err(format!("one(): got {got:?} for {w:?}\n{}", ctx())),
        }
        // A cursor reads the same rows (by key without an order, by offset with one).
        let mut cursor = query(&mut db, c, &ids, true).cursor(c.page);
        let mut read = Vec::new();
        while let Some(h) = cursor.next(&mut db).map_err(e2s)? {
            read.push(db.id(h).value().unwrap());
            if read.len() > c.rows.len() + 1 {
                break;
            }
        }
        if read != want {
            return Err(format!(
                "cursor({}): got {read:?}, expected {want:?}\n{}",
                c.page,
                ctx()
            ));
        }
        // NOT of every filter tree finds exactly the rows where the tree is false.
        for f in &c.filters {
            let neg = db.query::<Rec>().filter(!orm(f, &ids)).all().map_err(e2s)?;
            let got: Vec<i64> = neg.iter().map(|&h| db.id(h).value().unwrap()).collect();
            let fold = t.backend() == Backend::Sqlite;
            let want: Vec<i64> = ids
                .iter()
                .zip(&c.rows)
                .filter(|(id, r)| eval(f, r, **id, &ids, fold) == Some(false))
                .map(|(id, _)| *id)
                .collect();
            if got != want {
                return Err(format!(
                    "NOT {:?}: got {got:?}, expected {want:?}",
                    orm(f, &ids)
                ));
            }
        }
        Ok(())
    }

    pub fn property(t: &TestDb, cases: u32) -> Result<(), String> {
        drop(session(t));
        let (mut runner, cases) = runner(cases);
        let started = std::time::Instant::now();
        let result = runner.run(&case(), |c| check(t, &c).map_err(TestCaseError::fail));
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "filters {:?}: {cases} cases in {:.1?}",
            t.backend(),
            started.elapsed()
        );
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, c)) => {
                Err(format!("minimal failing case: {c:#?}\n{reason}"))
            }
            Err(TestError::Abort(reason)) => Err(format!("aborted: {reason}")),
        }
    }
}

backend_tests! {
    fn random_filter_trees_find_what_a_model_finds(t: &TestDb) -> Result<(), String> {
        filters::property(t, 128)
    }

    fn the_like_model_is_right(t: &TestDb) -> orm_core::Result<()> {
        // The model's LIKE, checked on a few cases against the database itself.
        let _ = t;
        use filters::like;
        assert!(like("abc", "a%", false));
        assert!(like("abc", "%c", false));
        assert!(like("abc", "_b_", false));
        assert!(!like("abc", "_b", false));
        assert!(like("", "%", false));
        assert!(!like("", "_", false));
        assert!(like("日😀", "__", false));
        assert!(like("ABC", "abc", true));
        assert!(!like("ÉA", "éa", true));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 2. Random session operations interleaved with eager loading
// ---------------------------------------------------------------------------------------

pub mod eager_ops {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{TestCaseError, TestError};
    use std::collections::{BTreeSet, HashMap, HashSet};

    /// One step; indices pick among the objects the run knows (modulo their number).
    #[derive(Clone, Copy, Debug)]
    pub enum Op {
        AddAuthor,
        AddPost(Option<usize>),
        AddComment(Option<usize>),
        /// `db.set(post, Post::author, ..)`.
        SetPost(usize, Option<usize>),
        /// `db[post].author = ..` (settled later).
        EditPostKey(usize, Option<usize>),
        /// `db.append(author, Author::posts, post)`.
        AppendPost(usize, usize),
        /// `db.remove(author, Author::posts, post)`.
        RemovePost(usize, usize),
        SetComment(usize, Option<usize>),
        EditCommentKey(usize, Option<usize>),
        DeleteAuthor(usize),
        DeletePost(usize),
        DeleteComment(usize),
        /// `db.load(author, Author::posts)` (a collection loaded before the eager query).
        LoadPosts(usize),
        Flush,
        Commit,
        Rollback,
        /// A new session, holding nothing.
        Reload,
        /// `query::<Author>().with(Author::posts.with(Post::comments))`, autoflush or not.
        EagerAuthors(bool),
        /// `query::<Post>().with(Post::author).with(Post::comments)`.
        EagerPosts(bool),
        /// `query::<Comment>().with(Comment::post.with(Post::author.with(Author::posts)))`.
        EagerComments(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        let i = || 0usize..8;
        let oi = || proptest::option::of(0usize..8);
        prop_oneof![
            2 => Just(Op::AddAuthor),
            3 => oi().prop_map(Op::AddPost),
            3 => oi().prop_map(Op::AddComment),
            3 => (i(), oi()).prop_map(|(a, b)| Op::SetPost(a, b)),
            2 => (i(), oi()).prop_map(|(a, b)| Op::EditPostKey(a, b)),
            2 => (i(), i()).prop_map(|(a, b)| Op::AppendPost(a, b)),
            2 => (i(), i()).prop_map(|(a, b)| Op::RemovePost(a, b)),
            2 => (i(), oi()).prop_map(|(a, b)| Op::SetComment(a, b)),
            1 => (i(), oi()).prop_map(|(a, b)| Op::EditCommentKey(a, b)),
            1 => i().prop_map(Op::DeleteAuthor),
            1 => i().prop_map(Op::DeletePost),
            1 => i().prop_map(Op::DeleteComment),
            2 => i().prop_map(Op::LoadPosts),
            2 => Just(Op::Flush),
            2 => Just(Op::Commit),
            1 => Just(Op::Rollback),
            1 => Just(Op::Reload),
            3 => any::<bool>().prop_map(Op::EagerAuthors),
            2 => any::<bool>().prop_map(Op::EagerPosts),
            2 => any::<bool>().prop_map(Op::EagerComments),
        ]
    }

    type Check = Result<(), String>;

    fn e2s(e: orm_core::Error) -> String {
        e.to_string()
    }

    /// The session and every handle the run has seen (added, or returned by a query).
    struct World<'t> {
        t: &'t TestDb,
        db: Session,
        authors: Vec<Handle<Author>>,
        posts: Vec<Handle<Post>>,
        comments: Vec<Handle<Comment>>,
    }

    fn pick<T>(v: &[T], i: usize) -> Option<&T> {
        (!v.is_empty()).then(|| &v[i % v.len()])
    }

    fn push_new<T: Model>(v: &mut Vec<Handle<T>>, hs: impl IntoIterator<Item = Handle<T>>) {
        for h in hs {
            if !v.contains(&h) {
                v.push(h);
            }
        }
    }

    impl World<'_> {
        /// Live objects (not discarded, not deleted) of a list.
        fn live<T: Model>(&self, hs: &[Handle<T>], i: usize) -> Option<Handle<T>> {
            let h = *pick(hs, i)?;
            (self.db.contains(h) && !self.db.is_deleted(h)).then_some(h)
        }

        fn author(&self, i: Option<usize>) -> Option<Option<Handle<Author>>> {
            match i {
                None => Some(None),
                Some(i) => self.live(&self.authors, i).map(Some),
            }
        }

        fn post(&self, i: Option<usize>) -> Option<Option<Handle<Post>>> {
            match i {
                None => Some(None),
                Some(i) => self.live(&self.posts, i).map(Some),
            }
        }

        fn step(&mut self, op: Op) -> Check {
            let db = &mut self.db;
            match op {
                Op::AddAuthor => {
                    let n = self.authors.len();
                    self.authors.push(db.add(Author::new(format!("a{n}"))));
                }
                Op::AddPost(a) => {
                    if let Some(a) = self.author(a) {
                        let n = self.posts.len();
                        let p = self.db.add(Post::new(format!("p{n}"), a.map(Id::from)));
                        self.posts.push(p);
                    }
                }
                Op::AddComment(p) => {
                    if let Some(p) = self.post(p) {
                        let n = self.comments.len();
                        let c = self.db.add(Comment::new(format!("c{n}"), p.map(Id::from)));
                        self.comments.push(c);
                    }
                }
                Op::SetPost(p, a) => {
                    if let (Some(p), Some(a)) = (self.live(&self.posts, p), self.author(a)) {
                        self.db.set(p, Post::author, a).map_err(e2s)?;
                    }
                }
                Op::EditPostKey(p, a) => {
                    if let (Some(p), Some(a)) = (self.live(&self.posts, p), self.author(a)) {
                        let id = a.map(|a| self.db.id(a));
                        self.db[p].author = id;
                    }
                }
                Op::AppendPost(a, p) => {
                    if let (Some(a), Some(p)) =
                        (self.live(&self.authors, a), self.live(&self.posts, p))
                    {
                        self.db.append(a, Author::posts, p).map_err(e2s)?;
                    }
                }
                Op::RemovePost(a, p) => {
                    if let (Some(a), Some(p)) =
                        (self.live(&self.authors, a), self.live(&self.posts, p))
                    {
                        self.db.remove(a, Author::posts, p).map_err(e2s)?;
                    }
                }
                Op::SetComment(c, p) => {
                    if let (Some(c), Some(p)) = (self.live(&self.comments, c), self.post(p)) {
                        self.db.set(c, Comment::post, p).map_err(e2s)?;
                    }
                }
                Op::EditCommentKey(c, p) => {
                    if let (Some(c), Some(p)) = (self.live(&self.comments, c), self.post(p)) {
                        let id = p.map(|p| self.db.id(p));
                        self.db[c].post = id;
                    }
                }
                Op::DeleteAuthor(a) => {
                    if let Some(a) = self.live(&self.authors, a) {
                        self.db.delete(a).map_err(e2s)?;
                    }
                }
                Op::DeletePost(p) => {
                    if let Some(p) = self.live(&self.posts, p) {
                        self.db.delete(p).map_err(e2s)?;
                    }
                }
                Op::DeleteComment(c) => {
                    if let Some(c) = self.live(&self.comments, c) {
                        self.db.delete(c).map_err(e2s)?;
                    }
                }
                Op::LoadPosts(a) => {
                    if let Some(a) = self.live(&self.authors, a) {
                        let ps = self.db.load(a, Author::posts).map_err(e2s)?;
                        push_new(&mut self.posts, ps);
                    }
                }
                Op::Flush => db.flush().map_err(e2s)?,
                Op::Commit => {
                    db.commit().map_err(e2s)?;
                    self.check_committed()?;
                }
                Op::Rollback => db.rollback().map_err(e2s)?,
                Op::Reload => {
                    self.db = self.t.open();
                    self.reload()?;
                }
                Op::EagerAuthors(af) => self.eager_authors(af)?,
                Op::EagerPosts(af) => self.eager_posts(af)?,
                Op::EagerComments(af) => self.eager_comments(af)?,
            }
            self.check_identity()
        }

        /// Every object of the database, as handles of the (new) session.
        fn reload(&mut self) -> Check {
            self.authors = self.db.query::<Author>().all().map_err(e2s)?;
            self.posts = self.db.query::<Post>().all().map_err(e2s)?;
            self.comments = self.db.query::<Comment>().all().map_err(e2s)?;
            Ok(())
        }

        /// No stored key is held by two live handles.
        fn check_identity(&self) -> Check {
            fn unique<T: Model>(db: &Session, hs: &[Handle<T>], what: &str) -> Check {
                let mut seen: HashMap<i64, Handle<T>> = HashMap::new();
                for &h in hs {
                    if !db.contains(h) {
                        continue;
                    }
                    if let Ok(k) = db.id(h).value() {
                        if let Some(other) = seen.insert(k, h) {
                            if other != h {
                                return Err(format!(
                                    "{what} {k} is two objects: {other:?} and {h:?}"
                                ));
                            }
                        }
                        if db.handle_of(Id::<T>::new(k)) != Some(h) {
                            return Err(format!("{what} {k}: handle_of is not {h:?}"));
                        }
                    }
                }
                Ok(())
            }
            unique(&self.db, &self.authors, "author")?;
            unique(&self.db, &self.posts, "post")?;
            unique(&self.db, &self.comments, "comment")
        }

        /// The posts whose key names `a`, as the session has them.
        fn session_posts(&self, a: Handle<Author>) -> HashSet<Handle<Post>> {
            self.posts
                .iter()
                .copied()
                .filter(|&p| self.db.contains(p))
                .filter(|&p| self.db[p].author.and_then(|id| self.db.handle_of(id)) == Some(a))
                .collect()
        }

        fn session_comments(&self, p: Handle<Post>) -> HashSet<Handle<Comment>> {
            self.comments
                .iter()
                .copied()
                .filter(|&c| self.db.contains(c))
                .filter(|&c| self.db[c].post.and_then(|id| self.db.handle_of(id)) == Some(p))
                .collect()
        }

        /// A loaded collection has no duplicate and equals the session's own view.
        fn check_posts(&mut self, a: Handle<Author>) -> Check {
            let Some(got) = self.db[a].posts.get().map(<[_]>::to_vec) else {
                return Err(format!("{a:?}: posts not loaded after eager loading"));
            };
            push_new(&mut self.posts, got.iter().copied());
            let set: HashSet<_> = got.iter().copied().collect();
            if set.len() != got.len() {
                return Err(format!("{a:?}: a post twice in {got:?}"));
            }
            let want = self.session_posts(a);
            if set != want {
                return Err(format!(
                    "{a:?} ({:?}) posts {set:?}, but the session's posts naming it are {want:?}",
                    self.db.id(a)
                ));
            }
            Ok(())
        }

        fn check_comments(&mut self, p: Handle<Post>) -> Check {
            let Some(got) = self.db[p].comments.get().map(<[_]>::to_vec) else {
                return Err(format!("{p:?}: comments not loaded after eager loading"));
            };
            push_new(&mut self.comments, got.iter().copied());
            let set: HashSet<_> = got.iter().copied().collect();
            if set.len() != got.len() {
                return Err(format!("{p:?}: a comment twice in {got:?}"));
            }
            let want = self.session_comments(p);
            if set != want {
                return Err(format!(
                    "{p:?} comments {set:?}, but the session's naming it are {want:?}"
                ));
            }
            Ok(())
        }

        /// At most one SELECT per table besides the query's own.
        fn check_selects(&mut self, root: &str) -> Check {
            let s = selects(&mut self.db);
            for table in ["author", "post", "comment"] {
                let n = reading(&s, table);
                let max = 1 + usize::from(table == root);
                if n > max {
                    return Err(format!("{n} SELECTs of {table}: {s:#?}"));
                }
            }
            Ok(())
        }

        fn eager_authors(&mut self, af: bool) -> Check {
            self.db.take_statements();
            self.db.log_statements(true);
            let found = self
                .db
                .query::<Author>()
                .autoflush(af)
                .with(Author::posts.with(Post::comments))
                .all()
                .map_err(e2s)?;
            self.db.log_statements(false);
            // The flush's own statements are not the eager loads'.
            if !af {
                self.check_selects("author")?;
            } else {
                let s: Vec<String> = selects(&mut self.db)
                    .into_iter()
                    .filter(|s| !s.contains("nextval"))
                    .collect();
                if reading(&s, "post") > 1 || reading(&s, "comment") > 1 {
                    return Err(format!("more than one SELECT per level: {s:#?}"));
                }
            }
            push_new(&mut self.authors, found.iter().copied());
            for &a in &found {
                self.check_posts(a)?;
                for p in self.db[a].posts.iter().copied().collect::<Vec<_>>() {
                    self.check_comments(p)?;
                }
            }
            // Everything was loaded: walking the tree reads nothing.
            self.db.log_statements(true);
            for &a in &found {
                for p in self.db.load(a, Author::posts).map_err(e2s)? {
                    self.db.load(p, Post::comments).map_err(e2s)?;
                }
            }
            let s = self.db.take_statements();
            self.db.log_statements(false);
            if !s.is_empty() {
                return Err(format!("walking the loaded tree read: {s:?}"));
            }
            Ok(())
        }

        fn eager_posts(&mut self, af: bool) -> Check {
            let found = self
                .db
                .query::<Post>()
                .autoflush(af)
                .with(Post::author)
                .with(Post::comments)
                .all()
                .map_err(e2s)?;
            push_new(&mut self.posts, found.iter().copied());
            self.db.log_statements(true);
            for &p in &found {
                let a = self.db.load(p, Post::author).map_err(e2s)?;
                let want = self.db[p].author.and_then(|id| self.db.handle_of(id));
                if a != want {
                    return Err(format!("{p:?}: author {a:?}, its key names {want:?}"));
                }
                if let Some(a) = a {
                    push_new(&mut self.authors, [a]);
                }
            }
            let s = self.db.take_statements();
            self.db.log_statements(false);
            if !s.is_empty() {
                return Err(format!("authors were not all loaded: {s:?}"));
            }
            for &p in &found {
                self.check_comments(p)?;
            }
            Ok(())
        }

        fn eager_comments(&mut self, af: bool) -> Check {
            let found = self
                .db
                .query::<Comment>()
                .autoflush(af)
                .with(Comment::post.with(Post::author.with(Author::posts)))
                .all()
                .map_err(e2s)?;
            push_new(&mut self.comments, found.iter().copied());
            self.db.log_statements(true);
            let mut authors = Vec::new();
            for &c in &found {
                let p = self.db.load(c, Comment::post).map_err(e2s)?;
                let want = self.db[c].post.and_then(|id| self.db.handle_of(id));
                if p != want {
                    return Err(format!("{c:?}: post {p:?}, its key names {want:?}"));
                }
                if let Some(p) = p {
                    push_new(&mut self.posts, [p]);
                    if let Some(a) = self.db.load(p, Post::author).map_err(e2s)? {
                        authors.push(a);
                    }
                }
            }
            let s = self.db.take_statements();
            self.db.log_statements(false);
            if !s.is_empty() {
                return Err(format!("posts or authors were not all loaded: {s:?}"));
            }
            push_new(&mut self.authors, authors.iter().copied());
            for a in authors {
                self.check_posts(a)?;
            }
            Ok(())
        }

        /// After a commit: a fresh session's eager loads, its lazy loads, plain SQL and this
        /// session's view all agree on who belongs to whom.
        fn check_committed(&mut self) -> Check {
            let sql_posts: BTreeSet<(i64, i64)> = self
                .t
                .rows("SELECT id, author_id FROM post WHERE author_id IS NOT NULL")
                .into_iter()
                .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
                .collect();
            let sql_comments: BTreeSet<(i64, i64)> = self
                .t
                .rows("SELECT id, post_id FROM comment WHERE post_id IS NOT NULL")
                .into_iter()
                .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
                .collect();
            let key = |id: Option<Id<Author>>| id.and_then(|i| i.value().ok());
            let mine_posts: BTreeSet<(i64, i64)> = self
                .posts
                .iter()
                .filter(|&&p| self.db.contains(p))
                .filter_map(|&p| Some((self.db.id(p).value().ok()?, key(self.db[p].author)?)))
                .collect();
            let mine_comments: BTreeSet<(i64, i64)> = self
                .comments
                .iter()
                .filter(|&&c| self.db.contains(c))
                .filter_map(|&c| {
                    Some((self.db.id(c).value().ok()?, self.db[c].post?.value().ok()?))
                })
                .collect();
            if mine_posts != sql_posts {
                return Err(format!(
                    "committed posts {sql_posts:?}, the session says {mine_posts:?}"
                ));
            }
            if mine_comments != sql_comments {
                return Err(format!(
                    "committed comments {sql_comments:?}, the session says {mine_comments:?}"
                ));
            }
            // A fresh session, eagerly.
            let mut fresh = self.t.open();
            let authors = fresh
                .query::<Author>()
                .with(Author::posts.with(Post::comments))
                .all()
                .map_err(e2s)?;
            let mut eager_posts = BTreeSet::new();
            let mut eager_comments = BTreeSet::new();
            for &a in &authors {
                for &p in fresh[a].posts.iter() {
                    eager_posts
                        .insert((fresh.id(p).value().unwrap(), fresh.id(a).value().unwrap()));
                }
            }
            let posts = fresh
                .query::<Post>()
                .with(Post::comments)
                .all()
                .map_err(e2s)?;
            for &p in &posts {
                for &c in fresh[p].comments.iter() {
                    eager_comments
                        .insert((fresh.id(c).value().unwrap(), fresh.id(p).value().unwrap()));
                }
            }
            if eager_posts != sql_posts || eager_comments != sql_comments {
                return Err(format!(
                    "a fresh session's eager loads: posts {eager_posts:?} comments {eager_comments:?}"
                ));
            }
            // And lazily.
            let mut lazy = self.t.open();
            let mut lazy_posts = BTreeSet::new();
            for a in lazy.all::<Author>().map_err(e2s)? {
                for p in lazy.load(a, Author::posts).map_err(e2s)? {
                    lazy_posts.insert((lazy.id(p).value().unwrap(), lazy.id(a).value().unwrap()));
                }
            }
            if lazy_posts != sql_posts {
                return Err(format!(
                    "a fresh session's lazy loads: posts {lazy_posts:?}"
                ));
            }
            Ok(())
        }
    }

    /// Runs a sequence from a few committed rows, in a new session holding none of them.
    pub fn replay(t: &TestDb, ops: &[Op]) -> Check {
        let mut db = t.open();
        db.execute_sql("DELETE FROM comment", &[]).map_err(e2s)?;
        db.execute_sql("DELETE FROM post", &[]).map_err(e2s)?;
        db.execute_sql("DELETE FROM author", &[]).map_err(e2s)?;
        let a = db.add_all([Author::new("a"), Author::new("b"), Author::new("c")]);
        let p = db.add_all([
            Post::new("p", a[0]),
            Post::new("q", a[0]),
            Post::new("r", a[1]),
            Post::new("s", None),
        ]);
        db.add_all([
            Comment::new("x", p[0]),
            Comment::new("y", p[0]),
            Comment::new("z", p[2]),
            Comment::new("w", None),
        ]);
        db.commit().map_err(e2s)?;
        drop(db);
        let mut w = World {
            t,
            db: t.open(),
            authors: Vec::new(),
            posts: Vec::new(),
            comments: Vec::new(),
        };
        w.reload()?;
        for (i, &op) in ops.iter().enumerate() {
            w.step(op)
                .map_err(|e| format!("step {} ({op:?}): {e}", i + 1))?;
        }
        Ok(())
    }

    pub fn property(t: &TestDb, cases: u32) -> Check {
        drop(session(t));
        let (mut runner, cases) = runner(cases);
        let started = std::time::Instant::now();
        let ops = proptest::collection::vec(op(), 1..=24);
        let result = runner.run(&ops, |ops| replay(t, &ops).map_err(TestCaseError::fail));
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "eager ops {:?}: {cases} cases in {:.1?}",
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
    fn random_session_operations_and_eager_loads_agree(t: &TestDb) -> Result<(), String> {
        eager_ops::property(t, 96)
    }
}

// ---------------------------------------------------------------------------------------
// 3. Hostile values, pending ids, one/first, cursors, row locks
// ---------------------------------------------------------------------------------------

/// Rows a..e with n = 1..5; `m` NULL on b and d; `tag` NULL on c.
fn seed_recs(db: &mut Session) -> orm_core::Result<Vec<Handle<Rec>>> {
    let hs = db.add_all([
        Rec::new("a", 1, Some(10), Some("x".to_owned()), true),
        Rec::new("b", 2, None, Some("y".to_owned()), false),
        Rec::new("c", 3, Some(30), None, true),
        Rec::new("d", 4, None, Some("Y".to_owned()), false),
        Rec::new("e", 5, Some(50), Some("z".to_owned()), true),
    ]);
    db.commit()?;
    Ok(hs)
}

backend_tests! {
    fn hostile_strings_round_trip_and_match_only_themselves(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let long: String = "ab'\\\"%_日😀".repeat(20_000);
        let values = [
            "'".to_owned(),
            "''".to_owned(),
            "a' OR '1'='1".to_owned(),
            "'; DROP TABLE rec; --".to_owned(),
            "\\".to_owned(),
            "\\'".to_owned(),
            "\"quoted\"".to_owned(),
            "$1".to_owned(),
            "?1".to_owned(),
            "%".to_owned(),
            "_".to_owned(),
            "é É ß ǅ ﬁ".to_owned(),
            "日本語 😀 \u{200b}\u{feff}".to_owned(),
            "tab\tnew\nline\rcr".to_owned(),
            String::new(),
            " ".to_owned(),
            long.clone(),
        ];
        let hs: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| db.add(Rec::new(v.clone(), i as i64, None, Some(v.clone()), false)))
            .collect();
        db.commit()?;
        let mut fresh = t.open();
        for (i, v) in values.iter().enumerate() {
            let found = fresh.query::<Rec>().filter(Rec::title.eq(v.as_str())).all()?;
            assert_eq!(found.len(), 1, "{:?}", &v[..v.len().min(40)]);
            assert_eq!(fresh[found[0]].n, i as i64);
            assert_eq!(&fresh[found[0]].title, v);
            assert_eq!(fresh[found[0]].tag.as_deref(), Some(v.as_str()));
            let ne = fresh.query::<Rec>().filter(Rec::tag.ne(v.as_str())).count()?;
            assert_eq!(ne, values.len() as u64 - 1);
            let inl = fresh
                .query::<Rec>()
                .filter(Rec::title.is_in([v.as_str(), "no such"]))
                .select(Rec::n)?;
            assert_eq!(inl, [i as i64]);
            // The raw path binds them too.
            let raw = fresh.query_sql::<Rec>(
                &t.sql("SELECT * FROM rec WHERE title = ?1 AND tag = ?2"),
                &[&v.as_str(), &v.clone()],
            )?;
            assert_eq!(raw, found);
        }
        assert_eq!(t.count("SELECT count(*) FROM rec"), values.len() as i64);
        assert_eq!(fresh.query::<Rec>().filter(Rec::title.eq(long.as_str())).one()?, fresh.handle_of(db.id(hs[16])).unwrap());
        Ok(())
    }

    fn integer_boundaries_compare_exactly(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ns = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        let ms = [Some(i32::MIN), Some(i32::MAX), None, Some(0), Some(-1), Some(1), None];
        for (i, (&n, &m)) in ns.iter().zip(&ms).enumerate() {
            db.add(Rec::new(format!("r{i}"), n, m, None, i % 2 == 0));
        }
        db.commit()?;
        for &n in &ns {
            let eq = db.query::<Rec>().filter(Rec::n.eq(n)).select(Rec::n)?;
            assert_eq!(eq, [n]);
            let lt = db.query::<Rec>().filter(Rec::n.lt(n)).count()?;
            assert_eq!(lt, ns.iter().filter(|&&x| x < n).count() as u64, "< {n}");
            let ge = db.query::<Rec>().filter(Rec::n.ge(n)).count()?;
            assert_eq!(ge, ns.iter().filter(|&&x| x >= n).count() as u64, ">= {n}");
        }
        assert_eq!(db.query::<Rec>().filter(Rec::n.between(i64::MIN, i64::MAX)).count()?, 7);
        assert_eq!(db.query::<Rec>().filter(Rec::n.between(i64::MAX, i64::MIN)).count()?, 0);
        assert_eq!(db.query::<Rec>().filter(Rec::m.eq(i32::MIN)).count()?, 1);
        assert_eq!(db.query::<Rec>().filter(Rec::m.gt(i32::MAX)).count()?, 0);
        assert_eq!(db.query::<Rec>().filter(Rec::m.eq(None::<i32>)).count()?, 2);
        assert_eq!(db.query::<Rec>().filter(Rec::m.ne(None::<i32>)).count()?, 5);
        // `< NULL` is unknown: neither it nor its negation holds anywhere.
        assert_eq!(db.query::<Rec>().filter(Rec::m.lt(None::<i32>)).count()?, 0);
        assert_eq!(db.query::<Rec>().filter(!Rec::m.lt(None::<i32>)).count()?, 0);
        // NULL in an IN list matches nothing, and makes NOT IN unknown.
        assert_eq!(db.query::<Rec>().filter(Rec::m.is_in([None, Some(0)])).count()?, 1);
        assert_eq!(db.query::<Rec>().filter(!Rec::m.is_in([None, Some(0)])).count()?, 0);
        // An empty IN list is false, its negation true even for NULLs.
        assert_eq!(db.query::<Rec>().filter(Rec::m.is_in(Vec::<i32>::new())).count()?, 0);
        assert_eq!(db.query::<Rec>().filter(!Rec::m.is_in(Vec::<i32>::new())).count()?, 7);
        let by_n = db.query::<Rec>().order_by(Rec::n.desc()).select(Rec::n)?;
        let mut sorted = ns.to_vec();
        sorted.reverse();
        assert_eq!(by_n, sorted);
        Ok(())
    }

    fn limits_and_offsets_past_i64(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        let all = |q: orm_core::Query<'_, Rec>| q.select(Rec::n);
        assert_eq!(all(db.query::<Rec>().limit(u64::MAX))?, [1, 2, 3, 4, 5]);
        assert_eq!(all(db.query::<Rec>().limit(i64::MAX as u64 + 1))?, [1, 2, 3, 4, 5]);
        assert!(all(db.query::<Rec>().offset(u64::MAX))?.is_empty());
        assert!(all(db.query::<Rec>().offset(i64::MAX as u64))?.is_empty());
        assert!(all(db.query::<Rec>().offset(u64::MAX).limit(u64::MAX))?.is_empty());
        assert_eq!(db.query::<Rec>().offset(u64::MAX).count()?, 0);
        assert_eq!(db.query::<Rec>().limit(u64::MAX).count()?, 5);
        assert!(!db.query::<Rec>().offset(u64::MAX).exists()?);
        assert_eq!(db.query::<Rec>().offset(u64::MAX).first()?, None);
        assert!(db.query::<Rec>().limit(0).all()?.is_empty());
        assert_eq!(db.query::<Rec>().limit(0).first()?, None);
        assert_eq!(db.query::<Rec>().limit(0).count()?, 0);
        let mut c = db.query::<Rec>().offset(u64::MAX).cursor(2);
        assert_eq!(c.next(&mut db)?, None);
        let mut c = db.query::<Rec>().order_by(Rec::title).offset(u64::MAX - 1).cursor(2);
        assert_eq!(c.next(&mut db)?, None);
        let mut c = db.query::<Rec>().limit(u64::MAX).cursor(usize::MAX);
        let mut n = 0;
        while c.next(&mut db)?.is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        Ok(())
    }

    fn one_and_first_on_zero_one_two_rows(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let hs = seed_recs(&mut db)?;
        let none = db.query::<Rec>().filter(Rec::n.gt(100)).one().unwrap_err();
        assert!(matches!(none, Error::NotOne { model: "Rec", found: 0 }), "{none}");
        assert_eq!(db.query::<Rec>().filter(Rec::n.eq(3)).one()?, hs[2]);
        let two = db.query::<Rec>().filter(Rec::n.le(2)).one().unwrap_err();
        assert!(matches!(two, Error::NotOne { found: 2, .. }), "{two}");
        let many = db.query::<Rec>().one().unwrap_err();
        assert!(matches!(many, Error::NotOne { found: 2, .. }), "{many}");
        // With an offset that leaves one row.
        assert_eq!(db.query::<Rec>().offset(4).one()?, hs[4]);
        assert_eq!(db.query::<Rec>().order_by(Rec::n.desc()).first()?, Some(hs[4]));
        assert_eq!(db.query::<Rec>().offset(2).first()?, Some(hs[2]));
        assert_eq!(db.query::<Rec>().limit(3).offset(1).first()?, Some(hs[1]));
        // A new, unflushed row counts for one() (autoflush), and not without it.
        let f = db.add(Rec::new("f", 3, None, None, false));
        let e = db.query::<Rec>().autoflush(false).filter(Rec::n.eq(3)).one()?;
        assert_eq!(e, hs[2]);
        let e = db.query::<Rec>().filter(Rec::n.eq(3)).one().unwrap_err();
        assert!(matches!(e, Error::NotOne { found: 2, .. }), "{e}");
        assert!(!db.is_new(f));
        Ok(())
    }

    fn pending_ids_without_autoflush_are_refused_never_guessed(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Author::new("a"));
        db.add(Post::new("p", a));
        db.commit()?;
        let b = db.add(Author::new("new"));
        let pending = db.id(b);
        assert!(pending.is_pending());
        let expect_pending = |r: orm_core::Result<Vec<Handle<Post>>>| match r {
            Err(Error::PendingId { model: "Author" }) => {}
            other => panic!("expected PendingId, got {other:?}"),
        };
        expect_pending(db.query::<Post>().autoflush(false).filter(Post::author.eq(b)).all());
        expect_pending(db.query::<Post>().autoflush(false).filter(Post::author.eq(pending)).all());
        expect_pending(db.query::<Post>().autoflush(false).filter(Post::author.ne(b)).all());
        expect_pending(
            db.query::<Post>()
                .autoflush(false)
                .filter(Post::author.is_in([a, b]))
                .all(),
        );
        // Deep in a tree, under NOT and OR.
        expect_pending(
            db.query::<Post>()
                .autoflush(false)
                .filter(!(Post::title.eq("zz") | Filter::all([Post::author.eq(b)])))
                .all(),
        );
        let e = db
            .query::<Author>()
            .autoflush(false)
            .filter(Author::id.eq(b))
            .count()
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { model: "Author" }), "{e}");
        let e = db
            .query::<Author>()
            .autoflush(false)
            .filter(Author::id.gt(pending))
            .exists()
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { .. }), "{e}");
        let e = db
            .query::<Author>()
            .autoflush(false)
            .filter(Author::id.eq(b))
            .select(Author::name)
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { .. }), "{e}");
        let mut c = db.query::<Author>().autoflush(false).filter(Author::id.eq(b)).cursor(1);
        assert!(matches!(c.next(&mut db), Err(Error::PendingId { .. })));
        // Raw SQL, with the session's autoflush off.
        db.set_autoflush(false);
        let e = db
            .query_sql::<Post>(&t.sql("SELECT * FROM post WHERE author_id = ?1"), &[&b])
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { .. }), "{e}");
        let e = db
            .execute_sql(&t.sql("DELETE FROM post WHERE author_id = ?1"), &[&pending])
            .unwrap_err();
        assert!(matches!(e, Error::PendingId { .. }), "{e}");
        db.set_autoflush(true);
        // Nothing was written by the refusals; with autoflush the same filters work.
        assert!(db.is_new(b));
        assert_eq!(db.query::<Post>().filter(Post::author.eq(b)).count()?, 0);
        assert!(!db.is_new(b));
        assert_eq!(db.query::<Post>().filter(Post::author.is_in([a, b])).count()?, 1);
        // An object flushed then rolled back: its handle names no row any more.
        db.rollback()?;
        let e = db.query::<Post>().filter(Post::author.eq(b)).all().unwrap_err();
        assert!(matches!(e, Error::InvalidHandle { .. }), "{e}");
        // And a key reused by a later row must not be reached through the discarded handle.
        let c = db.add(Author::new("later"));
        db.flush()?;
        let e = db.query::<Author>().filter(Author::id.eq(b)).all().unwrap_err();
        assert!(matches!(e, Error::InvalidHandle { .. }), "{e}");
        assert_eq!(db.query::<Author>().filter(Author::id.eq(c)).one()?, c);
        Ok(())
    }

    fn handles_of_another_session_in_filters(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let a = db.add(Author::new("a"));
        db.add(Post::new("p", a));
        db.commit()?;
        // The same row, held by another session: its handle is not this session's.
        let mut other = t.open();
        let theirs = other.query::<Author>().one()?;
        let e = db.query::<Post>().filter(Post::author.eq(theirs)).all();
        assert!(matches!(e, Err(Error::InvalidHandle { .. })), "{e:?}");
        let e = db.query::<Author>().filter(Author::id.eq(theirs)).count();
        assert!(matches!(e, Err(Error::InvalidHandle { .. })), "{e:?}");
        // A new object of the other session.
        let new = other.add(Author::new("b"));
        let e = db.query::<Post>().filter(Post::author.is_in([new])).all();
        assert!(matches!(e, Err(Error::InvalidHandle { .. })), "{e:?}");
        // Its stored id, copied after its flush, is a plain key and works anywhere.
        other.commit()?;
        let copied = other.id(new);
        assert_eq!(db.query::<Author>().filter(Author::id.eq(copied)).select(Author::name)?, ["b"]);
        // A handle of this session that slot-aliases the other one's must still be this one's.
        let mine = db.query::<Author>().filter(Author::name.eq("a")).one()?;
        assert_eq!(db.query::<Post>().filter(Post::author.eq(mine)).count()?, 1);
        Ok(())
    }

    fn a_cursor_of_page_one_and_zero_reads_every_row_once(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let hs = seed_recs(&mut db)?;
        for page in [0, 1, 2, 5, 6] {
            for ordered in [false, true] {
                let q = db.query::<Rec>();
                let q = if ordered { q.order_by(Rec::n.desc()) } else { q };
                let mut c = q.cursor(page);
                let mut read = Vec::new();
                while let Some(h) = c.next(&mut db)? {
                    read.push(h);
                    assert!(read.len() <= 5, "page {page}: endless");
                }
                let mut want = hs.clone();
                if ordered {
                    want.reverse();
                }
                assert_eq!(read, want, "page {page}, ordered {ordered}");
                // Exhausted stays exhausted.
                assert_eq!(c.next(&mut db)?, None);
            }
        }
        // A cursor taken to another session is refused there.
        let mut c = db.query::<Rec>().cursor(1);
        assert!(c.next(&mut db)?.is_some());
        let mut other = t.open();
        let e = c.next(&mut other).unwrap_err();
        assert!(matches!(e, Error::InvalidHandle { model: "Rec" }), "{e}");
        Ok(())
    }

    fn a_cursor_by_key_beside_another_writer(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        for i in 0..10 {
            db.add(Rec::new(format!("r{i}"), i, None, None, false));
        }
        db.commit()?;
        let mut c = db.query::<Rec>().filter(Rec::n.ne(7)).cursor(3);
        let mut read = Vec::new();
        while let Some(h) = c.next(&mut db)? {
            let n = db[h].n;
            read.push(n);
            if n == 1 {
                // Behind the cursor: a row deleted before being read, one deleted after,
                // new rows (after every key), and a row changed to match.
                t.exec("DELETE FROM rec WHERE n = 0 OR n = 5");
                t.exec("INSERT INTO rec (title, n, flag) VALUES ('new', 100, FALSE), ('new2', 7, FALSE)");
            }
            if n == 8 {
                // The session's own new row is flushed by the next page's autoflush.
                db.add(Rec::new("mine", 200, None, None, true));
            }
            assert!(read.len() < 20, "endless: {read:?}");
        }
        assert_eq!(read, [0, 1, 2, 3, 4, 6, 8, 9, 100, 200]);
        Ok(())
    }

    fn a_cursor_by_text_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let codes = ["", " ", "A", "a", "a'", "aa", "b", "é", "日", "😀", "\\", "%", "_"];
        for (i, c) in codes.iter().enumerate() {
            db.add(Code::new(c.to_string(), i as i32));
        }
        db.commit()?;
        let mut want: Vec<&str> = codes.to_vec();
        want.sort();
        let mut c = db.query::<Code>().cursor(2);
        let mut read = Vec::new();
        while let Some(h) = c.next(&mut db)? {
            read.push(db[h].code.clone());
            assert!(read.len() <= codes.len());
        }
        assert_eq!(read, want);
        let mut c = db.query::<Code>().filter(Code::rank.ge(3)).offset(2).limit(5).cursor(1);
        let mut read = Vec::new();
        while let Some(h) = c.next(&mut db)? {
            read.push(db[h].code.clone());
        }
        let mut expected: Vec<&str> = codes[3..].to_vec();
        expected.sort();
        assert_eq!(read, expected[2..7]);
        Ok(())
    }

    fn for_update_blocks_another_writer_until_the_end_of_the_transaction(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        let mut raw = t.raw();
        if t.backend() == Backend::Sqlite {
            raw.exec("PRAGMA busy_timeout = 200").unwrap();
        } else {
            raw.exec("SET lock_timeout = '300ms'").unwrap();
        }
        let locked = db.query::<Rec>().filter(Rec::n.eq(2)).for_update().all()?;
        assert_eq!(locked.len(), 1);
        // (PostgreSQL: lock timeout; SQLite: database is locked.)
        assert!(raw.exec("UPDATE rec SET n = 20 WHERE n = 2").is_err());
        if t.backend() == Backend::Postgres {
            // Rows not locked stay writable on PostgreSQL.
            raw.exec("UPDATE rec SET n = 40 WHERE n = 4").unwrap();
        }
        db.commit()?;
        raw.exec("UPDATE rec SET n = 20 WHERE n = 2").unwrap();
        // The same with autoflush off and through first(), and ended by rollback.
        let first = db.query::<Rec>().autoflush(false).filter(Rec::n.eq(1)).for_update().first()?;
        assert!(first.is_some());
        assert!(raw.exec("UPDATE rec SET n = 10 WHERE n = 1").is_err());
        db.rollback()?;
        raw.exec("UPDATE rec SET n = 10 WHERE n = 1").unwrap();
        // exists() and select() lock too.
        assert!(db.query::<Rec>().filter(Rec::n.eq(3)).for_update().exists()?);
        assert!(raw.exec("UPDATE rec SET n = 30 WHERE n = 3").is_err());
        db.rollback()?;
        let names = db.query::<Rec>().filter(Rec::n.eq(3)).for_update().select(Rec::title)?;
        assert_eq!(names, ["c"]);
        assert!(raw.exec("UPDATE rec SET n = 30 WHERE n = 3").is_err());
        db.rollback()?;
        raw.exec("UPDATE rec SET n = 30 WHERE n = 3").unwrap();
        Ok(())
    }
}

bug_tests! {
    /// `count()` keeps the query's ORDER BY: `SELECT count(*) FROM "rec" ORDER BY "title"`,
    /// which PostgreSQL refuses (the column must appear in GROUP BY).
    #[sqlite()]
    #[postgres()]
    fn counting_an_ordered_query(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        assert_eq!(db.query::<Rec>().order_by(Rec::title).count()?, 5);
        assert_eq!(db.query::<Rec>().filter(Rec::n.gt(2)).order_by(Rec::n.desc()).count()?, 3);
        // With a limit the count wraps a subquery, where ORDER BY is allowed.
        assert_eq!(db.query::<Rec>().order_by(Rec::title).limit(2).count()?, 2);
        Ok(())
    }

    /// `count()` of a `for_update()` query appends FOR UPDATE to an aggregate (or to the
    /// outer query of the wrapped count), which PostgreSQL refuses.
    #[sqlite()]
    #[postgres()]
    fn counting_a_locking_query(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        assert_eq!(db.query::<Rec>().filter(Rec::n.gt(2)).for_update().count()?, 3);
        db.rollback()?;
        assert_eq!(db.query::<Rec>().limit(2).for_update().count()?, 2);
        db.rollback()?;
        Ok(())
    }

    /// NULLs sort first (ascending) on SQLite and last on PostgreSQL: the same query gives
    /// two orders. Expected here: one order on both (NULL first, as `Option`'s `Ord` and
    /// SQLite have it).
    #[sqlite()]
    #[postgres()]
    fn nulls_sort_the_same_on_both_backends(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        let asc = db.query::<Rec>().order_by(Rec::m).order_by(Rec::n).select(Rec::title)?;
        assert_eq!(asc, ["b", "d", "a", "c", "e"]);
        let desc = db.query::<Rec>().order_by(Rec::m.desc()).order_by(Rec::n).select(Rec::title)?;
        assert_eq!(desc, ["e", "c", "a", "b", "d"]);
        // The same through a cursor by offset.
        let mut c = db.query::<Rec>().order_by(Rec::tag).order_by(Rec::n).cursor(2);
        let mut read = Vec::new();
        while let Some(h) = c.next(&mut db)? {
            read.push(db[h].title.clone());
        }
        assert_eq!(read, ["c", "d", "a", "b", "e"]);
        Ok(())
    }

    /// `like` documents `%` and `_` only, but PostgreSQL's LIKE also treats `\` as an
    /// escape: `like("a\\b")` finds `ab` there and not `a\b`, and a pattern ending in `\`
    /// is an error ("LIKE pattern must not end with escape character").
    #[sqlite()]
    #[postgres()]
    fn like_with_a_backslash_is_the_same_on_both_backends(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        db.add_all([
            Rec::new("a\\b", 1, None, None, false),
            Rec::new("ab", 2, None, None, false),
            Rec::new("50%", 3, None, None, false),
            Rec::new("50\\%", 4, None, None, false),
            Rec::new("end\\", 5, None, None, false),
        ]);
        db.commit()?;
        let like = |db: &mut Session, p: &str| db.query::<Rec>().filter(Rec::title.like(p)).select(Rec::n);
        assert_eq!(like(&mut db, "a\\b")?, [1]);
        assert_eq!(like(&mut db, "50\\%")?, [4]);
        assert_eq!(like(&mut db, "%\\")?, [5]);
        assert_eq!(like(&mut db, "%\\%")?, [1, 4, 5]);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// 4. Eager loading in odd session states; raw SQL
// ---------------------------------------------------------------------------------------

/// Authors a (posts p, q; bio) and b (post r), post s without author; comments x, y on p,
/// z on r, w on nothing. Committed by a session that is dropped.
fn seed_blog(t: &TestDb) -> orm_core::Result<()> {
    let mut db = session(t);
    let a = db.add(Author::new("a"));
    let b = db.add(Author::new("b"));
    db.add(Bio::new("bio a", a));
    let p = db.add(Post::new("p", a));
    db.add(Post::new("q", a));
    let r = db.add(Post::new("r", b));
    db.add(Post::new("s", None));
    db.add_all([
        Comment::new("x", p),
        Comment::new("y", p),
        Comment::new("z", r),
        Comment::new("w", None),
    ]);
    db.commit()
}

fn post_titles(db: &Session, hs: impl IntoIterator<Item = Handle<Post>>) -> Vec<String> {
    hs.into_iter().map(|h| db[h].title.clone()).collect()
}

backend_tests! {
    fn eager_loading_keeps_collections_already_loaded(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        let a = db.query::<Author>().filter(Author::name.eq("a")).one()?;
        let posts = db.load(a, Author::posts)?;
        // A new post appended in the session only.
        let n = db.add(Post::new("new", None));
        db.append(a, Author::posts, n)?;
        db.log_statements(true);
        let found = db
            .query::<Author>()
            .autoflush(false)
            .order_by(Author::name)
            .with(Author::posts)
            .all()?;
        let s = selects(&mut db);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert!(s[1].contains("\"author_id\" IN ("), "only b's posts are read: {}", s[1]);
        assert_eq!(found[0], a);
        assert_eq!(post_titles(&db, db[a].posts.iter().copied()), ["p", "q", "new"]);
        assert_eq!(db[a].posts.as_slice()[..2], posts[..]);
        assert_eq!(post_titles(&db, db[found[1]].posts.iter().copied()), ["r"]);
        // Everyone loaded: a second eager load reads nothing beyond its own query.
        db.query::<Author>().autoflush(false).with(Author::posts).all()?;
        assert_eq!(selects(&mut db).len(), 1);
        Ok(())
    }

    fn eager_loading_sees_moves_and_deletes_not_flushed(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        let [a, b] = db.query::<Author>().order_by(Author::name).all()?[..] else { panic!() };
        let p = db.query::<Post>().filter(Post::title.eq("p")).one()?;
        let q = db.query::<Post>().filter(Post::title.eq("q")).one()?;
        let s = db.query::<Post>().filter(Post::title.eq("s")).one()?;
        // p moves to b through the relationship, s to a by editing its key, q is deleted.
        db.set(p, Post::author, b)?;
        db[s].author = Some(db.id(a));
        db.delete(q)?;
        let found = db.query::<Author>().autoflush(false).with(Author::posts.with(Post::comments)).all()?;
        assert_eq!(found, [a, b]);
        let mut of_a = post_titles(&db, db[a].posts.iter().copied());
        of_a.sort();
        // q is deleted but not flushed: as a lazy load would, it is still listed.
        assert_eq!(of_a, ["q", "s"]);
        let mut of_b = post_titles(&db, db[b].posts.iter().copied());
        of_b.sort();
        assert_eq!(of_b, ["p", "r"]);
        assert_eq!(db[p].comments.len(), 2);
        // The same picture as a lazy load in a session in the same state.
        let mut lazy = t.open();
        let [la, lb] = lazy.query::<Author>().order_by(Author::name).all()?[..] else { panic!() };
        let lp = lazy.query::<Post>().filter(Post::title.eq("p")).one()?;
        let lq = lazy.query::<Post>().filter(Post::title.eq("q")).one()?;
        let ls = lazy.query::<Post>().filter(Post::title.eq("s")).one()?;
        lazy.set(lp, Post::author, lb)?;
        lazy[ls].author = Some(lazy.id(la));
        lazy.delete(lq)?;
        let loaded = lazy.load(la, Author::posts)?;
        let mut lazy_a = post_titles(&lazy, loaded);
        lazy_a.sort();
        let loaded = lazy.load(lb, Author::posts)?;
        let mut lazy_b = post_titles(&lazy, loaded);
        lazy_b.sort();
        assert_eq!(lazy_a, of_a);
        assert_eq!(lazy_b, ["p", "r"]);
        // After the flush, the database agrees.
        db.commit()?;
        assert_eq!(
            t.rows("SELECT p.title, a.name FROM post p JOIN author a ON a.id = p.author_id ORDER BY p.title"),
            table(&[&["p", "b"], &["r", "b"], &["s", "a"]])
        );
        Ok(())
    }

    fn eager_belongs_to_chains_with_null_keys(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        db.log_statements(true);
        let cs = db
            .query::<Comment>()
            .order_by(Comment::body)
            .with(Comment::post.with(Post::author.with(Author::bio)))
            .all()?;
        let s = selects(&mut db);
        assert_eq!(s.len(), 4, "{s:#?}");
        let mut lines = Vec::new();
        for c in cs {
            let p = db.load(c, Comment::post)?;
            let a = match p {
                Some(p) => db.load(p, Post::author)?,
                None => None,
            };
            let bio = match a {
                Some(a) => db.load(a, Author::bio)?.map(|b| db[b].text.clone()),
                None => None,
            };
            lines.push(format!(
                "{} {} {} {}",
                db[c].body,
                p.map_or("-".into(), |p| db[p].title.clone()),
                a.map_or("-".into(), |a| db[a].name.clone()),
                bio.unwrap_or("-".into())
            ));
        }
        assert!(db.take_statements().is_empty(), "everything was loaded");
        assert_eq!(lines, ["w - - -", "x p a bio a", "y p a bio a", "z r b -"]);
        // Only comments without posts: nothing more is read at all.
        let only = db
            .query::<Comment>()
            .filter(Comment::post.is_null())
            .with(Comment::post.with(Post::author))
            .all()?;
        assert_eq!(only.len(), 1);
        assert_eq!(selects(&mut db).len(), 1);
        // A post without author, eagerly up and down.
        let s_post = db
            .query::<Post>()
            .filter(Post::author.is_null())
            .with(Post::author.with(Author::posts))
            .with(Post::comments)
            .one()?;
        assert_eq!(db[s_post].title, "s");
        assert!(db[s_post].comments.is_empty() && db[s_post].comments.is_loaded());
        Ok(())
    }

    fn eager_loading_an_empty_result_reads_nothing_more(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        db.log_statements(true);
        let none = db
            .query::<Author>()
            .filter(Author::name.eq("nobody"))
            .with(Author::posts.with(Post::comments))
            .with(Author::bio)
            .all()?;
        assert!(none.is_empty());
        assert_eq!(selects(&mut db).len(), 1);
        let none = db
            .query::<Author>()
            .limit(0)
            .with(Author::posts)
            .all()?;
        assert!(none.is_empty());
        assert_eq!(selects(&mut db).len(), 1);
        // The same relationship twice, and has_one beside has_many: one SELECT each.
        let all = db
            .query::<Author>()
            .with(Author::posts)
            .with(Author::posts.with(Post::comments))
            .with(Author::bio)
            .all()?;
        let s = selects(&mut db);
        assert_eq!(s.len(), 4, "{s:#?}");
        assert_eq!(reading(&s, "post"), 1);
        assert_eq!(all.len(), 2);
        let bios: Vec<Option<String>> = all
            .iter()
            .map(|&a| db[a].bio.get().map(|b| db[b].text.clone()))
            .collect();
        assert_eq!(bios, [Some("bio a".to_owned()), None]);
        // first() and one() load eagerly too, for what they return.
        let mut fresh = t.open();
        fresh.log_statements(true);
        let a = fresh.query::<Author>().with(Author::bio).first()?.expect("an author");
        assert!(fresh[a].bio.is_loaded());
        assert_eq!(selects(&mut fresh).len(), 2);
        Ok(())
    }

    fn eager_has_one_with_the_bio_moved_in_the_session(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        let bio = db.query::<Bio>().one()?;
        let b = db.query::<Author>().filter(Author::name.eq("b")).one()?;
        db.set(bio, Bio::author, b)?;
        let authors = db
            .query::<Author>()
            .autoflush(false)
            .order_by(Author::name)
            .with(Author::bio)
            .all()?;
        assert_eq!(db[authors[0]].bio.get(), None, "a's bio moved to b");
        assert_eq!(db[authors[1]].bio.get(), Some(bio));
        db.commit()?;
        assert_eq!(t.rows("SELECT a.name FROM bio JOIN author a ON a.id = bio.author_id"), table(&[&["b"]]));
        Ok(())
    }

    fn eager_loading_through_a_cursor_is_per_page(t: &TestDb) -> orm_core::Result<()> {
        seed_blog(t)?;
        let mut db = t.open();
        db.log_statements(true);
        let mut c = db.query::<Post>().with(Post::author).with(Post::comments).cursor(2);
        let mut seen = Vec::new();
        while let Some(p) = c.next(&mut db)? {
            seen.push(p);
        }
        assert_eq!(seen.len(), 4);
        db.take_statements();
        for p in seen {
            db.load(p, Post::author)?;
            db.load(p, Post::comments)?;
        }
        assert!(db.take_statements().is_empty(), "every page's relationships were loaded");
        Ok(())
    }

    fn raw_sql_matches_columns_by_name(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let hs = seed_recs(&mut db)?;
        // Another order, extra columns, upper-case names.
        let found = db.query_sql::<Rec>(
            "SELECT flag, tag, 42 AS extra, m, n, title, id, 'x' AS other FROM rec ORDER BY n DESC",
            &[],
        )?;
        let mut rev = hs.clone();
        rev.reverse();
        assert_eq!(found, rev);
        let mut fresh = t.open();
        let found = fresh.query_sql::<Rec>(
            "SELECT FLAG AS \"FLAG\", TAG AS \"Tag\", M AS \"M\", N AS \"N\", TITLE AS \"TITLE\", ID AS \"ID\" FROM rec WHERE n = 3",
            &[],
        )?;
        assert_eq!(found.len(), 1);
        let c = found[0];
        assert_eq!(
            (fresh[c].title.as_str(), fresh[c].n, fresh[c].m, fresh[c].tag.clone(), fresh[c].flag),
            ("c", 3, Some(30), None, true)
        );
        // Duplicate rows are one object.
        let twice = fresh.query_sql::<Rec>(
            "SELECT * FROM rec WHERE n = 3 UNION ALL SELECT * FROM rec WHERE n = 3",
            &[],
        )?;
        assert_eq!(twice, [c, c]);
        // A row the session holds keeps its object and edits.
        fresh[c].title = "edited".into();
        let again = fresh.query_sql::<Rec>("SELECT * FROM rec WHERE title = 'c'", &[]);
        // Autoflush wrote the edit first: no row is titled c any more.
        assert_eq!(again?, []);
        fresh.rollback()?;
        let again = fresh.query_sql::<Rec>("SELECT * FROM rec WHERE title = 'c'", &[])?;
        assert_eq!(again, [c]);
        assert_eq!(fresh[c].title, "c");
        Ok(())
    }

    fn raw_sql_missing_columns_and_null_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        let e = db.query_sql::<Rec>("SELECT id, title, n, m, flag FROM rec", &[]).unwrap_err();
        assert!(
            matches!(e, Error::RawColumnMissing { model: "Rec", field: "tag", column: "tag", .. }),
            "{e}"
        );
        let e = db.query_sql::<Rec>("SELECT title, n, m, tag, flag FROM rec", &[]).unwrap_err();
        assert!(matches!(e, Error::RawColumnMissing { field: "id", .. }), "{e}");
        // A NULL key (an outer join's missing side) is an error, not an object without a key.
        let e = db
            .query_sql::<Rec>(
                "SELECT r.* FROM (SELECT 1 AS one) AS x LEFT JOIN rec r ON r.n = 99",
                &[],
            )
            .unwrap_err();
        assert!(matches!(e, Error::Decode { model: "Rec", .. }), "{e}");
        // A NULL in a required column likewise (in a session that does not hold the row
        // already: one that does keeps its object without decoding the row again).
        let e = t
            .open()
            .query_sql::<Rec>("SELECT id, NULL AS title, n, m, tag, flag FROM rec WHERE n = 1", &[])
            .unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        // A key of a narrower type is the same row, the same object.
        let one = db.query::<Rec>().filter(Rec::n.eq(1)).one()?;
        let narrow = db.query_sql::<Rec>(
            "SELECT CAST(id AS INTEGER) AS id, title, n, m, tag, flag FROM rec WHERE n = 1",
            &[],
        )?;
        assert_eq!(narrow, [one]);
        // Statements through execute_sql are in the session's transaction.
        assert_eq!(db.execute_sql(&t.sql("DELETE FROM rec WHERE n > ?1"), &[&3i64])?, 2);
        assert_eq!(db.query::<Rec>().count()?, 3);
        db.rollback()?;
        assert_eq!(db.query::<Rec>().count()?, 5);
        Ok(())
    }
}

bug_tests! {
    /// A raw query that matches no row is not checked for its columns: the same statement
    /// that fails with `RawColumnMissing` once a row matches succeeds while none does, so the
    /// mistake shows only with data.
    #[sqlite()]
    #[postgres()]
    fn raw_sql_missing_a_column_fails_without_rows_too(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        seed_recs(&mut db)?;
        let e = db.query_sql::<Rec>("SELECT id, title, n, m, flag FROM rec WHERE n > 100", &[]);
        assert!(matches!(e, Err(Error::RawColumnMissing { field: "tag", .. })), "{e:?}");
        Ok(())
    }
}
