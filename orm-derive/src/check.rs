//! Rules that need the whole struct: exactly one key, distinct column names that the
//! databases keep whole, no generics.
//! (That `back_populates` names the matching field of the other model is checked by rustc on
//! code the expansion emits with the literal's span, since a derive sees one struct only.)

use crate::ast::{Kind, Model};
use crate::ctxt::Ctxt;

/// The most bytes of an identifier PostgreSQL keeps; it cuts longer ones silently.
const MAX_IDENTIFIER: usize = 63;

/// Checks `model`, recording every problem in `cx`.
pub fn check(cx: &mut Ctxt, model: &Model<'_>) {
    let name = model.ident;
    if !model.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &model.original.generics,
            "a model cannot be generic; give each table its own struct",
        );
    }
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
    if model.table.len() > MAX_IDENTIFIER {
        cx.syn_error(syn::Error::new(
            model.table_span,
            format!(
                "table name `{}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENTIFIER}, so two such names could name one table: give a shorter one with `#[model(table = \"...\")]`",
                model.table,
                model.table.len()
            ),
        ));
    }
    let columns: Vec<_> = model.fields.iter().filter(|f| f.is_column()).collect();
    for f in &columns {
        if f.column.len() > MAX_IDENTIFIER {
            let at = f
                .attrs
                .column_name
                .as_ref()
                .map_or_else(|| f.ident.span(), |l| l.span());
            cx.syn_error(syn::Error::new(
                at,
                format!(
                    "column name `{}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENTIFIER}, so two such names could name one column: give a shorter one with `#[column(name = \"...\")]`",
                    f.column,
                    f.column.len()
                ),
            ));
        }
    }
    for (i, f) in columns.iter().enumerate() {
        if let Some(g) = columns[..i].iter().find(|g| g.column == f.column) {
            let at = f
                .attrs
                .column_name
                .as_ref()
                .map_or_else(|| f.ident.span(), |l| l.span());
            cx.syn_error(syn::Error::new(
                at,
                format!(
                    "column `{}` of `{}` is already the column of `{}`; give one of them another name with `#[column(name = \"...\")]`",
                    f.column, f.ident, g.ident
                ),
            ));
        }
    }
}
