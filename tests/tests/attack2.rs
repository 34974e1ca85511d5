//! Second round of adversarial tests: key generation against keys the session holds or held
//! (explicit keys, keys changed back and forth, rollbacks, rows deleted behind the session, a
//! second writer), one-sided relationships, parents found only by key, and rollback of
//! collections, on both databases.

use orm_core::prelude::*;
use orm_tests::*;

/// A shelf whose books name it through a `belongs_to` without `back_populates`: the
/// relationship is declared on the `has_many` side only.
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    pub name: String,
    #[has_many(back_populates = "shelf")]
    pub books: HasMany<Book>,
}

/// A book on a shelf (nullable, one-sided).
#[derive(Model, Debug)]
pub struct Book {
    #[key]
    pub id: Id<Book>,
    pub title: String,
    #[belongs_to]
    pub shelf: Option<Id<Shelf>>,
}

/// A self-referential tree declared on the `has_many` side only.
#[derive(Model, Debug)]
pub struct Node {
    #[key]
    pub id: Id<Node>,
    pub name: String,
    #[belongs_to]
    pub up: Option<Id<Node>>,
    #[has_many(back_populates = "up")]
    pub down: HasMany<Node>,
}

/// A tag without constraints: PostgreSQL tests add a deferred one by hand.
#[derive(Model, Debug)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub name: String,
}

type Extra = (Shelf, Book, Node, Tag);

fn session(t: &TestDb) -> Session {
    let mut db = t.session();
    db.create_all::<Extra>().expect("create extra tables");
    db
}

fn user_with_key(name: &str, key: i64) -> User {
    let mut u = User::new(name);
    u.id = Id::new(key);
    u
}

/// `id, name` of every user, in key order.
fn users(t: &TestDb) -> Vec<Vec<String>> {
    t.rows(r#"SELECT id, name FROM "user" ORDER BY id"#)
}

backend_tests! {
    /// The session holds user 1; another program deletes its row; the user adds a new user
    /// with the explicit key 1. Two objects of the session then name row 1: an edit of the
    /// old object must not be written into the new row (SQLAlchemy refuses such a flush:
    /// "New instance with identity key conflicts with persistent instance").
    fn an_explicit_key_held_by_an_object_whose_row_was_deleted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        t.exec(r#"DELETE FROM "user" WHERE id = 1"#);
        let new = db.add(user_with_key("new", 1));
        let added = db.commit();
        assert!(
            matches!(&added, Err(orm_core::Error::KeyInUse { model: "User", key }) if key == "1"),
            "{added:?}"
        );
        assert!(db.is_new(new), "refused before any SQL");
        db[ann].name = "Ann2".into();
        let edited = db.commit();
        assert!(
            added.is_err() || edited.is_err(),
            "both committed: rows {:?}, ann = {:?}, new = {:?}",
            users(t),
            db[ann],
            db[new]
        );
        assert_ne!(users(t), table(&[&["1", "Ann2"]]), "the edit of Ann went into the row of `new`");
        Ok(())
    }

    /// The same through a key edit: a stored object takes the key of another object whose row
    /// was deleted behind the session.
    fn a_key_edited_to_one_held_by_an_object_whose_row_was_deleted(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let bob = db.add(User::new("Bob"));
        db.commit()?;
        t.exec(r#"DELETE FROM "user" WHERE id = 1"#);
        db[bob].id = Id::new(1);
        let moved = db.commit();
        assert!(
            matches!(&moved, Err(orm_core::Error::KeyInUse { model: "User", key }) if key == "1"),
            "{moved:?}"
        );
        db[ann].name = "Ann2".into();
        let edited = db.commit();
        assert!(
            moved.is_err() || edited.is_err(),
            "both committed: rows {:?}, ann = {:?}, bob = {:?}",
            users(t),
            db[ann],
            db[bob]
        );
        Ok(())
    }

    /// A stored parent's key changes from 1 to 70 and a new parent takes key 1 in the same
    /// flush; a new child added while the old parent held 1 names 1, so after the flush it
    /// must be in the new parent's collection and not in the old one's.
    fn a_parent_key_given_up_to_a_new_parent_moves_the_children_that_name_it(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        assert!(db.load(ann, User::products)?.is_empty());
        let p = db.add(Product::new("p", ann));
        assert_eq!(db[ann].products, [p]);
        db[ann].id = Id::new(70);
        let one = db.add(user_with_key("one", 1));
        db.commit()?;
        assert_eq!(
            t.rows(r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id"#),
            table(&[&["p", "one"]])
        );
        assert_eq!(db[p].user, db[one].id);
        assert_eq!(db[one].products, [p], "p names user 1");
        assert!(db[ann].products.is_empty(), "ann is user 70: {:?}", db[ann].products);
        Ok(())
    }

    /// The same with the child added after the key edit, by the key: before the flush the
    /// session still finds the old parent under key 1.
    fn a_child_added_by_a_key_given_up_in_the_same_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        db.load(ann, User::products)?;
        db[ann].id = Id::new(70);
        let one = db.add(user_with_key("one", 1));
        let p = db.add(Product::new("p", Id::<User>::new(1)));
        db.commit()?;
        assert_eq!(db[one].products, [p], "p names user 1");
        assert!(db[ann].products.is_empty(), "ann is user 70: {:?}", db[ann].products);
        Ok(())
    }

    /// A stored object's generated key set to `Id::unset()` (misuse): an error, not a panic
    /// and not a row re-keyed to 0.
    fn a_stored_key_set_to_unset_alone(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        db[ann].id = Id::unset();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.commit()));
        match r {
            Ok(r) => assert!(r.is_err(), "committed; rows {:?}", users(t)),
            Err(_) => panic!("commit panicked on a stored object whose key was unset"),
        }
        Ok(())
    }

    /// The same with a new row of the same table in the flush: the key to write comes from
    /// the table of reserved keys, where the stored object's entry is 0.
    fn a_stored_key_set_to_unset_beside_a_new_row(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        db[ann].id = Id::unset();
        db.add(User::new("Bob"));
        let r = db.commit();
        assert!(r.is_err(), "committed; rows {:?}", users(t));
        assert_eq!(users(t), table(&[&["1", "Ann"]]));
        Ok(())
    }

    /// A stored object's key set to the pending id of a new object (misuse): an error, or
    /// the rows are as the objects say; never a row re-keyed to 0.
    fn a_stored_key_set_to_a_pending_id(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        let bob = db.add(User::new("Bob"));
        db[ann].id = db[bob].id;
        if db.commit().is_ok() {
            let rows = users(t);
            assert!(rows.iter().all(|r| r[0] != "0"), "{rows:?}; ann = {:?}", db[ann]);
        }
        Ok(())
    }

    /// A key a stored object held during a transaction that was rolled back was stored (and
    /// copied); a generated key must not come to be that key (ORM.md §2: never a key the
    /// session has seen, loaded, stored or reserved).
    fn a_key_stored_then_rolled_back_is_not_generated(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?;
        db[ann].id = Id::new(2);
        db.flush()?;
        let copied = db[ann].id;
        assert_eq!(db.get::<User>(copied)?, Some(ann));
        db.rollback()?;
        assert_eq!(db[ann].id.value()?, 1);
        let fresh = db.add(User::new("fresh"));
        db.commit()?;
        assert_ne!(db[fresh].id, copied, "the copied id of Ann now names `fresh`");
        Ok(())
    }

    /// Keys changed back and forth over several flushes, then a rollback: the identity map
    /// names each key's object, and generated keys avoid every key held.
    fn keys_changed_back_and_forth_then_rolled_back(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let a = db.add(User::new("a"));
        let b = db.add(User::new("b"));
        db.commit()?;
        db[a].id = Id::new(10);
        db.flush()?;
        db[b].id = Id::new(1);
        db.flush()?;
        db[a].id = Id::new(2);
        let c = db.add(User::new("c"));
        db.flush()?;
        assert!(![1, 2].contains(&db[c].id.value()?), "{}", db[c].id);
        db[a].id = Id::new(-5);
        db.flush()?;
        db.rollback()?;
        assert_eq!((db[a].id.value()?, db[b].id.value()?), (1, 2));
        assert_eq!(db.get::<User>(1)?, Some(a));
        assert_eq!(db.get::<User>(2)?, Some(b));
        assert_eq!(db.get::<User>(-5)?, None);
        assert_eq!(db.get::<User>(10)?, None);
        let d = db.add(User::new("d"));
        db[b].name = "b2".into();
        db.commit()?;
        let dk = db[d].id.value()?;
        assert!(![1, 2].contains(&dk));
        assert_eq!(
            users(t),
            table(&[&["1", "a"], &["2", "b2"], &[&dk.to_string(), "d"]])
        );
        Ok(())
    }

    /// Negative and extreme explicit keys beside generated ones in one flush.
    fn negative_and_extreme_explicit_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let neg = db.add(user_with_key("neg", -1));
        let min = db.add(user_with_key("min", i64::MIN));
        let zero = db.add(user_with_key("zero", 0));
        let g = db.add(User::new("g"));
        db.add(Product::new("pn", neg));
        db.add(Product::new("pm", min));
        db.commit()?;
        let gk = db[g].id.value()?;
        assert!(gk > 0, "{gk}");
        assert_eq!(db.get::<User>(i64::MIN)?, Some(min));
        assert_eq!(db.get::<User>(0)?, Some(zero));
        db[zero].id = Id::new(-2);
        let h = db.add(User::new("h"));
        db.commit()?;
        assert!(db[h].id.value()? > gk);
        assert_eq!(db.load(min, User::products)?.len(), 1);
        assert_eq!(db.load(neg, User::products)?.len(), 1);
        assert_eq!(db.get::<User>(-2)?, Some(zero));
        Ok(())
    }

    /// An explicit key far above the table in a flush with generated keys: generated keys
    /// skip it (and on SQLite go above it); after the commit another session goes above it.
    fn an_explicit_key_ahead_of_the_table_with_generated_keys(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let far = db.add(user_with_key("far", 1_000));
        let gs: Vec<_> = (0..3).map(|i| db.add(User::new(format!("g{i}")))).collect();
        db.commit()?;
        let mut keys: Vec<i64> = gs.iter().map(|&g| db[g].id.value()).collect::<Result<_, _>>()?;
        keys.push(db[far].id.value()?);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 4);
        let mut other = t.open();
        let o = other.add(User::new("other"));
        other.commit()?;
        assert!(other[o].id.value()? > 1_000, "{}", other[o].id);
        Ok(())
    }

    /// Another program inserts a row with an explicit key; the session reads it as a foreign
    /// key only (a product pointing at it); generated keys go above it.
    fn a_key_read_only_as_a_foreign_key(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        db.add(User::new("Ann"));
        db.commit()?;
        t.exec(r#"INSERT INTO "user" (id, name) VALUES (500, 'x')"#);
        t.exec("INSERT INTO product (id, name, user_id) VALUES (1, 'p', 500)");
        let ps = db.all::<Product>()?;
        assert_eq!(ps.len(), 1);
        let g = db.add(User::new("g"));
        db.commit()?;
        assert!(db[g].id.value()? > 500, "{}", db[g].id);
        Ok(())
    }

    /// Two sessions: B commits explicit keys while A holds stored objects and draws keys,
    /// then another program deletes A's top row: A never hands out a key it holds or B wrote.
    fn two_sessions_explicit_and_generated(t: &TestDb) -> orm_core::Result<()> {
        let mut a = t.session();
        let a1 = a.add(User::new("a1"));
        let a2 = a.add(User::new("a2"));
        a.commit()?;
        let mut b = t.open();
        b.add(user_with_key("b7", 7));
        b.add(user_with_key("b3", 3));
        b.commit()?;
        t.exec(r#"DELETE FROM "user" WHERE id = 2"#);
        let fresh: Vec<_> = (0..4).map(|i| a.add(User::new(format!("f{i}")))).collect();
        a.commit()?;
        let mut keys: Vec<i64> = fresh.iter().map(|&h| a[h].id.value()).collect::<Result<_, _>>()?;
        for k in &keys {
            assert!(![1, 2, 3, 7].contains(k), "{keys:?}");
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 4);
        // The object of the deleted row is stale; its edit fails, it writes no other row.
        a[a2].name = "a2!".into();
        assert!(matches!(a.commit(), Err(orm_core::Error::StaleData { .. })));
        a.rollback()?;
        a[a1].name = "a1!".into();
        a.commit()?;
        assert_eq!(t.count(r#"SELECT count(*) FROM "user" WHERE name LIKE '%!'"#), 1);
        Ok(())
    }
}

backend_tests! {
    /// One-sided relationships (declared on the `has_many` side only) are kept in step by
    /// `set`, `append`, `remove`, direct edits and flushes, and restored by rollback.
    fn one_sided_relationship_in_step(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let s1 = db.add(Shelf::new("s1"));
        let s2 = db.add(Shelf::new("s2"));
        let b1 = db.add(Book::new("b1", Some(s1.into())));
        let b2 = db.add(Book::new("b2", None));
        assert_eq!(db[s1].books, [b1]);
        db.append(s2, Shelf::books, b2)?;
        assert_eq!(db[b2].shelf, Some(db[s2].id));
        db.commit()?;
        assert_eq!(db[s2].books, [b2]);
        // Direct edit, settled by the next relationship call on Book.
        db[b1].shelf = Some(db[s2].id);
        db.remove(s2, Shelf::books, b2)?;
        assert!(db[s1].books.is_empty());
        assert_eq!(db[s2].books, [b1]);
        assert_eq!(db[b2].shelf, None);
        db.commit()?;
        assert_eq!(
            t.rows("SELECT title, shelf_id FROM book ORDER BY id"),
            table(&[&["b1", "2"], &["b2", "NULL"]])
        );
        // Direct edit, then rollback: back to the commit.
        db[b2].shelf = Some(db[s1].id);
        db.set(b1, Book::shelf, Some(s1))?;
        assert_eq!(db[s1].books, [b2, b1]);
        db.flush()?;
        db.rollback()?;
        assert!(db[s1].books.is_empty());
        assert_eq!(db[s2].books, [b1]);
        assert_eq!(db[b2].shelf, None);
        // A fresh session: a book loaded before its shelf, edited directly to another shelf.
        let mut db = t.open();
        let b1 = db.get::<Book>(1)?.expect("b1");
        let s2 = db.get::<Shelf>(2)?.expect("s2");
        db[b1].shelf = Some(Id::new(1));
        assert!(db.load(s2, Shelf::books)?.is_empty());
        let s1 = db.get::<Shelf>(1)?.expect("s1");
        assert_eq!(db.load(s1, Shelf::books)?, [b1]);
        db.commit()?;
        assert_eq!(db[s1].books, [b1]);
        assert!(db[s2].books.is_empty());
        Ok(())
    }

    /// A one-sided self-referential tree: direct edits of `up` between flushes, a node made
    /// the parent of its former parent, a node pointing at a node not loaded.
    fn one_sided_tree(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let root = db.add(Node::new("root", None));
        let a = db.add(Node::new("a", Some(root.into())));
        let b = db.add(Node::new("b", Some(a.into())));
        db.commit()?;
        assert_eq!(db[root].down, [a]);
        assert_eq!(db[a].down, [b]);
        // b goes to root, a under b.
        db[b].up = Some(db[root].id);
        db[a].up = Some(db[b].id);
        db.flush()?;
        assert_eq!(db[root].down, [b]);
        assert_eq!(db[b].down, [a]);
        assert!(db[a].down.is_empty());
        db.commit()?;
        // A new session: a node added under a node it has not loaded, which is loaded later.
        let mut db = t.open();
        let c = db.add(Node::new("c", Some(Id::new(2))));
        db.commit()?;
        let a = db.get::<Node>(2)?.expect("a");
        assert_eq!(db.load(a, Node::down)?, [c]);
        Ok(())
    }

    /// Children added pointing by key at parents that are not in the session, then the
    /// parents loaded, their collections loaded, direct edits between them, and a flush.
    fn children_before_their_parents(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        for n in ["u1", "u2", "u3"] {
            db.add(User::new(n));
        }
        db.commit()?;
        let mut db = t.open();
        let p = db.add(Product::new("p", Id::<User>::new(2)));
        let q = db.add(Product::new("q", Id::<User>::new(3)));
        db.commit()?;
        db[q].user = Id::new(2);
        let u2 = db.get::<User>(2)?.expect("u2");
        let u3 = db.get::<User>(3)?.expect("u3");
        assert_eq!(db.load(u3, User::products)?, []);
        assert_eq!(db.load(u2, User::products)?, [p, q]);
        db[p].user = Id::new(3);
        db.commit()?;
        assert_eq!(db[u2].products, [q]);
        assert_eq!(db[u3].products, [p]);
        db[p].user = Id::new(1);
        db.flush()?;
        assert!(db[u3].products.is_empty());
        let u1 = db.get::<User>(1)?.expect("u1");
        assert_eq!(db.load(u1, User::products)?, [p]);
        db.rollback()?;
        assert_eq!(db[u3].products, [p]);
        assert!(!db[u1].products.is_loaded());
        Ok(())
    }
}

// ----- property test: keys ----------------------------------------------------------------

use proptest::strategy::{Just, Strategy};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Explicit keys the property test picks from: small ones that clash with generated keys,
/// negative ones, zero and one far ahead.
const KEYS: [i64; 8] = [1, 2, 3, 5, 8, -1, 0, 1_000_000];

/// One step of the key property test.
#[derive(Clone, Copy, Debug)]
enum Step {
    AddUser(Option<usize>),
    AddProduct {
        u: usize,
        key: Option<usize>,
    },
    UserKey {
        u: usize,
        key: usize,
    },
    ProductKey {
        p: usize,
        key: usize,
    },
    Edit {
        p: usize,
        u: usize,
    },
    Rename(usize),
    /// Another program deletes a row (a product, or a user without products).
    RawDelete {
        user: bool,
        i: usize,
    },
    /// Another session commits a user, with an explicit key or a generated one.
    Other(Option<usize>),
    LoadAll,
    Load(usize),
    Flush,
    Commit,
    Rollback,
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0..8usize;
    let k = 0..KEYS.len();
    let ok = proptest::option::of(k.clone());
    proptest::prop_oneof![
        3 => ok.clone().prop_map(Step::AddUser),
        3 => (i.clone(), ok.clone()).prop_map(|(u, key)| Step::AddProduct { u, key }),
        2 => (i.clone(), k.clone()).prop_map(|(u, key)| Step::UserKey { u, key }),
        1 => (i.clone(), k).prop_map(|(p, key)| Step::ProductKey { p, key }),
        2 => (i.clone(), i.clone()).prop_map(|(p, u)| Step::Edit { p, u }),
        1 => i.clone().prop_map(Step::Rename),
        2 => (proptest::bool::ANY, i.clone()).prop_map(|(user, i)| Step::RawDelete { user, i }),
        2 => ok.prop_map(Step::Other),
        1 => Just(Step::LoadAll),
        1 => i.prop_map(Step::Load),
        3 => Just(Step::Flush),
        3 => Just(Step::Commit),
        2 => Just(Step::Rollback),
    ]
}

struct Keys<'t> {
    t: &'t TestDb,
    db: Session,
    users: Vec<Handle<User>>,
    products: Vec<Handle<Product>>,
    /// Objects whose rows another program deleted (users, products).
    killed: (Vec<Handle<User>>, Vec<Handle<Product>>),
    /// No flush wrote since the last commit or rollback (no transaction is open).
    clean: bool,
    names: usize,
    committed: (Vec<(String, String)>, Vec<Vec<String>>),
}

fn text<T: std::fmt::Debug>(x: T) -> String {
    format!("{x:?}")
}

impl Keys<'_> {
    fn view(&self) -> Vec<(String, String)> {
        let u = self.users.iter().map(|&h| {
            (
                text(("u", h)),
                format!("{:?} new={}", self.db.try_get(h), self.db.is_new(h)),
            )
        });
        let p = self.products.iter().map(|&h| {
            (
                text(("p", h)),
                format!("{:?} new={}", self.db.try_get(h), self.db.is_new(h)),
            )
        });
        u.chain(p).collect()
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let mut rows = self
            .t
            .rows(r#"SELECT 'u', id, name, NULL FROM "user" ORDER BY id"#);
        rows.extend(
            self.t
                .rows("SELECT 'p', id, name, user_id FROM product ORDER BY id"),
        );
        rows
    }

    fn user(&self, i: usize) -> Option<Handle<User>> {
        let h = *self.users.get(i % self.users.len().max(1))?;
        self.db.try_get(h).map(|_| h)
    }

    fn product(&self, i: usize) -> Option<Handle<Product>> {
        let h = *self.products.get(i % self.products.len().max(1))?;
        self.db.try_get(h).map(|_| h)
    }

    fn name(&mut self) -> String {
        self.names += 1;
        format!("a{}", self.names)
    }

    /// Whether a live object of the session holds this key (explicit keys equal to such a
    /// key are a known defect, tested above, so the property test does not pick them).
    fn held(&self, key: i64) -> bool {
        self.users
            .iter()
            .any(|&h| self.db.try_get(h).is_some_and(|u| u.id == key))
            || self
                .products
                .iter()
                .any(|&h| self.db.try_get(h).is_some_and(|p| p.id == key))
    }

    /// No two stored objects of a model hold the same key.
    fn check_distinct(&self) -> Result<(), String> {
        let mut seen = std::collections::HashMap::new();
        for &h in self.users.iter().filter(|&&h| !self.db.is_new(h)) {
            if let Some(Ok(k)) = self.db.try_get(h).map(|u| u.id.value()) {
                if let Some(o) = seen.insert(("u", k), text(h)) {
                    return Err(format!("users {o} and {h:?} both hold key {k}"));
                }
            }
        }
        for &h in self.products.iter().filter(|&&h| !self.db.is_new(h)) {
            if let Some(Ok(k)) = self.db.try_get(h).map(|p| p.id.value()) {
                if let Some(o) = seen.insert(("p", k), text(h)) {
                    return Err(format!("products {o} and {h:?} both hold key {k}"));
                }
            }
        }
        Ok(())
    }

    /// After a successful flush: every object has a stored key, and every loaded collection
    /// holds the live products naming it; after a commit, every stored object whose row was
    /// not deleted behind the session is its row (read by another connection).
    fn check_rows(&self, committed: bool) -> Result<(), String> {
        let rows = if committed { self.rows() } else { Vec::new() };
        let find = |m: &str, k: i64| rows.iter().find(|r| r[0] == m && r[1] == k.to_string());
        for &h in &self.users {
            let Some(u) = self.db.try_get(h) else {
                continue;
            };
            let k =
                u.id.value()
                    .map_err(|e| format!("{h:?} after a flush: {e}"))?;
            if self.killed.0.contains(&h) || !committed {
                continue;
            }
            match find("u", k) {
                Some(r) if r[2] == u.name => {}
                r => return Err(format!("user {h:?} {u:?} is row {r:?}")),
            }
        }
        for &h in &self.products {
            let Some(p) = self.db.try_get(h) else {
                continue;
            };
            let k =
                p.id.value()
                    .map_err(|e| format!("{h:?} after a flush: {e}"))?;
            if self.killed.1.contains(&h) || !committed {
                continue;
            }
            match find("p", k) {
                Some(r)
                    if r[2] == p.name
                        && p.user.value().ok().map(|v| v.to_string()).as_ref() == Some(&r[3]) => {}
                r => return Err(format!("product {h:?} {p:?} is row {r:?}")),
            }
        }
        for &u in &self.users {
            let Some(user) = self.db.try_get(u) else {
                continue;
            };
            let Some(items) = user.products.get() else {
                continue;
            };
            let mut have = items.to_vec();
            have.sort_by_key(|h| text(h));
            let mut want: Vec<_> = self
                .products
                .iter()
                .copied()
                .filter(|&p| self.db.try_get(p).is_some_and(|p| p.user == user.id))
                .collect();
            want.sort_by_key(|h| text(h));
            if have != want {
                return Err(format!("{u:?} {user:?}: holds {have:?}, keys say {want:?}"));
            }
        }
        Ok(())
    }

    fn step(&mut self, s: Step) -> Result<(), String> {
        let e = |e: orm_core::Error| format!("unexpected error: {e}");
        match s {
            Step::AddUser(key) => {
                let mut u = User::new(self.name());
                if let Some(k) = key.map(|k| KEYS[k]) {
                    if self.held(k) {
                        return Ok(());
                    }
                    u.id = Id::new(k);
                }
                self.users.push(self.db.add(u));
            }
            Step::AddProduct { u, key } => {
                let Some(u) = self.user(u) else { return Ok(()) };
                let mut p = Product::new(self.name(), u);
                if let Some(k) = key.map(|k| KEYS[k]) {
                    if self.held(k) {
                        return Ok(());
                    }
                    p.id = Id::new(k);
                }
                self.products.push(self.db.add(p));
            }
            Step::UserKey { u, key } => {
                if let Some(u) = self.user(u) {
                    if !self.held(KEYS[key]) {
                        self.db[u].id = Id::new(KEYS[key]);
                    }
                }
            }
            Step::ProductKey { p, key } => {
                if let Some(p) = self.product(p) {
                    if !self.held(KEYS[key]) {
                        self.db[p].id = Id::new(KEYS[key]);
                    }
                }
            }
            Step::Edit { p, u } => {
                if let (Some(p), Some(u)) = (self.product(p), self.user(u)) {
                    self.db[p].user = self.db[u].id;
                }
            }
            Step::Rename(u) => {
                if let Some(u) = self.user(u) {
                    self.db[u].name = self.name();
                }
            }
            Step::RawDelete { user, i } => {
                if !self.clean {
                    return Ok(());
                }
                // Never the top row: a generated key of another program would take it.
                if user {
                    let Some(h) = self.user(i).filter(|&h| !self.db.is_new(h)) else {
                        return Ok(());
                    };
                    let k = self.db[h].id.value().map_err(e)?;
                    let below = t_count(
                        self.t,
                        &format!(r#"SELECT count(*) FROM "user" WHERE id > {k}"#),
                    );
                    let used = t_count(
                        self.t,
                        &format!("SELECT count(*) FROM product WHERE user_id = {k}"),
                    );
                    if below > 0 && used == 0 {
                        self.t
                            .exec(&format!(r#"DELETE FROM "user" WHERE id = {k}"#));
                        self.killed.0.push(h);
                    }
                } else {
                    let Some(h) = self.product(i).filter(|&h| !self.db.is_new(h)) else {
                        return Ok(());
                    };
                    let k = self.db[h].id.value().map_err(e)?;
                    if t_count(
                        self.t,
                        &format!("SELECT count(*) FROM product WHERE id > {k}"),
                    ) > 0
                    {
                        self.t.exec(&format!("DELETE FROM product WHERE id = {k}"));
                        self.killed.1.push(h);
                    }
                }
                self.committed.1 = self.rows();
            }
            Step::Other(key) => {
                if !self.clean {
                    return Ok(());
                }
                let mut other = self.t.open();
                let mut u = User::new(format!("b{}", self.names));
                self.names += 1;
                if let Some(k) = key.map(|k| KEYS[k]) {
                    if self.held(k) {
                        return Ok(());
                    }
                    u.id = Id::new(k);
                }
                other.add(u);
                let _ = other.commit();
                self.committed.1 = self.rows();
            }
            Step::LoadAll => {
                for h in self.db.all::<User>().map_err(e)? {
                    if !self.users.contains(&h) {
                        self.users.push(h);
                    }
                }
                for h in self.db.all::<Product>().map_err(e)? {
                    if !self.products.contains(&h) {
                        self.products.push(h);
                    }
                }
            }
            Step::Load(u) => {
                if let Some(u) = self.user(u).filter(|&h| !self.killed.0.contains(&h)) {
                    self.db.load(u, User::products).map_err(e)?;
                }
            }
            Step::Flush | Step::Commit => {
                let (before, rows) = (self.view(), self.rows());
                let result = if matches!(s, Step::Flush) {
                    self.db.flush()
                } else {
                    self.db.commit()
                };
                match result {
                    Err(err) => {
                        // The transaction began (or goes on) whatever the flush did.
                        self.clean = false;
                        if !matches!(
                            err,
                            orm_core::Error::Database { .. } | orm_core::Error::StaleData { .. }
                        ) {
                            return Err(format!("unexpected error: {err}"));
                        }
                        if self.view() != before {
                            return Err(format!("a failed flush ({err}) changed objects"));
                        }
                        if self.rows() != rows {
                            return Err(format!("a failed flush ({err}) changed the database"));
                        }
                    }
                    Ok(()) => {
                        self.check_distinct()?;
                        self.check_rows(matches!(s, Step::Commit))?;
                        if matches!(s, Step::Commit) {
                            self.clean = true;
                            self.committed = (self.view(), self.rows());
                        } else {
                            self.clean = false;
                        }
                    }
                }
            }
            Step::Rollback => {
                self.db.rollback().map_err(e)?;
                self.clean = true;
                let view = self.view();
                for (label, v) in &view {
                    let at = self.committed.0.iter().find(|(l, _)| l == label);
                    match at {
                        Some((_, want)) if want != v => {
                            return Err(format!(
                                "after rollback {label} is {v}, at the commit {want}"
                            ))
                        }
                        None if !v.starts_with("None")
                            && self.users.iter().any(|h| text(("u", h)) == *label) => {}
                        _ => {}
                    }
                }
                if self.rows() != self.committed.1 {
                    return Err("after rollback the database is not as at the commit".into());
                }
                self.check_distinct()?;
            }
        }
        Ok(())
    }
}

fn t_count(t: &TestDb, sql: &str) -> i64 {
    t.count(sql)
}

fn run_keys(t: &TestDb, steps: &[Step]) -> Result<(), String> {
    t.exec(
        "DELETE FROM product; DELETE FROM \"user\"; \
         INSERT INTO \"user\" (id, name) VALUES (1, 'u1'), (2, 'u2'), (4, 'u4'); \
         INSERT INTO product (id, name, user_id) VALUES (1, 'p1', 1), (2, 'p2', 2)",
    );
    let mut db = t.open();
    let users = db.all::<User>().map_err(|e| e.to_string())?;
    let products = db.all::<Product>().map_err(|e| e.to_string())?;
    let mut w = Keys {
        t,
        db,
        users,
        products,
        killed: (Vec::new(), Vec::new()),
        clean: true,
        names: 0,
        committed: (Vec::new(), Vec::new()),
    };
    w.committed = (w.view(), w.rows());
    for (i, &s) in steps.iter().enumerate() {
        w.step(s)
            .map_err(|m| format!("step {} ({s:?}): {m}", i + 1))?;
    }
    w.step(Step::Rollback)
        .map_err(|m| format!("final rollback: {m}"))
}

fn keys_property(t: &TestDb, cases: u32) {
    drop(t.session());
    let config = Config {
        cases,
        max_shrink_iters: 300,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&proptest::collection::vec(step(), 1..=25), |steps| {
        run_keys(t, &steps).map_err(TestCaseError::fail)
    }) {
        Ok(()) => {}
        Err(TestError::Fail(reason, steps)) => {
            panic!(
                "minimal failing sequence ({:?}):\n{steps:?}\n{reason}",
                t.backend()
            )
        }
        Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
    }
}

/// Random adds with explicit (small, negative, zero, far) and generated keys, key edits of
/// users and products, direct foreign key edits, rows deleted by another program and users
/// committed by another session between transactions, loads, flushes, commits and
/// rollbacks. After every step no two objects of the session hold the same key; after a
/// successful flush every object (whose row was not deleted behind the session) is its row
/// and every loaded collection holds the products naming its user; a failed flush changes
/// no object and no row; a rollback returns objects and rows to the last commit.
mod keys_never_collide {
    use super::*;

    #[test]
    fn sqlite() {
        keys_property(&TestDb::sqlite(), 100);
    }

    #[test]
    fn postgres() {
        if let Some(t) = TestDb::postgres() {
            keys_property(&t, 25);
        }
    }
}
