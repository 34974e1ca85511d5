//! The seed story: products attached to a new user through either side, and a pending id
//! copied before the flush. Checked in the database with plain SQL.

use orm_core::prelude::*;
use orm_tests::*;

backend_tests! {
    fn parent_set_on_the_child(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let alice = db.add(User::new("Alice"));
        let a = db.add(Product::new("A", alice));
        let b = db.add(Product::new("B", alice));
        assert_eq!(db[alice].products, [a, b]);
        db.commit()?;
        assert_eq!(db[a].user, 1);
        assert_eq!(db[b].user, db[alice].id);
        assert_eq!(
            t.rows(
                r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id ORDER BY p.id"#
            ),
            table(&[&["A", "Alice"], &["B", "Alice"]])
        );
        Ok(())
    }

    fn children_set_on_the_parent(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let kyle = db.add(User::new("Kyle"));
        let c = db.add(product("C"));
        let d = db.add(product("D"));
        db.set(kyle, User::products, [c, d])?;
        assert_eq!(db[c].user, db[kyle].id);
        assert!(db[c].user.is_pending());
        db.commit()?;
        assert_eq!(db[c].user, db[kyle].id.value()?);
        assert_eq!(
            t.rows(
                r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id ORDER BY p.id"#
            ),
            table(&[&["C", "Kyle"], &["D", "Kyle"]])
        );
        Ok(())
    }

    fn pending_id_copied_before_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let dave = db.add(User::new("Dave"));
        let copied = db[dave].id;
        assert!(matches!(
            copied.value(),
            Err(orm_core::Error::PendingId { model: "User" })
        ));
        let e = db.add(Product::new("E", copied));
        assert_eq!(db[dave].products, [e]);
        db.commit()?;
        assert_eq!(db[e].user, db[dave].id);
        let dave_key = db[dave].id.value()?;
        assert_eq!(
            t.count("SELECT user_id FROM product WHERE name = 'E'"),
            dave_key
        );
        // The copy held outside the session is still the pending id; the session resolves it.
        assert_eq!(db.handle_of(copied), Some(dave));
        Ok(())
    }

    fn all_three_in_one_session_get_keys_in_order(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let alice = db.add(User::new("Alice"));
        db.add(Product::new("A", alice));
        db.commit()?;
        let kyle = db.add(User::new("Kyle"));
        let c = db.add(product("C"));
        db.set(kyle, User::products, [c])?;
        db.commit()?;
        let dave = db.add(User::new("Dave"));
        let e = db.add(Product::new("E", db[dave].id));
        db.commit()?;
        assert_eq!(
            (db[alice].id, db[kyle].id, db[dave].id),
            (Id::new(1), Id::new(2), Id::new(3))
        );
        assert_eq!(db[e].user, 3);
        assert_eq!(
            t.rows("SELECT name, user_id FROM product ORDER BY id"),
            table(&[&["A", "1"], &["C", "2"], &["E", "3"]])
        );
        Ok(())
    }
}
