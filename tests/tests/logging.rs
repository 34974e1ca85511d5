//! Every statement is reported through the `log` crate at debug level, target
//! `orm_core::sql`: its SQL, its parameters (unless hidden), its row count and its duration.

use orm_tests::*;
use std::sync::Mutex;
use std::thread::ThreadId;

/// Keeps every record with the thread that made it (tests run in threads of one process).
struct Capture(Mutex<Vec<(ThreadId, log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            std::thread::current().id(),
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// The `orm_core::sql` events of this thread so far, taken.
fn events() -> Vec<(log::Level, String)> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        log::set_logger(&CAPTURE).expect("one logger");
        log::set_max_level(log::LevelFilter::Debug);
    });
    let me = std::thread::current().id();
    let mut all = CAPTURE.0.lock().unwrap();
    let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|e| e.0 == me);
    *all = rest;
    mine.into_iter()
        .filter(|e| e.2 == orm_core::backend::LOG_TARGET)
        .map(|e| (e.1, e.3))
        .collect()
}

backend_tests! {
    /// One debug event per statement, with its SQL, parameters, rows and time.
    fn each_statement_is_one_debug_event(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        events();
        let ann = db.add(User::new("Ann"));
        db.add(Product::new("secret-name", ann));
        db.commit()?;
        let got = events();
        assert!(got.iter().all(|(level, _)| *level == log::Level::Debug));
        let inserts: Vec<&String> = got.iter().map(|e| &e.1).filter(|m| m.starts_with("INSERT")).collect();
        assert_eq!(inserts.len(), 2, "{got:?}");
        assert!(inserts[1].contains("\"secret-name\""), "{}", inserts[1]);
        assert!(inserts[1].contains("; 1 rows in "), "{}", inserts[1]);
        assert!(got.iter().any(|e| e.1.starts_with("COMMIT")), "{got:?}");
        // A query reports the rows it returned.
        db.all::<Product>()?;
        let got = events();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.starts_with("SELECT") && got[0].1.contains("; 1 rows in "), "{got:?}");
        Ok(())
    }

    /// `log_parameters(false)` hides the values (their count stays), and a failed statement
    /// is reported with its error.
    fn parameters_can_be_hidden_and_failures_are_reported(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.log_parameters(false);
        let ann = db.add(User::new("Ann"));
        db.add(Product::new("secret-name", ann));
        db.add(Product::new("secret-name", ann));
        events();
        db.commit().expect_err("the name is UNIQUE");
        let got = events();
        assert!(!got.iter().any(|e| e.1.contains("secret")), "{got:?}");
        let failed: Vec<_> = got.iter().filter(|e| e.1.contains("failed in")).collect();
        assert_eq!(failed.len(), 1, "{got:?}");
        assert!(failed[0].1.contains("params (hidden)"), "{failed:?}");
        Ok(())
    }
}
