//! Raw SQL inside the session: a `SELECT` whose rows become objects through the identity
//! map, and any statement for its row count, in the session's transaction.

use super::resolve_arg;
use crate::error::{Error, Result};
use crate::id::{Handle, Id};
use crate::model::{Model, RawRow};
use crate::session::Session;
use crate::sql::Arg;
use crate::value::{ColumnType, SqlType, Value, ValueRef};

/// A parameter of a raw statement: any column value, a `&str`, an `Id` or a `Handle` (a
/// pending one is resolved by the flush the statement starts).
pub trait Param {
    /// The value, as the statement binds it.
    #[doc(hidden)]
    fn arg(&self) -> Arg;
}

impl<T: ColumnType> Param for T {
    fn arg(&self) -> Arg {
        Arg::Value(self.to_sql().into_owned())
    }
}
impl Param for &str {
    fn arg(&self) -> Arg {
        Arg::Value(Value::Text((*self).to_owned()))
    }
}
impl<P: Model> Param for Id<P> {
    fn arg(&self) -> Arg {
        Arg::Id(self.raw(), P::META)
    }
}
impl<P: Model> Param for Handle<P> {
    fn arg(&self) -> Arg {
        Arg::Id(Id::from(*self).raw(), P::META)
    }
}

/// A row whose columns are found by the names of a model's columns.
struct ByName<'a> {
    row: &'a dyn RawRow,
    at: &'a [usize],
}

impl RawRow for ByName<'_> {
    fn value(&self, index: usize, ty: SqlType) -> std::result::Result<ValueRef<'_>, String> {
        self.row.value(self.at[index], ty)
    }
}

impl Session {
    /// Runs a `SELECT` written by hand, whose rows become `T` objects through the identity
    /// map (a row the session holds keeps its object and edits). Its columns are matched to
    /// the model's by name, so `SELECT * FROM ..` or any list naming every column works.
    /// Placeholders are the database's own: `?1` on SQLite, `$1` on PostgreSQL. The session's
    /// pending changes are flushed first (unless autoflush is off).
    ///
    /// ```
    /// # use orm_core::prelude::*;
    /// # #[derive(Model, Debug)]
    /// # struct Note { #[key] id: Id<Note>, text: String }
    /// # fn main() -> orm_core::Result<()> {
    /// # let mut db = Session::open_in_memory()?;
    /// # db.create_all::<(Note,)>()?;
    /// db.add(Note::new("hello"));
    /// let found = db.query_sql::<Note>(
    ///     "SELECT * FROM note WHERE length(text) > ?1",
    ///     &[&3],
    /// )?;
    /// assert_eq!(db[found[0]].text, "hello");
    /// # Ok(())
    /// # }
    /// ```
    pub fn query_sql<T: Model>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<Handle<T>>> {
        let values = self.raw_params(params)?;
        let refs: Vec<ValueRef<'_>> = values.iter().map(Value::as_ref).collect();
        let si = self.store_index_or_create(T::META);
        let names = self.conn.column_names(sql)?;
        let at = positions(T::META, &names, sql)?;
        let store = &mut self.stores[si];
        let mut slots = Vec::new();
        self.conn.query(sql, &refs, &mut |row| {
            slots.push(store.load_row(&ByName { row, at: &at })?);
            Ok(())
        })?;
        let session = self.id;
        Ok(slots.into_iter().map(|s| Handle::new(session, s)).collect())
    }

    /// Runs any statement written by hand in the session's transaction (started if none is
    /// open, so `commit` or `rollback` ends it) and returns the rows it changed. The session's
    /// pending changes are flushed first (unless autoflush is off). Objects the session holds
    /// are not re-read: an UPDATE of their rows is not seen in them.
    pub fn execute_sql(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        let values = self.raw_params(params)?;
        let refs: Vec<ValueRef<'_>> = values.iter().map(Value::as_ref).collect();
        self.conn.begin()?;
        Ok(self.conn.execute(sql, &refs)? as u64)
    }

    /// Flushes if autoflush is on, then the parameters' values with ids resolved.
    fn raw_params(&mut self, params: &[&dyn Param]) -> Result<Vec<Value>> {
        if self.autoflush {
            self.flush()?;
        }
        params
            .iter()
            .map(|p| {
                let mut arg = p.arg();
                resolve_arg(self, &mut arg)?;
                Ok(arg.into_value())
            })
            .collect()
    }
}

/// For each column of `meta`, its position in the rows of the raw query `sql`: the one
/// column of that name (exactly, else ignoring ASCII case); none, or two (a join of tables
/// with columns of the same name), is an error.
fn positions(meta: &crate::model::ModelMeta, names: &[String], sql: &str) -> Result<Vec<usize>> {
    let find = |name: &str, same: &dyn Fn(&str) -> bool| -> Result<Option<usize>> {
        let mut found = names.iter().enumerate().filter(|(_, n)| same(n));
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Ok(Some(i)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(Error::RawColumnAmbiguous {
                model: meta.name,
                column: name.to_owned(),
                sql: sql.to_owned(),
            }),
        }
    };
    meta.columns
        .iter()
        .map(|c| {
            let exact = find(c.name, &|n| n == c.name)?;
            let any_case = || find(c.name, &|n| n.eq_ignore_ascii_case(c.name));
            let at = match exact {
                Some(i) => Some(i),
                None => any_case()?,
            };
            at.ok_or_else(|| Error::RawColumnMissing {
                model: meta.name,
                field: c.field,
                column: c.name,
                sql: sql.to_owned(),
            })
        })
        .collect()
}
