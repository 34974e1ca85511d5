//! The model's static metadata: table, columns and relationships.

use super::{concrete, private};
use crate::ast::{generic_arg, Field, Kind, Model};
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

/// The column and relation entries of the metadata, gathered field by field.
#[derive(Default)]
struct Entries {
    columns: Vec<TokenStream>,
    relations: Vec<TokenStream>,
    column_of: Vec<Option<usize>>,
    relation_of: Vec<Option<usize>>,
    key: usize,
    generated: bool,
}

impl Entries {
    /// The entries of field `f` of `model`.
    fn field(&mut self, model: &Model<'_>, f: &Field<'_>) {
        let p = private();
        let (field, col, ty) = (f.ident.to_string(), &f.column, f.ty);
        let (unique, index) = (f.unique, f.index);
        let rel_index = self.relations.len();
        let column = match &f.kind {
            Kind::Column | Kind::Key { generated: false } => {
                if let Kind::Key { .. } = f.kind {
                    self.key = self.columns.len();
                }
                let sql_type = quote_spanned!(ty.span()=> <#ty as #p::ColumnType>::SQL_TYPE);
                let nullable = quote_spanned!(ty.span()=> <#ty as #p::ColumnType>::NULLABLE);
                Some(quote! {
                    #p::ColumnMeta { name: #col, field: #field, sql_type: #sql_type,
                        nullable: #nullable, unique: #unique, index: #index, relation: #p::Option::None }
                })
            }
            Kind::Key { generated: true } => {
                self.key = self.columns.len();
                self.generated = true;
                Some(quote! {
                    #p::ColumnMeta { name: #col, field: #field, sql_type: #p::SqlType::I64,
                        nullable: false, unique: false, index: false, relation: #p::Option::None }
                })
            }
            Kind::BelongsTo { .. } => Some(self.belongs_to(model, f, rel_index)),
            Kind::HasMany { .. } => {
                self.has_many(model, f);
                None
            }
            // Never reaches the expansion: its error stops it.
            Kind::Invalid { .. } => None,
        };
        self.relation_of.push(f.is_relation().then_some(rel_index));
        self.column_of
            .push(column.as_ref().map(|_| self.columns.len()));
        self.columns.extend(column);
    }

    /// The relation entry of `#[belongs_to]` field `f` (relation `rel_index`); its column
    /// entry.
    fn belongs_to(&mut self, model: &Model<'_>, f: &Field<'_>, rel_index: usize) -> TokenStream {
        let p = private();
        let Kind::BelongsTo {
            parent: parent_ty,
            back_populates,
            on_delete,
            post_update,
        } = &f.kind
        else {
            unreachable!("a belongs_to field")
        };
        let (field, col, ty) = (f.ident.to_string(), &f.column, f.ty);
        let (unique, index) = (f.unique, f.index);
        let on_delete = syn::Ident::new(on_delete.variant(), proc_macro2::Span::call_site());
        let parent = concrete(parent_ty, model.ident);
        // `ast` accepts `Id<P>` and `Option<Id<P>>` only.
        let nullable = generic_arg(ty, "Option").is_some();
        let target = quote_spanned! {parent_ty.span()=>
            <#parent as #p::GeneratedKey>::META
        };
        let back = back_populates_tokens(back_populates.as_ref());
        let column_index = self.columns.len();
        self.relations.push(quote! {
            #p::RelationMeta { field: #field,
                kind: #p::RelationKind::BelongsTo { column: #column_index, nullable: #nullable },
                target: { fn target() -> &'static #p::ModelMeta { #target } target },
                back_populates: #back,
                cascade: #p::Cascade { delete: false, orphans: false, passive: false },
                on_delete: #p::OnDelete::#on_delete, post_update: #post_update }
        });
        quote! {
            #p::ColumnMeta { name: #col, field: #field, sql_type: #p::SqlType::I64,
                nullable: #nullable, unique: #unique, index: #index,
                relation: #p::Option::Some(#rel_index) }
        }
    }

    /// The relation entry of `#[has_many]` or `#[has_one]` field `f`.
    fn has_many(&mut self, model: &Model<'_>, f: &Field<'_>) {
        let p = private();
        let Kind::HasMany {
            child: child_ty,
            back_populates,
            cascade: [delete, orphans, passive],
            one,
            through,
        } = &f.kind
        else {
            unreachable!("a has_many field")
        };
        let field = f.ident.to_string();
        let kind = match through {
            Some(t) => {
                let (table, column, target_column) = (&t.table, &t.column, &t.target_column);
                quote!(#p::RelationKind::ManyToMany { table: #table, column: #column,
                    target_column: #target_column })
            }
            None if *one => quote!(#p::RelationKind::HasOne),
            None => quote!(#p::RelationKind::HasMany),
        };
        let child = concrete(child_ty, model.ident);
        let target = quote_spanned! {child_ty.span()=>
            <#child as #p::AnyModel>::META
        };
        let back = back_populates_tokens(back_populates.as_ref());
        self.relations.push(quote! {
            #p::RelationMeta { field: #field, kind: #kind,
                target: { fn target() -> &'static #p::ModelMeta { #target } target },
                back_populates: #back,
                cascade: #p::Cascade { delete: #delete, orphans: #orphans, passive: #passive },
                on_delete: #p::OnDelete::NoAction, post_update: false }
        });
    }
}

/// `Option<&'static str>` tokens of a `back_populates`.
fn back_populates_tokens(lit: Option<&syn::LitStr>) -> TokenStream {
    let p = private();
    match lit {
        Some(l) => quote!(#p::Option::Some(#l)),
        None => quote!(#p::Option::None),
    }
}

/// Builds the metadata of `model`.
pub fn expand(model: &Model<'_>) -> Meta {
    let p = private();
    let ident = model.ident;
    let name = ident.to_string();
    let table = &model.table;
    let mut e = Entries::default();
    for f in &model.fields {
        e.field(model, f);
    }
    let Entries {
        columns,
        relations,
        column_of,
        relation_of,
        key,
        generated,
    } = e;
    let version = match model.fields.iter().position(|f| f.version) {
        Some(i) => {
            let c = column_of[i];
            quote!(#p::Option::Some(#c))
        }
        None => quote!(#p::Option::None),
    };
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
            version: #version,
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
