//! The user/product story: products attached to a new user through either side of the
//! relationship, a new user's id copied into a product before the flush, a user deleted with
//! its products, a query that loads every user with their products in two SELECTs, and tags
//! on products (many-to-many through an association table).
//!
//! Run with `cargo run --example relations` (a fresh SQLite file in the temp directory), or
//! give a database URL or path, which `Session::connect` takes:
//! `cargo run --example relations -- postgres://postgres@127.0.0.1/test` or `-- shop.db`.
//! The example drops and recreates its `user`, `product`, `tag` and `product_tags` tables
//! there.

use orm_core::prelude::*;

#[derive(Model, Debug)]
#[model(table = "user")]
pub struct User {
    #[key]
    pub id: Id<User>,
    pub name: String,
    // Deleting a user deletes its products.
    #[has_many(back_populates = "user", cascade_delete)]
    pub products: HasMany<Product>,
}

#[derive(Model, Debug)]
#[model(table = "product")]
pub struct Product {
    #[key]
    pub id: Id<Product>,
    pub name: String,
    #[belongs_to(back_populates = "products")]
    pub user: Id<User>,
    // Many-to-many: the rows of `product_tags` link products and tags.
    #[has_many(through = "product_tags", back_populates = "products")]
    pub tags: HasMany<Tag>,
}

#[derive(Model, Debug)]
pub struct Tag {
    #[key]
    pub id: Id<Tag>,
    pub label: String,
    #[has_many(through = "product_tags", back_populates = "tags")]
    pub products: HasMany<Product>,
}

impl Product {
    /// A product without a user yet; the user is set through the parent's collection.
    pub fn named(name: &str) -> Self {
        Product::new(name, Id::unset())
    }
}

/// Prints the statements the last flush ran.
fn show(db: &mut Session) {
    for s in db.take_statements() {
        if ["INSERT", "UPDATE", "DELETE"]
            .iter()
            .any(|w| s.sql.starts_with(w))
        {
            let params: Vec<String> = s.params.iter().map(|p| p.to_string()).collect();
            println!("    {}  -- [{}]", s.sql, params.join(", "));
        }
    }
}

fn main() -> orm_core::Result<()> {
    // `RUST_LOG=orm_core=debug` prints every statement with its parameters, rows and time.
    env_logger::init();
    let given = std::env::args().nth(1);
    let temp = std::env::temp_dir().join(format!("orm-relations-{}.db", std::process::id()));
    let url = given.clone().unwrap_or_else(|| temp.display().to_string());
    let result = run(&url);
    if given.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
        }
    }
    result
}

fn run(url: &str) -> orm_core::Result<()> {
    let mut db = Session::connect(url)?;
    println!("database: {url}");
    db.drop_all::<(User, Product, Tag)>()?;
    db.create_all::<(User, Product, Tag)>()?;
    db.log_statements(true);

    println!("\n1. The parent set on the child: Product::new(\"A\", alice)");
    let alice = db.add(User::new("Alice"));
    let a = db.add(Product::new("A", alice));
    let b = db.add(Product::new("B", alice));
    assert_eq!(db[alice].products, [a, b]); // back-populated at once
    println!(
        "   before commit: alice.id = {}, a.user = {}",
        db[alice].id, db[a].user
    );
    db.commit()?;
    show(&mut db);
    println!(
        "   after commit:  alice.id = {}, a.user = {}, b.user = {}",
        db[alice].id, db[a].user, db[b].user
    );
    assert_eq!(db[a].user, db[alice].id);

    println!("\n2. The children set on the parent: db.set(kyle, User::products, [c, d])");
    let kyle = db.add(User::new("Kyle"));
    let c = db.add(Product::named("C"));
    let d = db.add(Product::named("D"));
    db.set(kyle, User::products, [c, d])?; // c.user and d.user follow
    println!(
        "   before commit: kyle.id = {}, c.user = {}",
        db[kyle].id, db[c].user
    );
    db.commit()?;
    show(&mut db);
    println!(
        "   after commit:  kyle.id = {}, c.user = {}, d.user = {}",
        db[kyle].id, db[c].user, db[d].user
    );
    assert_eq!(db[c].user, db[kyle].id);

    println!("\n3. A new user's id copied into a product before the flush");
    let dave = db.add(User::new("Dave"));
    let dave_id = db[dave].id;
    println!(
        "   dave.id = {dave_id} (asking for its number now: {})",
        dave_id.value().unwrap_err()
    );
    let e = db.add(Product::new("E", dave_id));
    db.commit()?;
    show(&mut db);
    println!(
        "   after commit:  dave.id = {}, e.user = {}",
        db[dave].id, db[e].user
    );
    assert_eq!(db[e].user, db[dave].id);

    println!("\n4. Deleting kyle deletes his products (children first)");
    db.delete(kyle)?;
    db.commit()?;
    show(&mut db);
    assert!(!db.contains(kyle) && !db.contains(c) && !db.contains(d));
    tags(&mut db, [a, e])?;
    query_with_eager_loading(url)
}

/// Step 5: tags on products, linked from either side, in one flush with the new tags.
fn tags(db: &mut Session, [a, e]: [Handle<Product>; 2]) -> orm_core::Result<()> {
    println!("\n5. Tags: db.append(a, Product::tags, sale) and db.append(sale, Tag::products, e)");
    let sale = db.add(Tag::new("sale"));
    let new = db.add(Tag::new("new"));
    db.append(a, Product::tags, sale)?;
    db.append(a, Product::tags, new)?;
    db.append(sale, Tag::products, e)?; // the other side: a.tags and e.tags follow
    assert_eq!(db[sale].products, [a, e]);
    assert_eq!(db[e].tags, [sale]);
    db.commit()?;
    show(db);
    Ok(())
}

/// Step 6, in a fresh session: every user with their products and the products' tags in
/// three SELECTs, then read without more SQL.
fn query_with_eager_loading(url: &str) -> orm_core::Result<()> {
    println!(
        "\n6. A query with eager loading: users, their products, the products' tags: 3 SELECTs"
    );
    let mut fresh = Session::connect(url)?;
    fresh.log_statements(true);
    let users = fresh
        .query::<User>()
        .filter(User::name.ne("nobody"))
        .order_by(User::name)
        .with(User::products.with(Product::tags))
        .all()?;
    for s in fresh.take_statements() {
        let params: Vec<String> = s.params.iter().map(|p| p.to_string()).collect();
        println!("    {}  -- [{}]", s.sql, params.join(", "));
    }
    let mut names = Vec::new();
    for u in users {
        // Loaded by the query: no SQL here.
        for p in fresh.load(u, User::products)? {
            let tags: Vec<&str> = fresh[p]
                .tags
                .iter()
                .map(|&t| fresh[t].label.as_str())
                .collect();
            names.push(format!(
                "{} owns {} [{}]",
                fresh[u].name,
                fresh[p].name,
                tags.join(", ")
            ));
        }
    }
    assert!(fresh.take_statements().is_empty());
    for n in &names {
        println!("   {n}");
    }
    assert_eq!(
        names,
        [
            "Alice owns A [sale, new]",
            "Alice owns B []",
            "Dave owns E [sale]"
        ]
    );
    let e_owner = fresh
        .query::<Product>()
        .filter(Product::name.eq("E"))
        .with(Product::user)
        .one()?;
    let owner = fresh.load(e_owner, Product::user)?.expect("an owner");
    println!("   E belongs to {}", fresh[owner].name);
    Ok(())
}
