//! Schema statements: `CREATE TABLE` with its keys and references, indexes, the constraints
//! added once every table exists, and `DROP`; names kept under the length a database keeps.

use super::Dialect;
use crate::model::{KeyKind, ModelMeta, OnDelete, RelationKind};

/// A table name as SQL text that names it (what [`next_keys`](super::next_keys) takes as its first parameter).
pub fn quoted(d: &dyn Dialect, ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    d.quote(ident, &mut out);
    out
}

/// `CREATE TABLE IF NOT EXISTS` with keys, `NOT NULL`, `UNIQUE` and `FOREIGN KEY`s. Where the
/// dialect has no [forward references](Dialect::forward_references), only references to
/// tables in `created` (and to itself) are inline; [`add_foreign_keys`] adds the others.
pub fn create_table(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> String {
    let mut out = String::from("CREATE TABLE IF NOT EXISTS ");
    d.quote(meta.table, &mut out);
    out.push_str(" (");
    for (i, c) in meta.columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        d.quote(c.name, &mut out);
        out.push(' ');
        if i == meta.key && meta.key_kind == KeyKind::Generated {
            out.push_str(d.generated_key());
            continue;
        }
        out.push_str(d.column_type(c.sql_type));
        if i == meta.key {
            out.push_str(" PRIMARY KEY");
        }
        if !c.nullable {
            out.push_str(" NOT NULL");
        }
        if is_unique(meta, i) && i != meta.key {
            out.push_str(" UNIQUE");
        }
    }
    for reference in references(meta) {
        let (_, target, _) = reference;
        if inline_reference(d, meta, target, created) {
            out.push_str(", ");
            foreign_key(d, reference, &mut out);
        }
    }
    out.push(')');
    out
}

/// Whether column `c` of `meta` is `UNIQUE`: declared so, or the foreign key of a
/// `belongs_to` whose other side is a `has_one` (one child per parent).
pub fn is_unique(meta: &ModelMeta, c: usize) -> bool {
    let col = &meta.columns[c];
    col.unique
        || col.relation.is_some_and(|r| {
            meta.inverse(r).is_some_and(|i| {
                (meta.relations[r].target)().relations[i].kind == RelationKind::HasOne
            })
        })
}

/// A `belongs_to` reference of a model: column name, model referenced, `ON DELETE`.
type Reference = (&'static str, &'static ModelMeta, OnDelete);

/// The `belongs_to` references of a model.
fn references(meta: &ModelMeta) -> impl Iterator<Item = Reference> + '_ {
    meta.relations.iter().filter_map(|r| match r.kind {
        RelationKind::BelongsTo { column, .. } => {
            Some((meta.columns[column].name, (r.target)(), r.on_delete))
        }
        RelationKind::HasMany | RelationKind::HasOne | RelationKind::ManyToMany { .. } => None,
    })
}

/// `FOREIGN KEY (column) REFERENCES target (key) [ON DELETE ..]`.
fn foreign_key(d: &dyn Dialect, (column, target, on_delete): Reference, out: &mut String) {
    out.push_str("FOREIGN KEY (");
    d.quote(column, out);
    out.push_str(") REFERENCES ");
    d.quote(target.table, out);
    out.push_str(" (");
    d.quote(target.key_column().name, out);
    out.push(')');
    out.push_str(match on_delete {
        OnDelete::NoAction => "",
        OnDelete::Cascade => " ON DELETE CASCADE",
        OnDelete::SetNull => " ON DELETE SET NULL",
        OnDelete::Restrict => " ON DELETE RESTRICT",
    });
}

/// The name of the foreign-key constraint on `table.column`: `{table}_{column}_fkey`, or,
/// where that is longer than the 63 bytes PostgreSQL keeps, its start and a hash of the
/// whole name, so that two long names never become the same.
pub fn constraint_name(table: &str, column: &str) -> String {
    let full = format!("{table}_{column}_fkey");
    if full.len() <= MAX_IDENTIFIER {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    format!("{}_{hash:016x}", prefix(&full, MAX_IDENTIFIER - 17))
}

/// The most bytes of an identifier PostgreSQL keeps (it cuts longer ones silently).
pub const MAX_IDENTIFIER: usize = 63;

/// The name of the index on `table.column`: `{table}_{column}_{hash}_idx`, where the hash is of
/// the table and column names apart, so that two indexes never get the same name (without it,
/// `a_b` + `c` and `a` + `b_c` would), with the readable part cut to fit 63 bytes.
pub fn index_name(table: &str, column: &str) -> String {
    let mut key = Vec::with_capacity(table.len() + column.len() + 1);
    key.extend_from_slice(table.as_bytes());
    key.push(0);
    key.extend_from_slice(column.as_bytes());
    let hash = fnv1a(&key) & 0xffff_ffff_ffff;
    let readable = format!("{table}_{column}");
    format!("{}_{hash:012x}_idx", prefix(&readable, MAX_IDENTIFIER - 17))
}

/// FNV-1a: stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn inline_reference(
    d: &dyn Dialect,
    meta: &ModelMeta,
    target: &ModelMeta,
    created: &[&ModelMeta],
) -> bool {
    d.forward_references() || meta.same(target) || created.iter().any(|c| c.same(target))
}

/// `ALTER TABLE .. ADD CONSTRAINT .. FOREIGN KEY` for each reference of `meta` that
/// [`create_table`] left out, given the tables created before it; nothing if the constraint
/// already exists.
pub fn add_foreign_keys(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> Vec<String> {
    references(meta)
        .filter(|&(_, target, _)| !inline_reference(d, meta, target, created))
        .map(|reference| {
            let (column, _, _) = reference;
            let mut sql = String::from("ALTER TABLE ");
            d.quote(meta.table, &mut sql);
            sql.push_str(" ADD CONSTRAINT ");
            d.quote(&constraint_name(meta.table, column), &mut sql);
            sql.push(' ');
            foreign_key(d, reference, &mut sql);
            d.ignore_if_exists(sql)
        })
        .collect()
}

/// `ALTER TABLE .. DROP CONSTRAINT IF EXISTS` for the references [`add_foreign_keys`] adds,
/// so that tables in a reference cycle can be dropped.
pub fn drop_foreign_keys(d: &dyn Dialect, meta: &ModelMeta, created: &[&ModelMeta]) -> Vec<String> {
    references(meta)
        .filter(|&(_, target, _)| !inline_reference(d, meta, target, created))
        .map(|(column, _, _)| {
            let mut sql = String::from("ALTER TABLE IF EXISTS ");
            d.quote(meta.table, &mut sql);
            sql.push_str(" DROP CONSTRAINT IF EXISTS ");
            d.quote(&constraint_name(meta.table, column), &mut sql);
            sql
        })
        .collect()
}

/// `CREATE INDEX IF NOT EXISTS` for each indexed column (and every foreign key).
pub fn create_indexes(d: &dyn Dialect, meta: &ModelMeta) -> Vec<String> {
    meta.columns
        .iter()
        .enumerate()
        .filter(|&(i, c)| i != meta.key && !is_unique(meta, i) && (c.index || c.relation.is_some()))
        .map(|(_, c)| {
            let mut out = String::from("CREATE INDEX IF NOT EXISTS ");
            d.quote(&index_name(meta.table, c.name), &mut out);
            out.push_str(" ON ");
            d.quote(meta.table, &mut out);
            out.push_str(" (");
            d.quote(c.name, &mut out);
            out.push(')');
            out
        })
        .collect()
}

/// `DROP TABLE IF EXISTS t`.
pub fn drop_table(d: &dyn Dialect, meta: &ModelMeta) -> String {
    drop_table_named(d, meta.table)
}

/// `DROP TABLE IF EXISTS` of a table by name.
pub fn drop_table_named(d: &dyn Dialect, table: &str) -> String {
    let mut out = String::from("DROP TABLE IF EXISTS ");
    d.quote(table, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_distinct_and_fit() {
        assert_ne!(index_name("a_b", "c"), index_name("a", "b_c"));
        assert!(index_name("product", "user_id").starts_with("product_user_id_"));
        let long = index_name(&"t".repeat(60), &"é".repeat(40));
        assert!(long.len() <= MAX_IDENTIFIER, "{long}");
        assert_ne!(long, index_name(&"t".repeat(60), &"é".repeat(41)));
        assert!(constraint_name(&"t".repeat(60), "c").len() <= MAX_IDENTIFIER);
    }
}
