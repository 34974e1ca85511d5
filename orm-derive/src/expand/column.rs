//! Typed columns (`Post::title`, `Post::id`) for filters and ordering; a `#[belongs_to]`
//! field's column is its relationship descriptor (see `relation`).

use super::meta::Meta;
use super::{concrete, private};
use crate::ast::{Kind, Model};
use proc_macro2::TokenStream;
use quote::quote;

/// A `Column<Model, FieldType>` constant per plain column and key, named like the field or
/// by `#[column(const_name = "..")]` (for a field named like a method of the model); none
/// for a field named `new`, which would clash with the constructor.
pub fn expand(model: &Model<'_>, meta: &Meta) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let consts = model
        .fields
        .iter()
        .zip(&meta.column)
        .filter_map(|(f, index)| {
            let index = (*index)?;
            let name = f.attrs.const_name.as_ref().unwrap_or(f.ident);
            if !matches!(f.kind, Kind::Column | Kind::Key { .. }) || name == "new" {
                return None;
            }
            let vis = &f.original.vis;
            let ty = concrete(f.ty, ident);
            let doc = format!("The `{name}` column of `{ident}`, for query filters and ordering.");
            Some(quote! {
                #[doc = #doc]
                #vis const #name: #p::Column<#ident, #ty> = #p::Column::new(#index);
            })
        });
    quote! {
        #[automatically_derived]
        impl #ident {
            #(#consts)*
        }
    }
}
