//! `impl Model`: reading and writing the fields, keys and relationships by index.

use super::meta::Meta;
use super::private;
use crate::ast::{Kind, Model};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The `Model` impl of `model`.
pub fn expand(model: &Model<'_>, meta: &Meta) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let meta_tokens = &meta.tokens;
    let mut key_type = quote!(type Key = #p::Id<Self>;);
    let mut key_id = quote!(#p::RawId::Unset);
    let mut set_key_id = quote!(let _ = id;);
    let mut columns = Vec::new();
    let mut inits = Vec::new();
    let mut fks = Vec::new();
    let mut set_fks = Vec::new();
    let mut collections = Vec::new();
    let mut collections_mut = Vec::new();
    for (i, f) in model.fields.iter().enumerate() {
        let name = f.ident;
        let ty = f.ty;
        match &f.kind {
            Kind::Column | Kind::Key { generated: false } => {
                let c = meta.column[i];
                // Through `ColumnOf`, so that a type that is not a column is reported once, by
                // the metadata, and not again here.
                columns.push(
                    quote_spanned!(ty.span()=> #c => #p::ColumnOf::<#ty>::NEW.to_sql(&self.#name),),
                );
                inits.push(quote_spanned!(ty.span()=> #name: #p::ColumnOf::<#ty>::NEW.read(row)?));
                if let Kind::Key { .. } = f.kind {
                    // Spanned at the type, like its check, so a type that is not a key is one
                    // error there.
                    key_type = quote_spanned!(ty.span()=> type Key = <#ty as #p::NaturalKey>::Key;);
                }
            }
            Kind::Key { generated: true } => {
                let c = meta.column[i];
                columns.push(quote! {
                    #c => match self.#name.raw() {
                        #p::RawId::Stored(v) => #p::ValueRef::I64(v),
                        _ => #p::ValueRef::Null,
                    },
                });
                inits.push(quote!(#name: row.key()?));
                key_id = quote!(self.#name.raw());
                set_key_id = quote!(self.#name = #p::Id::from_raw(id););
            }
            Kind::BelongsTo { .. } => {
                let c = meta.column[i];
                let r = meta.relation[i];
                // Through `ForeignKeyOf`, so that a parent that is not a model is reported
                // once, by `GeneratedKey`, and not again here.
                let fk = quote_spanned!(ty.span()=> #p::ForeignKeyOf::<#ty>::NEW);
                columns.push(quote! {
                    #c => match #fk.raw(&self.#name) {
                        #p::RawId::Stored(v) => #p::ValueRef::I64(v),
                        _ => #p::ValueRef::Null,
                    },
                });
                inits.push(quote!(#name: #fk.read(row)?));
                fks.push(quote!(#r => #fk.raw(&self.#name),));
                set_fks.push(quote!(#r => #fk.set_raw(&mut self.#name, id),));
            }
            Kind::HasMany { one, .. } => {
                let r = meta.relation[i];
                inits.push(if *one {
                    quote!(#name: #p::HasOne::unloaded())
                } else {
                    quote!(#name: #p::HasMany::unloaded())
                });
                collections.push(quote!(#r => &self.#name,));
                collections_mut.push(quote!(#r => &mut self.#name,));
            }
        }
    }
    // Spanned at the key's type: "the trait is implemented for `User`" then shows a key that is.
    let generated_key = model
        .fields
        .iter()
        .find(|f| matches!(f.kind, Kind::Key { generated: true }))
        .map(|f| {
            let mut ident = ident.clone();
            ident.set_span(f.ty.span());
            quote_spanned! {f.ty.span()=>
                impl #p::GeneratedKey for #ident {
                    const META: &'static #p::ModelMeta = <Self as #p::Model>::META;
                }
            }
        });
    quote! {
        #[allow(unused_imports)]
        use #p::{NotAColumn as _, NotAForeignKey as _};

        #generated_key

        #[automatically_derived]
        impl #p::Model for #ident {
            #key_type
            const META: &'static #p::ModelMeta = #meta_tokens;

            fn column(&self, index: usize) -> #p::ValueRef<'_> {
                match index {
                    #(#columns)*
                    _ => #p::ValueRef::Null,
                }
            }

            fn from_row(row: &mut #p::RowReader<'_>) -> #p::Result<Self> {
                #p::StdResult::Ok(Self { #(#inits),* })
            }

            fn key_id(&self) -> #p::RawId {
                #key_id
            }

            fn set_key_id(&mut self, id: #p::RawId) {
                #set_key_id
            }

            fn foreign_key(&self, relation: usize) -> #p::RawId {
                match relation {
                    #(#fks)*
                    _ => #p::RawId::Unset,
                }
            }

            fn set_foreign_key(&mut self, relation: usize, id: #p::RawId) {
                match relation {
                    #(#set_fks)*
                    _ => {}
                }
            }

            fn collection(&self, relation: usize) -> &dyn #p::RawCollection {
                match relation {
                    #(#collections)*
                    _ => #p::panic!("relation {} of `{}` is not a has_many", relation, stringify!(#ident)),
                }
            }

            fn collection_mut(&mut self, relation: usize) -> &mut dyn #p::RawCollection {
                match relation {
                    #(#collections_mut)*
                    _ => #p::panic!("relation {} of `{}` is not a has_many", relation, stringify!(#ident)),
                }
            }
        }
    }
}
