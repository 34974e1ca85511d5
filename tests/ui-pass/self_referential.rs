// A model can be its own parent: a category tree, both sides naming each other.

use orm_core::prelude::*;

#[derive(Model, Debug)]
pub struct Category {
    #[key]
    pub id: Id<Category>,
    pub name: String,
    #[belongs_to(back_populates = "children")]
    pub parent: Option<Id<Category>>,
    #[has_many(back_populates = "parent")]
    pub children: HasMany<Category>,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<Category>()?;
    let root = db.add(Category::new("root", None));
    let leaf = db.add(Category::new("leaf", db[root].id));
    assert_eq!(db[root].children, [leaf]);
    db.commit()?;
    assert_eq!(db[leaf].parent, Some(db[root].id));
    Ok(())
}
