//! PostgreSQL over TLS (feature `tls`): `sslmode=require` encrypts the connection (the server
//! says so in `pg_stat_ssl`), `verify-ca`/`verify-full` check the server's certificate
//! against `sslrootcert`, and no `sslmode` connects as before. The local server runs with its
//! own (self-signed) certificate, as the machines this project runs on are set up. On SQLite
//! there is nothing to test: each test returns at once.

use orm_core::prelude::*;
use orm_core::Error;
use orm_tests::*;

/// A note, to show that a session over TLS works end to end.
#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    pub text: String,
}

/// What `pg_stat_ssl` says of the session's own connection, read through the session.
#[derive(Model, Debug)]
pub struct Probe {
    #[key]
    pub id: Id<Probe>,
    pub ssl: bool,
}

/// The error connecting to `url` (a connection is a test failure).
fn refused(url: &str) -> Error {
    match Session::connect(url) {
        Ok(_) => panic!("{url}: connected"),
        Err(e) => e,
    }
}

/// The test's URL with more query parameters.
fn with(t: &TestDb, params: &str) -> String {
    let url = t.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether the session's connection is encrypted.
fn encrypted(db: &mut Session) -> orm_core::Result<bool> {
    let rows = db.query_sql::<Probe>(
        "SELECT 1::bigint AS id, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )?;
    Ok(db[rows[0]].ssl)
}

/// The file of the server's certificate, if this process can read it.
fn server_certificate(t: &TestDb) -> Option<String> {
    let path = t.rows("SHOW ssl_cert_file").remove(0).remove(0);
    let path = if path.starts_with('/') {
        path
    } else {
        let dir = t.rows("SHOW data_directory").remove(0).remove(0);
        format!("{dir}/{path}")
    };
    std::fs::read(&path).ok().map(|_| path)
}

backend_tests! {
    fn require_encrypts_and_a_session_works_over_it(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let mut plain = Session::connect(&t.url())?;
        assert!(!encrypted(&mut plain)?, "no sslmode: no TLS, as before");
        let mut db = Session::connect(&with(t, "sslmode=require"))?;
        assert!(encrypted(&mut db)?);
        db.create_all::<(Note,)>()?;
        db.add(Note::new("over TLS"));
        db.commit()?;
        assert_eq!(t.rows("SELECT text FROM note"), table(&[&["over TLS"]]));
        // The driver's own spellings still work.
        let mut prefer = Session::connect(&with(t, "sslmode=disable"))?;
        assert!(!encrypted(&mut prefer)?);
        Ok(())
    }

    fn verify_modes_check_the_certificate(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        // The server's self-signed certificate is in no public root store.
        let e = refused(&with(t, "sslmode=verify-full"));
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
        let Some(cert) = server_certificate(t) else {
            eprintln!("note: the server's certificate is not readable here; verify-ca not tested");
            return Ok(());
        };
        // Trusted as its own root: the chain holds; the name it carries is the machine's,
        // not 127.0.0.1, which verify-ca does not check and verify-full does.
        let mut db = Session::connect(&with(t, &format!("sslmode=verify-ca&sslrootcert={cert}")))?;
        assert!(encrypted(&mut db)?);
        let e = refused(&with(t, &format!("sslmode=verify-full&sslrootcert={cert}")));
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
        Ok(())
    }

    fn bad_tls_settings_are_clear_errors(t: &TestDb) -> orm_core::Result<()> {
        if t.backend() != Backend::Postgres {
            return Ok(());
        }
        let e = refused(&with(t, "sslmode=sometimes"));
        assert!(e.to_string().contains("unknown sslmode `sometimes`"), "{e}");
        let e = refused(&with(t, "sslmode=verify-full&sslrootcert=/no/such/file.pem"));
        assert!(e.to_string().contains("/no/such/file.pem"), "{e}");
        Ok(())
    }
}
