//! The attribute grammar: `#[model(table = "..")]` on the struct; `#[key]`,
//! `#[column(name = "..", unique, index)]`, `#[belongs_to(back_populates = "..", on_delete = "..")]`
//! and `#[has_many(back_populates = "..", cascade_delete, delete_orphans, passive_deletes)]` on
//! fields. Per-attribute rules (unknown keys,
//! duplicates, syntax) are checked here; rules across fields are in `check`.

use crate::ctxt::Ctxt;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Meta};

/// Attributes of the struct.
#[derive(Default)]
pub struct ModelAttrs {
    /// `#[model(table = "..")]`.
    pub table: Option<LitStr>,
}

/// A `#[belongs_to]` or `#[has_many]` attribute.
pub struct RelAttr<'a> {
    /// The attribute, for spans.
    pub original: &'a Attribute,
    /// `back_populates = ".."`.
    pub back_populates: Option<LitStr>,
    /// Whether a `back_populates` or `through` was given but refused (reported already).
    pub refused: bool,
    /// `has_many`: `cascade_delete`.
    pub cascade_delete: bool,
    /// `has_many`: `delete_orphans`.
    pub delete_orphans: bool,
    /// `has_many`: `passive_deletes`.
    pub passive_deletes: bool,
    /// `belongs_to`: `on_delete = ".."`, with the clause it names.
    pub on_delete: Option<(LitStr, OnDelete)>,
    /// `belongs_to`: `post_update`, where it was written.
    pub post_update: Option<proc_macro2::Span>,
    /// `has_many`: `through = ".."`, the association table of a many-to-many.
    pub through: Option<LitStr>,
    /// `has_many`: `foreign_key = ".."`, the association table's column for this model.
    pub foreign_key: Option<LitStr>,
    /// `has_many`: `target_foreign_key = ".."`, its column for the other model.
    pub target_foreign_key: Option<LitStr>,
}

/// The `ON DELETE` clause a `#[belongs_to(on_delete = "..")]` names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    NoAction,
    Cascade,
    SetNull,
    Restrict,
}

impl OnDelete {
    /// The spellings `on_delete` accepts.
    const NAMES: [(&'static str, OnDelete); 4] = [
        ("cascade", OnDelete::Cascade),
        ("set null", OnDelete::SetNull),
        ("restrict", OnDelete::Restrict),
        ("no action", OnDelete::NoAction),
    ];

    /// The variant of `orm_core::OnDelete`.
    pub fn variant(self) -> &'static str {
        match self {
            OnDelete::NoAction => "NoAction",
            OnDelete::Cascade => "Cascade",
            OnDelete::SetNull => "SetNull",
            OnDelete::Restrict => "Restrict",
        }
    }
}

/// Attributes of one field.
#[derive(Default)]
pub struct FieldAttrs<'a> {
    /// `#[key]`.
    pub key: Option<&'a Attribute>,
    /// `#[version]`: the column optimistic concurrency checks and bumps.
    pub version: Option<&'a Attribute>,
    /// `#[column(name = "..")]`.
    pub column_name: Option<LitStr>,
    /// `#[column(unique)]`.
    pub unique: bool,
    /// `#[column(index)]`.
    pub index: bool,
    /// `#[column(const_name = "..")]`: the name of the typed column constant.
    pub const_name: Option<syn::Ident>,
    /// `#[column(..)]`, for spans.
    pub column: Option<&'a Attribute>,
    /// `#[belongs_to(..)]`.
    pub belongs_to: Option<RelAttr<'a>>,
    /// `#[has_many(..)]`.
    pub has_many: Option<RelAttr<'a>>,
    /// `#[has_one(..)]`.
    pub has_one: Option<RelAttr<'a>>,
}

/// Parses the struct's attributes.
pub fn model_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> ModelAttrs {
    let mut out = ModelAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("model") {
            let r = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table") {
                    let lit: LitStr = meta.value()?.parse()?;
                    if out.table.is_some() {
                        return Err(meta.error("duplicate `table`; give the table name once"));
                    }
                    if lit.value().is_empty() {
                        return Err(syn::Error::new(lit.span(), "the table name is empty"));
                    }
                    out.table = Some(lit);
                    Ok(())
                } else {
                    Err(meta.error("unknown `model` attribute; expected `table = \"...\"`"))
                }
            });
            if let Err(e) = r {
                cx.syn_error(e);
            }
        } else if let Some(name) = [
            "key",
            "column",
            "belongs_to",
            "has_many",
            "has_one",
            "version",
        ]
        .into_iter()
        .find(|n| attr.path().is_ident(n))
        {
            cx.error_spanned_by(
                attr,
                format!("`#[{name}]` goes on a field, not on the struct; move it to the field it is about (the struct takes `#[model(table = \"...\")]`)"),
            );
        }
    }
    out
}

fn rel_attr<'a>(cx: &mut Ctxt, attr: &'a Attribute, name: &str) -> RelAttr<'a> {
    let mut out = RelAttr {
        original: attr,
        back_populates: None,
        refused: false,
        cascade_delete: false,
        delete_orphans: false,
        passive_deletes: false,
        on_delete: None,
        post_update: None,
        through: None,
        foreign_key: None,
        target_foreign_key: None,
    };
    // `has_many` and `has_one` take the same keys.
    let has_many = name != "belongs_to";
    let expected = if has_many {
        "`back_populates = \"field\"`, `cascade_delete`, `delete_orphans`, `passive_deletes`, `through = \"table\"`, `foreign_key = \"column\"` or `target_foreign_key = \"column\"`"
    } else {
        "`back_populates = \"field\"`, `on_delete = \"cascade\" | \"set null\" | \"restrict\"` or `post_update`"
    };
    if let Meta::Path(_) = attr.meta {
        return out;
    }
    let r = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("back_populates") {
            back_populates(&meta, &mut out)
        } else if has_many && meta.path.is_ident("cascade_delete") {
            flag(&meta, &mut out.cascade_delete, "cascade_delete")
        } else if has_many && meta.path.is_ident("delete_orphans") {
            flag(&meta, &mut out.delete_orphans, "delete_orphans")
        } else if has_many && meta.path.is_ident("passive_deletes") {
            flag(&meta, &mut out.passive_deletes, "passive_deletes")
        } else if has_many && name_slot(&meta, &mut out).is_some() {
            table_or_column(&meta, &mut out)
        } else if !has_many && meta.path.is_ident("post_update") {
            let mut set = out.post_update.is_some();
            flag(&meta, &mut set, "post_update")?;
            out.post_update = Some(meta.path.span());
            Ok(())
        } else if !has_many && meta.path.is_ident("on_delete") {
            on_delete(&meta, &mut out)
        } else {
            Err(meta.error(format!("unknown `{name}` attribute; expected {expected}")))
        }
    });
    if let Err(e) = r {
        cx.syn_error(e);
    }
    out
}

/// `back_populates = ".."`: a Rust identifier, given once.
fn back_populates(meta: &syn::meta::ParseNestedMeta<'_>, out: &mut RelAttr<'_>) -> syn::Result<()> {
    let lit: LitStr = meta.value()?.parse()?;
    if out.back_populates.is_some() {
        return Err(meta.error("duplicate `back_populates`"));
    }
    if syn::parse_str::<syn::Ident>(&lit.value()).is_err() {
        out.refused = true;
        return Err(syn::Error::new(
            lit.span(),
            "`back_populates` must name a field of the other model",
        ));
    }
    out.back_populates = Some(lit);
    Ok(())
}

/// `through`, `foreign_key` or `target_foreign_key = ".."` (`meta` is one): a name, given once.
fn table_or_column(
    meta: &syn::meta::ParseNestedMeta<'_>,
    out: &mut RelAttr<'_>,
) -> syn::Result<()> {
    let lit: LitStr = meta.value()?.parse()?;
    if name_slot(meta, out).is_some_and(|slot| slot.is_some()) {
        return Err(meta.error(format!(
            "duplicate `{}`",
            meta.path
                .get_ident()
                .map_or(String::new(), |i| i.to_string())
        )));
    }
    if lit.value().is_empty() {
        // Reported here; no second error for what the name would have settled.
        out.refused = true;
        return Err(syn::Error::new(lit.span(), "the name is empty"));
    }
    if let Some(slot) = name_slot(meta, out) {
        *slot = Some(lit);
    }
    Ok(())
}

/// `on_delete = ".."`: one of the clauses, given once.
fn on_delete(meta: &syn::meta::ParseNestedMeta<'_>, out: &mut RelAttr<'_>) -> syn::Result<()> {
    let lit: LitStr = meta.value()?.parse()?;
    if out.on_delete.is_some() {
        return Err(meta.error("duplicate `on_delete`"));
    }
    let value = lit.value().to_ascii_lowercase();
    let Some(&(_, clause)) = OnDelete::NAMES.iter().find(|(n, _)| *n == value) else {
        return Err(syn::Error::new(
            lit.span(),
            "unknown `on_delete`; expected \"cascade\", \"set null\", \"restrict\" or \"no action\"",
        ));
    };
    out.on_delete = Some((lit, clause));
    Ok(())
}

/// Where a `has_many` key that names a table or column (`through`, `foreign_key`,
/// `target_foreign_key`) is kept, if `meta` is one.
fn name_slot<'o>(
    meta: &syn::meta::ParseNestedMeta<'_>,
    out: &'o mut RelAttr<'_>,
) -> Option<&'o mut Option<LitStr>> {
    if meta.path.is_ident("through") {
        Some(&mut out.through)
    } else if meta.path.is_ident("foreign_key") {
        Some(&mut out.foreign_key)
    } else if meta.path.is_ident("target_foreign_key") {
        Some(&mut out.target_foreign_key)
    } else {
        None
    }
}

/// A flag of a relationship attribute (`cascade_delete`): no value, given once.
fn flag(meta: &syn::meta::ParseNestedMeta<'_>, set: &mut bool, name: &str) -> syn::Result<()> {
    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        return Err(meta.error(format!("`{name}` takes no value; write just `{name}`")));
    }
    if std::mem::replace(set, true) {
        return Err(meta.error(format!("duplicate `{name}`")));
    }
    Ok(())
}

/// A marker attribute without arguments (`#[key]`, `#[version]`), given once.
fn marker<'a>(cx: &mut Ctxt, attr: &'a Attribute, slot: &mut Option<&'a Attribute>, name: &str) {
    if !matches!(attr.meta, Meta::Path(_)) {
        cx.error_spanned_by(attr, format!("`#[{name}]` takes no arguments"));
    }
    if slot.is_some() {
        cx.error_spanned_by(attr, format!("duplicate `#[{name}]` on this field"));
    }
    *slot = Some(attr);
}

/// Parses one field's attributes.
pub fn field_attrs<'a>(cx: &mut Ctxt, attrs: &'a [Attribute]) -> FieldAttrs<'a> {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("key") {
            marker(cx, attr, &mut out.key, "key");
        } else if path.is_ident("version") {
            marker(cx, attr, &mut out.version, "version");
        } else if path.is_ident("column") {
            if out.column.is_some() {
                cx.error_spanned_by(attr, "duplicate `#[column]`; put every option in one");
            }
            out.column = Some(attr);
            let r = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    let lit: LitStr = meta.value()?.parse()?;
                    if lit.value().is_empty() {
                        return Err(syn::Error::new(lit.span(), "the column name is empty"));
                    }
                    out.column_name = Some(lit);
                } else if meta.path.is_ident("unique") {
                    out.unique = true;
                } else if meta.path.is_ident("index") {
                    out.index = true;
                } else if meta.path.is_ident("const_name") {
                    let lit: LitStr = meta.value()?.parse()?;
                    let mut ident = syn::parse_str::<syn::Ident>(&lit.value()).map_err(|_| {
                        syn::Error::new(
                            lit.span(),
                            "`const_name` must be a Rust identifier (the name of the typed column constant)",
                        )
                    })?;
                    if ident == "new" {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`const_name = \"new\"` would clash with the constructor `new`; choose another name",
                        ));
                    }
                    ident.set_span(lit.span());
                    out.const_name = Some(ident);
                } else {
                    return Err(meta.error(
                        "unknown `column` attribute; expected `name = \"...\"`, `unique`, `index` or `const_name = \"...\"`",
                    ));
                }
                Ok(())
            });
            if let Err(e) = r {
                cx.syn_error(e);
            }
        } else if path.is_ident("belongs_to") {
            if out.belongs_to.is_some() {
                cx.error_spanned_by(attr, "duplicate `#[belongs_to]` on this field");
            }
            out.belongs_to = Some(rel_attr(cx, attr, "belongs_to"));
        } else if path.is_ident("has_many") {
            if out.has_many.is_some() {
                cx.error_spanned_by(attr, "duplicate `#[has_many]` on this field");
            }
            out.has_many = Some(rel_attr(cx, attr, "has_many"));
        } else if path.is_ident("has_one") {
            if out.has_one.is_some() {
                cx.error_spanned_by(attr, "duplicate `#[has_one]` on this field");
            }
            out.has_one = Some(rel_attr(cx, attr, "has_one"));
        } else if path.is_ident("model") {
            cx.error_spanned_by(attr, "`#[model(...)]` goes on the struct, not on a field");
        }
    }
    out
}
