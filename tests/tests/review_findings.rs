//! Defects found reviewing many-to-many, `#[version]`, upsert and TLS, each fixed; the doc
//! comment of each test says what was wrong.

use orm_core::prelude::*;
use orm_tests::*;

/// A versioned model whose `#[version]` comes before the column edited.
#[derive(Model, Debug)]
pub struct Doc {
    #[key]
    pub id: Id<Doc>,
    #[version]
    pub version: i64,
    pub title: String,
}

/// A natural (text) key on one side of a many-to-many.
#[derive(Model, Debug)]
pub struct Lang {
    #[key]
    pub code: String,
    #[has_many(through = "speaks", back_populates = "langs")]
    pub speakers: HasMany<Speaker>,
}

/// The other side of `Lang::speakers`.
#[derive(Model, Debug)]
pub struct Speaker {
    #[key]
    pub id: Id<Speaker>,
    pub name: String,
    #[has_many(through = "speaks", back_populates = "speakers")]
    pub langs: HasMany<Lang>,
}

/// A row read with `query_sql`, to see what the server says of the session's connection.
#[derive(Model, Debug)]
pub struct Probe {
    #[key]
    pub id: Id<Probe>,
    pub value: String,
}

/// A session on PostgreSQL from a `key=value` connection string (`Session::connect` takes
/// such a string for a SQLite path).
/// `postgres://user@host[:port]/db` as a `key=value` connection string.
fn conninfo(url: &str) -> String {
    let rest = url
        .trim_start_matches("postgres://")
        .trim_start_matches("postgresql://");
    let (user, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    let (address, db_name) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let db_name = db_name.split('?').next().unwrap_or(db_name);
    let (host, port) = address.split_once(':').unwrap_or((address, "5432"));
    format!("host={host} port={port} user={user} dbname={db_name}")
}

fn pg_session(conn: &str) -> orm_core::Result<Session> {
    let c = orm_core::PostgresConnection::connect(conn)?;
    Ok(Session::with_connection(Box::new(c)))
}

bug_tests! {
    /// The UPDATE text is cached by the *set* of columns (`SqlKey::Update(mask)`), but the
    /// flush lists the columns in two orders: changed columns then the appended `#[version]`
    /// (`changes::with_version`), or in column order when the program also set the version
    /// field. With the version declared before the edited column, the second UPDATE reuses
    /// the first one's text with its parameters in the other order.
    #[sqlite()]
    #[postgres()]
    fn versioned_update_reuses_a_cached_text_with_columns_in_another_order(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Doc,)>()?;
        let d = db.add(Doc::new("a"));
        db.commit()?;
        // Columns [title, version]: "SET title = ?, version = ?" is cached.
        db[d].title = "b".into();
        db.commit()?;
        // Columns [version, title] (the program set the version too): same mask.
        db[d].version = 99;
        db[d].title = "c".into();
        db.commit()?;
        assert_eq!(
            t.rows("SELECT title, version FROM doc"),
            table(&[&["c", "3"]])
        );
        assert_eq!((db[d].title.as_str(), db[d].version), ("c", 3));
        Ok(())
    }

    /// After a flush that changes a natural key, `relink_children_of` treats every relation
    /// that `holds_children()` (now including many-to-many) as a has-many: it asks each
    /// linked object's `foreign_key(inverse)`, which is `Unset` for a many-to-many, so every
    /// linked object "leaves" the loaded collection.
    #[sqlite()]
    #[postgres()]
    fn a_natural_key_edit_keeps_the_loaded_many_to_many_collection(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Lang, Speaker)>()?;
        let en = db.add(Lang::new("en"));
        let s = db.add(Speaker::new("s"));
        db.append(s, Speaker::langs, en)?;
        db.commit()?;
        assert_eq!(db.load(en, Lang::speakers)?, [s]);
        db[en].code = "eng".into();
        db.commit()?;
        assert_eq!(t.rows("SELECT lang_id FROM speaks"), table(&[&["eng"]]));
        // The link is still there; the session's collection must say so.
        assert_eq!(db[en].speakers, [s]);
        assert_eq!(db.load(en, Lang::speakers)?, [s]);
        Ok(())
    }

    /// libpq: "if a root CA file exists, sslmode=require behaves as verify-ca". `psql` with
    /// `sslmode=require&sslrootcert=<a CA that did not sign the server>` fails with
    /// "certificate verify failed"; the session connects without checking anything.
    #[sqlite()]
    #[postgres()]
    fn require_with_a_root_certificate_checks_the_chain(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let other_ca = "/etc/ssl/certs/ISRG_Root_X1.pem";
        if std::fs::metadata(other_ca).is_err() {
            return Ok(());
        }
        let url = format!("{}&sslmode=require&sslrootcert={other_ca}", t.url());
        assert!(
            Session::connect(&url).is_err(),
            "connected to a server whose certificate does not chain to sslrootcert"
        );
        Ok(())
    }

    /// A `key=value` connection string is split on whitespace and joined with one space
    /// (`tls::split`), even without any TLS key: a quoted value with two spaces changes.
    #[sqlite()]
    #[postgres()]
    fn a_quoted_value_of_a_connection_string_is_kept(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
            return Ok(());
        };
        // postgres://user@host/db as key=value.
        let conn = format!("{} application_name='a  b'", conninfo(&admin));
        let mut db = pg_session(&conn)?;
        let rows = db.query_sql::<Probe>(
            "SELECT 1::bigint AS id, current_setting('application_name') AS value",
            &[],
        )?;
        assert_eq!(db[rows[0]].value, "a  b");
        Ok(())
    }

    /// The same split breaks a quoted `sslrootcert` path with a space in it.
    #[sqlite()]
    #[postgres()]
    fn a_quoted_sslrootcert_with_a_space(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
            return Ok(());
        };
        let cert = t.rows("SHOW ssl_cert_file").remove(0).remove(0);
        let Ok(pem) = std::fs::read(&cert) else {
            return Ok(());
        };
        let dir = std::env::temp_dir().join(format!("orm review {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root ca.pem");
        std::fs::write(&path, pem).unwrap();
        let conn = format!(
            "{} sslmode=verify-ca sslrootcert='{}'",
            conninfo(&admin),
            path.display()
        );
        let r = pg_session(&conn);
        let _ = std::fs::remove_dir_all(&dir);
        r.map(drop)
    }
}

/// A model whose many-to-many names a table that another, unrelated, many-to-many has.
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    #[has_many(through = "speaks")]
    pub langs: HasMany<Lang>,
}

/// A model with a unique float.
#[derive(Model, Debug)]
pub struct Reading {
    #[key]
    pub id: Id<Reading>,
    #[column(unique)]
    pub value: f64,
}

backend_tests! {
    /// Two unrelated many-to-many relationships naming one table were merged silently.
    fn two_relationships_may_not_share_a_table_unless_they_are_its_two_sides(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Speaker, Lang)>()?;
        let e = db.create_all::<(Speaker, Lang, Shelf)>().unwrap_err();
        assert!(e.to_string().contains("already the table of"), "{e}");
        Ok(())
    }

    /// An upsert on a float column said the object had no value in it.
    fn a_float_column_is_refused_as_an_upsert_target_with_the_reason(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(Reading,)>()?;
        let e = db.upsert(Reading::new(1.5), Reading::value).unwrap_err();
        assert!(e.to_string().contains("float"), "{e}");
        Ok(())
    }
}
