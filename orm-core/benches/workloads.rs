//! The session against hand-written rusqlite on the same schema, data and settings.
//!
//! `cargo bench --bench workloads` runs every workload 15 times and prints medians;
//! `cargo bench --bench workloads -- --quick` runs each once (W5 at 10× only), as CI does;
//! `-- --profile w1 orm [n]` runs one side of one workload (n times), for callgrind or perf;
//! `-- --w6` runs W6 alone, `-- --w7` W7 alone, `-- --reads` W2 and W8 alone. With
//! `ORM_TEST_POSTGRES_URL` set, W1-W4 also run on PostgreSQL against the `postgres` crate.
//!
//! Both sides use a database file in a fresh temporary directory, WAL, synchronous=NORMAL and
//! foreign keys on (the settings `Session::open` uses). The raw side is what a competent user
//! writes: `prepare_cached` statements in one transaction, one row per INSERT, reading back
//! each user's id with `last_insert_rowid`.

#[path = "workloads/w7.rs"]
mod w7;

use orm_core::prelude::*;
use orm_core::{Connection, SqliteConnection};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Model, Debug)]
#[model(table = "user")]
struct User {
    #[key]
    id: Id<User>,
    name: String,
    #[has_many(back_populates = "user", cascade_delete)]
    products: HasMany<Product>,
}

#[derive(Model, Debug)]
#[model(table = "product")]
struct Product {
    #[key]
    id: Id<Product>,
    name: String,
    #[belongs_to(back_populates = "products")]
    user: Id<User>,
}

/// The server the PostgreSQL workloads run on (the same variable as the tests').
const POSTGRES_URL_VAR: &str = "ORM_TEST_POSTGRES_URL";

const USERS: usize = 1_000;
const PRODUCTS_PER_USER: usize = 10;

/// A database file in its own temporary directory, removed on drop.
struct TempDb {
    dir: PathBuf,
    path: PathBuf,
}

impl TempDb {
    /// A new database with the workload's tables (created by the session, so both sides use
    /// the same schema, indexes included).
    fn new() -> TempDb {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "orm-bench-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bench.db");
        let mut db = Session::open(&path).expect("open");
        db.create_all::<(User, Product)>().expect("create tables");
        TempDb { dir, path }
    }

    /// A new database with the workload's tables but no index on `product.user_id` (the
    /// schema other ORMs' benchmarks use; SQLite's index work hides the session's cost).
    fn unindexed() -> TempDb {
        let t = TempDb::new();
        let c = raw_connection(&t.path);
        let names: Vec<String> = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'product' \
                 AND sql IS NOT NULL",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!names.is_empty());
        for name in names {
            c.execute_batch(&format!("DROP INDEX \"{name}\"")).unwrap();
        }
        t
    }

    /// A new database holding `users` users with their products, inserted by the raw side.
    fn filled(users: usize) -> TempDb {
        let t = TempDb::new();
        let mut c = raw_connection(&t.path);
        raw_insert(&mut c, users);
        t
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn raw_connection(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).expect("open raw");
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.pragma_update(None, "foreign_keys", true).unwrap();
    c
}

fn user_name(u: usize) -> String {
    format!("user {u}")
}

fn product_name(u: usize, p: usize) -> String {
    format!("product {u}-{p}")
}

// ----- W1 / W5: insert a graph ----------------------------------------------------------------

fn raw_insert(c: &mut rusqlite::Connection, users: usize) {
    let tx = c.transaction().unwrap();
    {
        let mut user = tx
            .prepare_cached("INSERT INTO \"user\" (\"name\") VALUES (?1)")
            .unwrap();
        let mut product = tx
            .prepare_cached("INSERT INTO \"product\" (\"name\", \"user_id\") VALUES (?1, ?2)")
            .unwrap();
        for u in 0..users {
            user.execute([user_name(u)]).unwrap();
            let id = tx.last_insert_rowid();
            for p in 0..PRODUCTS_PER_USER {
                product
                    .execute(rusqlite::params![product_name(u, p), id])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

fn orm_insert(db: &mut Session, users: usize) {
    for u in 0..users {
        let user = db.add(User::new(user_name(u)));
        for p in 0..PRODUCTS_PER_USER {
            db.add(Product::new(product_name(u, p), user));
        }
    }
    db.commit().unwrap();
}

/// The rows are all there, each product with its own user.
fn check_inserted(path: &Path, users: usize) {
    let c = raw_connection(path);
    let (n_users, n_products, matched): (i64, i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM \"user\"), (SELECT count(*) FROM \"product\"), \
             (SELECT count(*) FROM \"product\" p JOIN \"user\" u ON u.\"id\" = p.\"user_id\" \
              AND p.\"name\" = 'product ' || substr(u.\"name\", 6) || '-' || ((p.\"id\" - 1) % 10))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let expected = (users * PRODUCTS_PER_USER) as i64;
    assert_eq!(
        (n_users, n_products, matched),
        (users as i64, expected, expected)
    );
}

fn w1_raw(users: usize) -> Duration {
    w1_raw_on(TempDb::new(), users)
}

fn w1_raw_on(t: TempDb, users: usize) -> Duration {
    let mut c = raw_connection(&t.path);
    let start = Instant::now();
    raw_insert(&mut c, users);
    let time = start.elapsed();
    check_inserted(&t.path, users);
    time
}

fn w1_orm(users: usize) -> Duration {
    w1_orm_on(TempDb::new(), users)
}

fn w1_orm_on(t: TempDb, users: usize) -> Duration {
    let mut db = Session::open(&t.path).unwrap();
    let start = Instant::now();
    orm_insert(&mut db, users);
    let time = start.elapsed();
    drop(db);
    check_inserted(&t.path, users);
    time
}

// ----- W2: load every user with their products -------------------------------------------------

struct RawUser {
    id: i64,
    name: String,
}

struct RawProduct {
    id: i64,
    name: String,
    user_id: i64,
}

/// Every user, in key order (both backends).
const USERS_SQL: &str = "SELECT \"id\", \"name\" FROM \"user\" ORDER BY \"id\"";
/// Every product, in key order (both backends).
const PRODUCTS_SQL: &str = "SELECT \"id\", \"name\", \"user_id\" FROM \"product\" ORDER BY \"id\"";

fn raw_products(c: &rusqlite::Connection) -> Vec<RawProduct> {
    c.prepare_cached(PRODUCTS_SQL)
        .unwrap()
        .query_map([], |r| {
            Ok(RawProduct {
                id: r.get(0)?,
                name: r.get(1)?,
                user_id: r.get(2)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Each user with their products, grouped by hand as a user of the driver would (both
/// databases): what W2's raw side builds.
fn group<P>(
    users: Vec<RawUser>,
    products: Vec<P>,
    parent: impl Fn(&P) -> i64,
) -> Vec<(RawUser, Vec<P>)> {
    let at: std::collections::HashMap<i64, usize> =
        users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
    let mut out: Vec<(RawUser, Vec<P>)> = users.into_iter().map(|u| (u, Vec::new())).collect();
    for p in products {
        if let Some(&i) = at.get(&parent(&p)) {
            out[i].1.push(p);
        }
    }
    out
}

/// What W2's raw side read, on either database.
fn check_raw_load(loaded: &[(RawUser, Vec<RawProduct>)]) {
    assert_eq!(loaded.len(), USERS);
    assert!(loaded.iter().all(|(_, p)| p.len() == PRODUCTS_PER_USER));
    let (users, products): (Vec<&RawUser>, Vec<&RawProduct>) = (
        loaded.iter().map(|(u, _)| u).collect(),
        loaded.iter().flat_map(|(_, p)| p).collect(),
    );
    assert_eq!((users[7].id, users[7].name.as_str()), (8, "user 7"));
    assert_eq!(users[USERS - 1].id, USERS as i64);
    let last = &products[products.len() - 1];
    assert_eq!(
        (last.id, last.user_id, last.name.as_str()),
        (
            (USERS * PRODUCTS_PER_USER) as i64,
            USERS as i64,
            product_name(USERS - 1, PRODUCTS_PER_USER - 1).as_str()
        )
    );
}

/// A connection kept from round to round, each round a fresh session on it: its prepared
/// statements stay cached, as in a pool (the raw sides keep theirs too).
struct Warm(Option<Box<dyn Connection>>);

impl Warm {
    fn new(conn: Box<dyn Connection>) -> Warm {
        Warm(Some(conn))
    }

    /// Runs `f` on a fresh session; the session is dropped after the timing.
    fn run(&mut self, f: impl FnOnce(&mut Session) -> Duration) -> Duration {
        let mut db = Session::with_connection(self.0.take().expect("connection"));
        let time = f(&mut db);
        self.0 = Some(db.into_connection().expect("connection back"));
        time
    }
}

fn w2_raw(c: &rusqlite::Connection) -> Duration {
    let start = Instant::now();
    let users: Vec<RawUser> = c
        .prepare_cached(USERS_SQL)
        .unwrap()
        .query_map([], |r| {
            Ok(RawUser {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let loaded = group(users, raw_products(c), |p| p.user_id);
    let time = start.elapsed();
    check_raw_load(&loaded);
    time
}

fn w2_orm(t: &TempDb) -> Warm {
    Warm::new(Box::new(SqliteConnection::open(&t.path).unwrap()))
}

/// W2 through the session, on either database: the query with its eager load timed, then
/// the results checked.
fn orm_load(db: &mut Session) -> Duration {
    let start = Instant::now();
    let users = db.query::<User>().with(User::products).all().unwrap();
    let time = start.elapsed();
    assert_eq!(users.len(), USERS);
    assert!(users
        .iter()
        .all(|&u| db[u].products.len() == PRODUCTS_PER_USER));
    assert_eq!(db[users[7]].name, user_name(7));
    let last = db[users[USERS - 1]].products.as_slice()[PRODUCTS_PER_USER - 1];
    let last = &db[last];
    assert_eq!(last.id, (USERS * PRODUCTS_PER_USER) as i64);
    assert_eq!(last.user, USERS as i64);
    assert_eq!(last.name, product_name(USERS - 1, PRODUCTS_PER_USER - 1));
    time
}

// ----- W3: get by key -------------------------------------------------------------------------

const LOOKUPS: usize = 10_000;
const LOOKUPS_PER_SESSION: usize = 1_000;

/// The same pseudo-random user keys for both sides (xorshift).
fn random_keys() -> Vec<i64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..LOOKUPS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % USERS as u64) as i64 + 1
        })
        .collect()
}

fn w3_raw(t: &TempDb, keys: &[i64]) -> Duration {
    let c = raw_connection(&t.path);
    let start = Instant::now();
    let mut found = Vec::with_capacity(keys.len());
    for &k in keys {
        let user = c
            .prepare_cached("SELECT \"id\", \"name\" FROM \"user\" WHERE \"id\" = ?1")
            .unwrap()
            .query_row([k], |r| {
                Ok(RawUser {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .unwrap();
        found.push(user);
    }
    let time = start.elapsed();
    for (u, &k) in found.iter().zip(keys) {
        assert_eq!((u.id, &u.name), (k, &user_name(k as usize - 1)));
    }
    time
}

fn w3_orm(t: &TempDb, keys: &[i64]) -> Duration {
    orm_gets(Box::new(SqliteConnection::open(&t.path).unwrap()), keys)
}

/// W3 through the session, on either database: a fresh session (empty identity map) per
/// 1,000 lookups on the same connection, as from a pool; only the lookups are timed.
fn orm_gets(mut conn: Box<dyn Connection>, keys: &[i64]) -> Duration {
    let mut checked = 0;
    let mut time = Duration::ZERO;
    for chunk in keys.chunks(LOOKUPS_PER_SESSION) {
        let start = Instant::now();
        let mut db = Session::with_connection(conn);
        let handles: Vec<Handle<User>> = chunk
            .iter()
            .map(|&k| db.get::<User>(k).unwrap().expect("user exists"))
            .collect();
        time += start.elapsed();
        for (&h, &k) in handles.iter().zip(chunk) {
            assert_eq!(db[h].id, k);
            assert_eq!(db[h].name, user_name(k as usize - 1));
            checked += 1;
        }
        conn = db.into_connection().unwrap();
    }
    assert_eq!(checked, keys.len());
    time
}

// ----- W4: update -----------------------------------------------------------------------------

const UPDATES: usize = 1_000;

fn renamed(id: i64) -> String {
    format!("renamed {id}")
}

fn check_updated(path: &Path) {
    let c = raw_connection(path);
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM \"product\" WHERE \"name\" = 'renamed ' || \"id\"",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, UPDATES as i64);
}

fn w4_raw() -> Duration {
    let t = TempDb::filled(USERS);
    let mut c = raw_connection(&t.path);
    // Every product loaded first, as the ORM side loads its objects.
    let mut products = raw_products(&c);
    assert_eq!(products[0].user_id, 1);
    let start = Instant::now();
    let tx = c.transaction().unwrap();
    {
        let mut update = tx
            .prepare_cached("UPDATE \"product\" SET \"name\" = ?1 WHERE \"id\" = ?2")
            .unwrap();
        for p in &mut products[..UPDATES] {
            p.name = renamed(p.id);
            update.execute(rusqlite::params![p.name, p.id]).unwrap();
        }
    }
    tx.commit().unwrap();
    let time = start.elapsed();
    check_updated(&t.path);
    time
}

fn w4_orm() -> Duration {
    let t = TempDb::filled(USERS);
    let time = orm_update(Session::open(&t.path).unwrap());
    check_updated(&t.path);
    time
}

/// W4 through the session, on either database: the products are loaded first; renaming
/// 1,000 of them and committing is timed.
fn orm_update(mut db: Session) -> Duration {
    let mut products = db.all::<Product>().unwrap();
    products.truncate(UPDATES);
    let start = Instant::now();
    for &p in &products {
        let product = &mut db[p];
        product.name = renamed(product.id.value().unwrap());
    }
    db.commit().unwrap();
    start.elapsed()
}

// ----- W6: delete by cascade -------------------------------------------------------------------

fn check_deleted(path: &Path) {
    let c = raw_connection(path);
    let n: i64 = c
        .query_row(
            "SELECT (SELECT count(*) FROM \"user\") + (SELECT count(*) FROM \"product\")",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

/// The user ids, read before the timed part (as the session loads its users).
fn raw_user_ids(c: &rusqlite::Connection) -> Vec<i64> {
    let mut s = c
        .prepare("SELECT \"id\" FROM \"user\" ORDER BY \"id\"")
        .unwrap();
    let ids = s.query_map([], |r| r.get(0)).unwrap();
    ids.map(Result::unwrap).collect()
}

/// Per user, prepared: its products, then the user.
fn w6_raw_per_row() -> Duration {
    let t = TempDb::filled(USERS);
    let mut c = raw_connection(&t.path);
    let ids = raw_user_ids(&c);
    let start = Instant::now();
    let tx = c.transaction().unwrap();
    {
        let mut products = tx
            .prepare_cached("DELETE FROM \"product\" WHERE \"user_id\" = ?1")
            .unwrap();
        let mut user = tx
            .prepare_cached("DELETE FROM \"user\" WHERE \"id\" = ?1")
            .unwrap();
        for id in &ids {
            products.execute([id]).unwrap();
            user.execute([id]).unwrap();
        }
    }
    tx.commit().unwrap();
    let time = start.elapsed();
    check_deleted(&t.path);
    time
}

/// `IN` lists of 500 user ids: the products, then the users.
fn w6_raw_in_lists() -> Duration {
    let t = TempDb::filled(USERS);
    let mut c = raw_connection(&t.path);
    let ids = raw_user_ids(&c);
    let start = Instant::now();
    let tx = c.transaction().unwrap();
    for chunk in ids.chunks(500) {
        let list = vec!["?"; chunk.len()].join(", ");
        let params = rusqlite::params_from_iter(chunk);
        tx.prepare_cached(&format!(
            "DELETE FROM \"product\" WHERE \"user_id\" IN ({list})"
        ))
        .unwrap()
        .execute(params)
        .unwrap();
        let params = rusqlite::params_from_iter(chunk);
        tx.prepare_cached(&format!("DELETE FROM \"user\" WHERE \"id\" IN ({list})"))
            .unwrap()
            .execute(params)
            .unwrap();
    }
    tx.commit().unwrap();
    let time = start.elapsed();
    check_deleted(&t.path);
    time
}

/// The faster of the two hand-written ways.
fn w6_raw() -> Duration {
    w6_raw_per_row().min(w6_raw_in_lists())
}

fn w6_orm() -> Duration {
    let t = TempDb::filled(USERS);
    let time = orm_delete(Session::open(&t.path).unwrap());
    check_deleted(&t.path);
    time
}

/// W6 through the session, on either database: the users are loaded first (not their
/// products); deleting them and committing, which deletes their products by cascade, is timed.
fn orm_delete(mut db: Session) -> Duration {
    let users = db.all::<User>().unwrap();
    let start = Instant::now();
    for &u in &users {
        db.delete(u).unwrap();
    }
    db.commit().unwrap();
    start.elapsed()
}

// ----- running --------------------------------------------------------------------------------

// ----- L1: lazy loads in a full session ----------------------------------------------------------

/// Loads every user and product, then each user's products through `load`; returns the time
/// per `load`, which must not grow with the number of objects the session holds.
fn l1_orm(t: &TempDb, users: usize) -> Duration {
    let mut db = Session::open(&t.path).unwrap();
    let all = db.all::<User>().unwrap();
    db.all::<Product>().unwrap();
    let start = Instant::now();
    let mut children = 0;
    for &u in &all {
        children += db.load(u, User::products).unwrap().len();
    }
    let time = start.elapsed();
    assert_eq!(children, users * PRODUCTS_PER_USER);
    time / users as u32
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs both sides `rounds` times, interleaved, and prints the medians and their ratio.
fn compare(
    name: &str,
    rounds: usize,
    mut raw: impl FnMut() -> Duration,
    mut orm: impl FnMut() -> Duration,
) -> f64 {
    let (mut r, mut o) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        r.push(raw());
        o.push(orm());
    }
    let (r, o) = (median(r), median(o));
    let ratio = o.as_secs_f64() / r.as_secs_f64();
    println!(
        "{name:<34} raw {:>11}   orm {:>11}   orm/raw {ratio:.2}",
        ms(r),
        ms(o)
    );
    ratio
}

/// Peak resident memory of a child process running one side of W1 at `users` users: this
/// binary again, with `--w5-child`.
fn w5_child(side: &str, users: usize) -> (Duration, u64, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--w5-child", side, &users.to_string()])
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    (Duration::from_nanos(v[0]), v[1], v[2])
}

/// `VmHWM` (peak) or `VmRSS` (current) of this process, in bytes.
fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn run_w5_child(side: &str, users: usize) {
    let t = TempDb::new();
    let before = memory("VmRSS:");
    let time = match side {
        "raw" => {
            let mut c = raw_connection(&t.path);
            let start = Instant::now();
            raw_insert(&mut c, users);
            start.elapsed()
        }
        _ => {
            let mut db = Session::open(&t.path).unwrap();
            let start = Instant::now();
            orm_insert(&mut db, users);
            start.elapsed()
        }
    };
    let peak = memory("VmHWM:");
    check_inserted(&t.path, users);
    println!("{} {} {}", time.as_nanos(), peak, before);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--w5-child") {
        run_w5_child(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        profile(&args[i + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 15 };
    if args.iter().any(|a| a == "--reads") {
        run_reads(rounds);
        return;
    }
    if args.iter().any(|a| a == "--w7") {
        // W7 alone, on both databases: `cargo bench --bench workloads -- --w7`.
        w7::run_sqlite(rounds);
        if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
            pg::run_w7(&url, rounds);
        }
        return;
    }
    if args.iter().any(|a| a == "--w6") {
        // W6 alone, on both databases: `cargo bench --bench workloads -- --w6`.
        compare(
            "W6 delete 1,000 users + 10,000 products",
            rounds,
            w6_raw,
            w6_orm,
        );
        if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
            compare(
                "W6 on PostgreSQL",
                rounds,
                || pg::w6_raw(&url),
                || pg::w6_orm(&url),
            );
        }
        return;
    }
    run_sqlite(rounds, quick);
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) => pg::run(&url, rounds),
        Err(_) => println!(
            "\nPostgreSQL workloads skipped; set {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1/test"
        ),
    }
    run_w5(quick);
}

/// W1-W4, W6, W8 and L1 on SQLite.
fn run_sqlite(rounds: usize, quick: bool) {
    println!("SQLite, medians of {rounds} rounds; ratio = ORM time / raw rusqlite time");

    compare(
        "W1 insert 1,000 users × 10 products",
        rounds,
        || w1_raw(USERS),
        || w1_orm(USERS),
    );
    compare(
        "W1 without the index on user_id",
        rounds,
        || w1_raw_on(TempDb::unindexed(), USERS),
        || w1_orm_on(TempDb::unindexed(), USERS),
    );
    let filled = TempDb::filled(USERS);
    let (c, mut warm) = (raw_connection(&filled.path), w2_orm(&filled));
    compare(
        "W2 load users with their products",
        rounds,
        || w2_raw(&c),
        || warm.run(orm_load),
    );
    let keys = random_keys();
    compare(
        "W3 10,000 gets by key",
        rounds,
        || w3_raw(&filled, &keys),
        || w3_orm(&filled, &keys),
    );
    compare("W4 update 1,000 products", rounds, w4_raw, w4_orm);
    compare(
        "W6 delete 1,000 users + 10,000 products",
        rounds,
        w6_raw,
        w6_orm,
    );
    run_w8(rounds);
    w7::run_sqlite(rounds);

    println!("\nL1: `load` of one user's products in a session holding every user and product");
    for scale in [1, 10] {
        let users = USERS * scale;
        let t = TempDb::filled(users);
        let rounds = if quick { 1 } else { 5 };
        let time = median((0..rounds).map(|_| l1_orm(&t, users)).collect());
        println!(
            "  {:>6} users, {:>7} products: {:>7.1} µs per load",
            users,
            users * PRODUCTS_PER_USER,
            time.as_secs_f64() * 1e6
        );
    }
}

/// W5: W1 at scale, each run in a process of its own.
fn run_w5(quick: bool) {
    let scales: &[usize] = if quick { &[1, 10] } else { &[1, 10, 100] };
    let w5_rounds = if quick { 1 } else { 5 };
    println!("\nW5: W1 at scale, each run in its own process; memory = peak RSS growth per object");
    for &scale in scales {
        let users = USERS * scale;
        let objects = (users * (1 + PRODUCTS_PER_USER)) as f64;
        let mut line = format!("  {scale:>3}× ({:>9} objects)", objects as u64);
        let mut times = [Duration::ZERO; 2];
        for (i, side) in ["raw", "orm"].into_iter().enumerate() {
            let runs: Vec<(Duration, u64, u64)> =
                (0..w5_rounds).map(|_| w5_child(side, users)).collect();
            let time = median(runs.iter().map(|r| r.0).collect());
            let grown = runs
                .iter()
                .map(|r| r.1.saturating_sub(r.2))
                .max()
                .unwrap_or(0);
            times[i] = time;
            line += &format!(
                "   {side} {:>11} {:>6.0} B/object",
                ms(time),
                grown as f64 / objects
            );
        }
        line += &format!(
            "   orm/raw {:.2}",
            times[1].as_secs_f64() / times[0].as_secs_f64()
        );
        println!("{line}");
    }
}

/// The same workloads (W1-W4) on PostgreSQL, against hand-written `postgres` crate code:
/// prepared statements in one transaction, `INSERT .. RETURNING` for each user's id.
mod pg {
    use super::*;

    /// A fresh schema holding the workload's tables, dropped on drop.
    pub struct PgDb {
        admin: String,
        schema: String,
        pub url: String,
    }

    impl PgDb {
        pub fn new(admin: &str) -> PgDb {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let schema = format!(
                "orm_bench_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let mut c = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
            c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
            let sep = if admin.contains('?') { '&' } else { '?' };
            let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
            let mut db = Session::connect(&url).expect("connect session");
            db.create_all::<(User, Product)>().expect("create tables");
            PgDb {
                admin: admin.to_owned(),
                schema,
                url,
            }
        }

        pub fn filled(admin: &str, users: usize) -> PgDb {
            let t = PgDb::new(admin);
            raw_insert(&mut t.raw(), users);
            t
        }

        pub fn raw(&self) -> postgres::Client {
            postgres::Client::connect(&self.url, postgres::NoTls).expect("connect raw")
        }
    }

    impl Drop for PgDb {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
            }
        }
    }

    pub fn raw_insert(c: &mut postgres::Client, users: usize) {
        let mut tx = c.transaction().unwrap();
        let user = tx
            .prepare("INSERT INTO \"user\" (\"name\") VALUES ($1) RETURNING \"id\"")
            .unwrap();
        let product = tx
            .prepare("INSERT INTO \"product\" (\"name\", \"user_id\") VALUES ($1, $2)")
            .unwrap();
        for u in 0..users {
            let id: i64 = tx.query_one(&user, &[&user_name(u)]).unwrap().get(0);
            for p in 0..PRODUCTS_PER_USER {
                tx.execute(&product, &[&product_name(u, p), &id]).unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn check_inserted(t: &PgDb, users: usize) {
        let row = t
            .raw()
            .query_one(
                "SELECT (SELECT count(*) FROM \"user\"), (SELECT count(*) FROM \"product\"), \
                 (SELECT count(*) FROM \"product\" p JOIN \"user\" u ON u.\"id\" = p.\"user_id\" \
                  AND p.\"name\" LIKE 'product ' || substr(u.\"name\", 6) || '-%')",
                &[],
            )
            .unwrap();
        let (u, p, m): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let expected = (users * PRODUCTS_PER_USER) as i64;
        assert_eq!((u, p, m), (users as i64, expected, expected));
    }

    pub fn w1_raw(admin: &str) -> Duration {
        let t = PgDb::new(admin);
        let mut c = t.raw();
        let start = Instant::now();
        raw_insert(&mut c, USERS);
        let time = start.elapsed();
        check_inserted(&t, USERS);
        time
    }

    pub fn w1_orm(admin: &str) -> Duration {
        let t = PgDb::new(admin);
        let mut db = Session::connect(&t.url).unwrap();
        let start = Instant::now();
        orm_insert(&mut db, USERS);
        let time = start.elapsed();
        drop(db);
        check_inserted(&t, USERS);
        time
    }

    fn products<Q: postgres::ToStatement + ?Sized>(
        c: &mut postgres::Client,
        query: &Q,
    ) -> Vec<RawProduct> {
        c.query(query, &[])
            .unwrap()
            .iter()
            .map(|r| RawProduct {
                id: r.get(0),
                name: r.get(1),
                user_id: r.get(2),
            })
            .collect()
    }

    pub fn w2_raw(c: &mut postgres::Client) -> Duration {
        let users_sql = c.prepare(USERS_SQL).unwrap();
        let products_sql = c.prepare(PRODUCTS_SQL).unwrap();
        let start = Instant::now();
        let users: Vec<RawUser> = c
            .query(&users_sql, &[])
            .unwrap()
            .iter()
            .map(|r| RawUser {
                id: r.get(0),
                name: r.get(1),
            })
            .collect();
        let loaded = group(users, products(c, &products_sql), |p| p.user_id);
        let time = start.elapsed();
        check_raw_load(&loaded);
        time
    }

    pub fn w2_orm(t: &PgDb) -> Warm {
        Warm::new(orm_core::backend::connect(&t.url).unwrap())
    }

    pub fn w3_raw(t: &PgDb, keys: &[i64]) -> Duration {
        let mut c = t.raw();
        let get = c
            .prepare("SELECT \"id\", \"name\" FROM \"user\" WHERE \"id\" = $1")
            .unwrap();
        let start = Instant::now();
        let found: Vec<RawUser> = keys
            .iter()
            .map(|k| {
                let r = c.query_one(&get, &[k]).unwrap();
                RawUser {
                    id: r.get(0),
                    name: r.get(1),
                }
            })
            .collect();
        let time = start.elapsed();
        for (u, &k) in found.iter().zip(keys) {
            assert_eq!((u.id, &u.name), (k, &user_name(k as usize - 1)));
        }
        time
    }

    pub fn w3_orm(t: &PgDb, keys: &[i64]) -> Duration {
        orm_gets(
            Box::new(orm_core::PostgresConnection::connect(&t.url).unwrap()),
            keys,
        )
    }

    fn check_updated(t: &PgDb) {
        let n: i64 = t
            .raw()
            .query_one(
                "SELECT count(*) FROM \"product\" WHERE \"name\" = 'renamed ' || \"id\"",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, UPDATES as i64);
    }

    pub fn w4_raw(admin: &str) -> Duration {
        let t = PgDb::filled(admin, USERS);
        let mut c = t.raw();
        let mut products = products(&mut c, PRODUCTS_SQL);
        assert_eq!(products[0].user_id, 1);
        let start = Instant::now();
        let mut tx = c.transaction().unwrap();
        let update = tx
            .prepare("UPDATE \"product\" SET \"name\" = $1 WHERE \"id\" = $2")
            .unwrap();
        for p in &mut products[..UPDATES] {
            p.name = renamed(p.id);
            tx.execute(&update, &[&p.name, &p.id]).unwrap();
        }
        tx.commit().unwrap();
        let time = start.elapsed();
        check_updated(&t);
        time
    }

    pub fn w4_orm(admin: &str) -> Duration {
        let t = PgDb::filled(admin, USERS);
        let time = orm_update(Session::connect(&t.url).unwrap());
        check_updated(&t);
        time
    }

    /// W2 and W8 on the server at `admin`.
    pub fn run_reads(admin: &str, rounds: usize) {
        println!("\nPostgreSQL ({admin}), medians of {rounds} rounds");
        let filled = PgDb::filled(admin, USERS);
        let (mut c, mut warm) = (filled.raw(), w2_orm(&filled));
        compare(
            "W2 load users with their products",
            rounds,
            || w2_raw(&mut c),
            || warm.run(orm_load),
        );
        run_w8(admin, rounds);
    }

    /// W7 on the server at `admin`, each round on fresh tables.
    pub fn run_w7(admin: &str, rounds: usize) {
        let fresh = || {
            let t = PgDb::new(admin);
            Session::connect(&t.url)
                .unwrap()
                .create_all::<(w7::Post, w7::Tag)>()
                .unwrap();
            t
        };
        let (mut raw, mut orm) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(w7::pg_raw(&mut fresh().raw()));
            let t = fresh();
            orm.push(w7::orm(|| Session::connect(&t.url).unwrap()));
        }
        w7::report(&raw, &orm);
    }

    /// W8 on the server at `admin`.
    fn run_w8(admin: &str, rounds: usize) {
        let t = PgDb::new(admin);
        w8::fill(&mut Session::connect(&t.url).unwrap());
        let (mut c, mut warm) = (t.raw(), w2_orm(&t));
        compare(
            "W8 users > posts > comments, 2 levels",
            rounds,
            || w8::pg_raw(&mut c),
            || warm.run(w8::orm),
        );
    }

    /// Runs W1-W4 on the server at `admin`.
    pub fn run(admin: &str, rounds: usize) {
        println!(
            "\nPostgreSQL ({admin}), medians of {rounds} rounds; ratio = ORM / raw postgres crate"
        );
        compare(
            "W1 insert 1,000 users × 10 products",
            rounds,
            || w1_raw(admin),
            || w1_orm(admin),
        );
        let filled = PgDb::filled(admin, USERS);
        let (mut c, mut warm) = (filled.raw(), w2_orm(&filled));
        compare(
            "W2 load users with their products",
            rounds,
            || w2_raw(&mut c),
            || warm.run(orm_load),
        );
        let keys = random_keys();
        compare(
            "W3 10,000 gets by key",
            rounds,
            || w3_raw(&filled, &keys),
            || w3_orm(&filled, &keys),
        );
        compare(
            "W4 update 1,000 products",
            rounds,
            || w4_raw(admin),
            || w4_orm(admin),
        );
        compare(
            "W6 delete 1,000 users + 10,000 products",
            rounds,
            || w6_raw(admin),
            || w6_orm(admin),
        );
        run_w8(admin, rounds);
        run_w7(admin, rounds);
    }

    fn check_deleted(t: &PgDb) {
        let row = t
            .raw()
            .query_one(
                "SELECT (SELECT count(*) FROM \"user\") + (SELECT count(*) FROM \"product\")",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 0);
    }

    /// `IN` lists as arrays (`= ANY($1)`), the faster way on PostgreSQL: the products of
    /// all users, then the users.
    pub fn w6_raw(admin: &str) -> Duration {
        let t = PgDb::filled(admin, USERS);
        let mut c = t.raw();
        let ids: Vec<i64> = c
            .query("SELECT \"id\" FROM \"user\" ORDER BY \"id\"", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let start = Instant::now();
        let mut tx = c.transaction().unwrap();
        tx.execute(
            "DELETE FROM \"product\" WHERE \"user_id\" = ANY($1)",
            &[&ids],
        )
        .unwrap();
        tx.execute("DELETE FROM \"user\" WHERE \"id\" = ANY($1)", &[&ids])
            .unwrap();
        tx.commit().unwrap();
        let time = start.elapsed();
        check_deleted(&t);
        time
    }

    pub fn w6_orm(admin: &str) -> Duration {
        let t = PgDb::filled(admin, USERS);
        let time = orm_delete(Session::connect(&t.url).unwrap());
        check_deleted(&t);
        time
    }
}

/// W8, the shape of Diesel's association benchmark: 100 users, each with 10 posts, each with
/// 10 comments, loaded with both levels. The raw side reads the three tables with prepared
/// statements and groups the rows by hand; the session runs one query with a nested eager
/// load.
mod w8 {
    use super::*;

    #[derive(Model, Debug)]
    #[model(table = "w8_user")]
    pub struct Member {
        #[key]
        id: Id<Member>,
        name: String,
        hair_color: Option<String>,
        #[has_many(back_populates = "user")]
        posts: HasMany<Article>,
    }

    #[derive(Model, Debug)]
    #[model(table = "w8_post")]
    pub struct Article {
        #[key]
        id: Id<Article>,
        title: String,
        body: Option<String>,
        #[belongs_to(back_populates = "posts")]
        user: Id<Member>,
        #[has_many(back_populates = "post")]
        comments: HasMany<Remark>,
    }

    #[derive(Model, Debug)]
    #[model(table = "w8_comment")]
    pub struct Remark {
        #[key]
        id: Id<Remark>,
        text: String,
        #[belongs_to(back_populates = "comments")]
        post: Id<Article>,
    }

    pub const MEMBERS: usize = 100;
    pub const POSTS: usize = 10;
    pub const COMMENTS: usize = 10;

    /// Creates the tables and fills them through a session.
    pub fn fill(db: &mut Session) {
        db.create_all::<(Member, Article, Remark)>().unwrap();
        for u in 0..MEMBERS {
            let hair = (u % 2 == 0).then(|| "black".to_owned());
            let m = db.add(Member::new(format!("user {u}"), hair));
            for p in 0..POSTS {
                let a = db.add(Article::new(format!("post {u}.{p}"), None, m));
                for c in 0..COMMENTS {
                    db.add(Remark::new(format!("comment {u}.{p}.{c}"), a));
                }
            }
        }
        db.commit().unwrap();
    }

    pub const USERS_SQL: &str =
        "SELECT \"id\", \"name\", \"hair_color\" FROM \"w8_user\" ORDER BY \"id\"";
    pub const POSTS_SQL: &str =
        "SELECT \"id\", \"title\", \"body\", \"user_id\" FROM \"w8_post\" ORDER BY \"id\"";
    pub const COMMENTS_SQL: &str =
        "SELECT \"id\", \"text\", \"post_id\" FROM \"w8_comment\" ORDER BY \"id\"";

    pub struct RawPost {
        pub id: i64,
        pub title: String,
        pub body: Option<String>,
        pub user_id: i64,
    }

    pub struct RawComment {
        pub id: i64,
        pub text: String,
        pub post_id: i64,
    }

    /// Users with their posts with their comments, grouped by hand.
    pub type Tree = Vec<(RawUser, Vec<(RawPost, Vec<RawComment>)>)>;

    pub fn tree(users: Vec<RawUser>, posts: Vec<RawPost>, comments: Vec<RawComment>) -> Tree {
        let at: std::collections::HashMap<i64, usize> =
            posts.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut posts: Vec<(RawPost, Vec<RawComment>)> =
            posts.into_iter().map(|p| (p, Vec::new())).collect();
        for c in comments {
            if let Some(&i) = at.get(&c.post_id) {
                posts[i].1.push(c);
            }
        }
        group(users, posts, |(p, _)| p.user_id)
    }

    pub fn check_tree(tree: &Tree) {
        assert_eq!(tree.len(), MEMBERS);
        for (u, posts) in tree {
            assert_eq!(posts.len(), POSTS);
            for (p, comments) in posts {
                assert_eq!(p.user_id, u.id);
                assert!(p.body.is_none() && !p.title.is_empty());
                assert_eq!(comments.len(), COMMENTS);
                assert!(comments.iter().all(|c| c.post_id == p.id && c.id > 0));
            }
        }
        let last = &tree[MEMBERS - 1].1[POSTS - 1].1[COMMENTS - 1];
        assert_eq!(
            last.text,
            format!("comment {}.{}.{}", MEMBERS - 1, POSTS - 1, COMMENTS - 1)
        );
    }

    /// Every row of a query, each made by `f`.
    fn read_all<T>(
        c: &rusqlite::Connection,
        sql: &str,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        let mut stmt = c.prepare_cached(sql).unwrap();
        let rows = stmt.query_map([], f).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    pub fn raw(c: &rusqlite::Connection) -> Duration {
        let start = Instant::now();
        let users = read_all(c, USERS_SQL, |r| {
            Ok(RawUser {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        });
        let posts = read_all(c, POSTS_SQL, |r| {
            Ok(RawPost {
                id: r.get(0)?,
                title: r.get(1)?,
                body: r.get(2)?,
                user_id: r.get(3)?,
            })
        });
        let comments = read_all(c, COMMENTS_SQL, |r| {
            Ok(RawComment {
                id: r.get(0)?,
                text: r.get(1)?,
                post_id: r.get(2)?,
            })
        });
        let tree = tree(users, posts, comments);
        let time = start.elapsed();
        check_tree(&tree);
        time
    }

    /// The session's side, on either database: the query timed, then the objects checked.
    pub fn orm(db: &mut Session) -> Duration {
        let start = Instant::now();
        let users = db
            .query::<Member>()
            .with(Member::posts.with(Article::comments))
            .all()
            .unwrap();
        let time = start.elapsed();
        assert_eq!(users.len(), MEMBERS);
        for &u in &users {
            assert_eq!(db[u].posts.len(), POSTS);
            for &p in &db[u].posts {
                assert_eq!(db[p].user, db[u].id);
                assert_eq!(db[p].comments.len(), COMMENTS);
            }
        }
        let last_post = db[users[MEMBERS - 1]].posts.as_slice()[POSTS - 1];
        let last = db[last_post].comments.as_slice()[COMMENTS - 1];
        assert_eq!(
            db[last].text,
            format!("comment {}.{}.{}", MEMBERS - 1, POSTS - 1, COMMENTS - 1)
        );
        assert!(db[users[0]].hair_color.is_some());
        time
    }

    /// The raw side on PostgreSQL.
    pub fn pg_raw(c: &mut postgres::Client) -> Duration {
        let (u, p, k) = (
            c.prepare(USERS_SQL).unwrap(),
            c.prepare(POSTS_SQL).unwrap(),
            c.prepare(COMMENTS_SQL).unwrap(),
        );
        let start = Instant::now();
        let users = c
            .query(&u, &[])
            .unwrap()
            .iter()
            .map(|r| RawUser {
                id: r.get(0),
                name: r.get(1),
            })
            .collect();
        let posts = c
            .query(&p, &[])
            .unwrap()
            .iter()
            .map(|r| RawPost {
                id: r.get(0),
                title: r.get(1),
                body: r.get(2),
                user_id: r.get(3),
            })
            .collect();
        let comments = c
            .query(&k, &[])
            .unwrap()
            .iter()
            .map(|r| RawComment {
                id: r.get(0),
                text: r.get(1),
                post_id: r.get(2),
            })
            .collect();
        let tree = tree(users, posts, comments);
        let time = start.elapsed();
        check_tree(&tree);
        time
    }
}

/// The read workloads alone (W2 and W8, both databases): `-- --reads`.
fn run_reads(rounds: usize) {
    let filled = TempDb::filled(USERS);
    let (c, mut warm) = (raw_connection(&filled.path), w2_orm(&filled));
    compare(
        "W2 load users with their products",
        rounds,
        || w2_raw(&c),
        || warm.run(orm_load),
    );
    run_w8(rounds);
    if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
        pg::run_reads(&url, rounds);
    }
}

/// W8 on SQLite.
fn run_w8(rounds: usize) {
    let t = TempDb::new();
    w8::fill(&mut Session::open(&t.path).unwrap());
    let (c, mut warm) = (raw_connection(&t.path), w2_orm(&t));
    compare(
        "W8 users > posts > comments, 2 levels",
        rounds,
        || w8::raw(&c),
        || warm.run(w8::orm),
    );
}

/// `--profile <workload> <side> [n]`: one side of one workload, `n` times (for
/// `valgrind --tool=callgrind` or perf).
fn profile(args: &[String]) {
    // One side of one workload, once: for `valgrind --tool=callgrind`.
    let (workload, side) = (args[0].as_str(), args[1].as_str());
    let repeat: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1);
    if workload == "w2pg" {
        let url = std::env::var(POSTGRES_URL_VAR).expect("the PostgreSQL URL variable");
        let filled = pg::PgDb::filled(&url, USERS);
        let (mut c, mut warm) = (filled.raw(), pg::w2_orm(&filled));
        let time: Duration = (0..repeat)
            .map(|_| match side {
                "raw" => pg::w2_raw(&mut c),
                _ => warm.run(orm_load),
            })
            .sum();
        println!("{workload} {side}: {}", ms(time));
        return;
    }
    let filled = TempDb::filled(USERS);
    let keys = random_keys();
    let w8_db = TempDb::new();
    w8::fill(&mut Session::open(&w8_db.path).unwrap());
    let mut time = Duration::ZERO;
    for _ in 0..repeat {
        time += match (workload, side) {
            ("w1", "raw") => w1_raw(USERS),
            ("w1u", "raw") => w1_raw_on(TempDb::unindexed(), USERS),
            ("w1u", _) => w1_orm_on(TempDb::unindexed(), USERS),
            ("w1", _) => w1_orm(USERS),
            ("w7", "raw") => {
                let (w, r) = w7::raw(&w7::sqlite_db());
                w + r
            }
            ("w7", _) => {
                let t = w7::sqlite_db();
                let (w, r) = w7::orm(|| Session::open(&t.path).unwrap());
                w + r
            }
            ("w2", "raw") => w2_raw(&raw_connection(&filled.path)),
            ("w2", _) => w2_orm(&filled).run(orm_load),
            ("w3", "raw") => w3_raw(&filled, &keys),
            ("w3", _) => w3_orm(&filled, &keys),
            ("w4", "raw") => w4_raw(),
            ("w4", _) => w4_orm(),
            ("w8", "raw") => w8::raw(&raw_connection(&w8_db.path)),
            ("w8", _) => w2_orm(&w8_db).run(w8::orm),
            ("w6", "raw") => w6_raw(),
            ("w6", "raw-rows") => w6_raw_per_row(),
            ("w6", "raw-in") => w6_raw_in_lists(),
            _ => w6_orm(),
        };
    }
    println!("{workload} {side}: {}", ms(time));
}
