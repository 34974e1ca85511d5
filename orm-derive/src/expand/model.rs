//! `impl Model`: reading and writing the fields, keys and relationships by index.

use super::meta::Meta;
use super::private;
use crate::ast::{Field, Kind, Model};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The match arms and pieces of the `Model` impl, gathered field by field.
struct Arms {
    key_type: TokenStream,
    key_id: TokenStream,
    set_key_id: TokenStream,
    columns: Vec<TokenStream>,
    inits: Vec<TokenStream>,
    fks: Vec<TokenStream>,
    set_fks: Vec<TokenStream>,
    collections: Vec<TokenStream>,
    collections_mut: Vec<TokenStream>,
}

impl Arms {
    fn new() -> Arms {
        let p = private();
        Arms {
            key_type: quote!(type Key = #p::Id<Self>;),
            key_id: quote!(#p::RawId::Unset),
            set_key_id: quote!(let _ = id;),
            columns: Vec::new(),
            inits: Vec::new(),
            fks: Vec::new(),
            set_fks: Vec::new(),
            collections: Vec::new(),
            collections_mut: Vec::new(),
        }
    }

    /// The arms of field `f` (field number `i`).
    fn field(&mut self, f: &Field<'_>, i: usize, meta: &Meta) {
        let p = private();
        let (name, ty) = (f.ident, f.ty);
        match &f.kind {
            Kind::Column | Kind::Key { generated: false } => {
                let c = meta.column[i];
                // Through `ColumnOf`, so that a type that is not a column is reported once, by
                // the metadata, and not again here.
                self.columns.push(
                    quote_spanned!(ty.span()=> #c => #p::ColumnOf::<#ty>::NEW.to_sql(&self.#name),),
                );
                self.inits
                    .push(quote_spanned!(ty.span()=> #name: #p::ColumnOf::<#ty>::NEW.read(row)?));
                if let Kind::Key { .. } = f.kind {
                    // Spanned at the type, like its check, so a type that is not a key is one
                    // error there.
                    self.key_type =
                        quote_spanned!(ty.span()=> type Key = <#ty as #p::NaturalKey>::Key;);
                }
            }
            Kind::Key { generated: true } => {
                let c = meta.column[i];
                self.columns.push(quote! {
                    #c => match self.#name.raw() {
                        #p::RawId::Stored(v) => #p::ValueRef::I64(v),
                        _ => #p::ValueRef::Null,
                    },
                });
                self.inits.push(quote!(#name: row.key()?));
                self.key_id = quote!(self.#name.raw());
                self.set_key_id = quote!(self.#name = #p::Id::from_raw(id););
            }
            Kind::BelongsTo { .. } => self.belongs_to(f, meta.column[i], meta.relation[i]),
            Kind::HasMany { one, .. } => {
                let r = meta.relation[i];
                self.inits.push(if *one {
                    quote!(#name: #p::HasOne::unloaded())
                } else {
                    quote!(#name: #p::HasMany::unloaded())
                });
                self.collections.push(quote!(#r => &self.#name,));
                self.collections_mut.push(quote!(#r => &mut self.#name,));
            }
            // Never reaches the expansion: its error stops it.
            Kind::Invalid { .. } => {}
        }
    }

    /// The arms of `#[belongs_to]` field `f`, in column `c`, relation `r`.
    fn belongs_to(&mut self, f: &Field<'_>, c: Option<usize>, r: Option<usize>) {
        let p = private();
        let (name, ty) = (f.ident, f.ty);
        // Through `ForeignKeyOf`, so that a parent that is not a model is reported once, by
        // `GeneratedKey`, and not again here.
        let fk = quote_spanned!(ty.span()=> #p::ForeignKeyOf::<#ty>::NEW);
        self.columns.push(quote! {
            #c => match #fk.raw(&self.#name) {
                #p::RawId::Stored(v) => #p::ValueRef::I64(v),
                _ => #p::ValueRef::Null,
            },
        });
        self.inits.push(quote!(#name: #fk.read(row)?));
        self.fks.push(quote!(#r => #fk.raw(&self.#name),));
        self.set_fks
            .push(quote!(#r => #fk.set_raw(&mut self.#name, id),));
    }
}

/// `impl GeneratedKey` for a model with a generated key, spanned at the key's type: "the
/// trait is implemented for `User`" then shows a key that is.
fn generated_key(model: &Model<'_>) -> Option<TokenStream> {
    let p = private();
    let f = model
        .fields
        .iter()
        .find(|f| matches!(f.kind, Kind::Key { generated: true }))?;
    let mut ident = model.ident.clone();
    ident.set_span(f.ty.span());
    Some(quote_spanned! {f.ty.span()=>
        impl #p::GeneratedKey for #ident {
            const META: &'static #p::ModelMeta = <Self as #p::Model>::META;
        }
    })
}

/// The `Model` methods on relationships, from their arms: foreign keys read and set,
/// collections borrowed and borrowed mutably.
fn relation_methods(
    ident: &syn::Ident,
    [fks, set_fks, collections, collections_mut]: [&[TokenStream]; 4],
) -> TokenStream {
    let p = private();
    quote! {
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

/// `Model::set_version` for a model with a `#[version]`.
fn set_version(model: &Model<'_>) -> Option<TokenStream> {
    let f = model.fields.iter().find(|f| f.version)?;
    let (name, ty) = (f.ident, f.ty);
    // An `i32` version wraps after 2^31 updates of one row, as the database's would.
    Some(quote! {
        fn set_version(&mut self, version: i64) {
            self.#name = version as #ty;
        }
    })
}

/// The `Model` impl of `model`.
pub fn expand(model: &Model<'_>, meta: &Meta) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let meta_tokens = &meta.tokens;
    let mut arms = Arms::new();
    for (i, f) in model.fields.iter().enumerate() {
        arms.field(f, i, meta);
    }
    let Arms {
        key_type,
        key_id,
        set_key_id,
        columns,
        inits,
        fks,
        set_fks,
        collections,
        collections_mut,
    } = arms;
    let generated_key = generated_key(model);
    let set_version = set_version(model);
    let relation_methods =
        relation_methods(ident, [&fks, &set_fks, &collections, &collections_mut]);
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

            #set_version

            #relation_methods
        }
    }
}
