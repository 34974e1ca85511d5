//! Parse, check, then emit: the entry of the expansion and the pieces every stage shares.

mod constructor;
mod meta;
mod model;
mod relation;

use crate::ast::Model;
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
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
    let relations = relation::expand(&model);
    let constructor = constructor::expand(&model);
    Ok(wrap_in_const(quote! {
        #model_impl
        #relations
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

/// `ty`, with a bare `Self` replaced by the struct's name (for code outside the impl).
pub fn concrete<'a>(ty: &'a Type, model: &'a Ident) -> TokenStream {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self") => quote!(#model),
        _ => quote!(#ty),
    }
}
