// A `#[key]` on a `String` is a natural key the user assigns; `get` takes the string.

use orm_core::prelude::*;

#[derive(Model, Debug)]
pub struct Country {
    #[key]
    pub code: String,
    pub name: String,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<Country>()?;
    db.add(Country::new("fr", "France"));
    db.commit()?;
    let fr = db.get::<Country>("fr".to_owned())?.expect("stored");
    assert_eq!(db[fr].name, "France");
    Ok(())
}
