//! Creating and dropping tables: order, clauses, quoting, and models outside the set.

use orm_core::prelude::*;
use orm_tests::*;

/// The `CREATE TABLE` text SQLite keeps for a table (SQLite only).
fn table_sql(t: &TestDb, name: &str) -> String {
    t.rows(&format!(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
    ))
    .into_iter()
    .next()
    .map(|r| r[0].clone())
    .unwrap_or_default()
}

/// A PostgreSQL table's columns in order: name, type, nullable, identity.
fn pg_columns(t: &TestDb, name: &str) -> Vec<Vec<String>> {
    t.rows(&format!(
        "SELECT column_name::text, data_type::text, is_nullable::text, is_identity::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = '{name}' \
         ORDER BY ordinal_position"
    ))
}

/// A PostgreSQL table's key, unique and foreign key constraints: type, column, and for a
/// foreign key the referenced `table.column` (`NULL` otherwise).
fn pg_constraints(t: &TestDb, name: &str) -> Vec<Vec<String>> {
    t.rows(&format!(
        "SELECT tc.constraint_type::text, kcu.column_name::text, \
         ccu.table_name::text || '.' || ccu.column_name::text \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
         ON kcu.constraint_schema = tc.constraint_schema \
         AND kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name \
         LEFT JOIN information_schema.constraint_column_usage ccu \
         ON tc.constraint_type = 'FOREIGN KEY' AND ccu.constraint_schema = tc.constraint_schema \
         AND ccu.constraint_name = tc.constraint_name \
         WHERE tc.table_schema = current_schema() AND tc.table_name = '{name}' \
         AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY') \
         ORDER BY 1, 2"
    ))
}

backend_tests! {
    fn creates_parents_first_with_all_clauses(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
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
        match t.backend() {
            Backend::Sqlite => {
                let product = table_sql(t, "product");
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
            }
            Backend::Postgres => {
                assert_eq!(
                    pg_columns(t, "product"),
                    table(&[
                        &["id", "bigint", "NO", "YES"],
                        &["name", "text", "NO", "NO"],
                        &["user_id", "bigint", "NO", "NO"]
                    ])
                );
                assert_eq!(
                    pg_constraints(t, "product"),
                    table(&[
                        &["FOREIGN KEY", "user_id", "user.id"],
                        &["PRIMARY KEY", "id", "NULL"],
                        &["UNIQUE", "name", "NULL"]
                    ])
                );
            }
        }
        assert_eq!(t.indexes("product"), ["product_user_id_35e348d10b15_idx"]);
        Ok(())
    }

    fn nullable_renamed_and_indexed_columns(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(User, Note)>()?;
        match t.backend() {
            Backend::Sqlite => {
                let note = table_sql(t, "note");
                assert!(
                    note.contains("\"body_text\" TEXT,") || note.contains("\"body_text\" TEXT "),
                    "{note}"
                );
                assert!(!note.contains("\"body_text\" TEXT NOT NULL"), "{note}");
                assert!(
                    note.contains("\"author_id\" INTEGER,")
                        || note.contains("\"author_id\" INTEGER "),
                    "{note}"
                );
            }
            Backend::Postgres => {
                assert_eq!(
                    pg_columns(t, "note"),
                    table(&[
                        &["id", "bigint", "NO", "YES"],
                        &["body_text", "text", "YES", "NO"],
                        &["author_id", "bigint", "YES", "NO"]
                    ])
                );
            }
        }
        assert_eq!(
            t.indexes("note"),
            ["note_author_id_9179b1eb47a0_idx", "note_body_text_a161dc599ed7_idx"]
        );
        Ok(())
    }

    fn create_is_idempotent_and_drop_goes_children_first(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(User, Product)>()?;
        db.create_all::<(User, Product)>()?; // IF NOT EXISTS
        let u = db.add(User::new("u"));
        db.add(Product::new("p", u));
        db.commit()?;
        db.log_statements(true);
        // With rows and foreign keys on, dropping the parent first would fail.
        db.drop_all::<(User, Product)>()?;
        let drops: Vec<String> = db
            .take_statements()
            .into_iter()
            .map(|s| s.sql)
            .filter(|s| s.starts_with("DROP"))
            .collect();
        assert_eq!(
            drops,
            [
                "DROP TABLE IF EXISTS \"product\"",
                "DROP TABLE IF EXISTS \"user\""
            ]
        );
        assert_eq!(t.tables().len(), 0);
        Ok(())
    }

    fn a_model_outside_the_set_is_an_error_naming_both(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
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
        Ok(())
    }

    fn self_reference_and_cycles_between_models_create(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Member, Team, Category)>()?;
        assert_eq!(t.tables().len(), 3);
        match t.backend() {
            Backend::Sqlite => {
                let category = table_sql(t, "category");
                assert!(
                    category.contains("REFERENCES \"category\" (\"id\")"),
                    "{category}"
                );
            }
            Backend::Postgres => {
                assert_eq!(
                    pg_constraints(t, "category"),
                    table(&[
                        &["FOREIGN KEY", "parent_id", "category.id"],
                        &["PRIMARY KEY", "id", "NULL"]
                    ])
                );
            }
        }
        Ok(())
    }

    fn foreign_keys_are_enforced_on_every_connection(t: &TestDb) -> orm_core::Result<()> {
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
}
