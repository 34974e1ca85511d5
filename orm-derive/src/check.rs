//! Rules that need the whole struct: exactly one key, distinct column names that the
//! databases keep whole, no generics.
//! (That `back_populates` names the matching field of the other model is checked by rustc on
//! code the expansion emits with the literal's span, since a derive sees one struct only.)

use crate::ast::{Field, Kind, Model};
use crate::ctxt::Ctxt;

/// The most bytes of an identifier PostgreSQL keeps; it cuts longer ones silently.
const MAX_IDENTIFIER: usize = 63;

/// Checks `model`, recording every problem in `cx`.
pub fn check(cx: &mut Ctxt, model: &Model<'_>) {
    not_generic(cx, model);
    one_key(cx, model);
    identifiers_fit(cx, model);
    distinct_columns(cx, model);
    distinct_constants(cx, model);
    one_version(cx, model);
}

/// At most one `#[version]` field.
fn one_version(cx: &mut Ctxt, model: &Model<'_>) {
    let name = model.ident;
    for f in model.fields.iter().filter(|f| f.version).skip(1) {
        cx.error_spanned_by(
            f.attrs.version,
            format!("`{name}` has more than one `#[version]`; keep it on one field"),
        );
    }
}

/// The constants the derive generates (typed columns and relationship descriptors) have
/// distinct names: a `const_name` may not take another field's.
fn distinct_constants(cx: &mut Ctxt, model: &Model<'_>) {
    let mut seen = std::collections::HashSet::new();
    for f in &model.fields {
        if !f.is_column() || matches!(f.kind, Kind::BelongsTo { .. }) {
            seen.insert(f.ident.to_string());
        }
    }
    for f in &model.fields {
        let Some(name) = &f.attrs.const_name else {
            if matches!(f.kind, Kind::Column | Kind::Key { .. })
                && !seen.insert(f.ident.to_string())
            {
                cx.error_spanned_by(
                    f.ident,
                    format!("the typed column constant `{}` is already taken by a `const_name`; choose another `const_name`", f.ident),
                );
            }
            continue;
        };
        if !seen.insert(name.to_string()) {
            cx.error_spanned_by(
                name,
                format!("`const_name = \"{name}\"` is the name of another field's constant; choose another name"),
            );
        }
    }
}

/// A model is not generic: each table has its own struct.
fn not_generic(cx: &mut Ctxt, model: &Model<'_>) {
    if !model.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &model.original.generics,
            "a model cannot be generic; give each table its own struct",
        );
    }
}

/// Exactly one field is `#[key]`.
fn one_key(cx: &mut Ctxt, model: &Model<'_>) {
    let name = model.ident;
    let keys: Vec<_> = model
        .fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Key { .. }))
        .collect();
    // A field with `#[key]` that was rejected has had its error already.
    let key_attr = match &model.original.data {
        syn::Data::Struct(s) => s
            .fields
            .iter()
            .any(|f| f.attrs.iter().any(|a| a.path().is_ident("key"))),
        _ => false,
    };
    match keys.as_slice() {
        [] if key_attr => {}
        [] => cx.error_spanned_by(
            name,
            format!(
                "`{name}` has no key; mark one field `#[key]`, e.g. `#[key] id: Id<{name}>` for a key the database generates"
            ),
        ),
        [_] => {}
        [_, rest @ ..] => {
            for k in rest {
                cx.error_spanned_by(
                    k.attrs.key,
                    format!("`{name}` has more than one `#[key]`; keep it on one field (composite keys are not supported)"),
                );
            }
        }
    }
}

/// The table and column names fit the bytes PostgreSQL keeps.
fn identifiers_fit(cx: &mut Ctxt, model: &Model<'_>) {
    let too_long = |what: &str, name: &str, fix: &str| {
        format!(
            "{what} name `{name}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENTIFIER}, so two such names could name one {what}: give a shorter one with `{fix}`",
            name.len()
        )
    };
    if model.table.len() > MAX_IDENTIFIER {
        let message = too_long("table", &model.table, "#[model(table = \"...\")]");
        cx.syn_error(syn::Error::new(model.table_span, message));
    }
    for f in model.fields.iter().filter(|f| f.is_column()) {
        if f.column.len() > MAX_IDENTIFIER {
            let message = too_long("column", &f.column, "#[column(name = \"...\")]");
            cx.syn_error(syn::Error::new(column_span(f), message));
        }
    }
    for f in &model.fields {
        let Kind::HasMany {
            through: Some(t), ..
        } = &f.kind
        else {
            continue;
        };
        let names = [
            ("table", t.table.value(), "through = \"...\""),
            ("column", t.column.clone(), "foreign_key = \"...\""),
            (
                "column",
                t.target_column.clone(),
                "target_foreign_key = \"...\"",
            ),
        ];
        for (what, name, fix) in names {
            if name.len() > MAX_IDENTIFIER {
                cx.syn_error(syn::Error::new(t.table.span(), too_long(what, &name, fix)));
            }
        }
    }
}

/// No two fields share a column.
fn distinct_columns(cx: &mut Ctxt, model: &Model<'_>) {
    let columns: Vec<_> = model.fields.iter().filter(|f| f.is_column()).collect();
    for (i, f) in columns.iter().enumerate() {
        if let Some(g) = columns[..i].iter().find(|g| g.column == f.column) {
            cx.syn_error(syn::Error::new(
                column_span(f),
                format!(
                    "column `{}` of `{}` is already the column of `{}`; give one of them another name with `#[column(name = \"...\")]`",
                    f.column, f.ident, g.ident
                ),
            ));
        }
    }
}

/// Where a field's column name is written: `#[column(name = "..")]`'s literal, or the field.
fn column_span(f: &Field<'_>) -> proc_macro2::Span {
    f.attrs
        .column_name
        .as_ref()
        .map_or_else(|| f.ident.span(), |l| l.span())
}
