//! Parse, check, then emit: the entry of the expansion and the pieces every stage shares.

mod column;
mod constructor;
mod meta;
mod model;
mod relation;

use crate::ast::Model;
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::{Group, TokenStream, TokenTree};
use quote::quote;
use syn::{DeriveInput, Ident, Type};

/// Expands `#[derive(Model)]`; errors become `compile_error!`s next to a stub impl.
pub fn derive(input: &DeriveInput) -> TokenStream {
    try_expand(input).unwrap_or_else(|e| crate::fallback::expand(input, e))
}

fn try_expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut cx = Ctxt::default();
    let model = Model::from_syn(&mut cx, input);
    if let Some(m) = &model {
        check::check(&mut cx, m);
    }
    cx.check()?;
    let Some(model) = model else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "cannot derive `Model`",
        ));
    };
    let meta = meta::expand(&model);
    let model_impl = model::expand(&model, &meta);
    let relations = relation::expand(&model, &meta);
    let columns = column::expand(&model, &meta);
    let constructor = constructor::expand(&model);
    Ok(wrap_in_const(quote! {
        #model_impl
        #relations
        #columns
        #constructor
    }))
}

/// The path of the runtime's hidden support module.
pub fn private() -> TokenStream {
    quote!(::orm_core::__private)
}

/// Wraps generated items so their helper names cannot collide with the user's.
pub fn wrap_in_const(tokens: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #tokens
        };
    }
}

/// `ty`, with every `Self` in it (`Self`, `Id<Self>`, `Option<Id<Self>>`) replaced by the
/// struct's name, for code outside the impl.
pub fn concrete(ty: &Type, model: &Ident) -> TokenStream {
    replace_self(quote!(#ty), model)
}

fn replace_self(tokens: TokenStream, model: &Ident) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) if i == "Self" => {
                let mut m = model.clone();
                m.set_span(i.span());
                TokenTree::Ident(m)
            }
            TokenTree::Group(g) => {
                let mut out = Group::new(g.delimiter(), replace_self(g.stream(), model));
                out.set_span(g.span());
                TokenTree::Group(out)
            }
            other => other,
        })
        .collect()
}
