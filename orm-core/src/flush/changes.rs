//! What changed: misuse seen before any SQL, and the columns of each stored object that
//! differ from its snapshot.

use super::deletes::Deletes;
use crate::error::{Error, Result};
use crate::id::RawId;
use crate::model::{KeyKind, RelationKind};
use crate::session::store::{AnyStore, KeyValue, State};
use crate::session::Session;
use crate::value::Value;

/// Misuse the session can see before any SQL: required keys left unset, pending ids of other
/// sessions or of discarded objects, keys that another object holds or that are not stored,
/// parents that the flush deletes.
pub(super) fn validate(db: &Session, deletes: &Deletes) -> Result<()> {
    for (si, store) in db.stores.iter().enumerate() {
        let meta = store.meta();
        for &slot in store.new_slots().iter().chain(store.marked_slots()) {
            if store.state(slot) == State::Discarded || deletes.contains(si, slot) {
                continue;
            }
            check_key(&**store, slot)?;
            for (r, rel) in meta.relations.iter().enumerate() {
                let RelationKind::BelongsTo { nullable, .. } = rel.kind else {
                    continue;
                };
                if deletes.is_nulled(si, slot, r) {
                    continue;
                }
                let id = store.foreign_key(slot, r);
                if let RawId::Stored(k) = id {
                    let target = db.links[si][r].target;
                    if target.is_some_and(|ti| db.stores[ti].is_retired(k)) {
                        return Err(Error::ParentDeleted {
                            model: meta.name,
                            field: rel.field,
                            target: (rel.target)().name,
                        });
                    }
                }
                if !deletes.is_empty() {
                    let parent = db.parent_slot((rel.target)(), id);
                    if parent.is_some_and(|(ti, ps)| deletes.contains(ti, ps)) {
                        return Err(Error::ParentDeleted {
                            model: meta.name,
                            field: rel.field,
                            target: (rel.target)().name,
                        });
                    }
                }
                if id == RawId::Unset && !nullable {
                    return Err(Error::RequiredRelationUnset {
                        model: meta.name,
                        field: rel.field,
                    });
                }
                db.check_pending_parent(meta, r, id)?;
            }
        }
    }
    Ok(())
}

/// The key of a new or changed object: stored if the object is, and held by no other object
/// of the session (which would make two objects of one row).
fn check_key(store: &dyn AnyStore, slot: u32) -> Result<()> {
    let meta = store.meta();
    let persistent = store.state(slot) == State::Persistent;
    if persistent
        && meta.key_kind == KeyKind::Generated
        && !matches!(store.key_id(slot), RawId::Stored(_))
    {
        return Err(Error::KeyNotStored { model: meta.name });
    }
    let Some(key) = store.key_value(slot) else {
        return Ok(());
    };
    let unchanged = persistent
        && store
            .snapshot_value(slot, meta.key)
            .is_none_or(|v| KeyValue::from_ref(v.as_ref()).as_ref() == Some(&key));
    if unchanged {
        return Ok(());
    }
    match store.lookup(&key) {
        Some(other) if other != slot && store.key_value(other).as_ref() == Some(&key) => {
            Err(Error::KeyInUse {
                model: meta.name,
                key: match key {
                    KeyValue::Int(k) => k.to_string(),
                    KeyValue::Text(t) => format!("{t:?}"),
                    KeyValue::Blob(b) => format!("<{} bytes>", b.len()),
                },
            })
        }
        _ => Ok(()),
    }
}

/// An UPDATE to run: store, slot, and where its changed columns are in [`Updates`].
pub(crate) struct Update {
    pub(super) store: usize,
    pub(super) slot: u32,
    pub(super) columns: std::ops::Range<usize>,
}

/// The UPDATEs of a flush, their changed columns in one vector.
#[derive(Default)]
pub(crate) struct Updates {
    pub(super) list: Vec<Update>,
    pub(super) columns: Vec<usize>,
}

impl Updates {
    /// The changed columns of one update.
    pub(super) fn columns(&self, u: &Update) -> &[usize] {
        &self.columns[u.columns.clone()]
    }

    /// Whether nothing changed.
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds an update of `slot` of store `store` whose columns are those `columns` yields
    /// (none: no update), in column order, and the model's `#[version]` column (`version`)
    /// among them if any other changed: the UPDATE writes it, whether or not the program
    /// changed it. (Its text is cached by the set of columns and bound in this order.)
    pub(super) fn push(
        &mut self,
        store: usize,
        slot: u32,
        columns: impl Iterator<Item = usize>,
        version: Option<usize>,
    ) {
        let start = self.columns.len();
        self.columns.extend(columns);
        if self.columns.len() == start {
            return;
        }
        if let Some(v) = version.filter(|v| !self.columns[start..].contains(v)) {
            self.columns.push(v);
            self.columns[start..].sort_unstable();
        }
        self.list.push(Update {
            store,
            slot,
            columns: start..self.columns.len(),
        });
    }

    /// The updates of store `si` that change its key column `key`.
    pub(super) fn of_key(&self, si: usize, key: usize) -> impl Iterator<Item = &Update> {
        self.list
            .iter()
            .filter(move |u| u.store == si && self.columns(u).contains(&key))
    }
}

/// The columns of each persistent object that differ from its snapshot (none of objects the
/// flush deletes), and the foreign keys it sets to `NULL` because their parent goes.
pub(super) fn changed_columns(db: &Session, deletes: &Deletes) -> Updates {
    let mut out = Updates::default();
    for (si, store) in db.stores.iter().enumerate() {
        let meta = store.meta();
        for &slot in store.marked_slots() {
            if store.state(slot) != State::Persistent || deletes.contains(si, slot) {
                continue;
            }
            let changed = meta.columns.iter().enumerate().filter(|&(c, col)| {
                if let Some(r) = col.relation {
                    let now = if deletes.is_nulled(si, slot, r) {
                        RawId::Unset
                    } else {
                        db.normalize(meta.relations[r].target, store.foreign_key(slot, r))
                    };
                    Some(now) != store.snapshot_fk(slot, r)
                } else if c == meta.key && meta.key_kind == KeyKind::Generated {
                    let now = match store.key_id(slot) {
                        RawId::Stored(v) => Value::I64(v),
                        _ => Value::Null,
                    };
                    store.snapshot_value(slot, c) != Some(&now)
                } else {
                    store
                        .snapshot_value(slot, c)
                        .is_none_or(|old| !old.as_ref().same_as(store.column(slot, c)))
                }
            });
            out.push(si, slot, changed.map(|(c, _)| c), meta.version);
        }
    }
    // Keys set to NULL of objects not taken mutably (children read to be let go of).
    let mut unmarked: Vec<(usize, u32, usize)> = deletes
        .nulled()
        .filter(|&(si, slot, r)| {
            let store = &db.stores[si];
            store.state(slot) == State::Persistent && store.snapshot_fk(slot, r).is_none()
        })
        .collect();
    unmarked.sort_unstable();
    for row in unmarked.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (si, slot) = (row[0].0, row[0].1);
        let rels = db.stores[si].meta().relations;
        let columns = row.iter().filter_map(|&(_, _, r)| match rels[r].kind {
            RelationKind::BelongsTo { column, .. } => Some(column),
            RelationKind::HasMany | RelationKind::HasOne | RelationKind::ManyToMany { .. } => None,
        });
        out.push(si, slot, columns, db.stores[si].meta().version);
    }
    out
}
