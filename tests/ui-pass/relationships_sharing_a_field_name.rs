// Two parents may each call their side `products`, and a child may belong to both: each
// `back_populates` is checked against the model it points at.

use orm_core::prelude::*;

#[derive(Model, Debug)]
pub struct User {
    #[key]
    pub id: Id<User>,
    #[has_many(back_populates = "user")]
    pub products: HasMany<Product>,
}

#[derive(Model, Debug)]
pub struct Shop {
    #[key]
    pub id: Id<Shop>,
    #[has_many(back_populates = "shop")]
    pub products: HasMany<Product>,
}

#[derive(Model, Debug)]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
    #[belongs_to(back_populates = "products")]
    pub shop: Option<Id<Shop>>,
    #[belongs_to]
    pub reviewer: Option<Id<User>>,
}

fn main() -> orm_core::Result<()> {
    let mut db = Session::open_in_memory()?;
    db.create_all::<(User, Shop, Product)>()?;
    let u = db.add(User::new());
    let s = db.add(Shop::new());
    let p = db.add(Product::new(db[u].id, db[s].id, None));
    assert_eq!(db[u].products, [p]);
    assert_eq!(db[s].products, [p]);
    db.commit()?;
    Ok(())
}
