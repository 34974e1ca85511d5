//! Back-population, reconciling direct edits, and lazy loading of both sides.

use orm_core::prelude::*;
use orm_tests::*;

backend_tests! {
    fn moving_a_child_through_the_session_updates_both_collections(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let bob = db.add(User::new("Bob"));
        let p = db.add(Product::new("p", ann));
        let q = db.add(Product::new("q", ann));
        db.set(p, Product::user, bob)?;
        assert_eq!(db[ann].products, [q]);
        assert_eq!(db[bob].products, [p]);
        db.commit()?;
        assert_eq!(
            t.rows(
                r#"SELECT p.name, u.name FROM product p JOIN "user" u ON u.id = p.user_id ORDER BY p.id"#
            ),
            table(&[&["p", "Bob"], &["q", "Ann"]])
        );
        // Stored parents: the move writes one UPDATE of the foreign key.
        db.take_statements();
        db.set(q, Product::user, bob)?;
        assert!(db[ann].products.is_empty());
        assert_eq!(db[bob].products, [p, q]);
        db.commit()?;
        assert_eq!(
            writes(&mut db),
            [t.sql("UPDATE \"product\" SET \"user_id\" = ?1 WHERE \"id\" = ?2")]
        );
        assert_eq!(t.count("SELECT count(*) FROM product WHERE user_id = 2"), 2);
        Ok(())
    }

    fn setting_a_collection_sets_each_childs_parent(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let bob = db.add(User::new("Bob"));
        let p = db.add(Product::new("p", ann));
        let q = db.add(product("q"));
        db.set(bob, User::products, [p, q])?;
        assert_eq!(db[p].user, db[bob].id);
        assert_eq!(db[q].user, db[bob].id);
        assert!(db[ann].products.is_empty(), "p left ann's collection");
        db.commit()?;
        assert_eq!(t.count("SELECT count(*) FROM product WHERE user_id = 2"), 2);
        Ok(())
    }

    fn removing_a_required_child_waits_for_the_flush_and_a_nullable_one_is_set_null(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let bob = db.add(User::new("Bob"));
        let p = db.add(Product::new("p", ann));
        let q = db.add(Product::new("q", ann));
        let r = db.add(Product::new("r", ann));
        db.commit()?;
        // Taken out of ann's collection, q and r have no user until the flush...
        db.set(ann, User::products, [p])?;
        db.remove(ann, User::products, r)?;
        assert_eq!(db[ann].products, [p]);
        assert!(db[q].user.is_unset() && db[r].user.is_unset());
        let err = db.flush().unwrap_err();
        assert!(
            matches!(
                err,
                orm_core::Error::RequiredRelationUnset {
                    model: "Product",
                    field: "user"
                }
            ),
            "{err}"
        );
        assert_eq!(t.count("SELECT count(*) FROM product WHERE user_id = 1"), 3);
        // ...and once they have another, it goes through.
        db.append(bob, User::products, q)?;
        db.set(r, Product::user, bob)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, user_id FROM product ORDER BY id"),
            table(&[&["p", "1"], &["q", "2"], &["r", "2"]])
        );
        assert_eq!(db[bob].products, [q, r]);

        let root = db.add(Category::new("root", None));
        let leaf = db.add(Category::new("leaf", root));
        assert_eq!(db[root].children, [leaf]);
        db.commit()?;
        db.remove(root, Category::children, leaf)?;
        assert_eq!(db[leaf].parent, None);
        assert!(db[root].children.is_empty());
        db.commit()?;
        assert_eq!(
            t.rows("SELECT name, parent_id FROM category ORDER BY id"),
            table(&[&["root", "NULL"], &["leaf", "NULL"]])
        );
        db.append(root, Category::children, leaf)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT parent_id FROM category WHERE name = 'leaf'"),
            table(&[&["1"]])
        );
        Ok(())
    }

    fn a_direct_field_edit_is_reconciled_at_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let bob = db.add(User::new("Bob"));
        let p = db.add(Product::new("p", ann));
        db.get_mut(p).user = db[bob].id; // behind the session's back
        assert_eq!(db[ann].products, [p], "not reconciled before the flush");
        db.flush()?;
        assert!(db[ann].products.is_empty());
        assert_eq!(db[bob].products, [p]);
        db.commit()?;
        assert_eq!(t.rows("SELECT user_id FROM product"), table(&[&["2"]]));
        // Between stored objects as well.
        db.get_mut(p).user = db[ann].id;
        db.flush()?;
        assert_eq!(db[ann].products, [p]);
        assert!(db[bob].products.is_empty());
        Ok(())
    }

    fn lazy_loading_children_and_parents(t: &TestDb) -> orm_core::Result<()> {
        {
            let mut db = t.session();
            let ann = db.add(User::new("Ann"));
            db.add_all([Product::new("a", ann), Product::new("b", ann)]);
            db.add(User::new("Bob"));
            db.commit()?;
        }
        let mut db = t.session();
        let ann = db.get::<User>(1)?.unwrap();
        assert!(!db[ann].products.is_loaded());
        db.take_statements();
        let products = db.load(ann, User::products)?;
        assert_eq!(products.len(), 2);
        assert_eq!(db[ann].products, products);
        assert_eq!(db[products[0]].name, "a");
        // Loaded once: asking again runs no query.
        db.take_statements();
        assert_eq!(db.load(ann, User::products)?, products);
        assert!(db.statements().is_empty());
        // The parent of a child, through the identity map.
        assert_eq!(db.load(products[1], Product::user)?, Some(ann));
        // A parent not loaded yet is read.
        let bob_product = db.add(Product::new("c", Id::<User>::new(2)));
        let bob = db.load(bob_product, Product::user)?.expect("bob");
        assert_eq!(db[bob].name, "Bob");
        // bob's collection loads the new product from the session, not yet in the database.
        assert_eq!(db.load(bob, User::products)?, [bob_product]);
        Ok(())
    }

    fn loading_children_respects_moves_not_yet_flushed(t: &TestDb) -> orm_core::Result<()> {
        {
            let mut db = t.session();
            let ann = db.add(User::new("Ann"));
            db.add(User::new("Bob"));
            db.add_all([Product::new("a", ann), Product::new("b", ann)]);
            db.commit()?;
        }
        let mut db = t.session();
        let a = db.get::<Product>(1)?.unwrap();
        let bob = db.get::<User>(2)?.unwrap();
        db.set(a, Product::user, bob)?; // ann is not loaded yet
        let ann = db.get::<User>(1)?.unwrap();
        let anns = db.load(ann, User::products)?;
        assert_eq!(anns.len(), 1);
        assert_eq!(db[anns[0]].name, "b");
        assert_eq!(db.load(bob, User::products)?, [a]);
        Ok(())
    }

    fn new_parent_collection_and_pending_parent_load(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let p = db.add(Product::new("p", ann));
        assert!(db[ann].products.is_loaded());
        assert_eq!(db.load(p, Product::user)?, Some(ann));
        let q = db.add(product("q"));
        assert_eq!(db.load(q, Product::user)?, None);
        Ok(())
    }

    fn optional_relationship_without_back_reference(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        let n1 = db.add(Note::new(Some("hello".to_owned()), ann));
        let n2 = db.add(Note::new(None, None));
        db.commit()?;
        assert_eq!(db[n1].author, Some(db[ann].id));
        assert_eq!(
            t.rows("SELECT body_text, author_id FROM note ORDER BY id"),
            table(&[&["hello", "1"], &["NULL", "NULL"]])
        );
        db.set(n2, Note::author, ann)?;
        db.set(n1, Note::author, None::<Id<User>>)?;
        db.commit()?;
        assert_eq!(
            t.rows("SELECT author_id FROM note ORDER BY id"),
            table(&[&["NULL"], &["1"]])
        );
        Ok(())
    }
}
