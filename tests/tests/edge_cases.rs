//! Edge cases found in review: reconciling after set-then-edit, failed flushes and
//! collections, pending ids of stored parents, explicit parent keys, `remove` of another
//! parent's child, keys changed in the same flush, and the largest key.

use orm_core::prelude::*;
use orm_tests::*;

/// Two users and a product of the first, committed, with both collections loaded.
fn two_users_one_product(
    db: &mut Session,
) -> orm_core::Result<(Handle<User>, Handle<User>, Handle<Product>)> {
    let ann = db.add(User::new("Ann"));
    let bob = db.add(User::new("Bob"));
    let p = db.add(Product::new("p", ann));
    db.commit()?;
    Ok((ann, bob, p))
}

backend_tests! {
    // A move through the session followed by a direct edit back to the original parent: after
    // the flush both sides must agree (the child is in its original parent's collection again).
    fn set_then_direct_edit_back_is_reconciled(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let (ann, bob, p) = two_users_one_product(&mut db)?;
        db.set(p, Product::user, bob)?;
        assert_eq!(db[bob].products, [p]);
        db.get_mut(p).user = db[ann].id; // back, behind the session's back
        db.flush()?;
        assert_eq!(db[p].user, db[ann].id);
        assert_eq!(db[ann].products, [p], "child back with its parent");
        assert!(db[bob].products.is_empty(), "child left bob");
        Ok(())
    }

    // A failed flush must leave every object as it was: the reconcile step of the failed flush
    // must not move children between collections, or a later revert of the edit leaves the
    // collections out of step with the key.
    fn failed_flush_does_not_leave_reconciled_collections_behind(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let (ann, bob, p) = two_users_one_product(&mut db)?;
        db.get_mut(p).user = db[bob].id;
        let dup = db.add(Product::new("p", ann)); // unique name: the flush fails
        assert!(db.flush().is_err());
        // (Here ann.products is already [dup] and bob.products [p]: the failed flush moved p.)
        // Revert the edit and fix the bad value: the retry must leave both sides in step.
        db.get_mut(p).user = db[ann].id;
        db.get_mut(dup).name = "q".into();
        db.flush()?;
        assert_eq!(db[p].user, db[ann].id);
        assert!(
            db[ann].products.contains(p),
            "ann.products = {:?}",
            db[ann].products
        );
        assert!(
            !db[bob].products.contains(p),
            "bob.products = {:?}",
            db[bob].products
        );
        Ok(())
    }

    // A stored object whose key field is set directly to the pending id of its (now stored)
    // parent: the flush must replace the pending id by the stored key, and a later edit must not
    // write the key column again nor lose it on rollback.
    fn pending_id_of_a_stored_parent_is_resolved_by_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let (ann, _bob, p) = two_users_one_product(&mut db)?;
        db.get_mut(p).user = Id::from(ann); // same parent, spelled as a pending id
        db.flush()?;
        assert!(
            db[p].user.is_stored(),
            "flush replaces a pending id: {:?}",
            db[p].user
        );
        assert_eq!(db[p].user, db[ann].id);
        assert_eq!(db[p].user.value()?, 1);
        Ok(())
    }

    // Consequence of the unresolved pending id above: the next edit of another column also
    // rewrites the key column, and rollback turns the key into NULL/unset.
    fn pending_id_left_by_a_flush_spoils_later_updates_and_rollback(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let (ann, _bob, p) = two_users_one_product(&mut db)?;
        db.get_mut(p).user = Id::from(ann);
        db.flush()?;
        db.commit()?;
        db.take_statements();
        db.get_mut(p).name = "renamed".into();
        db.flush()?;
        let w = writes(&mut db);
        db.rollback()?;
        assert_eq!(db[p].name, "p");
        assert_eq!(
            db[p].user, db[ann].id,
            "rollback restores the committed key"
        );
        assert_eq!(
            w,
            [t.sql("UPDATE \"product\" SET \"name\" = ?1 WHERE \"id\" = ?2")],
            "only the name changed"
        );
        Ok(())
    }

    // A parent with an explicit key and a new child pointing at that key value: the child joins
    // the parent's (loaded) collection, at the latest after the flush.
    fn child_of_a_parent_with_an_explicit_key_is_back_populated(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let mut parent = Category::new("parent", None);
        parent.id = Id::new(100);
        let parent = db.add(parent);
        let child = db.add(Category::new("child", Id::new(100)));
        db.flush()?;
        assert_eq!(db[child].parent, Some(db[parent].id));
        assert_eq!(
            db[parent].children,
            [child],
            "both sides agree after the flush"
        );
        assert_eq!(db.load(parent, Category::children)?, [child]);
        Ok(())
    }
}

/// A parent whose children may be detached (nullable key), unlike the shared User/Product.
#[derive(Model, Debug)]
pub struct Shelf {
    #[key]
    pub id: Id<Shelf>,
    pub name: String,
    #[has_many(back_populates = "shelf")]
    pub books: HasMany<Book>,
}

/// A child with a nullable key to its parent.
#[derive(Model, Debug)]
pub struct Book {
    #[key]
    pub id: Id<Book>,
    pub title: String,
    #[belongs_to(back_populates = "books")]
    pub shelf: Option<Id<Shelf>>,
}

fn shelf_session(t: &TestDb) -> Session {
    let mut db = t.session();
    db.create_all::<(Shelf, Book)>()
        .expect("create shelf tables");
    db
}

backend_tests! {
    // `remove(parent, rel, child)` of a child that belongs to ANOTHER parent is a no-op. Here the
    // new parent's slot number equals the slot of a stored book whose key equals the child's
    // parent key, which must not matter.
    fn remove_from_the_wrong_parent_leaves_the_child_alone(t: &TestDb) -> orm_core::Result<()> {
        let mut db = shelf_session(t);
        let a = db.add(Shelf::new("a")); // shelf slot 0, key 1
        let mut b0 = Book::new("b0", a);
        b0.id = Id::new(50);
        db.add(b0); // book slot 0, key 50
        let mut b1 = Book::new("b1", a);
        b1.id = Id::new(1);
        let b1 = db.add(b1); // book slot 1, key 1, on shelf 1
        db.commit()?;
        let n = db.add(Shelf::new("new")); // shelf slot 1, pending
        assert!(!db[n].books.contains(b1));
        db.remove(n, Shelf::books, b1)?; // b1 is not n's child
        assert_eq!(db[b1].shelf, Some(db[a].id), "b1 still on shelf a");
        db.commit()?;
        assert_eq!(
            t.rows("SELECT shelf_id FROM book WHERE id = 1"),
            table(&[&["1"]])
        );
        Ok(())
    }

    // Keys are reserved "after the highest key in use": a stored object whose generated key is
    // being changed to a higher value in the same flush is a key in use too, so reserving keys
    // for new rows must not hand out that value.
    fn reserved_keys_do_not_collide_with_a_key_changed_in_the_same_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let ann = db.add(User::new("Ann"));
        db.commit()?; // ann = 1
        db.get_mut(ann).id = Id::new(2);
        let bob = db.add(User::new("Bob"));
        db.commit()?;
        assert_ne!(db[ann].id, db[bob].id);
        Ok(())
    }

    // A stored row with the largest possible key: the next generated key must be an error (or
    // another free key), never a panic from `max + 1` overflowing. On PostgreSQL, where keys come
    // from the identity column's sequence, the analog is a sequence at its maximum.
    fn the_largest_key_in_use_does_not_panic_the_flush(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        match t.backend() {
            Backend::Sqlite => {
                let mut n = Note::new(Some("max".into()), None);
                n.id = Id::new(i64::MAX);
                db.add(n);
                db.commit()?;
                db.add(Note::new(Some("next".into()), None));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.commit()));
                assert!(r.is_ok(), "flush panicked");
            }
            Backend::Postgres => {
                t.exec("SELECT setval(pg_get_serial_sequence('note', 'id'), 9223372036854775807)");
                db.add(Note::new(Some("next".into()), None));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.commit()));
                let err = r.expect("flush panicked").unwrap_err();
                assert!(
                    matches!(err, orm_core::Error::KeysExhausted { model: "Note" }),
                    "{err}"
                );
                assert_eq!(t.count("SELECT count(*) FROM note"), 0);
            }
        }
        Ok(())
    }
}
