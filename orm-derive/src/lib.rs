//! `#[derive(Model)]` for orm-core. Use it through `orm_core::Model`; the documentation of the
//! attributes is there.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fallback;
mod name;
#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// Derives `orm_core::Model` for a struct with named fields; see the `orm_core` crate docs.
#[proc_macro_derive(
    Model,
    attributes(model, key, column, belongs_to, has_many, has_one, version)
)]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
