//! One-to-one: `#[has_one]` on a `HasOne<T>` field, the child's foreign key `UNIQUE`; giving
//! the parent another child lets go of the old one at once.

use orm_core::prelude::*;
use orm_tests::*;

/// An account with one profile (required, deleted when let go of or with the account) and
/// at most one card (nullable: set to `NULL` when let go of).
#[derive(Model, Debug)]
pub struct Account {
    #[key]
    pub id: Id<Account>,
    pub name: String,
    #[has_one(back_populates = "account", delete_orphans)]
    pub profile: HasOne<Profile>,
    #[has_one(back_populates = "owner")]
    pub card: HasOne<Card>,
}

/// The profile of an account.
#[derive(Model, Debug)]
pub struct Profile {
    #[key]
    pub id: Id<Profile>,
    pub bio: String,
    #[belongs_to(back_populates = "profile")]
    pub account: Id<Account>,
}

/// A card an account may own.
#[derive(Model, Debug)]
pub struct Card {
    #[key]
    pub id: Id<Card>,
    pub number: String,
    #[belongs_to(back_populates = "card")]
    pub owner: Option<Id<Account>>,
}

fn session(t: &TestDb) -> Session {
    let mut db = t.open();
    db.create_all::<(Account, Profile, Card)>()
        .expect("create tables");
    db.log_statements(true);
    db
}

backend_tests! {
    fn both_sides_are_in_step_at_once_and_the_key_is_unique(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        let p = db.add(Profile::new("hi", ann));
        assert_eq!(db[ann].profile, Some(p));
        let bob = db.add(Account::new("bob"));
        let c = db.add(Card::new("4242", None));
        db.set(bob, Account::card, Some(c))?;
        assert_eq!(db[c].owner, Some(db[bob].id));
        db.commit()?;
        assert_eq!(t.rows("SELECT bio, account_id FROM profile"), table(&[&["hi", "1"]]));
        assert_eq!(t.rows("SELECT number, owner_id FROM card"), table(&[&["4242", "2"]]));
        // A second profile of the same account is refused by the database itself.
        let mut raw = t.raw();
        assert!(raw.exec("INSERT INTO profile (id, bio, account_id) VALUES (9, 'x', 1)").is_err());
        Ok(())
    }

    fn a_new_child_lets_go_of_the_old_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        let p1 = db.add(Profile::new("one", ann));
        let c1 = db.add(Card::new("1111", ann));
        db.commit()?;
        let c2 = db.add(Card::new("2222", None));
        db.set(ann, Account::card, Some(c2))?;
        // At once: the old card has no owner.
        assert_eq!(db[c1].owner, None);
        assert_eq!(db[ann].card, Some(c2));
        // The required profile let go of goes (delete_orphans).
        let p2 = db.add(Profile::new("two", ann));
        assert_eq!(db[ann].profile, Some(p2));
        assert!(db[p1].account.is_unset());
        db.commit()?;
        assert!(!db.contains(p1));
        assert_eq!(t.rows("SELECT bio, account_id FROM profile"), table(&[&["two", "1"]]));
        assert_eq!(
            t.rows("SELECT number, owner_id FROM card ORDER BY id"),
            table(&[&["1111", "NULL"], &["2222", "1"]])
        );
        // Setting none lets go too.
        db.set(ann, Account::card, None)?;
        db.commit()?;
        assert_eq!(count(t, "SELECT count(*) FROM card WHERE owner_id IS NOT NULL"), 0);
        Ok(())
    }

    fn loading_reads_one_child_from_either_side(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        db.add(Profile::new("hi", ann));
        db.add(Account::new("bob"));
        db.commit()?;
        drop(db);
        let mut db = session(t);
        let ann = db.get::<Account>(Id::new(1))?.expect("ann");
        let bob = db.get::<Account>(Id::new(2))?.expect("bob");
        assert!(!db[ann].profile.is_loaded());
        let p = db.load(ann, Account::profile)?.expect("a profile");
        assert_eq!(db[p].bio, "hi");
        assert_eq!(db[ann].profile, Some(p));
        assert_eq!(db.load(p, Profile::account)?, Some(ann));
        assert_eq!(db.load(bob, Account::card)?, None);
        assert_eq!(db[bob].card, None);
        Ok(())
    }

    fn deleting_the_parent_follows_each_has_one(t: &TestDb) -> orm_core::Result<()> {
        let mut db = session(t);
        let ann = db.add(Account::new("ann"));
        db.add(Profile::new("hi", ann));
        db.add(Card::new("1111", ann));
        db.commit()?;
        drop(db);
        let mut db = session(t);
        let ann = db.get::<Account>(Id::new(1))?.expect("ann");
        db.delete(ann)?;
        db.commit()?;
        assert_eq!(count(t, "SELECT count(*) FROM account"), 0);
        assert_eq!(count(t, "SELECT count(*) FROM profile"), 0);
        assert_eq!(t.rows("SELECT number, owner_id FROM card"), table(&[&["1111", "NULL"]]));
        Ok(())
    }
}

fn count(t: &TestDb, sql: &str) -> i64 {
    t.count(sql)
}
