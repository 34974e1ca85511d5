//! Sessions across threads: a session moves into a worker thread, and a pool hands sessions
//! to many threads at once (issue 13, point 1).

use orm_core::pool::Pool;
use orm_core::prelude::*;
use orm_tests::*;

/// Fails to compile if a session cannot move to another thread.
fn assert_send<T: Send>() {}

#[test]
fn sessions_and_pools_can_move_between_threads() {
    assert_send::<Session>();
    assert_send::<Pool>();
    assert_send::<Handle<User>>();
}

const THREADS: usize = 8;
const COMMITS: usize = 25;

backend_tests! {
    /// A session with pending work moves into a worker thread, which commits it.
    fn a_session_moves_into_a_worker_thread(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let mut db = std::thread::spawn(move || -> orm_core::Result<Session> {
            db.add(Product::new("p", ann));
            db.commit()?;
            Ok(db)
        })
        .join()
        .expect("worker")?;
        assert_eq!(db[ann].products.len(), 1);
        db.commit()?;
        assert_eq!(
            t.rows(r#"SELECT u.name, p.name FROM product p JOIN "user" u ON u.id = p.user_id"#),
            table(&[&["Ann", "p"]])
        );
        Ok(())
    }

    /// Eight threads take sessions from one pool at once and commit a user with two products
    /// each time: every write lands exactly once, with its own keys.
    fn a_pool_serves_eight_threads(t: &TestDb) -> orm_core::Result<()> {
        drop(t.session()); // the tables
        let pool = Pool::connect(&t.url(), 4)?;
        let workers: Vec<_> = (0..THREADS)
            .map(|w| {
                let pool = pool.clone();
                std::thread::spawn(move || -> orm_core::Result<Vec<i64>> {
                    let mut keys = Vec::new();
                    for i in 0..COMMITS {
                        let mut db = pool.session()?;
                        let u = db.add(User::new(format!("w{w}-{i}")));
                        db.add(Product::new(format!("w{w}-{i}-a"), u));
                        db.add(Product::new(format!("w{w}-{i}-b"), u));
                        db.commit()?;
                        keys.push(db[u].id.value()?);
                    }
                    Ok(keys)
                })
            })
            .collect();
        let mut keys = Vec::new();
        for w in workers {
            keys.extend(w.join().expect("worker")?);
        }
        keys.sort_unstable();
        keys.dedup();
        let n = (THREADS * COMMITS) as i64;
        assert_eq!(keys.len() as i64, n, "every user got a key of its own");
        assert_eq!(t.count(r#"SELECT count(DISTINCT name) FROM "user""#), n);
        assert_eq!(t.count(r#"SELECT count(*) FROM "user""#), n);
        assert_eq!(
            t.count(
                r#"SELECT count(*) FROM product p JOIN "user" u ON u.id = p.user_id
                   WHERE p.name LIKE u.name || '-%'"#
            ),
            2 * n,
            "every product with its own user"
        );
        let (open, idle) = pool.state();
        assert!(open <= 4 && idle == open, "{open} connections, {idle} idle");
        Ok(())
    }

    /// A session dropped with work not committed gives its connection back rolled back: the
    /// next session on it sees none of that work and can write.
    fn a_dropped_session_gives_back_a_clean_connection(t: &TestDb) -> orm_core::Result<()> {
        drop(t.session());
        let pool = Pool::connect(&t.url(), 1)?;
        let mut db = pool.session()?;
        db.add(User::new("lost"));
        db.flush()?;
        drop(db);
        let mut db = pool.session()?;
        assert!(db.all::<User>()?.is_empty());
        db.add(User::new("kept"));
        db.commit()?;
        assert_eq!(t.rows(r#"SELECT name FROM "user""#), table(&[&["kept"]]));
        Ok(())
    }
}
