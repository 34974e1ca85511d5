//! The one error type of the crate.

use crate::value::Value;
use std::fmt;

/// What kind of database failure happened, the same on every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// A `UNIQUE` or `PRIMARY KEY` constraint was violated.
    UniqueViolation,
    /// A `FOREIGN KEY` constraint was violated.
    ForeignKeyViolation,
    /// A `NOT NULL` constraint was violated.
    NotNullViolation,
    /// Another connection holds a lock the statement needs and did not release it in time.
    Busy,
    /// The transaction conflicted with another one (PostgreSQL serialization failure or
    /// deadlock, SQLite `BUSY_SNAPSHOT`); roll back and run it again.
    SerializationFailure,
    /// A key sequence reached its largest value.
    SequenceExhausted,
    /// Anything else.
    Other,
}

impl fmt::Display for DbErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbErrorKind::UniqueViolation => "unique violation",
            DbErrorKind::ForeignKeyViolation => "foreign key violation",
            DbErrorKind::NotNullViolation => "not-null violation",
            DbErrorKind::Busy => "database busy",
            DbErrorKind::SerializationFailure => "serialization failure",
            DbErrorKind::SequenceExhausted => "key sequence exhausted",
            DbErrorKind::Other => "database error",
        })
    }
}

/// The parameters of a failed statement, printed compactly (also by `Debug`: long texts are
/// cut, blobs shown by size).
#[derive(Clone, PartialEq, Default)]
pub struct Params(pub Vec<Value>);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        f.write_str("[")?;
        for (i, v) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, ", ... {} more", self.0.len() - SHOWN)?;
        }
        f.write_str("]")
    }
}

/// Where a constraint failed, as far as the database says: PostgreSQL names the constraint,
/// the table and the columns; SQLite's message names the table and columns of a UNIQUE or
/// NOT NULL failure (and nothing for a foreign key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violated {
    /// The constraint's name.
    pub constraint: Option<String>,
    /// The table.
    pub table: Option<String>,
    /// The columns, in the constraint's order.
    pub columns: Vec<String>,
}

/// Every error the ORM reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused a statement; carries the statement and its parameters.
    #[error("{kind}: {message}\n  sql: {sql}\n  params: {params}")]
    Database {
        /// The kind of failure, the same on every backend.
        kind: DbErrorKind,
        /// The database's own message.
        message: String,
        /// The statement that failed.
        sql: String,
        /// Its parameters.
        params: Params,
        /// The constraint that failed, its table and columns, where the database says.
        violated: Box<Violated>,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A statement failed inside the session's transaction on a database where that aborts
    /// the transaction (PostgreSQL); nothing more can be written in it.
    #[error("the session's transaction was aborted by a failed statement ({cause}); call `rollback()` and redo the work")]
    TransactionAborted {
        /// The failure that aborted it.
        cause: String,
    },
    /// The database could not be opened or configured.
    #[error("cannot open the database: {message}")]
    Connect {
        /// What went wrong.
        message: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A required (`NOT NULL`) `#[belongs_to]` was not set on an object being saved.
    #[error("`{model}.{field}` is required but was not set (or the child was taken out of its parent's collection); set it to a parent (`db.set(child, {model}::{field}, parent)`), delete the child, or make the field `Option<Id<...>>`")]
    RequiredRelationUnset {
        /// The model.
        model: &'static str,
        /// The `#[belongs_to]` field.
        field: &'static str,
    },
    /// An upsert cannot conflict on this column, or its objects cannot be written so.
    #[error("cannot upsert `{model}` on `{field}`: {message}")]
    Upsert {
        /// The model.
        model: &'static str,
        /// The column's field.
        field: &'static str,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The integer value of an id was asked for before the flush that stores its object.
    #[error("the id of this `{model}` is pending: the object is not flushed yet; call `flush` or `commit` first")]
    PendingId {
        /// The model of the id.
        model: &'static str,
    },
    /// The integer value of an id that was never set was asked for.
    #[error("this `{model}` id is not set; add the object to a session or assign an id")]
    UnsetId {
        /// The model of the id.
        model: &'static str,
    },
    /// A pending id of another session was stored in an object of this one.
    #[error("`{model}.{field}` holds a pending id of another session; flush that session first or use a handle of this one")]
    ForeignPendingId {
        /// The model.
        model: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A pending id points at an object that this session discarded (by `rollback`, or
    /// deleted before its first flush).
    #[error("`{model}.{field}` points at a `{target}` that was discarded (by rollback, or deleted before it was flushed); add the parent again or point at another one")]
    DiscardedParent {
        /// The model.
        model: &'static str,
        /// The field.
        field: &'static str,
        /// The parent model.
        target: &'static str,
    },
    /// A handle of another session, or of an object discarded by rollback, was used.
    #[error("this `{model}` handle does not belong to this session (or its object was discarded by rollback, or deleted)")]
    InvalidHandle {
        /// The model.
        model: &'static str,
    },
    /// A `NOT NULL` foreign key would have to become `NULL`.
    #[error("`{model}.{field}` cannot be NULL: the child cannot leave its parent; give it another parent instead, or make the field `Option<Id<...>>`")]
    NotNullable {
        /// The model.
        model: &'static str,
        /// The field.
        field: &'static str,
    },
    /// The rows of a flush reference each other in a cycle of `NOT NULL` foreign keys.
    #[error("the rows to write form a cycle of required foreign keys through tables {}; make one of the keys nullable (`Option<Id<...>>`) so the flush can break the cycle", tables.join(" -> "))]
    Cycle {
        /// The tables of the cycle, in order.
        tables: Vec<&'static str>,
    },
    /// An UPDATE matched no row: another program deleted the row (or changed its key) since
    /// the session read it. The flush wrote nothing.
    #[error("`{model}` with key {key} is no longer in the database: another program deleted it or changed its key since the session read it; nothing was written (`rollback()` drops the session's edits)")]
    StaleData {
        /// The model.
        model: &'static str,
        /// The key the session knows the row by.
        key: String,
    },
    /// [`Session::refresh`](crate::Session::refresh) found no row for the object.
    #[error("`{model}` with key {key} is no longer in the database (another program deleted it): there is nothing to refresh it from; `expunge` it, or `rollback()`")]
    RowGone {
        /// The model.
        model: &'static str,
        /// The key the session knows the row by.
        key: String,
    },
    /// Deleting a parent would leave children whose required key names it: the relationship
    /// neither cascades the delete nor can set their key to `NULL`.
    #[error("deleting `{parent}` {key} would leave {count} `{child}` whose required `{child}.{field}` points at it; delete them or give them another parent first, or add `cascade_delete` to the parent's `#[has_many]`")]
    ChildrenLeft {
        /// The parent model.
        parent: &'static str,
        /// The parent's key.
        key: String,
        /// The child model.
        child: &'static str,
        /// The child's `#[belongs_to]` field.
        field: &'static str,
        /// How many children.
        count: usize,
    },
    /// An object points at a row that the flush deletes, or that the session deleted before,
    /// through a relationship the session cannot cascade (one without a `#[has_many]` or
    /// `#[has_one]` on the parent, whose `on_delete` is not "cascade" or "set null").
    #[error("`{model}.{field}` points at a `{target}` that is deleted (by this flush or an earlier one); give it another parent, set it to `None`, or delete it too")]
    ParentDeleted {
        /// The model.
        model: &'static str,
        /// The `#[belongs_to]` field.
        field: &'static str,
        /// The parent model.
        target: &'static str,
    },
    /// A new object's key, or the key a stored object was changed to, is held by another
    /// object of the session (whose row another program may have deleted since).
    #[error("`{model}` key {key} is held by another object of this session (another program may have deleted its row); two objects cannot stand for one row: give this object another key")]
    KeyInUse {
        /// The model.
        model: &'static str,
        /// The key.
        key: String,
    },
    /// A stored object's generated key was set to an id that is not stored.
    #[error("the key of a stored `{model}` was set to an id that is not stored (unset, or a pending id); give it a key with `Id::new(..)` or leave it as it was")]
    KeyNotStored {
        /// The model.
        model: &'static str,
    },
    /// No key is left after the largest key in use (`i64::MAX`).
    #[error("cannot generate a key for a new `{model}`: the table already holds the largest key (i64::MAX); give the object an explicit `Id`")]
    KeysExhausted {
        /// The model.
        model: &'static str,
    },
    /// The key column of a model's table has no sequence to draw generated keys from
    /// (PostgreSQL), e.g. a table not created by `create_all`.
    #[error("cannot generate a key for a new `{model}`: the key column of table `{table}` has no sequence; make it an identity column (`create_all` does) or give the object an explicit `Id`")]
    NoKeySequence {
        /// The model.
        model: &'static str,
        /// Its table.
        table: &'static str,
    },
    /// A model in a `create_all`/`drop_all` set references a model outside the set.
    #[error("`{model}` references `{references}`, which is not in the set of models; add `{references}` to the set")]
    MissingModel {
        /// The model that references another.
        model: &'static str,
        /// The model it references.
        references: &'static str,
    },
    /// The tables do not match the models (`Session::check_schema`, `create_all` on tables
    /// that exist): every difference found, each naming the model, the field and what is wrong.
    #[error("the database does not match the models:{}", differences.iter().map(|d| format!("\n  - {d}")).collect::<String>())]
    SchemaMismatch {
        /// One line per difference.
        differences: Vec<String>,
    },
    /// [`Query::one`](crate::query::Query::one) found no row, or more than one.
    #[error("expected exactly one `{model}` row, found {}; use `first()` to take the first row if there may be several or none", if *found == 0 { "none" } else { "more than one" })]
    NotOne {
        /// The model.
        model: &'static str,
        /// How many rows were found (0, or 2 for more than one).
        found: usize,
    },
    /// The rows of a raw SQL query lack a column of the model they become.
    #[error("the rows of the raw query have no column `{column}` for `{model}.{field}`; select every column of the model (`SELECT * FROM ..`, or name each one)\n  sql: {sql}")]
    RawColumnMissing {
        /// The model.
        model: &'static str,
        /// The field.
        field: &'static str,
        /// The column it is read from.
        column: &'static str,
        /// The query.
        sql: String,
    },
    /// The rows of a raw SQL query have two columns of the name of one of the model's.
    #[error("the rows of the raw query have more than one column `{column}` for `{model}`; select that model's columns only, or rename the others with `AS`\n  sql: {sql}")]
    RawColumnAmbiguous {
        /// The model.
        model: &'static str,
        /// The column's name.
        column: String,
        /// The query.
        sql: String,
    },
    /// A column read from the database does not fit the field's type.
    #[error("cannot read `{model}.{field}`: {message}")]
    Decode {
        /// The model.
        model: &'static str,
        /// The field.
        field: &'static str,
        /// What did not fit.
        message: String,
    },
    /// A relationship was used on a session that does not support it yet.
    #[error("`{model}.{field}`: {message}")]
    Relationship {
        /// The model.
        model: &'static str,
        /// The relationship field.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Error {
    /// For a database error, the constraint that failed, its table and columns (as far as the
    /// database says), so that a program can tell a clash on `email` from one on `name`:
    ///
    /// ```
    /// # use orm_core::prelude::*;
    /// # #[derive(Model, Debug)]
    /// # struct Account { #[key] id: Id<Account>, #[column(unique)] email: String }
    /// # fn main() -> orm_core::Result<()> {
    /// let mut db = Session::open_in_memory()?;
    /// db.create_all::<Account>()?;
    /// db.add(Account::new("a@example.com"));
    /// db.add(Account::new("a@example.com"));
    /// let e = db.commit().unwrap_err();
    /// assert_eq!(e.violated().unwrap().columns, ["email"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn violated(&self) -> Option<&Violated> {
        match self {
            Error::Database { violated, .. } => Some(violated),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
