//! The derive's intermediate form: the struct and its fields, classified, each keeping the syn
//! node it came from for spans.

use crate::attr::{self, FieldAttrs};
use crate::ctxt::Ctxt;
use crate::name;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, LitStr, PathArguments, Type};

/// A model struct.
pub struct Model<'a> {
    /// The input, for spans.
    pub original: &'a DeriveInput,
    /// The struct name.
    pub ident: &'a Ident,
    /// The table name.
    pub table: String,
    /// Where the table name comes from: `#[model(table = "..")]`'s literal, or the struct name.
    pub table_span: proc_macro2::Span,
    /// Every field, in declaration order.
    pub fields: Vec<Field<'a>>,
}

/// One field.
pub struct Field<'a> {
    /// The field, for spans.
    pub original: &'a syn::Field,
    /// Its name.
    pub ident: &'a Ident,
    /// Its type.
    pub ty: &'a Type,
    /// What it is.
    pub kind: Kind<'a>,
    /// The SQL column (unused for `has_many`).
    pub column: String,
    /// `#[column(unique)]`.
    pub unique: bool,
    /// `#[column(index)]`.
    pub index: bool,
    /// `#[version]`: an integer column checked and bumped by every UPDATE and DELETE.
    pub version: bool,
    /// The attribute that made it a key, a relation or renamed its column, for spans.
    pub attrs: FieldAttrs<'a>,
}

/// What a field is.
pub enum Kind<'a> {
    /// A plain column.
    Column,
    /// `#[key]`: generated (`Id<Self>`) or natural (any column type).
    Key {
        /// Whether the database generates it.
        generated: bool,
    },
    /// `#[belongs_to]`: a foreign key to `parent`.
    BelongsTo {
        /// The parent model.
        parent: &'a Type,
        /// The parent's `has_many` field.
        back_populates: Option<LitStr>,
        /// The foreign key's `ON DELETE` clause.
        on_delete: crate::attr::OnDelete,
        /// `post_update`.
        post_update: bool,
    },
    /// `#[has_many]`: the children of type `child`.
    HasMany {
        /// The child model.
        child: &'a Type,
        /// The child's `belongs_to` field.
        back_populates: Option<LitStr>,
        /// `cascade_delete` (or `delete_orphans`, which implies it), `delete_orphans`,
        /// `passive_deletes`.
        cascade: [bool; 3],
        /// `#[has_one]` on a `HasOne<Child>`: at most one child.
        one: bool,
        /// `through = ".."`: a many-to-many through this association table.
        through: Option<Through>,
    },
    /// A field whose attributes or type broke a rule (reported already): kept, so that the
    /// rules across fields still see its name and column, but never expanded (an error
    /// stops the expansion). `column`: whether it would have had one.
    Invalid {
        /// Whether the field would be stored in a column (not a `has_many`/`has_one`).
        column: bool,
    },
}

/// The association table of a many-to-many (`#[has_many(through = "..")]`).
pub struct Through {
    /// `through = ".."`, for spans.
    pub table: LitStr,
    /// The column that holds this model's key (`foreign_key`, or `{model}_id`).
    pub column: String,
    /// The column that holds the other model's key (`target_foreign_key`, or `{other}_id`).
    pub target_column: String,
}

impl Field<'_> {
    /// Whether the field is stored in a column.
    pub fn is_column(&self) -> bool {
        match self.kind {
            Kind::HasMany { .. } => false,
            Kind::Invalid { column } => column,
            _ => true,
        }
    }

    /// Whether the field is a relationship.
    pub fn is_relation(&self) -> bool {
        matches!(self.kind, Kind::BelongsTo { .. } | Kind::HasMany { .. })
    }
}

/// `ty` without the invisible groups a `macro_rules!` `$t:ty` fragment wraps it in (and
/// without parentheses), so a type passed through a macro is recognised as written.
pub fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

/// The single type argument of `Name<T>`, if `ty` is that.
pub fn generic_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ungroup(ty) else {
        return None;
    };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    if args.args.len() != 1 {
        return None;
    }
    match args.args.first()? {
        GenericArgument::Type(t) => Some(ungroup(t)),
        _ => None,
    }
}

/// `Self` or the model's own name (with any generic arguments: a generic model is reported
/// once, by `check`, not again for its key).
pub fn is_self_type(ty: &Type, ident: &Ident) -> bool {
    match ungroup(ty) {
        Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            let seg = &p.path.segments[0];
            seg.ident == "Self" || seg.ident == *ident
        }
        _ => false,
    }
}

/// The first type argument of `Vec<T>` and the like, for suggestions.
fn first_generic_arg(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ungroup(ty) else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

pub fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

impl<'a> Model<'a> {
    /// Parses the input; errors go to `cx` and what could be parsed is returned.
    pub fn from_syn(cx: &mut Ctxt, input: &'a DeriveInput) -> Option<Model<'a>> {
        let attrs = attr::model_attrs(cx, &input.attrs);
        let fields = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => &named.named,
                _ => {
                    cx.error_spanned_by(
                        &input.ident,
                        "`#[derive(Model)]` needs a struct with named fields; name each field, which also names its column",
                    );
                    return None;
                }
            },
            Data::Enum(_) => {
                cx.error_spanned_by(
                    &input.ident,
                    "`#[derive(Model)]` goes on a struct with named fields, not an enum; to store an enum in a column, implement `orm_core::ColumnType` for it",
                );
                return None;
            }
            Data::Union(_) => {
                cx.error_spanned_by(
                    &input.ident,
                    "`#[derive(Model)]` goes on a struct with named fields, not a union",
                );
                return None;
            }
        };
        let table = attrs
            .table
            .as_ref()
            .map_or_else(|| name::snake_case(&unraw(&input.ident)), LitStr::value);
        let table_span = attrs
            .table
            .as_ref()
            .map_or_else(|| input.ident.span(), LitStr::span);
        // Every named field, those that break a rule included (as `Kind::Invalid`).
        let fields = fields
            .iter()
            .filter_map(|f| Field::from_syn(cx, f, &input.ident))
            .collect();
        Some(Model {
            original: input,
            ident: &input.ident,
            table,
            table_span,
            fields,
        })
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &mut Ctxt, field: &'a syn::Field, model: &Ident) -> Option<Field<'a>> {
        let ident = field.ident.as_ref()?;
        let attrs = attr::field_attrs(cx, &field.attrs);
        let ty = &field.ty;
        let kinds = [
            attrs.key.is_some(),
            attrs.belongs_to.is_some(),
            attrs.has_many.is_some(),
            attrs.has_one.is_some(),
        ];
        let invalid = Kind::Invalid {
            column: attrs.has_many.is_none() && attrs.has_one.is_none(),
        };
        let kind = if kinds.iter().filter(|k| **k).count() > 1 {
            cx.error_spanned_by(
                ident,
                "a field can be only one of `#[key]`, `#[belongs_to]`, `#[has_many]` and `#[has_one]`",
            );
            invalid
        } else if attrs.key.is_some() {
            key_kind(ty)
        } else if let Some(rel) = &attrs.belongs_to {
            belongs_to_kind(cx, ty, rel).unwrap_or(invalid)
        } else if let Some((rel, one)) = attrs
            .has_many
            .as_ref()
            .map(|r| (r, false))
            .or(attrs.has_one.as_ref().map(|r| (r, true)))
        {
            children_kind(cx, ty, rel, (one, model)).unwrap_or(invalid)
        } else {
            column_kind(cx, ty).unwrap_or(invalid)
        };
        let column = match (&attrs.column_name, &kind) {
            (Some(lit), _) => lit.value(),
            (None, Kind::BelongsTo { .. }) => name::foreign_key_column(&unraw(ident)),
            (None, _) => unraw(ident),
        };
        let version =
            attrs.version.is_some() && matches!(kind, Kind::Column) && is_version_type(ty);
        Some(Field {
            original: field,
            ident,
            ty,
            kind,
            column,
            unique: attrs.unique,
            index: attrs.index,
            version,
            attrs,
        })
    }
}

/// Whether `ty` is a type a `#[version]` can have: `i64` or `i32`.
pub fn is_version_type(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Path(p) if p.qself.is_none()
        && (p.path.is_ident("i64") || p.path.is_ident("i32")))
}

/// The kind of a `#[key]` field of type `ty`: generated for an `Id` (of the model itself:
/// `check` says so otherwise), natural for any other column type.
fn key_kind<'a>(ty: &Type) -> Kind<'a> {
    Kind::Key {
        generated: generic_arg(ty, "Id").is_some(),
    }
}

/// The kind of a field without a kind attribute: a plain column, unless its type needs an
/// attribute (`Id`, `HasMany`, `HasOne`), which is an error.
fn column_kind<'a>(cx: &mut Ctxt, ty: &'a Type) -> Option<Kind<'a>> {
    let id = generic_arg(ty, "Id").is_some()
        || generic_arg(ty, "Option")
            .and_then(|t| generic_arg(t, "Id"))
            .is_some();
    let message = if id {
        "an `Id` field needs `#[key]` (this model's key) or `#[belongs_to]` (a foreign key)"
    } else if generic_arg(ty, "HasMany").is_some() {
        "a `HasMany` field needs `#[has_many(back_populates = \"field\")]`"
    } else if generic_arg(ty, "HasOne").is_some() {
        "a `HasOne` field needs `#[has_one(back_populates = \"field\")]`"
    } else {
        return Some(Kind::Column);
    };
    cx.error_spanned_by(ty, message);
    None
}

/// The kind of a `#[belongs_to]` field of type `ty`: `Id<Parent>` or `Option<Id<Parent>>`,
/// with its `on_delete` and `post_update`.
fn belongs_to_kind<'a>(cx: &mut Ctxt, ty: &'a Type, rel: &attr::RelAttr<'_>) -> Option<Kind<'a>> {
    let parent = match generic_arg(ty, "Option") {
        Some(inner) => generic_arg(inner, "Id"),
        None => generic_arg(ty, "Id"),
    };
    let nullable = generic_arg(ty, "Option").is_some();
    // What a key that is not nullable cannot have is `check`'s business.
    let on_delete = rel
        .on_delete
        .as_ref()
        .map_or(crate::attr::OnDelete::NoAction, |(_, clause)| *clause);
    match parent {
        Some(parent) => Some(Kind::BelongsTo {
            parent,
            back_populates: rel.back_populates.clone(),
            on_delete,
            post_update: rel.post_update.is_some() && nullable,
        }),
        None => {
            cx.error_spanned_by(
                ty,
                "`#[belongs_to]` goes on a field of type `Id<Parent>` (required) or `Option<Id<Parent>>` (nullable)",
            );
            None
        }
    }
}

/// The kind of a `#[has_many]` (`one` false) or `#[has_one]` field of type `ty`.
fn children_kind<'a>(
    cx: &mut Ctxt,
    ty: &'a Type,
    rel: &attr::RelAttr<'_>,
    (one, model): (bool, &Ident),
) -> Option<Kind<'a>> {
    let (attr_name, type_name) = if one {
        ("has_one", "HasOne")
    } else {
        ("has_many", "HasMany")
    };
    let Some(child) = generic_arg(ty, type_name) else {
        let suggestion = match first_generic_arg(ty) {
            Some(child) => format!(
                "; change the type to `{type_name}<{}>`",
                quote::ToTokens::to_token_stream(child)
                    .to_string()
                    .replace(' ', "")
            ),
            None => String::new(),
        };
        cx.error_spanned_by(
            ty,
            format!("`#[{attr_name}]` goes on a field of type `{type_name}<Child>`{suggestion}"),
        );
        return None;
    };
    let through = through(rel, model, child);
    Some(Kind::HasMany {
        child,
        back_populates: rel.back_populates.clone(),
        cascade: [
            rel.cascade_delete || rel.delete_orphans,
            rel.delete_orphans,
            rel.passive_deletes,
        ],
        one,
        through,
    })
}

/// The association table of a `#[has_many(through = "..")]` of `model` holding `other`s, with
/// its two columns (their defaults `{model}_id` and `{other}_id`); `None` without `through`.
fn through(rel: &attr::RelAttr<'_>, model: &Ident, other: &Type) -> Option<Through> {
    let table = rel.through.clone()?;
    let default = |ty: &Type| format!("{}_id", name::snake_case(&model_type_name(ty, model)));
    let column = rel.foreign_key.as_ref().map_or_else(
        || format!("{}_id", name::snake_case(&model.to_string())),
        LitStr::value,
    );
    let target_column = rel
        .target_foreign_key
        .as_ref()
        .map_or_else(|| default(other), LitStr::value);
    Some(Through {
        table,
        column,
        target_column,
    })
}

/// The name of model type `ty` (its last path segment; `Self` is `model`).
fn model_type_name(ty: &Type, model: &Ident) -> String {
    match ungroup(ty) {
        Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(seg) if seg.ident != "Self" => unraw(&seg.ident),
            _ => model.to_string(),
        },
        _ => model.to_string(),
    }
}
