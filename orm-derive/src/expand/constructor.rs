//! `Model::new(..)`: every column a new object needs, in field order.

use super::private;
use crate::ast::{generic_arg, ungroup, Kind, Model};
use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

fn is_string(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Path(p) if p.qself.is_none() && (p.path.is_ident("String")
        || p.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>() == ["std", "string", "String"]))
}

/// The `new` constructor of `model`.
pub fn expand(model: &Model<'_>) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let vis = &model.original.vis;
    let mut params = Vec::new();
    let mut inits = Vec::new();
    let mut names = Vec::new();
    for f in &model.fields {
        let name = f.ident;
        let ty = f.ty;
        match &f.kind {
            // Rows start at version 1; the flush writes the rest.
            _ if f.version => inits.push(quote!(#name: 1)),
            Kind::Key { generated: true } => inits.push(quote!(#name: #p::Id::unset())),
            Kind::HasMany { one: false, .. } => inits.push(quote!(#name: #p::HasMany::new())),
            Kind::HasMany { one: true, .. } => inits.push(quote!(#name: #p::HasOne::new())),
            Kind::BelongsTo { .. } => {
                params.push(quote!(#name: impl #p::Into<#ty>));
                inits.push(quote!(#name: #p::Into::into(#name)));
                names.push(name.to_string());
            }
            _ if is_string(ty) || generic_arg(ty, "Option").is_some_and(is_string) => {
                params.push(quote!(#name: impl #p::Into<#ty>));
                inits.push(quote!(#name: #p::Into::into(#name)));
                names.push(name.to_string());
            }
            _ => {
                params.push(quote!(#name: #ty));
                inits.push(quote!(#name));
                names.push(name.to_string());
            }
        }
    }
    let doc = format!(
        "A new `{ident}`, not saved yet, from {}; add it to a `Session` to save it.",
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    quote! {
        #[automatically_derived]
        impl #ident {
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            #vis fn new(#(#params),*) -> Self {
                Self { #(#inits),* }
            }
        }
    }
}
