//! Creating and dropping tables: order, clauses, quoting, and models outside the set.

use orm_core::prelude::*;
use orm_tests::*;

fn table_sql(t: &TestDb, name: &str) -> String {
    t.rows(&format!(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
    ))
    .into_iter()
    .next()
    .map(|r| r[0].clone())
    .unwrap_or_default()
}

#[test]
fn creates_parents_first_with_all_clauses() -> orm_core::Result<()> {
    let t = TestDb::new();
    let mut db = Session::open(&t.path)?;
    db.log_statements(true);
    // Children listed first: the session still creates the parent first.
    db.create_all::<(Product, User)>()?;
    let creates: Vec<String> = db
        .take_statements()
        .into_iter()
        .map(|s| s.sql)
        .filter(|s| s.starts_with("CREATE TABLE"))
        .collect();
    assert_eq!(creates.len(), 2);
    assert!(creates[0].contains("\"user\""), "{creates:?}");
    assert!(creates[1].contains("\"product\""), "{creates:?}");
    let product = table_sql(&t, "product");
    assert!(product.contains("\"id\" INTEGER PRIMARY KEY"), "{product}");
    assert!(
        product.contains("\"name\" TEXT NOT NULL UNIQUE"),
        "{product}"
    );
    assert!(
        product.contains("\"user_id\" INTEGER NOT NULL"),
        "{product}"
    );
    assert!(
        product.contains("FOREIGN KEY (\"user_id\") REFERENCES \"user\" (\"id\")"),
        "{product}"
    );
    let indexes = t.rows("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'product' AND sql IS NOT NULL");
    assert_eq!(indexes, table(&[&["product_user_id_idx"]]));
    Ok(())
}

#[test]
fn nullable_renamed_and_indexed_columns() -> orm_core::Result<()> {
    let t = TestDb::new();
    let mut db = Session::open(&t.path)?;
    db.create_all::<(User, Note)>()?;
    let note = table_sql(&t, "note");
    assert!(
        note.contains("\"body_text\" TEXT,") || note.contains("\"body_text\" TEXT "),
        "{note}"
    );
    assert!(!note.contains("\"body_text\" TEXT NOT NULL"), "{note}");
    assert!(
        note.contains("\"author_id\" INTEGER,") || note.contains("\"author_id\" INTEGER "),
        "{note}"
    );
    let indexes = t.rows("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'note' AND sql IS NOT NULL ORDER BY name");
    assert_eq!(
        indexes,
        table(&[&["note_author_id_idx"], &["note_body_text_idx"]])
    );
    Ok(())
}

#[test]
fn create_is_idempotent_and_drop_goes_children_first() -> orm_core::Result<()> {
    let t = TestDb::new();
    let mut db = Session::open(&t.path)?;
    db.create_all::<(User, Product)>()?;
    db.create_all::<(User, Product)>()?; // IF NOT EXISTS
    let u = db.add(User::new("u"));
    db.add(Product::new("p", u));
    db.commit()?;
    db.log_statements(true);
    // With rows and foreign keys on, dropping the parent first would fail.
    db.drop_all::<(User, Product)>()?;
    let drops: Vec<String> = db.take_statements().into_iter().map(|s| s.sql).collect();
    assert_eq!(
        drops,
        [
            "DROP TABLE IF EXISTS \"product\"",
            "DROP TABLE IF EXISTS \"user\""
        ]
    );
    assert_eq!(
        t.count("SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
        0
    );
    Ok(())
}

#[test]
fn a_model_outside_the_set_is_an_error_naming_both() {
    let mut db = Session::open_in_memory().unwrap();
    let err = db.create_all::<Product>().unwrap_err();
    assert!(matches!(
        err,
        orm_core::Error::MissingModel {
            model: "Product",
            references: "User"
        }
    ));
    assert!(
        err.to_string().contains("`Product` references `User`"),
        "{err}"
    );
}

#[test]
fn self_reference_and_cycles_between_models_create() -> orm_core::Result<()> {
    let t = TestDb::new();
    let mut db = Session::open(&t.path)?;
    db.create_all::<(Member, Team, Category)>()?;
    assert_eq!(
        t.count("SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
        3
    );
    let category = table_sql(&t, "category");
    assert!(
        category.contains("REFERENCES \"category\" (\"id\")"),
        "{category}"
    );
    Ok(())
}

#[test]
fn foreign_keys_are_enforced_on_every_connection() -> orm_core::Result<()> {
    let t = TestDb::new();
    let mut db = t.session();
    let p = db.add(Product::new("orphan", Id::<User>::new(42)));
    let err = db.commit().unwrap_err();
    assert!(
        matches!(
            err,
            orm_core::Error::Database {
                kind: orm_core::DbErrorKind::ForeignKeyViolation,
                ..
            }
        ),
        "{err}"
    );
    assert!(db.is_new(p));
    assert_eq!(t.count("SELECT count(*) FROM product"), 0);
    // In memory too.
    let mut mem = Session::open_in_memory()?;
    mem.create_all::<(User, Product)>()?;
    mem.add(Product::new("orphan", Id::<User>::new(42)));
    assert!(mem.commit().is_err());
    Ok(())
}
