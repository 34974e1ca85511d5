//! Relationships: the descriptors users name (`Product::user`, `User::products`), what each
//! kind does when it is loaded or set ([`belongs_to`], [`has_many`], [`has_one`]), the other side of each
//! relation resolved once per store ([`Link`]), and keeping both sides in step ([`sync`]).

mod belongs_to;
mod has_many;
mod has_one;
pub(crate) mod many_to_many;
pub(crate) mod sync;

use super::Session;
use crate::error::{Error, Result};
use crate::id::{Handle, Id, RawId};
use crate::model::{Model, ModelMeta, RelationKind};
use std::marker::PhantomData;

/// A relationship of model `M` that the session can load and set.
pub trait Relationship<M: Model>: Copy {
    /// What loading it gives.
    type Loaded;
    /// What setting it takes.
    type Value;
    #[doc(hidden)]
    fn load(self, db: &mut Session, h: Handle<M>) -> Result<Self::Loaded>;
    #[doc(hidden)]
    fn set(self, db: &mut Session, h: Handle<M>, value: Self::Value) -> Result<()>;
}

/// The `#[belongs_to]` field of `C` pointing at a `P`, e.g. `Product::user`.
pub struct BelongsTo<C, P> {
    pub(crate) rel: usize,
    _m: PhantomData<fn() -> (C, P)>,
}

/// The `#[has_many]` field of `P` holding its `C`s, e.g. `User::products`.
pub struct HasManyRel<P, C> {
    pub(crate) rel: usize,
    _m: PhantomData<fn() -> (P, C)>,
}

macro_rules! descriptor_impls {
    ($ty:ident) => {
        impl<A, B> $ty<A, B> {
            #[doc(hidden)]
            pub const fn new(rel: usize) -> Self {
                $ty {
                    rel,
                    _m: PhantomData,
                }
            }
        }
        impl<A, B> Clone for $ty<A, B> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<A, B> Copy for $ty<A, B> {}
        impl<A, B> std::fmt::Debug for $ty<A, B> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.rel)
            }
        }
    };
}
/// The `#[has_one]` field of `P` holding its `C`, e.g. `User::profile`.
pub struct HasOneRel<P, C> {
    pub(crate) rel: usize,
    _m: PhantomData<fn() -> (P, C)>,
}

descriptor_impls!(BelongsTo);
descriptor_impls!(HasManyRel);
descriptor_impls!(HasOneRel);

/// A parent to set on a child: a handle, an id (pending or stored), or `None`.
pub struct Parent<P>(RawId, PhantomData<fn() -> P>);

impl<P> Parent<P> {
    pub(crate) fn raw(&self) -> RawId {
        self.0
    }
}

impl<P> From<Handle<P>> for Parent<P> {
    fn from(h: Handle<P>) -> Self {
        Parent(Id::from(h).raw(), PhantomData)
    }
}
impl<P> From<Id<P>> for Parent<P> {
    fn from(id: Id<P>) -> Self {
        Parent(id.raw(), PhantomData)
    }
}
impl<P> From<Option<Id<P>>> for Parent<P> {
    fn from(id: Option<Id<P>>) -> Self {
        Parent(id.map_or(RawId::Unset, |i| i.raw()), PhantomData)
    }
}
impl<P> From<Option<Handle<P>>> for Parent<P> {
    fn from(h: Option<Handle<P>>) -> Self {
        h.map(Id::from).into()
    }
}

/// The children to set on a parent.
pub struct Children<C>(Vec<Handle<C>>);

impl<C, const N: usize> From<[Handle<C>; N]> for Children<C> {
    fn from(v: [Handle<C>; N]) -> Self {
        Children(v.to_vec())
    }
}
impl<C> From<Vec<Handle<C>>> for Children<C> {
    fn from(v: Vec<Handle<C>>) -> Self {
        Children(v)
    }
}
impl<C> From<&[Handle<C>]> for Children<C> {
    fn from(v: &[Handle<C>]) -> Self {
        Children(v.to_vec())
    }
}

/// Relation `rel` of a store, resolved once: the store of the model at the other end (once
/// the session has one) and the relation on that model that is its other side.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Link {
    pub(crate) target: Option<usize>,
    pub(crate) inverse: Option<usize>,
}

impl Session {
    /// The `belongs_to` of the children (model `child`) that is the other side of has-many or
    /// has-one `rel` of store `pi`: an error naming the fix when `back_populates` does not
    /// name one.
    pub(crate) fn child_inverse(
        &self,
        pi: usize,
        rel: usize,
        child: &'static ModelMeta,
    ) -> Result<usize> {
        let parent = self.stores[pi].meta();
        self.links[pi][rel]
            .inverse
            .filter(|&i| matches!(child.relations[i].kind, RelationKind::BelongsTo { .. }))
            .ok_or_else(|| Error::Relationship {
                model: parent.name,
                field: parent.relations[rel].field,
                message: format!(
                    "`back_populates` must name the `#[belongs_to]` field of `{}` that points back",
                    child.name
                ),
            })
    }

    /// Resolves the links of a store just created (index `si`, model `meta`), and those of
    /// the other stores' relations that point at its model.
    pub(crate) fn resolve_links(&mut self, si: usize, meta: &'static ModelMeta) {
        let own: Vec<Link> = (0..meta.relations.len())
            .map(|r| Link {
                target: self.store_index_of((meta.relations[r].target)()),
                inverse: meta.inverse(r),
            })
            .collect();
        self.links.push(own);
        for (oi, links) in self.links.iter_mut().enumerate() {
            let other = self.stores[oi].meta();
            for (r, link) in links.iter_mut().enumerate() {
                if (other.relations[r].target)().same(meta) {
                    link.target = Some(si);
                }
            }
        }
    }
}
