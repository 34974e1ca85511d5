// A natural key can be any integer type, `bool`, `String` or `Vec<u8>`.

use orm_core::prelude::*;

macro_rules! keyed {
    ($($name:ident: $ty:ty),*) => {$(
        #[derive(Model, Debug)]
        pub struct $name {
            #[key]
            pub key: $ty,
        }
    )*};
}

keyed!(KI16: i16, KI32: i32, KI64: i64, KU8: u8, KU16: u16, KU32: u32, KBool: bool, KString: String, KBytes: Vec<u8>);

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<(KI16, KI32, KI64, KU8, KU16, KU32, KBool, KString, KBytes)>()?;
    Ok(())
}
