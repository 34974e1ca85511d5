//! Models and helpers shared by the integration tests.

use orm_core::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The seed story's parent.
#[derive(Model, Debug)]
#[model(table = "user")]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
}

/// The seed story's child; `name` is unique so tests can make a flush fail.
#[derive(Model, Debug)]
#[model(table = "product")]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[column(unique)]
    pub name: String,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
}

/// A product not attached to a user yet.
pub fn product(name: &str) -> Product {
    Product::new(name, Id::unset())
}

/// A self-referential tree.
#[derive(Model, Debug)]
pub struct Category {
    #[key]
    pub id: Id<Category>,
    pub name: String,
    #[belongs_to(back_populates = "children")]
    pub parent: Option<Id<Category>>,
    #[has_many(back_populates = "parent")]
    pub children: HasMany<Category>,
}

/// A team has a nullable captain, who is a member: a cycle the flush breaks.
#[derive(Model, Debug)]
pub struct Team {
    #[key]
    pub id: Id<Team>,
    pub name: String,
    #[belongs_to]
    pub captain: Option<Id<Member>>,
    #[has_many(back_populates = "team")]
    pub members: HasMany<Member>,
}

/// A member of a team (required).
#[derive(Model, Debug)]
pub struct Member {
    #[key]
    pub id: Id<Member>,
    pub name: String,
    #[belongs_to(back_populates = "members")]
    pub team: Id<Team>,
}

/// Half of a cycle of required keys.
#[derive(Model, Debug)]
pub struct Egg {
    #[key]
    pub id: Id<Egg>,
    #[belongs_to]
    pub chicken: Id<Chicken>,
}

/// The other half.
#[derive(Model, Debug)]
pub struct Chicken {
    #[key]
    pub id: Id<Chicken>,
    #[belongs_to]
    pub egg: Id<Egg>,
}

/// A note with a renamed, nullable column and an optional author without a back-reference.
#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    #[column(name = "body_text", index)]
    pub body: Option<String>,
    #[belongs_to]
    pub author: Option<Id<User>>,
}

/// A natural key the user assigns.
#[derive(Model, Debug)]
pub struct Country {
    #[key]
    pub code: String,
    pub name: String,
    pub population: Option<u32>,
}

/// Cents stored as an integer through a user `ColumnType`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cents(pub i64);

impl orm_core::ColumnType for Cents {
    const SQL_TYPE: orm_core::SqlType = orm_core::SqlType::I64;
    fn to_sql(&self) -> orm_core::ValueRef<'_> {
        orm_core::ValueRef::I64(self.0)
    }
    fn from_sql(value: orm_core::ValueRef<'_>) -> Result<Self, orm_core::ConversionError> {
        i64::from_sql(value).map(Cents)
    }
}

/// Every supported column type.
#[derive(Model, Debug, Clone, PartialEq)]
pub struct Everything {
    #[key]
    pub id: Id<Everything>,
    pub a_i16: i16,
    pub a_i32: i32,
    pub a_i64: i64,
    pub a_u8: u8,
    pub a_u16: u16,
    pub a_u32: u32,
    pub a_f32: f32,
    pub a_f64: f64,
    pub a_bool: bool,
    pub a_string: String,
    pub a_bytes: Vec<u8>,
    pub o_i16: Option<i16>,
    pub o_i32: Option<i32>,
    pub o_i64: Option<i64>,
    pub o_u8: Option<u8>,
    pub o_u16: Option<u16>,
    pub o_u32: Option<u32>,
    pub o_f32: Option<f32>,
    pub o_f64: Option<f64>,
    pub o_bool: Option<bool>,
    pub o_string: Option<String>,
    pub o_bytes: Option<Vec<u8>>,
    pub price: Cents,
}

/// Every model above, for `create_all`.
pub type All = (
    User,
    Product,
    Category,
    Team,
    Member,
    Note,
    Country,
    Everything,
);

/// The environment variable holding the PostgreSQL URL the tests run against.
pub const POSTGRES_URL_VAR: &str = "ORM_TEST_POSTGRES_URL";

/// The database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema on the PostgreSQL server named by [`POSTGRES_URL_VAR`].
    Postgres,
}

enum Place {
    Sqlite { dir: PathBuf, path: PathBuf },
    Postgres { admin: String, schema: String },
}

/// One test's own database: a SQLite file, or a PostgreSQL schema dropped at the end.
pub struct TestDb {
    place: Place,
}

fn unique_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// A new SQLite database file in a temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("orm-test-{}", unique_name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join("test.db");
        TestDb {
            place: Place::Sqlite { dir, path },
        }
    }

    /// A new, empty schema on the PostgreSQL server at `$ORM_TEST_POSTGRES_URL`, or `None`
    /// (saying once on stderr how to run these tests) when the variable is not set.
    ///
    /// # Panics
    /// When the variable is set but the server cannot be reached: a test that was asked to
    /// run on PostgreSQL must not pass without doing so.
    pub fn postgres() -> Option<TestDb> {
        let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                // Written to the process's stderr directly, past the test harness's capture.
                let _ = writeln!(
                    std::io::stderr(),
                    "note: PostgreSQL tests skipped; to run them set \
                     {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1/test"
                );
            });
            return None;
        };
        let schema = format!("orm_test_{}", unique_name());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={admin}: cannot connect: {e}"));
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("create test schema");
        Some(TestDb {
            place: Place::Postgres { admin, schema },
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite { .. } => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The URL to give `Session::connect`: the SQLite file, or the server with this test's
    /// schema as the search path.
    pub fn url(&self) -> String {
        match &self.place {
            Place::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            Place::Postgres { admin, schema } => {
                let sep = if admin.contains('?') { '&' } else { '?' };
                format!("{admin}{sep}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// The SQLite file (SQLite only).
    ///
    /// # Panics
    /// On PostgreSQL.
    pub fn path(&self) -> &std::path::Path {
        match &self.place {
            Place::Sqlite { path, .. } => path,
            Place::Postgres { .. } => panic!("path() is for SQLite tests"),
        }
    }

    /// `sql` with SQLite's `?N` placeholders written as this backend writes them, to compare
    /// with the statement log.
    pub fn sql(&self, sql: &str) -> String {
        match self.backend() {
            Backend::Sqlite => sql.to_owned(),
            Backend::Postgres => sql.replace('?', "$"),
        }
    }

    /// A session on this database, without creating tables.
    pub fn open(&self) -> Session {
        Session::connect(&self.url()).expect("connect session")
    }

    /// A session on this database with every test table created and the statement log on.
    pub fn session(&self) -> Session {
        let mut db = self.open();
        db.create_all::<All>().expect("create tables");
        db.log_statements(true);
        db
    }

    /// A plain connection of the driver, beside the session.
    pub fn raw(&self) -> Raw {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let c = rusqlite::Connection::open(path).expect("open raw");
                c.pragma_update(None, "foreign_keys", true).unwrap();
                Raw::Sqlite(c)
            }
            Place::Postgres { .. } => {
                let mut c =
                    postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect raw");
                // Fail rather than wait forever behind a session's lock.
                c.batch_execute("SET lock_timeout = '2s'").unwrap();
                Raw::Postgres(Box::new(c))
            }
        }
    }

    /// Runs statements on a plain connection, panicking on error.
    pub fn exec(&self, sql: &str) {
        self.raw()
            .exec(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows of a query on a plain connection, each value as text (`NULL` for null,
    /// booleans as `1`/`0` on both backends, bytes as a list).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.raw().rows(sql)
    }

    /// The single integer a query returns (a count, say).
    pub fn count(&self, sql: &str) -> i64 {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "{sql}: expected one row");
        rows[0][0]
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: not an integer"))
    }

    /// The names of this database's tables, sorted.
    pub fn tables(&self) -> Vec<String> {
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            Backend::Postgres => {
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        self.rows(sql)
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect()
    }

    /// The names of the indexes on `table` other than those of its key and unique columns,
    /// sorted.
    pub fn indexes(&self, table: &str) -> Vec<String> {
        let sql = match self.backend() {
            Backend::Sqlite => format!(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' \
                 AND sql IS NOT NULL ORDER BY name"
            ),
            Backend::Postgres => format!(
                "SELECT i.relname::text FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE n.nspname = current_schema() AND t.relname = '{table}' \
                 AND NOT x.indisunique ORDER BY 1"
            ),
        };
        self.rows(&sql)
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.place {
            Place::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { admin, schema } => {
                if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }
        }
    }
}

/// A plain driver connection, for checking what the session wrote and writing behind its back.
pub enum Raw {
    /// rusqlite, with foreign keys on.
    Sqlite(rusqlite::Connection),
    /// The `postgres` crate, with the test's schema as the search path.
    Postgres(Box<postgres::Client>),
}

impl Raw {
    /// Runs statements (no parameters), returning the driver's message on error.
    pub fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Raw::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Raw::Postgres(c) => c.batch_execute(sql).map_err(|e| e.to_string()),
        }
    }

    /// The rows of a query, each value as text, as [`TestDb::rows`] describes.
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<String>> {
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            use rusqlite::types::ValueRef as V;
                            Ok(match r.get_ref(i)? {
                                V::Null => "NULL".to_owned(),
                                V::Integer(v) => v.to_string(),
                                V::Real(v) => v.to_string(),
                                V::Text(t) => String::from_utf8_lossy(t).into(),
                                V::Blob(b) => format!("{b:?}"),
                            })
                        })
                        .collect()
                })
                .and_then(|rows| rows.collect())
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Raw::Postgres(c) => {
                use postgres::types::Type;
                let rows = c.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                fn text<T: ToString>(v: Option<T>) -> String {
                                    v.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
                                }
                                let ty = r.columns()[i].type_().clone();
                                match ty {
                                    Type::BOOL => text(r.get::<_, Option<bool>>(i).map(i32::from)),
                                    Type::INT2 => text(r.get::<_, Option<i16>>(i)),
                                    Type::INT4 => text(r.get::<_, Option<i32>>(i)),
                                    Type::INT8 => text(r.get::<_, Option<i64>>(i)),
                                    Type::FLOAT4 => text(r.get::<_, Option<f32>>(i).map(f64::from)),
                                    Type::FLOAT8 => text(r.get::<_, Option<f64>>(i)),
                                    Type::BYTEA => r
                                        .get::<_, Option<Vec<u8>>>(i)
                                        .map_or_else(|| "NULL".to_owned(), |b| format!("{b:?}")),
                                    _ => text(r.get::<_, Option<String>>(i)),
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }
}

/// Writes each test once and runs it on SQLite and on PostgreSQL: every
/// `fn name(t: &TestDb) -> orm_core::Result<()> { .. }` becomes a module `name` with the tests
/// `name::sqlite` and `name::postgres` (which passes without running when
/// `$ORM_TEST_POSTGRES_URL` is not set, after saying so).
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$attr:meta])* fn $name:ident($t:ident: &TestDb) -> $ret:ty $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                $(#[$attr])*
                fn run($t: &$crate::TestDb) -> $ret $body

                #[test]
                fn sqlite() -> $ret {
                    run(&$crate::TestDb::sqlite())
                }

                #[test]
                fn postgres() -> $ret {
                    match $crate::TestDb::postgres() {
                        Some(t) => run(&t),
                        None => Ok(()),
                    }
                }
            }
        )*
    };
}

/// Like [`backend_tests!`], with attributes for each backend's test, so that a test can be
/// `#[ignore = ".."]` on one backend only:
/// `#[sqlite()] #[postgres(ignore = "..")] fn name(t: &TestDb) -> .. { .. }`.
#[macro_export]
macro_rules! bug_tests {
    ($(
        $(#[doc = $doc:literal])*
        #[sqlite($($sa:meta),*)]
        #[postgres($($pa:meta),*)]
        fn $name:ident($t:ident: &TestDb) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn run($t: &$crate::TestDb) -> $ret $body

                #[test]
                $(#[$sa])*
                fn sqlite() -> $ret {
                    run(&$crate::TestDb::sqlite())
                }

                #[test]
                $(#[$pa])*
                fn postgres() -> $ret {
                    match $crate::TestDb::postgres() {
                        Some(t) => run(&t),
                        None => Ok(()),
                    }
                }
            }
        )*
    };
}

/// The INSERT/UPDATE/DELETE statements logged since the last call, as SQL text.
pub fn writes(db: &mut Session) -> Vec<String> {
    db.take_statements()
        .into_iter()
        .map(|s| s.sql)
        .filter(|s| s.starts_with("INSERT") || s.starts_with("UPDATE") || s.starts_with("DELETE"))
        .collect()
}

/// `rows` of strings, for comparing with `TestDb::rows`.
pub fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// A deterministic proptest runner of `cases` cases (or `$PROPTEST_CASES`), and that count:
/// the same sequences every run, no persistence file.
pub fn runner(cases: u32) -> (proptest::test_runner::TestRunner, u32) {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        max_shrink_iters: 1000,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    (TestRunner::new_with_rng(config, rng), cases)
}
