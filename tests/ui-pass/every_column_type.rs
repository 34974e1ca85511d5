// Every supported column type, and `Option<T>` of each, is a column.

use orm_core::prelude::*;

#[derive(Model, Debug)]
pub struct Everything {
    #[key]
    pub id: Id<Everything>,
    pub a_i16: i16,
    pub a_i32: i32,
    pub a_i64: i64,
    pub a_u8: u8,
    pub a_u16: u16,
    pub a_u32: u32,
    pub a_f32: f32,
    pub a_f64: f64,
    pub a_bool: bool,
    pub a_string: String,
    pub a_bytes: Vec<u8>,
    pub o_i16: Option<i16>,
    pub o_i32: Option<i32>,
    pub o_i64: Option<i64>,
    pub o_u8: Option<u8>,
    pub o_u16: Option<u16>,
    pub o_u32: Option<u32>,
    pub o_f32: Option<f32>,
    pub o_f64: Option<f64>,
    pub o_bool: Option<bool>,
    pub o_string: Option<String>,
    pub o_bytes: Option<Vec<u8>>,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<Everything>()?;
    let e = db.add(Everything::new(
        1,
        2,
        3,
        4,
        5,
        6,
        7.5,
        8.5,
        true,
        "s",
        vec![9],
        None,
        Some(2),
        None,
        Some(4),
        None,
        Some(6),
        None,
        Some(8.5),
        None,
        Some("t".to_owned()),
        None,
    ));
    db.commit()?;
    assert_eq!(db[e].a_string, "s");
    assert_eq!(db[e].o_string.as_deref(), Some("t"));
    Ok(())
}
