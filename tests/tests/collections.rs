//! The session's rule for collections: after any sequence of relationship calls
//! (`db.set(child, Product::user, parent)`, `db.set(user, User::products, [..])`, `db.append`,
//! `db.remove`, `db.load(user, User::products)`) and direct key edits (`db[p].user = ..`), once
//! a flush has run, a child is in exactly the loaded collection of the parent its key points at
//! (where that collection is loaded), and in no other. After a commit, every loaded collection
//! is what the database says.
//!
//! Two regression tests of known defects, then a property test (proptest) of random sequences
//! over a world of 3 users and 4 products, checked against a model of the expected keys.

use orm_core::prelude::*;
use orm_tests::*;
use proptest::collection::vec;
use proptest::strategy::{Just, Strategy};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::fmt;

// ----- regression tests ---------------------------------------------------------------------

/// Users u0, u1, u2 and the products `(name, user index)`, committed by a session of their own.
fn seed(t: &TestDb, products: &[(&str, usize)]) -> orm_core::Result<()> {
    let mut db = t.session();
    let users: Vec<_> = (0..3).map(|i| db.add(User::new(format!("u{i}")))).collect();
    for &(name, u) in products {
        db.add(Product::new(name, users[u]));
    }
    db.commit()
}

/// The names of a user's loaded products, sorted; `None` if the collection is not loaded.
fn children(db: &Session, u: Handle<User>) -> Option<Vec<String>> {
    let mut names: Vec<String> = db[u]
        .products
        .get()?
        .iter()
        .map(|&p| db[p].name.clone())
        .collect();
    names.sort();
    Some(names)
}

/// The name of the user a product's key points at.
fn owner(db: &mut Session, p: Handle<Product>) -> orm_core::Result<Option<String>> {
    Ok(db.load(p, Product::user)?.map(|u| db[u].name.clone()))
}

/// `(product, user)` names as the database has them, by product name.
fn stored_owners(t: &TestDb) -> Vec<Vec<String>> {
    t.rows(
        r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id ORDER BY p.name"#,
    )
}

/// The names of a user's products as the database has them, sorted.
fn stored_children(t: &TestDb, user: &str) -> Vec<String> {
    t.rows(&format!(
        r#"SELECT p.name FROM product p JOIN "user" u ON u.id = p.user_id WHERE u.name = '{user}' ORDER BY p.name"#
    ))
    .into_iter()
    .map(|mut r| r.remove(0))
    .collect()
}

/// Collects every mismatch of a test and reports them all at its end, so that a failing test
/// shows each step that went wrong, not only the first.
#[derive(Default)]
struct Expect(Vec<String>);

impl Expect {
    fn eq<T: PartialEq + fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0
                .push(format!("{what}:\n      got: {got:?}\n     want: {want:?}"));
        }
    }

    fn done(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

fn names(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

backend_tests! {
    /// A direct edit moves p away from u0; loading u0's collection leaves p out (right: its key
    /// points at u1 now); appending p to u0 then gives p back to u0, so p must be in u0's
    /// loaded collection, before and after the commit.
    fn append_after_a_load_that_left_the_edited_child_out(t: &TestDb) -> orm_core::Result<()> {
        seed(t, &[("p", 0), ("q", 0)])?;
        let mut db = t.session();
        let u = db.all::<User>()?;
        let ps = db.all::<Product>()?;
        let (u0, u1, p) = (u[0], u[1], ps[0]);
        let mut e = Expect::default();

        db[p].user = db[u1].id;
        let loaded = db.load(u0, User::products)?;
        e.eq("load(u0) leaves the moved p out", loaded, vec![ps[1]]);
        e.eq("u0's products after load", children(&db, u0), names(&["q"]));

        db.append(u0, User::products, p)?;
        e.eq("p.user after append(u0, p)", db[p].user, db[u0].id);
        e.eq("u0's products after append(u0, p)", children(&db, u0), names(&["p", "q"]));

        db.flush()?;
        e.eq("u0's products after flush", children(&db, u0), names(&["p", "q"]));
        e.eq("u1's products after flush", db.load(u1, User::products)?, vec![]);

        db.commit()?;
        e.eq("p's owner after commit", owner(&mut db, p)?, Some("u0".into()));
        e.eq("u0's products after commit", children(&db, u0), names(&["p", "q"]));
        e.eq("u1's products after commit", children(&db, u1), names(&[]));
        e.eq(
            "stored owners",
            stored_owners(t),
            table(&[&["p", "u0"], &["q", "u0"]]),
        );
        e.eq("u0's products against the database", children(&db, u0), Some(stored_children(t, "u0")));
        e.eq("u1's products against the database", children(&db, u1), Some(stored_children(t, "u1")));
        e.done();
        Ok(())
    }

    /// u1's and u2's collections are loaded (a user looks at them) before a direct edit moves
    /// p to u2; `set(u2, [p])` then agrees with the edit, and `set(p, u1)` moves p to u1: p
    /// must leave u2's collection. (The defect needs u2's collection loaded before the edit:
    /// loaded after it, or by the `set` itself, p is tracked and leaves u2 correctly.)
    fn set_parent_after_a_set_children_that_agreed_with_a_direct_edit(t: &TestDb) -> orm_core::Result<()> {
        seed(t, &[("p", 0)])?;
        let mut db = t.session();
        let u = db.all::<User>()?;
        let ps = db.all::<Product>()?;
        let (u0, u1, u2, p) = (u[0], u[1], u[2], ps[0]);
        let mut e = Expect::default();
        e.eq("u1's products", db.load(u1, User::products)?, vec![]);
        e.eq("u2's products", db.load(u2, User::products)?, vec![]);

        db[p].user = db[u2].id;
        db.set(u2, User::products, [p])?;
        e.eq("p.user after set(u2, [p])", db[p].user, db[u2].id);
        e.eq("u2's products after set(u2, [p])", children(&db, u2), names(&["p"]));

        db.set(p, Product::user, u1)?;
        e.eq("p.user after set(p, u1)", db[p].user, db[u1].id);
        e.eq("u1's products after set(p, u1)", children(&db, u1), names(&["p"]));
        e.eq("u2's products after set(p, u1)", children(&db, u2), names(&[]));

        db.flush()?;
        e.eq("u1's products after flush", children(&db, u1), names(&["p"]));
        e.eq("u2's products after flush", children(&db, u2), names(&[]));
        e.eq("u0's products after flush", db.load(u0, User::products)?, vec![]);

        db.commit()?;
        e.eq("p's owner after commit", owner(&mut db, p)?, Some("u1".into()));
        e.eq("u1's products after commit", children(&db, u1), names(&["p"]));
        e.eq("u2's products after commit", children(&db, u2), names(&[]));
        e.eq("stored owners", stored_owners(t), table(&[&["p", "u1"]]));
        e.eq("u1's products against the database", children(&db, u1), Some(stored_children(t, "u1")));
        e.eq("u2's products against the database", children(&db, u2), Some(stored_children(t, "u2")));
        e.eq("u0's products against the database", children(&db, u0), Some(stored_children(t, "u0")));
        e.done();
        Ok(())
    }
}

// ----- property test ------------------------------------------------------------------------

const USERS: usize = 3;
const PRODUCTS: usize = 4;

/// Between flushes too, relationship calls keep both sides in step at once: a loaded
/// collection holds exactly the children whose key points at its parent, except children whose
/// key was edited directly since the last flush (reconciled by the flush). `false` checks
/// collections only after a flush, commit or rollback and after loading.
const COLLECTIONS_IN_STEP_AT_ONCE: bool = true;

/// In the model, a product whose key is unset (taken out of its user's collection).
const NONE: usize = usize::MAX;

/// One step of a sequence; `Debug` writes it as the code it runs.
#[derive(Clone, Copy)]
enum Op {
    Flush,
    Commit,
    Load(usize),
    /// `db[p].user = db[u].id`
    Edit {
        p: usize,
        u: usize,
    },
    /// `db.set(p, Product::user, u)`; `None` must fail (the key is required).
    SetParent {
        p: usize,
        u: Option<usize>,
    },
    Append {
        u: usize,
        p: usize,
    },
    /// `db.set(u, User::products, [..])` with the products whose bit is set in `mask`.
    SetChildren {
        u: usize,
        mask: u8,
    },
    Remove {
        u: usize,
        p: usize,
    },
    Rollback,
    /// A fresh session, loading every user and product (collections unloaded).
    Reload,
}

fn subset(mask: u8) -> Vec<usize> {
    (0..PRODUCTS).filter(|&i| mask & (1 << i) != 0).collect()
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Flush => write!(f, "db.flush()"),
            Op::Commit => write!(f, "db.commit()"),
            Op::Load(u) => write!(f, "db.load(u{u}, User::products)"),
            Op::Edit { p, u } => write!(f, "db[p{p}].user = db[u{u}].id"),
            Op::SetParent { p, u: Some(u) } => write!(f, "db.set(p{p}, Product::user, u{u})"),
            Op::SetParent { p, u: None } => {
                write!(
                    f,
                    "db.set(p{p}, Product::user, None::<Handle<User>>)  // must fail"
                )
            }
            Op::Append { u, p } => write!(f, "db.append(u{u}, User::products, p{p})"),
            Op::SetChildren { u, mask } => {
                let ps: Vec<String> = subset(mask).iter().map(|p| format!("p{p}")).collect();
                write!(f, "db.set(u{u}, User::products, [{}])", ps.join(", "))
            }
            Op::Remove { u, p } => write!(f, "db.remove(u{u}, User::products, p{p})"),
            Op::Rollback => write!(f, "db.rollback()"),
            Op::Reload => write!(
                f,
                "db = t.session(); db.all::<User>(); db.all::<Product>()  // fresh session"
            ),
        }
    }
}

/// A generated case: the committed owner of each product, then the steps.
#[derive(Clone)]
struct Case {
    initial: [usize; PRODUCTS],
    ops: Vec<Op>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owners: Vec<String> = self
            .initial
            .iter()
            .enumerate()
            .map(|(p, u)| format!("p{p} -> u{u}"))
            .collect();
        writeln!(
            f,
            "committed: {}; fresh session, db.all::<User>(), db.all::<Product>()",
            owners.join(", ")
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {:>2}. {op:?}", i + 1)?;
        }
        Ok(())
    }
}

/// Steps weighted towards direct edits, loads and flushes, with frequent fresh sessions (whose
/// collections start unloaded), and mostly about p0, u0 and u1 so that steps meet on the same
/// objects: about 1 case in 170 hits one of the known defects this way, against 1 in 700 with
/// uniform choices.
fn op() -> impl Strategy<Value = Op> {
    let u = proptest::prop_oneof![2 => 0..2usize, 1 => 0..USERS];
    let p = proptest::prop_oneof![1 => Just(0usize), 1 => 0..PRODUCTS];
    proptest::prop_oneof![
        3 => Just(Op::Flush),
        1 => Just(Op::Commit),
        4 => u.clone().prop_map(Op::Load),
        5 => (p.clone(), u.clone()).prop_map(|(p, u)| Op::Edit { p, u }),
        3 => (p.clone(), proptest::option::weighted(0.85, u.clone()))
            .prop_map(|(p, u)| Op::SetParent { p, u }),
        2 => (u.clone(), p.clone()).prop_map(|(u, p)| Op::Append { u, p }),
        3 => (u.clone(), 0u8..(1 << PRODUCTS)).prop_map(|(u, mask)| Op::SetChildren { u, mask }),
        1 => (u.clone(), p.clone()).prop_map(|(u, p)| Op::Remove { u, p }),
        2 => Just(Op::Rollback),
        3 => Just(Op::Reload),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (proptest::array::uniform4(0..USERS), vec(op(), 1..=30))
        .prop_map(|(initial, ops)| Case { initial, ops })
}

/// A session over the world, and the model of what it must hold.
struct Run<'t> {
    t: &'t TestDb,
    db: Session,
    users: Vec<Handle<User>>,
    products: Vec<Handle<Product>>,
    /// The user each product's key points at.
    current: [usize; PRODUCTS],
    /// The same at the last commit (what the database holds outside the transaction).
    committed: [usize; PRODUCTS],
    /// Products whose key was edited directly since the last flush: loaded collections may
    /// lag behind their key until the flush.
    edited: [bool; PRODUCTS],
    /// Collections that must be loaded.
    loaded: [bool; USERS],
    /// Collections that were loaded at the last commit: `rollback` returns to that (a
    /// collection loaded since is unloaded again, one loaded then holds what it held then).
    loaded_at_commit: [bool; USERS],
}

type Check = Result<(), String>;

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

fn is_not_nullable(e: &orm_core::Error) -> bool {
    matches!(
        e,
        orm_core::Error::NotNullable {
            model: "Product",
            field: "user"
        }
    )
}

impl<'t> Run<'t> {
    fn open(t: &'t TestDb, owners: [usize; PRODUCTS]) -> Result<Run<'t>, String> {
        let mut db = t.open();
        let users = db.all::<User>().map_err(|e| e.to_string())?;
        let products = db.all::<Product>().map_err(|e| e.to_string())?;
        if users.len() != USERS || products.len() != PRODUCTS {
            return err("the world has 3 users and 4 products");
        }
        Ok(Run {
            t,
            db,
            users,
            products,
            current: owners,
            committed: owners,
            edited: [false; PRODUCTS],
            loaded: [false; USERS],
            loaded_at_commit: [false; USERS],
        })
    }

    fn user_id(&self, u: usize) -> i64 {
        self.db[self.users[u]].id.value().expect("users are stored")
    }

    fn product_id(&self, p: usize) -> i64 {
        self.db[self.products[p]]
            .id
            .value()
            .expect("products are stored")
    }

    /// The user a product's key points at ([`NONE`] if unset).
    fn key_of(&self, p: usize) -> Result<usize, String> {
        let key = self.db[self.products[p]].user;
        if key.is_unset() {
            return Ok(NONE);
        }
        (0..USERS)
            .find(|&u| self.db[self.users[u]].id == key)
            .ok_or_else(|| format!("p{p}.user is {key:?}, no user of the world"))
    }

    /// A user's loaded collection as product indices (in its order), `None` if not loaded.
    fn collection(&self, u: usize) -> Result<Option<Vec<usize>>, String> {
        let Some(items) = self.db[self.users[u]].products.get() else {
            return Ok(None);
        };
        items
            .iter()
            .map(|h| {
                self.products.iter().position(|p| p == h).ok_or_else(|| {
                    format!("u{u}'s collection holds {h:?}, not a product of the world")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn collections(&self) -> Result<Vec<Option<Vec<usize>>>, String> {
        (0..USERS).map(|u| self.collection(u)).collect()
    }

    fn describe(&self) -> String {
        let keys: Vec<String> = (0..PRODUCTS)
            .map(|p| match self.key_of(p) {
                Ok(NONE) => format!("p{p}.user=unset"),
                Ok(u) => format!("p{p}.user=u{u}"),
                Err(e) => e,
            })
            .collect();
        let cols: Vec<String> = (0..USERS)
            .map(|u| match self.collection(u) {
                Ok(Some(c)) => {
                    let ps: Vec<String> = c.iter().map(|p| format!("p{p}")).collect();
                    format!("u{u}.products=[{}]", ps.join(", "))
                }
                Ok(None) => format!("u{u}.products=<not loaded>"),
                Err(e) => e,
            })
            .collect();
        let model: Vec<String> = (0..PRODUCTS)
            .map(|p| match self.current[p] {
                NONE => format!("p{p}->none"),
                u => format!("p{p}->u{u}"),
            })
            .collect();
        format!(
            "session: {}; {}\n    model: {} (committed: {:?}, edited directly: {:?})",
            keys.join(" "),
            cols.join(" "),
            model.join(" "),
            self.committed,
            self.edited
        )
    }

    /// Every product's key points where the model says.
    fn check_keys(&self) -> Check {
        for p in 0..PRODUCTS {
            let u = self.key_of(p)?;
            if u != self.current[p] {
                return err(format!("p{p}.user is u{u}, expected u{}", self.current[p]));
            }
        }
        Ok(())
    }

    /// Every loaded collection holds each product at most once, and holds a product exactly
    /// when its key points at the collection's user. With `all` false, products edited directly
    /// since the last flush are left out of the check. Collections the model says are loaded
    /// must be.
    fn check_collections(&self, all: bool, when: &str) -> Check {
        for u in 0..USERS {
            let Some(c) = self.collection(u)? else {
                if self.loaded[u] {
                    return err(format!("{when}: u{u}'s collection is not loaded any more"));
                }
                continue;
            };
            for p in 0..PRODUCTS {
                let n = c.iter().filter(|&&q| q == p).count();
                if n > 1 {
                    return err(format!("{when}: p{p} is {n} times in u{u}'s collection"));
                }
                if !all && self.edited[p] {
                    continue;
                }
                let want = self.current[p] == u;
                if (n == 1) != want {
                    return err(if want {
                        format!("{when}: p{p}'s key points at u{u}, but p{p} is not in u{u}'s loaded collection")
                    } else {
                        format!(
                            "{when}: p{p} is in u{u}'s loaded collection, but its key points at u{}",
                            self.current[p]
                        )
                    });
                }
            }
        }
        Ok(())
    }

    /// After a commit: the database holds the committed keys, and every loaded collection
    /// holds what the database says (plain SQL on a connection of its own).
    fn check_database(&self) -> Check {
        let rows = self.t.rows("SELECT id, user_id FROM product ORDER BY id");
        let want: Vec<Vec<String>> = (0..PRODUCTS)
            .map(|p| {
                vec![
                    self.product_id(p).to_string(),
                    self.user_id(self.committed[p]).to_string(),
                ]
            })
            .collect();
        if rows != want {
            return err(format!(
                "after commit the database has (id, user_id) {rows:?}, expected {want:?}"
            ));
        }
        for u in 0..USERS {
            let Some(mut c) = self.collection(u)? else {
                continue;
            };
            let uid = self.user_id(u);
            let stored: Vec<String> = self
                .t
                .rows(&format!(
                    "SELECT id FROM product WHERE user_id = {uid} ORDER BY id"
                ))
                .into_iter()
                .map(|mut r| r.remove(0))
                .collect();
            c.sort_unstable();
            let loaded: Vec<String> = c.iter().map(|&p| self.product_id(p).to_string()).collect();
            if loaded != stored {
                return err(format!(
                    "after commit u{u}'s loaded collection has product ids {loaded:?}, the database {stored:?}"
                ));
            }
        }
        Ok(())
    }

    /// After a call that failed: no key changed, and every collection that was loaded before
    /// still holds the same products (among those not edited directly since the last flush).
    fn check_unchanged(&self, before: &[Option<Vec<usize>>]) -> Check {
        self.check_keys()?;
        for (u, b) in before.iter().enumerate() {
            let Some(b) = b else { continue };
            let Some(now) = self.collection(u)? else {
                return err(format!("u{u}'s collection was unloaded by a failed call"));
            };
            let keep = |v: &[usize]| {
                let mut v: Vec<usize> = v.iter().copied().filter(|&p| !self.edited[p]).collect();
                v.sort_unstable();
                v
            };
            if keep(b) != keep(&now) {
                return err(format!(
                    "a failed call changed u{u}'s collection from {b:?} to {now:?}"
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self, op: Op) -> Check {
        let e = |e: orm_core::Error| format!("unexpected error: {e}");
        match op {
            Op::Flush | Op::Commit if self.current.contains(&NONE) => {
                // A product taken out of its user's collection and given no other: the flush
                // refuses it before any SQL, and nothing changes.
                let before = self.collections()?;
                let r = match op {
                    Op::Flush => self.db.flush(),
                    _ => self.db.commit(),
                };
                match r {
                    Err(orm_core::Error::RequiredRelationUnset {
                        model: "Product",
                        field: "user",
                    }) => self.check_unchanged(&before)?,
                    Ok(()) => return err("a flush with a product without user succeeded"),
                    Err(x) => return Err(e(x)),
                }
            }
            Op::Flush => {
                self.db.flush().map_err(e)?;
                self.edited = [false; PRODUCTS];
                self.check_keys()?;
                self.check_collections(true, "after flush")?;
            }
            Op::Commit => {
                self.db.commit().map_err(e)?;
                self.edited = [false; PRODUCTS];
                self.committed = self.current;
                // (A `set` that failed may have loaded a collection the model did not ask for.)
                for u in 0..USERS {
                    self.loaded[u] |= self.db[self.users[u]].products.is_loaded();
                }
                self.loaded_at_commit = self.loaded;
                self.check_keys()?;
                self.check_collections(true, "after commit")?;
                self.check_database()?;
            }
            Op::Load(u) => {
                let was_loaded = self.db[self.users[u]].products.is_loaded();
                let got = self.db.load(self.users[u], User::products).map_err(e)?;
                if self.db[self.users[u]].products != got {
                    return err(format!(
                        "load(u{u}) returned {got:?}, the collection holds {:?}",
                        self.db[self.users[u]].products
                    ));
                }
                self.loaded[u] = true;
                if !was_loaded {
                    // Read from the database and the session: exactly the products whose key
                    // points at u, also those edited directly.
                    let mut c = self.collection(u)?.unwrap_or_default();
                    c.sort_unstable();
                    let want: Vec<usize> =
                        (0..PRODUCTS).filter(|&p| self.current[p] == u).collect();
                    if c != want {
                        return err(format!(
                            "load(u{u}) of an unloaded collection gave {c:?}, the products whose key points at u{u} are {want:?}"
                        ));
                    }
                }
            }
            Op::Edit { p, u } => {
                let id = self.db[self.users[u]].id;
                self.db[self.products[p]].user = id;
                self.current[p] = u;
                self.edited[p] = true;
            }
            Op::SetParent { p, u: Some(u) } => {
                self.db
                    .set(self.products[p], Product::user, self.users[u])
                    .map_err(e)?;
                self.current[p] = u;
            }
            Op::SetParent { p, u: None } => {
                let before = self.collections()?;
                match self
                    .db
                    .set(self.products[p], Product::user, None::<Handle<User>>)
                {
                    Ok(()) => return err("setting a required parent to None succeeded"),
                    Err(x) if is_not_nullable(&x) => self.check_unchanged(&before)?,
                    Err(x) => return Err(e(x)),
                }
            }
            Op::Append { u, p } => {
                self.db
                    .append(self.users[u], User::products, self.products[p])
                    .map_err(e)?;
                self.current[p] = u;
            }
            Op::SetChildren { u, mask } => {
                let chosen = subset(mask);
                let handles: Vec<Handle<Product>> =
                    chosen.iter().map(|&p| self.products[p]).collect();
                // Children left out lose their user (the key is required: the flush decides,
                // once they may have another). Keys edited directly are settled first, so the
                // model knows which products are u's children.
                self.db
                    .set(self.users[u], User::products, handles)
                    .map_err(e)?;
                for p in 0..PRODUCTS {
                    if chosen.contains(&p) {
                        self.current[p] = u;
                    } else if self.current[p] == u {
                        self.current[p] = NONE;
                    }
                }
                self.loaded[u] = true;
            }
            Op::Remove { u, p } => {
                // Not u's child: nothing to do; u's child: it has no user until it gets one.
                self.db
                    .remove(self.users[u], User::products, self.products[p])
                    .map_err(e)?;
                if self.current[p] == u {
                    self.current[p] = NONE;
                }
            }
            Op::Rollback => {
                self.db.rollback().map_err(e)?;
                self.current = self.committed;
                self.edited = [false; PRODUCTS];
                self.loaded = self.loaded_at_commit;
                for u in 0..USERS {
                    if !self.loaded[u] && self.collection(u)?.is_some() {
                        return err(format!(
                            "after rollback: u{u}'s collection, loaded after the last commit, is still loaded"
                        ));
                    }
                }
                self.check_keys()?;
                self.check_collections(true, "after rollback")?;
            }
            Op::Reload => {
                let t = self.t;
                let owners = self.committed;
                // The old session ends (rolling back) before the new one starts.
                let placeholder = Session::open_in_memory().map_err(e)?;
                drop(std::mem::replace(&mut self.db, placeholder));
                *self = Run::open(t, owners)?;
                self.check_keys()?;
                if let Some(u) = (0..USERS).find(|&u| self.db[self.users[u]].products.is_loaded()) {
                    return err(format!("u{u}'s collection is loaded in a fresh session"));
                }
            }
        }
        self.check_keys()?;
        if COLLECTIONS_IN_STEP_AT_ONCE {
            self.check_collections(false, "at once")?;
        }
        Ok(())
    }
}

/// Puts the world back as the case starts it: users u0..u2 (keys 1..3), products p0..p3 (keys
/// 1..4) owned as `owners` says.
fn reset(t: &TestDb, owners: [usize; PRODUCTS]) {
    let products: Vec<String> = owners
        .iter()
        .enumerate()
        .map(|(p, u)| format!("({}, 'p{p}', {})", p + 1, u + 1))
        .collect();
    t.exec(&format!(
        "DELETE FROM product; DELETE FROM \"user\"; \
         INSERT INTO \"user\" (id, name) VALUES (1, 'u0'), (2, 'u1'), (3, 'u2'); \
         INSERT INTO product (id, name, user_id) VALUES {}",
        products.join(", ")
    ));
}

fn run_case(t: &TestDb, case: &Case) -> Check {
    reset(t, case.initial);
    let mut run = Run::open(t, case.initial)?;
    for (i, &op) in case.ops.iter().enumerate() {
        run.step(op)
            .map_err(|m| format!("step {} ({op:?}): {m}\n    {}", i + 1, run.describe()))?;
    }
    Ok(())
}

/// Runs `cases` random sequences (`PROPTEST_CASES` overrides), from a fixed seed so that a
/// failure is found again (the same sequences on both databases); panics with the shrunk
/// sequence, written as the calls to replay.
fn property(t: &TestDb, cases: u32, max_shrink_iters: u32) {
    drop(t.session()); // the tables
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        max_shrink_iters,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&case(), |c| run_case(t, &c).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            panic!(
                "minimal failing sequence ({:?}):\n{case:?}{reason}",
                t.backend()
            )
        }
        Err(TestError::Abort(reason)) => panic!("property test aborted: {reason}"),
    }
}

/// About 10 ms a case on SQLite, 50 ms on PostgreSQL.
mod session_rule {
    use super::*;

    #[test]
    fn sqlite() {
        property(&TestDb::sqlite(), 256, 2000);
    }

    #[test]
    fn postgres() {
        if let Some(t) = TestDb::postgres() {
            property(&t, 64, 300);
        }
    }
}
