//! Expansion snapshots: what the derive emits for a few representative models, kept in
//! `snapshots/*.txt`, so that a change to the generated code shows in review. Regenerate
//! with `SNAPSHOTS=overwrite cargo test -p orm-derive`.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The models: a parent with a generated key and a has-many, a child with required and
/// nullable parents and options, a natural key, a has-one with cascades, many-to-many
/// relationships (to another model, and to itself through named columns), a `#[version]`.
const MODELS: &[(&str, &str)] = &[
    (
        "parent",
        r#"#[model(table = "user")]
        pub struct User {
            #[key] pub id: Id<User>,
            #[column(unique)] pub name: String,
            #[has_many(back_populates = "user", cascade_delete)] pub products: HasMany<Product>,
        }"#,
    ),
    (
        "child",
        r#"pub struct Product {
            #[key] pub id: Id<Product>,
            #[column(name = "title", index)] pub name: String,
            pub price: Option<i64>,
            #[belongs_to(back_populates = "products", on_delete = "cascade")] pub user: Id<User>,
            #[belongs_to] pub maker: Option<Id<User>>,
        }"#,
    ),
    (
        "natural_key",
        r#"struct Country {
            #[key] code: String,
            #[column(const_name = "name_column")] name: String,
        }"#,
    ),
    (
        "has_one",
        r#"struct Account {
            #[key] id: Id<Self>,
            #[has_one(back_populates = "account", delete_orphans)] profile: HasOne<Profile>,
        }"#,
    ),
    (
        "many_to_many",
        r#"struct Post {
            #[key] id: Id<Post>,
            #[has_many(through = "post_tags", back_populates = "posts")] tags: HasMany<Tag>,
            #[has_many(through = "links", foreign_key = "from_id", target_foreign_key = "to_id")]
            links: HasMany<Post>,
        }"#,
    ),
    (
        "versioned",
        r#"struct Page {
            #[key] id: Id<Page>,
            title: String,
            #[version] revision: i32,
        }"#,
    ),
];

/// The tokens, one item or statement a line, indented by brace depth.
fn pretty(tokens: TokenStream) -> String {
    let mut out = String::new();
    write_tokens(tokens, 0, &mut out);
    out.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn write_tokens(tokens: TokenStream, depth: usize, out: &mut String) {
    let indent = |depth: usize, out: &mut String| {
        out.push('\n');
        out.push_str(&"    ".repeat(depth));
    };
    // After a punctuation joined to the next token (`::`, `->`, `'a`), no space.
    let mut joint = false;
    for tt in tokens {
        let was_joint = std::mem::replace(
            &mut joint,
            matches!(&tt, TokenTree::Punct(p) if p.spacing() == proc_macro2::Spacing::Joint || p.as_char() == '\''),
        );
        match tt {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                out.push_str(" {");
                indent(depth + 1, out);
                write_tokens(g.stream(), depth + 1, out);
                indent(depth, out);
                out.push('}');
                indent(depth, out);
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    _ => ("", ""),
                };
                out.push_str(open);
                out.push_str(&g.stream().to_string());
                out.push_str(close);
            }
            TokenTree::Punct(p) if p.as_char() == ';' => {
                out.push(';');
                indent(depth, out);
            }
            other => {
                if !was_joint && !out.ends_with([' ', '\n', '(', '[']) && !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&other.to_string());
            }
        }
    }
}

#[test]
fn expansions_match_their_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let overwrite = std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite");
    let mut changed = Vec::new();
    for (name, source) in MODELS {
        let input: syn::DeriveInput = syn::parse_str(source).expect("a model");
        let got = pretty(crate::expand::derive(&input));
        let path = dir.join(format!("{name}.txt"));
        if overwrite {
            std::fs::write(&path, &got).expect("write snapshot");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(got.as_str()) {
            changed.push(format!("{name}: see {}\n{got}", path.display()));
        }
    }
    assert!(
        changed.is_empty(),
        "expansions changed (regenerate with SNAPSHOTS=overwrite if intended):\n{}",
        changed.join("\n")
    );
}
