//! Column types, natural keys, user column types, and `Id` behaviour.

use orm_core::prelude::*;
use orm_tests::*;

fn sample() -> Everything {
    Everything::new(
        -3,
        -70_000,
        -5_000_000_000,
        255,
        65_535,
        4_000_000_000,
        1.5,
        -2.25,
        true,
        "text",
        vec![0, 1, 255],
        Some(1),
        Some(2),
        Some(3),
        Some(4),
        Some(5),
        Some(6),
        Some(0.5),
        Some(0.25),
        Some(false),
        Some("opt".to_owned()),
        Some(vec![9]),
        Cents(1234),
    )
}

backend_tests! {
    fn every_column_type_round_trips(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let full = db.add(sample());
        let mut empty = sample();
        (
            empty.o_i16,
            empty.o_i32,
            empty.o_i64,
            empty.o_u8,
            empty.o_u16,
            empty.o_u32,
        ) = (None, None, None, None, None, None);
        (
            empty.o_f32,
            empty.o_f64,
            empty.o_bool,
            empty.o_string,
            empty.o_bytes,
        ) = (None, None, None, None, None);
        let empty = db.add(empty);
        db.commit()?;
        let (full_id, empty_id) = (db[full].id, db[empty].id);
        let expected_full = {
            let mut e = sample();
            e.id = full_id;
            e
        };
        assert_eq!(
            t.rows(
                "SELECT a_i64, a_u32, a_bool, a_string, price, o_string FROM everything ORDER BY id"
            ),
            table(&[
                &["-5000000000", "4000000000", "1", "text", "1234", "opt"],
                &["-5000000000", "4000000000", "1", "text", "1234", "NULL"]
            ])
        );
        let mut fresh = t.session();
        let f = fresh.get::<Everything>(full_id)?.unwrap();
        assert_eq!(fresh[f], expected_full);
        let e = fresh.get::<Everything>(empty_id)?.unwrap();
        assert_eq!(fresh[e].o_string, None);
        assert_eq!(fresh[e].o_u32, None);
        assert_eq!(fresh[e].price, Cents(1234));
        Ok(())
    }

    fn a_value_that_does_not_fit_is_a_decode_error_naming_the_field(t: &TestDb) -> orm_core::Result<()> {
        drop(t.session());
        let blob = match t.backend() {
            Backend::Sqlite => "x'00'",
            Backend::Postgres => r"'\x00'::bytea",
        };
        t.exec(&format!(
            "INSERT INTO everything VALUES (1, 1, 1, 1, 300, 1, 1, 1, 1, TRUE, 't', {blob}, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 5)"
        ));
        let mut db = t.session();
        let err = db.get::<Everything>(1).unwrap_err();
        assert!(
            matches!(
                &err,
                orm_core::Error::Decode {
                    model: "Everything",
                    field: "a_u8",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("300 is out of range for u8"),
            "{err}"
        );
        Ok(())
    }

    fn natural_keys_are_assigned_by_the_user(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let fr = db.add(Country::new("FR", "France", Some(68_000_000)));
        db.add(Country::new("IS", "Iceland", None));
        db.commit()?;
        assert_eq!(db.get::<Country>("FR")?, Some(fr));
        assert_eq!(
            t.rows("SELECT code, name, population FROM country ORDER BY code"),
            table(&[&["FR", "France", "68000000"], &["IS", "Iceland", "NULL"]])
        );
        let mut other = t.session();
        let is = other.get::<Country>("IS")?.unwrap();
        assert_eq!(other[is].name, "Iceland");
        assert!(other.get::<Country>("XX")?.is_none());
        // Changing the key itself updates the row it was loaded from.
        other[is].code = "ISL".into();
        other.commit()?;
        assert_eq!(other.get::<Country>("ISL")?, Some(is));
        assert_eq!(
            t.rows("SELECT code FROM country ORDER BY code"),
            table(&[&["FR"], &["ISL"]])
        );
        // A duplicate natural key is a unique violation.
        other.add(Country::new("FR", "again", None));
        let err = other.commit().unwrap_err();
        assert!(
            matches!(
                err,
                orm_core::Error::Database {
                    kind: orm_core::DbErrorKind::UniqueViolation,
                    ..
                }
            ),
            "{err}"
        );
        Ok(())
    }

    fn ids_print_compare_and_refuse_a_pending_value(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.open();
        db.create_all::<(User, Product)>()?;
        let u = db.add(User::new("u"));
        let pending = db[u].id;
        assert!(pending.is_pending());
        assert_eq!(format!("{pending:?}"), format!("Id(pending #{})", 0));
        assert_eq!(pending, db.id(u));
        assert_ne!(pending, Id::new(1));
        let err = pending.value().unwrap_err();
        assert!(err.to_string().contains("not flushed yet"), "{err}");
        let unset: Id<User> = Id::unset();
        assert!(matches!(
            unset.value(),
            Err(orm_core::Error::UnsetId { model: "User" })
        ));
        db.commit()?;
        let stored = db[u].id;
        assert_eq!(stored, 1);
        assert_eq!(stored.to_string(), "1");
        assert_eq!(format!("{stored:?}"), "Id(1)");
        assert_eq!(stored.value()?, 1);
        assert_eq!(db.get::<User>(stored)?, Some(u));
        // A handle, a stored id or the pending copy all lead to the same object.
        assert_eq!(db.get::<User>(pending)?, Some(u));
        assert_eq!(db.handle_of(stored), Some(u));
        Ok(())
    }

    fn a_pending_id_of_a_stored_object_is_stored_when_added(t: &TestDb) -> orm_core::Result<()> {
        let mut db = t.session();
        let u = db.add(User::new("u"));
        db.commit()?;
        let p = db.add(Product::new("p", u)); // a handle of a stored user
        assert_eq!(db[p].user, 1);
        db.commit()?;
        assert_eq!(t.rows("SELECT user_id FROM product"), table(&[&["1"]]));
        Ok(())
    }
}
