// Models can be declared inside a function body, with `Self` in their types, and fields may
// be named like methods the user writes (the typed column constant then takes another name).

use orm_core::prelude::*;

fn main() -> orm_core::Result<()> {
    #[derive(Model, Debug)]
    struct Folder {
        #[key]
        id: Id<Self>,
        #[column(const_name = "name_column")]
        name: String,
        #[belongs_to(back_populates = "subfolders")]
        parent: Option<Id<Self>>,
        #[has_many(back_populates = "parent")]
        subfolders: HasMany<Self>,
    }

    impl Folder {
        fn name(&self) -> &str {
            &self.name
        }
    }

    let mut db = Session::open_in_memory()?;
    db.create_all::<Folder>()?;
    let root = db.add(Folder::new("root", None));
    let sub = db.add(Folder::new("sub", db[root].id));
    db.commit()?;
    assert_eq!(db[sub].name(), "sub");
    let found = db.query::<Folder>().filter(Folder::name_column.eq("sub")).one()?;
    assert_eq!(found, sub);
    assert_eq!(db[root].subfolders, [sub]);
    Ok(())
}
