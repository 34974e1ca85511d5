//! Relationship descriptors (`Product::user`, `User::products`) and the compile-time checks
//! that each `back_populates` names the matching field of the other model.
//!
//! A derive sees one struct only, so the checks are emitted as constants spanned at the
//! `back_populates` literal: a const evaluation looks the name up in the other model's
//! metadata (a missing field, a column, the wrong kind of relationship or one whose own
//! `back_populates` names another field panics with a message naming both models), then rustc
//! checks the model at the other end through `RelationAt`. A name already reported resolves to
//! `NO_RELATION`, which passes the type check, so each mistake gives one error.

use super::meta::Meta;
use super::{concrete, private};
use crate::ast::{ungroup, Field, Kind, Model};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Type};

/// The name of `ty` in messages: the last segment of a path, `Self` as the model's name.
fn display_name(ty: &Type, model: &Ident) -> String {
    match ungroup(ty) {
        Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(seg) if seg.ident == "Self" => model.to_string(),
            Some(seg) => seg.ident.to_string(),
            None => model.to_string(),
        },
        _ => quote!(#ty).to_string(),
    }
}

/// `message` as a `panic!` format string spanned at `span`.
fn format_literal(message: &str, span: Span) -> LitStr {
    LitStr::new(&message.replace('{', "{{").replace('}', "}}"), span)
}

/// The checks of `back_populates = lit` on field `field` of `this`, naming a field of the
/// model `other`, whose metadata is `other_meta`.
struct Check<'a> {
    this: &'a Ident,
    field: String,
    other: TokenStream,
    other_meta: TokenStream,
    /// The models at the other end of each relationship of `this`, by name.
    targets: &'a [String],
    lit: &'a LitStr,
    /// The side the field named must be (`RelationKind::side`): 1 for this `belongs_to`'s
    /// `has_many`, 0 for this `has_many`'s `belongs_to`, 2 for a many-to-many's other side.
    side: u8,
    missing: String,
    column: String,
    wrong_kind: String,
    not_mutual: String,
}

impl Check<'_> {
    fn expand(&self) -> TokenStream {
        let p = private();
        let Check {
            this,
            field,
            other,
            other_meta,
            targets,
            lit,
            side,
            ..
        } = self;
        let span = lit.span();
        let [missing, column, wrong_kind, not_mutual] = [
            &self.missing,
            &self.column,
            &self.wrong_kind,
            &self.not_mutual,
        ]
        .map(|s| format_literal(s, span));
        let args = quote_spanned! {span=>
            #other_meta, #lit, #side, <#this as #p::Model>::META, #field, &[#(#targets),*]
        };
        let expect = if *side != 0 {
            quote_spanned!(span=> expect_child)
        } else {
            quote_spanned!(span=> expect_parent)
        };
        // `::core::panic!` written here, not through `#p`, so that the whole macro call is
        // spanned at the literal and the error points there.
        quote_spanned! {span=>
            const _: () = match #p::find_inverse(#args) {
                #p::Inverse::Missing => ::core::panic!(#missing),
                #p::Inverse::Column => ::core::panic!(#column),
                #p::Inverse::WrongKind => ::core::panic!(#wrong_kind),
                #p::Inverse::NotMutual => ::core::panic!(#not_mutual),
                #p::Inverse::Found(_) | #p::Inverse::Unchecked => {}
            };
            const _: () = #p::#expect::<
                <#other as #p::RelationAt<{ #p::inverse_index(#args) }, #this>>::Other,
                #this,
                #other,
            >();
        }
    }
}

/// What the relationships of a model expand to: descriptor constants (in one inherent
/// impl), `RelationAt` impls, and the compile-time checks of each `back_populates`.
#[derive(Default)]
struct Items {
    consts: Vec<TokenStream>,
    impls: Vec<TokenStream>,
    checks: Vec<TokenStream>,
}

/// The descriptors and checks of `model`'s relationships (numbered as the metadata numbers
/// them).
pub fn expand(model: &Model<'_>, meta: &Meta) -> TokenStream {
    let ident = model.ident;
    let targets: Vec<String> = model
        .fields
        .iter()
        .filter_map(|f| match &f.kind {
            Kind::BelongsTo { parent: t, .. } | Kind::HasMany { child: t, .. } => {
                Some(display_name(t, ident))
            }
            _ => None,
        })
        .collect();
    let mut out = Items::default();
    let relations = model
        .fields
        .iter()
        .zip(&meta.relation)
        .filter_map(|(f, rel)| Some(((*rel)?, f)));
    for (rel, f) in relations {
        match &f.kind {
            Kind::BelongsTo {
                parent,
                back_populates,
                ..
            } => belongs_to(
                model,
                f,
                rel,
                parent,
                back_populates.as_ref(),
                &targets,
                &mut out,
            ),
            Kind::HasMany {
                child,
                back_populates,
                one,
                through,
                ..
            } => has_many(
                model,
                f,
                rel,
                (child, *one, through.is_some()),
                back_populates.as_ref(),
                &targets,
                &mut out,
            ),
            _ => unreachable!("filtered above"),
        }
    }
    let Items {
        consts,
        impls,
        checks,
    } = out;
    if consts.is_empty() {
        return quote!(#(#checks)*);
    }
    quote! {
        #[automatically_derived]
        impl #ident {
            #(#consts)*
        }
        #(#impls)*
        #(#checks)*
    }
}

/// The descriptor, `RelationAt` impl and checks of `#[belongs_to]` field `f`, relation `rel`.
fn belongs_to(
    model: &Model<'_>,
    f: &Field<'_>,
    rel: usize,
    parent_ty: &Type,
    back_populates: Option<&LitStr>,
    targets: &[String],
    out: &mut Items,
) {
    let p = private();
    let ident = model.ident;
    let (name, vis, ty) = (f.ident, &f.original.vis, f.ty);
    let field = name.to_string();
    let parent = concrete(parent_ty, ident);
    let doc = format!(
        "The `{name}` relationship of `{ident}` (its parent): use it with `Session::load` and `Session::set`."
    );
    out.consts.push(quote! {
        #[doc = #doc]
        #vis const #name: #p::BelongsTo<#ident, #parent> = #p::BelongsTo::new(#rel);
    });
    out.impls.push(quote! {
        impl<E> #p::RelationAt<#rel, E> for #ident {
            type Other = #parent;
        }
    });
    let field_ty = concrete(ty, ident);
    out.checks.push(quote_spanned! {ty.span()=>
        const _: () = #p::assert_id_field::<#field_ty>();
    });
    // Every use of the parent's metadata is this expression at this span, so a
    // parent without a generated key is one error however often it is used.
    let parent_meta = quote_spanned! {parent_ty.span()=>
        <#parent as #p::GeneratedKey>::META
    };
    out.checks.push(quote_spanned! {parent_ty.span()=>
        const _: &#p::ModelMeta = #parent_meta;
    });
    if let Some(lit) = back_populates {
        let (c, pn, x) = (ident, display_name(parent_ty, ident), lit.value());
        let fix = format!(
            "`back_populates` must name the `#[has_many]` (or `#[has_one]`) field of `{pn}` that holds `{c}`s"
        );
        out.checks.push(
            Check {
                this: ident,
                field: field.clone(),
                other: parent,
                other_meta: parent_meta,
                targets,
                lit,
                side: 1,
                missing: format!("`{pn}` has no field `{x}`; {fix}"),
                column: format!(
                    "`{pn}::{x}` is a column, not a `#[has_many]` or `#[has_one]`; {fix}"
                ),
                wrong_kind: format!(
                    "`{pn}::{x}` is a `#[belongs_to]` or a many-to-many, not a `#[has_many]` or `#[has_one]`; {fix}"
                ),
                not_mutual: format!(
                    "`{pn}::{x}` is already the other side of another field of `{c}` (its `back_populates` names that field); add a `#[has_many(back_populates = \"{field}\")]` field to `{pn}` and name it here, or remove `back_populates` here"
                ),
            }
            .expand(),
        );
    }
}

/// The descriptor, `RelationAt` impl and checks of `#[has_many]` or `#[has_one]` field `f`
/// (`one`), relation `rel`.
fn has_many(
    model: &Model<'_>,
    f: &Field<'_>,
    rel: usize,
    (child_ty, one, through): (&Type, bool, bool),
    back_populates: Option<&LitStr>,
    targets: &[String],
    out: &mut Items,
) {
    let p = private();
    let ident = model.ident;
    let (name, vis) = (f.ident, &f.original.vis);
    let field = name.to_string();
    let child = concrete(child_ty, ident);
    if one {
        let doc = format!(
            "The `{name}` relationship of `{ident}` (its one child): use it with `Session::load` and `Session::set`."
        );
        out.consts.push(quote! {
            #[doc = #doc]
            #vis const #name: #p::HasOneRel<#ident, #child> = #p::HasOneRel::new(#rel);
        });
    } else {
        let doc = format!(
            "The `{name}` relationship of `{ident}` (its children): use it with `Session::load`, `Session::set`, `Session::append` and `Session::remove`."
        );
        out.consts.push(quote! {
            #[doc = #doc]
            #vis const #name: #p::HasManyRel<#ident, #child> = #p::HasManyRel::new(#rel);
        });
    }
    out.impls.push(quote! {
        impl<E> #p::RelationAt<#rel, E> for #ident {
            type Other = #child;
        }
    });
    let child_meta = quote_spanned! {child_ty.span()=>
        <#child as #p::AnyModel>::META
    };
    out.checks.push(quote_spanned! {child_ty.span()=>
        const _: &#p::ModelMeta = #child_meta;
    });
    let Some(lit) = back_populates else {
        return;
    };
    let check = if through {
        many_to_many_check(model, field, (child, child_meta), targets, lit, child_ty)
    } else {
        let (pn, cn, x) = (ident, display_name(child_ty, ident), lit.value());
        let fix = format!(
            "`back_populates` must name the `#[belongs_to]` field of `{cn}` that points at `{pn}`"
        );
        Check {
                this: ident,
                field: field.clone(),
                other: child,
                other_meta: child_meta,
                targets,
                lit,
                side: 0,
                missing: format!("`{cn}` has no field `{x}`; {fix}"),
                column: format!(
                    "`{cn}::{x}` is a column, not a `#[belongs_to]`; {fix}"
                ),
                wrong_kind: format!(
                    "`{cn}::{x}` is a `#[has_many]`, `#[has_one]` or many-to-many, not a `#[belongs_to]`; {fix}"
                ),
                not_mutual: format!(
                    "`{cn}::{x}` is already the other side of another field of `{pn}` (its `back_populates` names that field); name a `#[belongs_to]` of `{cn}` that points back here, or set its `back_populates` to `\"{field}\"`"
                ),
            }
            .expand()
    };
    out.checks.push(check);
}

/// The checks of `back_populates = lit` on many-to-many field `field` of `model`: it names
/// the many-to-many of the other model that holds `model`s.
fn many_to_many_check(
    model: &Model<'_>,
    field: String,
    (other, other_meta): (TokenStream, TokenStream),
    targets: &[String],
    lit: &LitStr,
    other_ty: &Type,
) -> TokenStream {
    let ident = model.ident;
    let (pn, on, x) = (ident, display_name(other_ty, ident), lit.value());
    let fix = format!(
        "`back_populates` must name the `#[has_many(through = \"..\")]` field of `{on}` that holds `{pn}`s"
    );
    Check {
        this: ident,
        field: field.clone(),
        other,
        other_meta,
        targets,
        lit,
        side: 2,
        missing: format!("`{on}` has no field `{x}`; {fix}"),
        column: format!("`{on}::{x}` is a column, not a many-to-many; {fix}"),
        wrong_kind: format!(
            "`{on}::{x}` is a `#[belongs_to]`, `#[has_many]` or `#[has_one]`, not a many-to-many (`through`); {fix}"
        ),
        not_mutual: format!(
            "`{on}::{x}` is already the other side of another field of `{pn}` (its `back_populates` names that field); set its `back_populates` to `\"{field}\"`, or remove `back_populates` here"
        ),
    }
    .expand()
}
