//! The association table of a many-to-many (`#[has_many(through = "..")]`): its schema
//! statements and the statements on its rows, every value a bound parameter.

use super::ddl::index_name;
use super::Dialect;
use crate::model::{ModelMeta, RelationKind};

/// A many-to-many's association table, seen from one side.
#[derive(Clone, Copy, Debug)]
pub struct JoinTable {
    /// The table.
    pub table: &'static str,
    /// Its column that holds this side's key.
    pub column: &'static str,
    /// Its column that holds the other side's key.
    pub target_column: &'static str,
    /// This side's model.
    pub meta: &'static ModelMeta,
    /// The other side's model.
    pub target: &'static ModelMeta,
    /// The relationship's field on this side.
    pub field: &'static str,
}

impl JoinTable {
    /// The association table of relation `rel` of `meta`, if it is a many-to-many.
    pub fn of(meta: &'static ModelMeta, rel: usize) -> Option<JoinTable> {
        let r = &meta.relations[rel];
        let RelationKind::ManyToMany {
            table,
            column,
            target_column,
        } = r.kind
        else {
            return None;
        };
        Some(JoinTable {
            table,
            column,
            target_column,
            meta,
            target: (r.target)(),
            field: r.field,
        })
    }

    /// Whether `other` is this table seen from the same side or from the other one (two
    /// relationships may share a table only so).
    pub fn same_table(&self, other: &JoinTable) -> bool {
        let same_side = self.meta.same(other.meta)
            && self.target.same(other.target)
            && (self.column, self.target_column) == (other.column, other.target_column);
        let other_side = self.meta.same(other.target)
            && self.target.same(other.meta)
            && (self.column, self.target_column) == (other.target_column, other.column);
        self.table == other.table && (same_side || other_side)
    }

    /// Whether this side's column comes first in the table's primary key (the columns in
    /// name order, so that both sides agree).
    pub fn column_first(&self) -> bool {
        self.column < self.target_column
    }

    /// The columns in primary-key order, each with the model whose key it holds.
    fn ordered(&self) -> [(&'static str, &'static ModelMeta); 2] {
        let own = (self.column, self.meta);
        let other = (self.target_column, self.target);
        if self.column_first() {
            [own, other]
        } else {
            [other, own]
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` with both keys `NOT NULL`, the pair as primary key, and a
    /// foreign key to each end that deletes the links with the row and follows a changed
    /// (natural) key.
    pub fn create(&self, d: &dyn Dialect) -> String {
        let mut out = String::from("CREATE TABLE IF NOT EXISTS ");
        d.quote(self.table, &mut out);
        out.push_str(" (");
        for (column, meta) in self.ordered() {
            d.quote(column, &mut out);
            out.push(' ');
            out.push_str(d.column_type(meta.key_column().sql_type));
            out.push_str(" NOT NULL, ");
        }
        out.push_str("PRIMARY KEY (");
        let [(a, _), (b, _)] = self.ordered();
        d.quote(a, &mut out);
        out.push_str(", ");
        d.quote(b, &mut out);
        out.push(')');
        for (column, meta) in self.ordered() {
            out.push_str(", FOREIGN KEY (");
            d.quote(column, &mut out);
            out.push_str(") REFERENCES ");
            d.quote(meta.table, &mut out);
            out.push_str(" (");
            d.quote(meta.key_column().name, &mut out);
            out.push_str(") ON DELETE CASCADE ON UPDATE CASCADE");
        }
        out.push(')');
        out
    }

    /// The index on the primary key's second column then its first (the key serves lookups
    /// by the first; this one those by the second, in the order of the other).
    pub fn create_index(&self, d: &dyn Dialect) -> String {
        let [(first, _), (second, _)] = self.ordered();
        let mut out = String::from("CREATE INDEX IF NOT EXISTS ");
        d.quote(&index_name(self.table, second), &mut out);
        out.push_str(" ON ");
        d.quote(self.table, &mut out);
        out.push_str(" (");
        d.quote(second, &mut out);
        out.push_str(", ");
        d.quote(first, &mut out);
        out.push(')');
        out
    }

    /// `DROP TABLE IF EXISTS`.
    pub fn drop(&self, d: &dyn Dialect) -> String {
        super::drop_table_named(d, self.table)
    }

    /// The other side's rows linked to `keys` rows of this side (one parameter each; every
    /// row of this side if `keys` is 0), by this side's key then theirs; with `owner`, each
    /// row ends with the key of the row of this side it is linked to (a row linked to
    /// several comes once for each).
    pub fn select_targets(&self, d: &dyn Dialect, keys: usize, owner: bool) -> String {
        let target = self.target;
        let mut out = String::from("SELECT ");
        for (i, c) in target.columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            d.quote(target.table, &mut out);
            out.push('.');
            d.quote(c.name, &mut out);
        }
        if owner {
            out.push_str(", ");
            self.join_column(d, self.column, &mut out);
        }
        out.push_str(" FROM ");
        d.quote(target.table, &mut out);
        out.push_str(" JOIN ");
        d.quote(self.table, &mut out);
        out.push_str(" ON ");
        self.join_column(d, self.target_column, &mut out);
        out.push_str(" = ");
        d.quote(target.table, &mut out);
        out.push('.');
        d.quote(target.key_column().name, &mut out);
        if keys > 0 {
            out.push_str(" WHERE ");
            self.join_column(d, self.column, &mut out);
        }
        if keys == 0 {
            // Every link.
        } else if keys == 1 {
            out.push_str(" = ");
            d.placeholder(1, &mut out);
        } else {
            out.push_str(" IN (");
            for i in 0..keys {
                if i > 0 {
                    out.push_str(", ");
                }
                d.placeholder(i + 1, &mut out);
            }
            out.push(')');
        }
        // The order of the table's primary key (or of the index on its second column, which
        // holds the first too), so that no sort is needed: by owner, then by the other
        // side's key.
        out.push_str(" ORDER BY ");
        self.join_column(d, self.column, &mut out);
        out.push_str(", ");
        self.join_column(d, self.target_column, &mut out);
        out
    }

    /// `"table"."column"`.
    fn join_column(&self, d: &dyn Dialect, column: &str, out: &mut String) {
        d.quote(self.table, out);
        out.push('.');
        d.quote(column, out);
    }

    /// An INSERT of `rows` links, each two parameters in primary-key order, that leaves
    /// links already there as they are.
    pub fn insert(&self, d: &dyn Dialect, rows: usize) -> String {
        let [(a, _), (b, _)] = self.ordered();
        let mut out = String::from("INSERT INTO ");
        d.quote(self.table, &mut out);
        out.push_str(" (");
        d.quote(a, &mut out);
        out.push_str(", ");
        d.quote(b, &mut out);
        out.push_str(") VALUES ");
        for i in 0..rows {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('(');
            d.placeholder(2 * i + 1, &mut out);
            out.push_str(", ");
            d.placeholder(2 * i + 2, &mut out);
            out.push(')');
        }
        out.push_str(" ON CONFLICT DO NOTHING");
        out
    }

    /// A DELETE of `rows` links, each two parameters in primary-key order.
    pub fn delete(&self, d: &dyn Dialect, rows: usize) -> String {
        let [(a, _), (b, _)] = self.ordered();
        let mut out = String::from("DELETE FROM ");
        d.quote(self.table, &mut out);
        out.push_str(" WHERE ");
        for i in 0..rows {
            if i > 0 {
                out.push_str(" OR ");
            }
            out.push('(');
            d.quote(a, &mut out);
            out.push_str(" = ");
            d.placeholder(2 * i + 1, &mut out);
            out.push_str(" AND ");
            d.quote(b, &mut out);
            out.push_str(" = ");
            d.placeholder(2 * i + 2, &mut out);
            out.push(')');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cascade, ColumnMeta, KeyKind, OnDelete, RelationMeta};
    use crate::value::SqlType;

    const fn key(name: &'static str) -> ColumnMeta {
        ColumnMeta {
            name,
            field: name,
            sql_type: SqlType::I64,
            nullable: false,
            unique: false,
            index: false,
            relation: None,
        }
    }

    static POST_COLUMNS: [ColumnMeta; 1] = [key("id")];
    static TAG_COLUMNS: [ColumnMeta; 2] = [key("id"), key("label")];

    static TAG: ModelMeta = ModelMeta {
        name: "Tag",
        table: "tag",
        columns: &TAG_COLUMNS,
        key: 0,
        key_kind: KeyKind::Generated,
        relations: &[],
        version: None,
        type_id: std::any::TypeId::of::<u8>,
        new_store: || unreachable!("not used"),
    };

    fn tag() -> &'static ModelMeta {
        &TAG
    }

    static POST_RELATIONS: [RelationMeta; 1] = [RelationMeta {
        field: "tags",
        kind: RelationKind::ManyToMany {
            table: "post_tags",
            column: "post_id",
            target_column: "tag_id",
        },
        target: tag,
        back_populates: None,
        cascade: Cascade {
            delete: false,
            orphans: false,
            passive: false,
        },
        on_delete: OnDelete::NoAction,
        post_update: false,
    }];

    static POST: ModelMeta = ModelMeta {
        name: "Post",
        table: "post",
        columns: &POST_COLUMNS,
        key: 0,
        key_kind: KeyKind::Generated,
        relations: &POST_RELATIONS,
        version: None,
        type_id: std::any::TypeId::of::<u16>,
        new_store: || unreachable!("not used"),
    };

    #[test]
    fn statements_of_an_association_table() {
        let j = JoinTable::of(&POST, 0).unwrap();
        let d = &crate::sql::Sqlite;
        assert_eq!(
            j.create(d),
            "CREATE TABLE IF NOT EXISTS \"post_tags\" (\"post_id\" INTEGER NOT NULL, \"tag_id\" INTEGER NOT NULL, PRIMARY KEY (\"post_id\", \"tag_id\"), FOREIGN KEY (\"post_id\") REFERENCES \"post\" (\"id\") ON DELETE CASCADE ON UPDATE CASCADE, FOREIGN KEY (\"tag_id\") REFERENCES \"tag\" (\"id\") ON DELETE CASCADE ON UPDATE CASCADE)"
        );
        assert_eq!(
            j.select_targets(&crate::sql::Postgres, 2, true),
            "SELECT \"tag\".\"id\", \"tag\".\"label\", \"post_tags\".\"post_id\" FROM \"tag\" JOIN \"post_tags\" ON \"post_tags\".\"tag_id\" = \"tag\".\"id\" WHERE \"post_tags\".\"post_id\" IN ($1, $2) ORDER BY \"post_tags\".\"post_id\", \"post_tags\".\"tag_id\""
        );
        assert_eq!(
            j.insert(d, 2),
            "INSERT INTO \"post_tags\" (\"post_id\", \"tag_id\") VALUES (?1, ?2), (?3, ?4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            j.delete(d, 2),
            "DELETE FROM \"post_tags\" WHERE (\"post_id\" = ?1 AND \"tag_id\" = ?2) OR (\"post_id\" = ?3 AND \"tag_id\" = ?4)"
        );
    }
}
