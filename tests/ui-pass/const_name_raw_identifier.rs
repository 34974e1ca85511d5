// A typed column constant may be named with a raw identifier (`r#type`).
use orm_core::prelude::*;

#[derive(Model, Debug)]
struct Part {
    #[key]
    id: Id<Part>,
    #[column(const_name = "r#type")]
    kind: String,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<(Part,)>()?;
    db.add(Part::new("bolt"));
    assert_eq!(db.query::<Part>().filter(Part::r#type.eq("bolt")).count()?, 1);
    Ok(())
}
