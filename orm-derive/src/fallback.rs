//! What a failed expansion emits: the errors, and a stub `Model` impl so the user's other code
//! does not add a flood of follow-on errors.

use crate::expand::{private, wrap_in_const};
use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

/// The errors of `err` and a stub impl for `input`.
pub fn expand(input: &DeriveInput, err: syn::Error) -> TokenStream {
    let errors = err.to_compile_error();
    let p = private();
    let ident = &input.ident;
    let stub = if input.generics.params.is_empty() {
        wrap_in_const(quote! {
            impl #p::Model for #ident {
                type Key = #p::Id<Self>;
                const META: &'static #p::ModelMeta = #p::FALLBACK_META;
                fn column(&self, _: usize) -> #p::ValueRef<'_> { #p::ValueRef::Null }
                fn from_row(_: &mut #p::RowReader<'_>) -> #p::Result<Self> { #p::invalid_model() }
                fn key_id(&self) -> #p::RawId { #p::RawId::Unset }
                fn set_key_id(&mut self, _: #p::RawId) {}
                fn foreign_key(&self, _: usize) -> #p::RawId { #p::RawId::Unset }
                fn set_foreign_key(&mut self, _: usize, _: #p::RawId) {}
                fn collection(&self, _: usize) -> &dyn #p::RawCollection { #p::invalid_collection() }
                fn collection_mut(&mut self, _: usize) -> &mut dyn #p::RawCollection { #p::invalid_collection() }
            }
            // Whatever its key, a `belongs_to` pointing here is not a second error.
            impl #p::GeneratedKey for #ident {
                const META: &'static #p::ModelMeta = #p::FALLBACK_META;
            }
        })
    } else {
        TokenStream::new()
    };
    quote! {
        #errors
        #stub
    }
}
