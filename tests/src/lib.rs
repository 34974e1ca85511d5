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

/// A database file in a fresh temporary directory, removed on drop.
pub struct TestDb {
    dir: PathBuf,
    /// The database file.
    pub path: PathBuf,
}

impl TestDb {
    /// A new, empty database file.
    pub fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "orm-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join("test.db");
        TestDb { dir, path }
    }

    /// A session on the file, with every test model's table created and statements logged.
    pub fn session(&self) -> Session {
        let mut db = Session::open(&self.path).expect("open session");
        db.create_all::<All>().expect("create tables");
        db.log_statements(true);
        db
    }

    /// A plain rusqlite connection to the same file, to read back what was committed.
    pub fn raw(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).expect("open raw");
        c.pragma_update(None, "foreign_keys", true).unwrap();
        c
    }

    /// Rows of a query, each as strings (NULL as "NULL").
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let c = self.raw();
        let mut stmt = c.prepare(sql).expect("prepare");
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => v.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
                    })
                })
                .collect()
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// One integer from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.raw().query_row(sql, [], |r| r.get(0)).expect("count")
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
