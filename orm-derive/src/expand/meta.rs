//! The model's static metadata: table, columns and relationships.

use super::{concrete, private};
use crate::ast::{generic_arg, Kind, Model};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The `ModelMeta` expression, and the index of each field's column and relation.
pub struct Meta {
    /// `&ModelMeta { .. }`.
    pub tokens: TokenStream,
    /// Per field: its column index, if it is a column.
    pub column: Vec<Option<usize>>,
    /// Per field: its relation index, if it is a relationship.
    pub relation: Vec<Option<usize>>,
}

/// Builds the metadata of `model`.
pub fn expand(model: &Model<'_>) -> Meta {
    let p = private();
    let ident = model.ident;
    let name = ident.to_string();
    let table = &model.table;
    let mut columns = Vec::new();
    let mut relations = Vec::new();
    let mut column_of = Vec::new();
    let mut relation_of = Vec::new();
    let mut key = 0usize;
    let mut generated = false;
    for f in &model.fields {
        let field = f.ident.to_string();
        let col = &f.column;
        let ty = f.ty;
        let (unique, index) = (f.unique, f.index);
        let rel_index = relations.len();
        let column = match &f.kind {
            Kind::Column | Kind::Key { generated: false } => {
                if let Kind::Key { .. } = f.kind {
                    key = columns.len();
                }
                let sql_type = quote_spanned!(ty.span()=> <#ty as #p::ColumnType>::SQL_TYPE);
                let nullable = quote_spanned!(ty.span()=> <#ty as #p::ColumnType>::NULLABLE);
                Some(quote! {
                    #p::ColumnMeta { name: #col, field: #field, sql_type: #sql_type,
                        nullable: #nullable, unique: #unique, index: #index, relation: #p::Option::None }
                })
            }
            Kind::Key { generated: true } => {
                key = columns.len();
                generated = true;
                Some(quote! {
                    #p::ColumnMeta { name: #col, field: #field, sql_type: #p::SqlType::I64,
                        nullable: false, unique: false, index: false, relation: #p::Option::None }
                })
            }
            Kind::BelongsTo {
                parent: parent_ty,
                back_populates,
                on_delete,
                post_update,
            } => {
                let on_delete =
                    syn::Ident::new(on_delete.variant(), proc_macro2::Span::call_site());
                let parent = concrete(parent_ty, ident);
                // `ast` accepts `Id<P>` and `Option<Id<P>>` only.
                let nullable = generic_arg(ty, "Option").is_some();
                let target = quote_spanned! {parent_ty.span()=>
                    <#parent as #p::GeneratedKey>::META
                };
                let back = match back_populates {
                    Some(l) => quote!(#p::Option::Some(#l)),
                    None => quote!(#p::Option::None),
                };
                let column_index = columns.len();
                relations.push(quote! {
                    #p::RelationMeta { field: #field,
                        kind: #p::RelationKind::BelongsTo { column: #column_index, nullable: #nullable },
                        target: { fn target() -> &'static #p::ModelMeta { #target } target },
                        back_populates: #back,
                        cascade: #p::Cascade { delete: false, orphans: false, passive: false },
                        on_delete: #p::OnDelete::#on_delete, post_update: #post_update }
                });
                Some(quote! {
                    #p::ColumnMeta { name: #col, field: #field, sql_type: #p::SqlType::I64,
                        nullable: #nullable, unique: #unique, index: #index,
                        relation: #p::Option::Some(#rel_index) }
                })
            }
            Kind::HasMany {
                child: child_ty,
                back_populates,
                cascade: [delete, orphans, passive],
                one,
            } => {
                let kind = if *one {
                    quote!(#p::RelationKind::HasOne)
                } else {
                    quote!(#p::RelationKind::HasMany)
                };
                let child = concrete(child_ty, ident);
                let target = quote_spanned! {child_ty.span()=>
                    <#child as #p::AnyModel>::META
                };
                let back = match back_populates {
                    Some(l) => quote!(#p::Option::Some(#l)),
                    None => quote!(#p::Option::None),
                };
                relations.push(quote! {
                    #p::RelationMeta { field: #field, kind: #kind,
                        target: { fn target() -> &'static #p::ModelMeta { #target } target },
                        back_populates: #back,
                        cascade: #p::Cascade { delete: #delete, orphans: #orphans, passive: #passive },
                        on_delete: #p::OnDelete::NoAction, post_update: false }
                });
                None
            }
        };
        relation_of.push(f.is_relation().then_some(rel_index));
        column_of.push(column.as_ref().map(|_| columns.len()));
        columns.extend(column);
    }
    let key_kind = if generated {
        quote!(#p::KeyKind::Generated)
    } else {
        quote!(#p::KeyKind::Natural)
    };
    let tokens = quote! {
        &#p::ModelMeta {
            name: #name,
            table: #table,
            columns: &[#(#columns),*],
            key: #key,
            key_kind: #key_kind,
            relations: &[#(#relations),*],
            type_id: #p::TypeId::of::<#ident>,
            new_store: #p::new_store::<#ident>,
        }
    };
    Meta {
        tokens,
        column: column_of,
        relation: relation_of,
    }
}
