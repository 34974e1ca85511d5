//! The SQL text of each statement, without a database.

use orm_core::sql::{self, Sqlite};
use orm_core::Model;
use orm_tests::*;

#[test]
fn create_table_with_keys_constraints_and_quoting() {
    assert_eq!(
        sql::create_table(&Sqlite, User::META),
        "CREATE TABLE IF NOT EXISTS \"user\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL)"
    );
    assert_eq!(
        sql::create_table(&Sqlite, Product::META),
        "CREATE TABLE IF NOT EXISTS \"product\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL UNIQUE, \
         \"user_id\" INTEGER NOT NULL, FOREIGN KEY (\"user_id\") REFERENCES \"user\" (\"id\"))"
    );
    assert_eq!(
        sql::create_table(&Sqlite, Country::META),
        "CREATE TABLE IF NOT EXISTS \"country\" (\"code\" TEXT PRIMARY KEY NOT NULL, \"name\" TEXT NOT NULL, \
         \"population\" INTEGER)"
    );
    assert_eq!(
        sql::create_indexes(&Sqlite, Note::META),
        [
            "CREATE INDEX IF NOT EXISTS \"note_body_text_idx\" ON \"note\" (\"body_text\")",
            "CREATE INDEX IF NOT EXISTS \"note_author_id_idx\" ON \"note\" (\"author_id\")",
        ]
    );
    assert_eq!(
        sql::drop_table(&Sqlite, User::META),
        "DROP TABLE IF EXISTS \"user\""
    );
}

#[test]
fn dml_statements() {
    assert_eq!(
        sql::insert(&Sqlite, Product::META, 2),
        "INSERT INTO \"product\" (\"id\", \"name\", \"user_id\") VALUES (?1, ?2, ?3), (?4, ?5, ?6)"
    );
    assert_eq!(
        sql::update(&Sqlite, Product::META, &[1, 2]),
        "UPDATE \"product\" SET \"name\" = ?1, \"user_id\" = ?2 WHERE \"id\" = ?3"
    );
    assert_eq!(
        sql::select(&Sqlite, Product::META, Some(2)),
        "SELECT \"id\", \"name\", \"user_id\" FROM \"product\" WHERE \"user_id\" = ?1 ORDER BY \"id\""
    );
    assert_eq!(
        sql::select(&Sqlite, Category::META, None),
        "SELECT \"id\", \"name\", \"parent_id\" FROM \"category\" ORDER BY \"id\""
    );
}

#[test]
fn metadata_follows_the_struct() {
    let m = Product::META;
    assert_eq!((m.name, m.table, m.key), ("Product", "product", 0));
    let names: Vec<(&str, &str)> = m.columns.iter().map(|c| (c.field, c.name)).collect();
    assert_eq!(names, [("id", "id"), ("name", "name"), ("user", "user_id")]);
    assert!(m.columns[1].unique && !m.columns[2].nullable);
    assert_eq!(m.relations[0].back_populates, Some("products"));
    assert!(Category::META.columns[2].nullable);
    assert_eq!(Country::META.key_kind, orm_core::KeyKind::Natural);
    assert_eq!(Everything::META.table, "everything");
}
