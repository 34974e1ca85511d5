//! Upsert: insert objects, or, where a row already holds one's value of a unique column,
//! update that row; the resulting rows end up in the identity map with their current values
//! ([`Session::upsert`], [`Session::upsert_all`]).

use super::store::KeyValue;
use super::Session;
use crate::error::{Error, Result};
use crate::id::{Handle, RawId};
use crate::model::{KeyKind, Model, ModelMeta, RelationKind};
use crate::query::Column;
use crate::value::{Value, ValueRef};

impl Session {
    /// Inserts `obj`, or, where a row already holds its value of the unique column `on`,
    /// updates that row's other columns to `obj`'s values (`INSERT .. ON CONFLICT (on) DO
    /// UPDATE`, at once, after flushing pending changes). Returns the handle of the row's
    /// object: the object the session already held for that row, now with the row's values
    /// (its own unflushed edits were flushed first), or a new one.
    ///
    /// `on` must be `UNIQUE` (or the key of a model whose key the program assigns), and `obj`
    /// must hold a value in it. A `#[version]` of an updated row goes up by one. `rollback`
    /// undoes the upsert in the session too: objects it updated get their values back, and
    /// objects it brought into the session are discarded.
    ///
    /// ```
    /// use orm_core::prelude::*;
    ///
    /// #[derive(Model, Debug)]
    /// struct Member {
    ///     #[key]
    ///     id: Id<Member>,
    ///     #[column(unique)]
    ///     email: String,
    ///     name: String,
    /// }
    ///
    /// # fn main() -> orm_core::Result<()> {
    /// let mut db = Session::open_in_memory()?;
    /// db.create_all::<(Member,)>()?;
    /// let ann = db.add(Member::new("ann@example.com", "Ann"));
    /// db.commit()?;
    /// let again = db.upsert(Member::new("ann@example.com", "Ann B."), Member::email)?;
    /// assert_eq!(again, ann); // the same row, the same object
    /// assert_eq!(db[ann].name, "Ann B.");
    /// # Ok(())
    /// # }
    /// ```
    pub fn upsert<T: Model, V>(&mut self, obj: T, on: Column<T, V>) -> Result<Handle<T>> {
        let mut handles = self.upsert_all(vec![obj], on)?;
        Ok(handles.remove(0))
    }

    /// [`upsert`](Session::upsert) of several objects, in statements of many rows; the
    /// handles come in the order of `objs`. Two objects with the same value of `on` are an
    /// error (before any SQL).
    pub fn upsert_all<T: Model, V>(
        &mut self,
        objs: Vec<T>,
        on: Column<T, V>,
    ) -> Result<Vec<Handle<T>>> {
        let meta = T::META;
        let on = on.index();
        check_target(meta, on)?;
        check_values(&objs, on)?;
        if objs.is_empty() {
            return Ok(Vec::new());
        }
        self.flush()?;
        let si = self.store_index_or_create(meta);
        let rows = self.upsert_params(&objs)?;
        let scope = self.conn.begin_flush()?;
        let read = match self.run_upsert(meta, on, &rows) {
            Ok(read) => {
                self.conn.end_flush(scope)?;
                // Keys the program set: a key sequence moves past them at commit.
                let explicit: Vec<i64> = objs
                    .iter()
                    .filter_map(|o| match o.key_id() {
                        RawId::Stored(k) if meta.key_kind == KeyKind::Generated => Some(k),
                        _ => None,
                    })
                    .collect();
                self.stores[si].note_explicit_keys(&explicit);
                read
            }
            Err(e) => {
                self.conn.undo_flush(scope, &e);
                return Err(e);
            }
        };
        self.take_upserted(si, on, &rows, read)
    }

    /// Each object's values in the table's column order: a generated key reserved now where
    /// the object has none, parents' pending ids as the keys the flush gave them.
    fn upsert_params<T: Model>(&mut self, objs: &[T]) -> Result<Vec<Vec<Value>>> {
        let meta = T::META;
        let mut rows = Vec::with_capacity(objs.len());
        let missing = objs
            .iter()
            .filter(|o| {
                meta.key_kind == KeyKind::Generated && !matches!(o.key_id(), RawId::Stored(_))
            })
            .count();
        let si = self.store_index_or_create(meta);
        let mut keys = crate::flush::reserve_keys_for(self, si, missing)?.into_iter();
        for obj in objs {
            let mut row = Vec::with_capacity(meta.columns.len());
            for (c, col) in meta.columns.iter().enumerate() {
                row.push(match col.relation {
                    Some(rel) => self.upsert_parent(meta, rel, obj.foreign_key(rel))?,
                    None if c == meta.key && meta.key_kind == KeyKind::Generated => {
                        match obj.key_id() {
                            RawId::Stored(k) => Value::I64(k),
                            _ => Value::I64(keys.next().expect("one reserved key per object")),
                        }
                    }
                    None if meta.version == Some(c) => {
                        crate::flush::first_version(obj.column(c)).into_owned()
                    }
                    None => obj.column(c).into_owned(),
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// The value a foreign key `id` of relation `rel` writes: a stored key (a pending id of
    /// a parent the flush just stored resolves to its key), `NULL` for none where allowed.
    fn upsert_parent(&self, meta: &'static ModelMeta, rel: usize, id: RawId) -> Result<Value> {
        let r = &meta.relations[rel];
        match self.normalize(r.target, id) {
            RawId::Stored(k) => Ok(Value::I64(k)),
            RawId::Unset if matches!(r.kind, RelationKind::BelongsTo { nullable: true, .. }) => {
                Ok(Value::Null)
            }
            RawId::Unset => Err(Error::RequiredRelationUnset {
                model: meta.name,
                field: r.field,
            }),
            RawId::Pending { .. } => Err(Error::DiscardedParent {
                model: meta.name,
                field: r.field,
                target: (r.target)().name,
            }),
        }
    }

    /// Runs the upsert's statements; the rows they return, as values.
    fn run_upsert(
        &mut self,
        meta: &'static ModelMeta,
        on: usize,
        rows: &[Vec<Value>],
    ) -> Result<Vec<Vec<Value>>> {
        let per = (self.conn.dialect().max_params() / meta.columns.len().max(1)).clamp(1, 500);
        let mut read = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(per) {
            let sql = crate::sql::upsert(self.conn.dialect(), meta, on, chunk.len());
            let params: Vec<ValueRef<'_>> = chunk.iter().flatten().map(Value::as_ref).collect();
            self.conn.tx_written = true;
            self.conn.query(&sql, &params, &mut |row| {
                let values = (0..meta.columns.len())
                    .map(|c| {
                        row.value(c, meta.columns[c].sql_type)
                            .map(ValueRef::into_owned)
                            .map_err(|message| Error::Decode {
                                model: meta.name,
                                field: meta.columns[c].field,
                                message,
                            })
                    })
                    .collect::<Result<Vec<Value>>>()?;
                read.push(values);
                Ok(())
            })?;
        }
        Ok(read)
    }

    /// Brings the rows the upsert returned into the session: an object already there takes
    /// the row's values (its values before, journaled for `rollback`), another row becomes a
    /// new object that `rollback` discards. The handles in the order of `rows`.
    fn take_upserted<T: Model>(
        &mut self,
        si: usize,
        on: usize,
        rows: &[Vec<Value>],
        read: Vec<Vec<Value>>,
    ) -> Result<Vec<Handle<T>>> {
        let meta = T::META;
        let session = self.id;
        let mut slot_of = std::collections::HashMap::with_capacity(read.len());
        let mut moves = Vec::new();
        for values in &read {
            let row: &[Value] = values;
            let held = KeyValue::from_ref(values[meta.key].as_ref())
                .and_then(|k| self.stores[si].lookup(&k));
            if let Some(slot) = held {
                self.stores[si].journal_row(slot);
            }
            let (slot, changed) = self.stores[si].reload_row(&row, session)?;
            moves.extend(
                changed
                    .into_iter()
                    .map(|(r, linked, now)| (si, slot, r, linked, now)),
            );
            if held.is_none() {
                // Written by the session: it joins its parents' loaded collections, as a new
                // object would.
                self.stores[si].mark_added(slot);
                for r in
                    (0..meta.relations.len()).filter(|&r| !meta.relations[r].kind.holds_children())
                {
                    let now = self.stores[si].foreign_key(slot, r);
                    if now != RawId::Unset {
                        moves.push((si, slot, r, RawId::Unset, now));
                    }
                }
            }
            if let Some(k) = KeyValue::from_ref(values[on].as_ref()) {
                slot_of.insert(k, slot);
            }
        }
        self.move_children(&moves, true);
        rows.iter()
            .map(|row| {
                let slot = KeyValue::from_ref(row[on].as_ref())
                    .and_then(|k| slot_of.get(&k).copied())
                    .ok_or_else(|| {
                        upsert_error(meta, on, "the database returned no row for a value")
                    })?;
                Ok(Handle::new(session, slot))
            })
            .collect()
    }
}

/// Every object has a value of `on`, and no two the same.
fn check_values<T: Model>(objs: &[T], on: usize) -> Result<()> {
    let meta = T::META;
    let mut seen = std::collections::HashSet::with_capacity(objs.len());
    for obj in objs {
        let Some(k) = KeyValue::from_ref(obj.column(on)) else {
            return Err(upsert_error(
                meta,
                on,
                "the object has no value in it (a NULL never conflicts); give it one",
            ));
        };
        if !seen.insert(k) {
            return Err(upsert_error(
                meta,
                on,
                "two of the objects have the same value in it; upsert each value once",
            ));
        }
    }
    Ok(())
}

/// The column an upsert conflicts on must be one a conflict can happen on.
fn check_target(meta: &ModelMeta, on: usize) -> Result<()> {
    if matches!(
        meta.columns[on].sql_type,
        crate::value::SqlType::F32 | crate::value::SqlType::F64
    ) {
        return Err(upsert_error(
            meta,
            on,
            "a float column: floats are not compared exactly; upsert on a UNIQUE integer or text column",
        ));
    }
    let natural_key = on == meta.key && meta.key_kind == KeyKind::Natural;
    if natural_key || (on != meta.key && crate::sql::is_unique(meta, on)) {
        return Ok(());
    }
    let message = if on == meta.key {
        "a generated key; upsert on a UNIQUE column (`#[column(unique)]`)"
    } else {
        "not UNIQUE; mark it `#[column(unique)]` (an upsert updates the row that holds the same value)"
    };
    Err(upsert_error(meta, on, message))
}

fn upsert_error(meta: &ModelMeta, on: usize, message: &str) -> Error {
    Error::Upsert {
        model: meta.name,
        field: meta.columns[on].field,
        message: message.to_owned(),
    }
}
