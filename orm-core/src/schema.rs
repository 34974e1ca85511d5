//! The order in which a set of models' tables are created and dropped.

use crate::error::{Error, Result};
use crate::model::{ModelMeta, RelationKind};

/// The models of `set`, each after the models it references (a reference to itself is fine;
/// models in a reference cycle keep their order in the set). A reference to a model outside
/// the set is an error naming both.
pub fn creation_order(set: &[&'static ModelMeta]) -> Result<Vec<&'static ModelMeta>> {
    let mut unique: Vec<&'static ModelMeta> = Vec::with_capacity(set.len());
    for m in set {
        if !unique.iter().any(|u| u.same(m)) {
            unique.push(m);
        }
    }
    for m in &unique {
        for r in m.relations {
            if r.kind.holds_children() && !r.kind.is_many_to_many() {
                continue;
            }
            let target = (r.target)();
            if !unique.iter().any(|u| u.same(target)) {
                return Err(Error::MissingModel {
                    model: m.name,
                    references: target.name,
                });
            }
        }
    }
    let order = crate::flush::order::parents_first(unique.len(), 0..unique.len(), |i| {
        unique[i].relations.iter().filter_map(|r| match r.kind {
            RelationKind::BelongsTo { .. } => {
                let target = (r.target)();
                unique.iter().position(|u| u.same(target))
            }
            _ => None,
        })
    });
    let out = order.into_iter().map(|i| unique[i]).collect();
    Ok(out)
}

/// The association tables of the many-to-many relationships of `models`, each once; two
/// relationships that name one table without being its two sides are an error.
pub(crate) fn join_tables(models: &[&'static ModelMeta]) -> Result<Vec<crate::sql::JoinTable>> {
    let mut out: Vec<crate::sql::JoinTable> = Vec::new();
    for &m in models {
        for rel in 0..m.relations.len() {
            let Some(j) = crate::sql::JoinTable::of(m, rel) else {
                continue;
            };
            match out.iter().find(|o| o.table == j.table) {
                Some(o) if o.same_table(&j) => {}
                Some(o) => {
                    return Err(Error::Relationship {
                        model: j.meta.name,
                        field: j.field,
                        message: format!(
                            "its association table `{}` is already the table of `{}.{}`, with other columns or models; give each many-to-many its own table (or make them each other's `back_populates`, with the columns the other way round)",
                            j.table, o.meta.name, o.field
                        ),
                    })
                }
                None => out.push(j),
            }
        }
    }
    Ok(out)
}

/// The differences between an association table and what its many-to-many needs.
pub(crate) fn join_differences(
    j: &crate::sql::JoinTable,
    table: Option<&DbTable>,
    out: &mut Vec<String>,
) {
    let Some(table) = table else {
        out.push(format!(
            "association table `{}` of `{}` does not exist (`create_all` creates it)",
            j.table, j.meta.name
        ));
        return;
    };
    for (column, meta) in [(j.column, j.meta), (j.target_column, j.target)] {
        if !table.columns.iter().any(|c| c.name == column) {
            out.push(format!(
                "association table `{}`: column `{column}` (the key of `{}`) is missing",
                j.table, meta.name
            ));
        } else if !table
            .foreign_keys
            .iter()
            .any(|(c, t)| c == column && t == meta.table)
        {
            out.push(format!(
                "association table `{}`: column `{column}` has no FOREIGN KEY to `{}`",
                j.table, meta.table
            ));
        }
    }
}

/// What the database says of one column of a table.
#[derive(Debug)]
pub(crate) struct DbColumn {
    pub(crate) name: String,
    pub(crate) declared: String,
    pub(crate) not_null: bool,
    pub(crate) primary_key: bool,
    /// A default (or a generated identity) fills it when an INSERT leaves it out.
    pub(crate) has_default: bool,
}

/// What the database says of a table: its columns, and its foreign keys as (column, table).
#[derive(Debug, Default)]
pub(crate) struct DbTable {
    pub(crate) columns: Vec<DbColumn>,
    pub(crate) foreign_keys: Vec<(String, String)>,
}

/// Every difference between `meta` and its table as the database describes it (`None`: no
/// such table), in words that name the model, the field and what to do.
pub(crate) fn differences(
    d: &dyn crate::sql::Dialect,
    meta: &ModelMeta,
    table: Option<&DbTable>,
    out: &mut Vec<String>,
) {
    let Some(table) = table else {
        out.push(format!(
            "table `{}` of `{}` does not exist (`create_all` creates it)",
            meta.table, meta.name
        ));
        return;
    };
    for (i, c) in meta.columns.iter().enumerate() {
        let at = format!(
            "`{}.{}` (column `{}.{}`)",
            meta.name, c.field, meta.table, c.name
        );
        let Some(db) = table.columns.iter().find(|x| x.name == c.name) else {
            out.push(format!("{at}: the column is missing from the table"));
            continue;
        };
        if !d.same_type(&db.declared, c.sql_type) {
            out.push(format!(
                "{at}: the column is {}, the field needs {}",
                db.declared,
                d.column_type(c.sql_type)
            ));
        }
        if i == meta.key {
            if !db.primary_key {
                out.push(format!(
                    "{at}: the model's key is not the table's primary key"
                ));
            }
        } else if c.nullable && db.not_null {
            out.push(format!(
                "{at}: the column is NOT NULL but the field is an `Option` (writing `None` fails)"
            ));
        } else if !c.nullable && !db.not_null {
            out.push(format!(
                "{at}: the column allows NULL but the field is not an `Option` (reading a NULL fails)"
            ));
        }
    }
    for r in meta.relations {
        let RelationKind::BelongsTo { column, .. } = r.kind else {
            continue;
        };
        let (name, target) = (meta.columns[column].name, (r.target)().table);
        if !table
            .foreign_keys
            .iter()
            .any(|(c, t)| c == name && t == target)
        {
            out.push(format!(
                "`{}.{}` (column `{}.{name}`): the column has no FOREIGN KEY to `{target}`",
                meta.name, r.field, meta.table
            ));
        }
    }
    for db in &table.columns {
        let known = meta.columns.iter().any(|c| c.name == db.name);
        if !known && db.not_null && !db.has_default {
            out.push(format!(
                "table `{}` has a NOT NULL column `{}` without a default that `{}` does not know: every insert fails (add a field for it, or a default)",
                meta.table, db.name, meta.name
            ));
        }
    }
}
