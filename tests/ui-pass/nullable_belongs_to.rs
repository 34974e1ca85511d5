// `#[belongs_to]` on an `Option<Id<Parent>>` is a nullable foreign key.

use orm_core::prelude::*;

#[derive(Model, Debug)]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
    #[has_many(back_populates = "author")]
    pub notes: HasMany<Note>,
}

#[derive(Model, Debug)]
pub struct Note {
    #[key]
    pub id: Id<Note>,
    pub body: String,
    #[belongs_to(back_populates = "notes")]
    pub author: Option<Id<User>>,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<(User, Note)>()?;
    let anonymous = db.add(Note::new("hello", None));
    let dave = db.add(User::new("Dave"));
    let signed = db.add(Note::new("hi", db[dave].id));
    db.commit()?;
    assert_eq!(db[anonymous].author, None);
    assert_eq!(db[signed].author, Some(db[dave].id));
    Ok(())
}
