//! Relationship descriptors (`Product::user`, `User::products`) and the compile-time checks
//! that each `back_populates` names the matching field of the other model.

use super::{concrete, private};
use crate::ast::{Kind, Model};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// The descriptors and checks of `model`'s relationships.
pub fn expand(model: &Model<'_>) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let mut consts = Vec::new();
    let mut checks = Vec::new();
    let mut rel = 0usize;
    for f in &model.fields {
        let name = f.ident;
        let vis = &f.original.vis;
        let ty = f.ty;
        match &f.kind {
            Kind::BelongsTo {
                parent,
                back_populates,
                ..
            } => {
                let parent = concrete(parent, ident);
                let doc = format!(
                    "The `{name}` relationship of `{ident}` (its parent): use it with `Session::load` and `Session::set`."
                );
                consts.push(quote! {
                    #[doc = #doc]
                    #vis const #name: #p::BelongsTo<#ident, #parent> = #p::BelongsTo::new(#rel);
                });
                checks.push(quote_spanned! {ty.span()=>
                    const _: () = #p::assert_foreign_key::<#ty>();
                });
                let parent_span = match &f.kind {
                    Kind::BelongsTo { parent, .. } => parent.span(),
                    _ => ty.span(),
                };
                checks.push(quote_spanned! {parent_span=>
                    const _: () = #p::assert_generated_key::<#parent>();
                });
                if let Some(lit) = back_populates {
                    let other = format_ident!("{}", lit.value(), span = lit.span());
                    checks.push(quote_spanned! {lit.span()=>
                        const _: () = #p::expect_has_many::<#parent, #ident>(<#parent>::#other);
                    });
                }
            }
            Kind::HasMany {
                child,
                back_populates,
            } => {
                let child = concrete(child, ident);
                let doc = format!(
                    "The `{name}` relationship of `{ident}` (its children): use it with `Session::load`, `Session::set`, `Session::append` and `Session::remove`."
                );
                consts.push(quote! {
                    #[doc = #doc]
                    #vis const #name: #p::HasManyRel<#ident, #child> = #p::HasManyRel::new(#rel);
                });
                if let Some(lit) = back_populates {
                    let other = format_ident!("{}", lit.value(), span = lit.span());
                    checks.push(quote_spanned! {lit.span()=>
                        const _: () = #p::expect_belongs_to::<#child, #ident>(<#child>::#other);
                    });
                }
            }
            _ => continue,
        }
        rel += 1;
    }
    if consts.is_empty() {
        return quote!(#(#checks)*);
    }
    quote! {
        #[automatically_derived]
        impl #ident {
            #(#consts)*
        }
        #(#checks)*
    }
}
