// Every kind of field with its type passed through a `macro_rules!` `$t:ty` fragment, which
// wraps the type in an invisible group: each is recognised as if written out.

use orm_core::prelude::*;

macro_rules! models {
    (
        $parent_key:ty, $child_key:ty, $name:ty, $note:ty, $fk:ty, $nullable_fk:ty,
        $children:ty, $code:ty
    ) => {
        #[derive(Model, Debug)]
        pub struct Parent {
            #[key]
            pub id: $parent_key,
            pub name: $name,
            #[has_many(back_populates = "parent")]
            pub children: $children,
        }

        #[derive(Model, Debug)]
        pub struct Child {
            #[key]
            pub id: $child_key,
            pub note: $note,
            #[belongs_to(back_populates = "children")]
            pub parent: $fk,
            #[belongs_to]
            pub other: $nullable_fk,
        }

        #[derive(Model, Debug)]
        pub struct Coded {
            #[key]
            pub code: $code,
            pub name: $name,
        }
    };
}

models!(
    Id<Parent>,
    Id<Child>,
    String,
    Option<String>,
    Id<Parent>,
    Option<Id<Parent>>,
    HasMany<Child>,
    String
);

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<(Parent, Child, Coded)>()?;
    let p = db.add(Parent::new("p"));
    let c = db.add(Child::new(None, p, None));
    assert!(db[p].children.contains(c), "the has_many and belongs_to are a pair");
    db.commit()?;
    // Generated keys, not natural ones the user must give.
    assert_eq!((db[p].id.value()?, db[c].id.value()?), (1, 1));
    let k = db.add(Coded::new("fr", "France"));
    db.commit()?;
    assert_eq!(db[k].code, "fr");
    Ok(())
}
