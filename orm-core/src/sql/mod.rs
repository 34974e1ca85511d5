//! SQL text for every statement the session runs, built through a [`Dialect`]; no I/O here.
//!
//! - [`dialect`](Dialect): how each database spells what differs;
//! - statements on rows as data ([`Select`], [`Insert`], [`Update`], [`Delete`], conditions as
//!   [`Expr`]), rendered by a dialect with every value bound as a parameter;
//! - key allocation ([`max_key`], [`next_keys`], [`skip_keys`]);
//! - schema statements ([`create_table`], [`create_indexes`], [`drop_table`]..).

mod ddl;
mod dialect;
mod join;
mod keys;
mod statement;

pub use ddl::*;
pub use dialect::*;
pub use join::JoinTable;
pub use keys::*;
pub use statement::*;
