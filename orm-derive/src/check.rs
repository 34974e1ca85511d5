//! The rules a parsed model must keep, one function each: per field (what its attributes
//! allow given its type and kind), then across the whole struct (exactly one key, distinct
//! column names that the databases keep whole, no generics). `ast` only classifies fields
//! (and reports what it cannot classify).
//! (That `back_populates` names the matching field of the other model is checked by rustc on
//! code the expansion emits with the literal's span, since a derive sees one struct only.)

use crate::ast::{generic_arg, is_self_type, Field, Kind, Model};
use crate::attr::{OnDelete, RelAttr};
use crate::ctxt::Ctxt;

/// The most bytes of an identifier PostgreSQL keeps; it cuts longer ones silently.
const MAX_IDENTIFIER: usize = 63;

/// Checks `model`, recording every problem in `cx`.
pub fn check(cx: &mut Ctxt, model: &Model<'_>) {
    for f in &model.fields {
        check_field(cx, model, f);
    }
    not_generic(cx, model);
    one_key(cx, model);
    identifiers_fit(cx, model);
    distinct_columns(cx, model);
    distinct_constants(cx, model);
    one_version(cx, model);
}

/// The rules of one field, in the order they are reported.
fn check_field(cx: &mut Ctxt, model: &Model<'_>, f: &Field<'_>) {
    generated_key_is_of_its_model(cx, model, f);
    key_is_not_optional(cx, f);
    set_null_needs_a_nullable_key(cx, f);
    post_update_needs_a_nullable_key(cx, f);
    children_have_no_column(cx, f);
    through_is_for_has_many(cx, f);
    through_has_no_cascade(cx, f);
    join_columns_differ(cx, f);
    join_columns_need_through(cx, f);
    children_name_their_belongs_to(cx, f);
    version_is_a_plain_column(cx, f);
    version_is_an_integer(cx, f);
}

/// Whether exactly one of `#[key]`, `#[belongs_to]`, `#[has_many]` and `#[has_one]` is on
/// the field (two are reported by `ast`, and the field's own rules are not checked then).
fn one_kind_attribute(f: &Field<'_>) -> bool {
    let a = &f.attrs;
    [
        a.key.is_some(),
        a.belongs_to.is_some(),
        a.has_many.is_some(),
        a.has_one.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count()
        == 1
}

/// A generated key is an `Id` of its own model.
fn generated_key_is_of_its_model(cx: &mut Ctxt, model: &Model<'_>, f: &Field<'_>) {
    if !matches!(f.kind, Kind::Key { generated: true }) {
        return;
    }
    let Some(target) = generic_arg(f.ty, "Id") else {
        return;
    };
    let name = model.ident;
    if !is_self_type(target, name) {
        cx.error_spanned_by(
            target,
            format!("a generated key is an `Id` of its own model, not of `{}`; write `Id<Self>` (or `Id<{name}>`), or make this field a `#[belongs_to]` foreign key and add a key", quote::ToTokens::to_token_stream(target).to_string().replace(' ', "")),
        );
    }
}

/// A natural key is never `NULL`.
fn key_is_not_optional(cx: &mut Ctxt, f: &Field<'_>) {
    if matches!(f.kind, Kind::Key { generated: false }) && generic_arg(f.ty, "Option").is_some() {
        cx.error_spanned_by(
            f.ty,
            "a key cannot be `Option`; use `Id<Self>` for a key the database generates",
        );
    }
}

/// The `#[belongs_to]` of a field whose rules apply (its own kind, or a type `ast` refused).
fn belongs_to_attr<'f>(f: &'f Field<'_>) -> Option<&'f RelAttr<'f>> {
    let applies = matches!(f.kind, Kind::BelongsTo { .. } | Kind::Invalid { .. });
    f.attrs
        .belongs_to
        .as_ref()
        .filter(|_| applies && one_kind_attribute(f))
}

/// `on_delete = "set null"` needs a key that can be `NULL`.
fn set_null_needs_a_nullable_key(cx: &mut Ctxt, f: &Field<'_>) {
    let Some(rel) = belongs_to_attr(f) else {
        return;
    };
    if let Some((lit, OnDelete::SetNull)) = &rel.on_delete {
        if generic_arg(f.ty, "Option").is_none() {
            cx.error_spanned_by(
                lit,
                "`on_delete = \"set null\"` needs a nullable key; make the field `Option<Id<Parent>>`, or use \"cascade\" or \"restrict\"",
            );
        }
    }
}

/// `post_update` inserts the row with the key `NULL`.
fn post_update_needs_a_nullable_key(cx: &mut Ctxt, f: &Field<'_>) {
    let Some(rel) = belongs_to_attr(f) else {
        return;
    };
    if let (Some(span), None) = (rel.post_update, generic_arg(f.ty, "Option")) {
        cx.syn_error(syn::Error::new(
            span,
            "`post_update` needs a nullable key (the row is inserted with it `NULL`); make the field `Option<Id<Parent>>`",
        ));
    }
}

/// The `#[has_many]` or `#[has_one]` of a field whose rules apply, and its name.
fn children_attr<'f>(f: &'f Field<'_>) -> Option<(&'f RelAttr<'f>, &'static str)> {
    let a = &f.attrs;
    let rel = match (&a.has_many, &a.has_one) {
        (Some(r), _) => (r, "has_many"),
        (_, Some(r)) => (r, "has_one"),
        _ => return None,
    };
    let applies = matches!(f.kind, Kind::HasMany { .. } | Kind::Invalid { .. });
    (applies && one_kind_attribute(f)).then_some(rel)
}

/// A `#[has_many]` or `#[has_one]` field has no column of its own.
fn children_have_no_column(cx: &mut Ctxt, f: &Field<'_>) {
    let Some((_, name)) = children_attr(f) else {
        return;
    };
    if f.attrs.column.is_some() {
        cx.error_spanned_by(
            f.attrs.column,
            format!("a `#[{name}]` field has no column; `#[column]` goes on the child's `#[belongs_to]` field"),
        );
    }
}

/// A many-to-many is a `HasMany`.
fn through_is_for_has_many(cx: &mut Ctxt, f: &Field<'_>) {
    if let Kind::HasMany {
        one: true,
        through: Some(t),
        ..
    } = &f.kind
    {
        cx.error_spanned_by(
            &t.table,
            "a `#[has_one]` cannot go `through` an association table; use `#[has_many(through = \"..\")]` on a `HasMany<..>`",
        );
    }
}

/// Deleting either end of a many-to-many deletes its links, never the other end.
fn through_has_no_cascade(cx: &mut Ctxt, f: &Field<'_>) {
    let (
        Kind::HasMany {
            through: Some(_), ..
        },
        Some((rel, _)),
    ) = (&f.kind, children_attr(f))
    else {
        return;
    };
    let flags = [
        (rel.cascade_delete, "cascade_delete"),
        (rel.delete_orphans, "delete_orphans"),
        (rel.passive_deletes, "passive_deletes"),
    ];
    for (_, flag) in flags.iter().filter(|(on, _)| *on) {
        cx.error_spanned_by(
            rel.original,
            format!("`{flag}` does not apply to a many-to-many: deleting either end deletes its rows of the association table, never the other end; remove `{flag}`"),
        );
    }
}

/// The two columns of an association table have two names.
fn join_columns_differ(cx: &mut Ctxt, f: &Field<'_>) {
    let Kind::HasMany {
        through: Some(t), ..
    } = &f.kind
    else {
        return;
    };
    if t.column == t.target_column {
        cx.error_spanned_by(
            &t.table,
            format!("both columns of association table `{}` would be `{}`; name them with `foreign_key = \"..\"` (this model's) and `target_foreign_key = \"..\"` (the other model's)", t.table.value(), t.column),
        );
    }
}

/// `foreign_key` and `target_foreign_key` name an association table's columns.
fn join_columns_need_through(cx: &mut Ctxt, f: &Field<'_>) {
    let (Kind::HasMany { through: None, .. }, Some((rel, _))) = (&f.kind, children_attr(f)) else {
        return;
    };
    for lit in [&rel.foreign_key, &rel.target_foreign_key]
        .into_iter()
        .flatten()
    {
        cx.error_spanned_by(
            lit,
            "`foreign_key` and `target_foreign_key` name the columns of a many-to-many's association table; add `through = \"table\"`",
        );
    }
}

/// A `#[has_many]` or `#[has_one]` (not through a table) names the child's `#[belongs_to]`.
fn children_name_their_belongs_to(cx: &mut Ctxt, f: &Field<'_>) {
    let (
        Kind::HasMany {
            through: None,
            back_populates: None,
            ..
        },
        Some((rel, name)),
    ) = (&f.kind, children_attr(f))
    else {
        return;
    };
    if !rel.refused {
        cx.error_spanned_by(
            rel.original,
            format!("`#[{name}]` needs `back_populates = \"field\"` naming the child's `#[belongs_to]` field"),
        );
    }
}

/// `#[version]` goes on a plain column.
fn version_is_a_plain_column(cx: &mut Ctxt, f: &Field<'_>) {
    let Some(attr) = f.attrs.version else {
        return;
    };
    if !matches!(f.kind, Kind::Column | Kind::Invalid { .. }) {
        cx.error_spanned_by(
            attr,
            "`#[version]` goes on a plain integer column, not on a key or a relationship; add a field `version: i64` for it",
        );
    }
}

/// A `#[version]` is an `i64` or an `i32`: the flush writes its value plus one.
fn version_is_an_integer(cx: &mut Ctxt, f: &Field<'_>) {
    if f.attrs.version.is_some()
        && matches!(f.kind, Kind::Column)
        && !crate::ast::is_version_type(f.ty)
    {
        cx.error_spanned_by(
            f.ty,
            "`#[version]` needs an `i64` (or `i32`) field: the flush writes its value plus one",
        );
    }
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
