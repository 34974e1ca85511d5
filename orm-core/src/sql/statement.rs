//! The statements the session runs on rows, as data that a [`Dialect`] renders: [`Select`]
//! (filter, order, limit, offset, row locks), [`Insert`], [`Update`] and [`Delete`], with
//! their conditions as [`Expr`] trees. Every value becomes a bound parameter.

use super::Dialect;
use crate::id::RawId;
use crate::model::ModelMeta;
use crate::value::Value;

/// An operand of a condition.
#[derive(Clone, Debug)]
pub enum Arg {
    /// A value, bound as a parameter.
    Value(Value),
    /// A key of a row of a model (pending or stored): the session turns a pending key into
    /// the key the flush stored before it runs the statement.
    Id(RawId, &'static ModelMeta),
    /// A placeholder whose value the caller binds, in order (statements whose text is kept
    /// and run many times). A statement uses either these or values, not both.
    Param,
}

impl Arg {
    /// The value bound for it: a stored id's key; `NULL` for an id still pending or unset
    /// (the session resolves pending ids before it renders: one left names no row) and for
    /// a placeholder.
    pub fn into_value(self) -> Value {
        match self {
            Arg::Value(v) => v,
            Arg::Id(RawId::Stored(k), _) => Value::I64(k),
            Arg::Id(..) | Arg::Param => Value::Null,
        }
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `LIKE .. ESCAPE '\'`: a backslash in the pattern makes the next character literal.
    LikeEscaped,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => " = ",
            Op::Ne => " <> ",
            Op::Lt => " < ",
            Op::Le => " <= ",
            Op::Gt => " > ",
            Op::Ge => " >= ",
            Op::Like | Op::LikeEscaped => " LIKE ",
        }
    }
}

/// A condition on the columns of one table (columns by index in [`ModelMeta::columns`]).
#[derive(Clone, Debug)]
pub enum Expr {
    /// `column op arg`.
    Compare {
        /// The column.
        column: usize,
        /// The comparison.
        op: Op,
        /// The other side.
        arg: Arg,
    },
    /// `column IN (args)`; false when empty.
    In {
        /// The column.
        column: usize,
        /// The values.
        args: Vec<Arg>,
    },
    /// `column IS NULL`.
    IsNull {
        /// The column.
        column: usize,
    },
    /// `column BETWEEN low AND high`.
    Between {
        /// The column.
        column: usize,
        /// The lower bound (included).
        low: Arg,
        /// The upper bound (included).
        high: Arg,
    },
    /// Every condition holds (true when empty).
    And(Vec<Expr>),
    /// One of the conditions holds (false when empty).
    Or(Vec<Expr>),
    /// The condition does not hold.
    Not(Box<Expr>),
}

impl Expr {
    /// `column = ?`, bound by the caller.
    pub fn eq_param(column: usize) -> Expr {
        Expr::Compare {
            column,
            op: Op::Eq,
            arg: Arg::Param,
        }
    }

    /// `column IN (?, ..)` with `n` placeholders bound by the caller.
    pub fn in_params(column: usize, n: usize) -> Expr {
        Expr::In {
            column,
            args: vec![Arg::Param; n],
        }
    }

    /// Calls `f` on every operand, in the order they are bound.
    pub fn visit_args(&mut self, f: &mut dyn FnMut(&mut Arg)) {
        match self {
            Expr::Compare { arg, .. } => f(arg),
            Expr::In { args, .. } => args.iter_mut().for_each(f),
            Expr::IsNull { .. } => {}
            Expr::Between { low, high, .. } => {
                f(low);
                f(high);
            }
            Expr::And(all) | Expr::Or(all) => all.iter_mut().for_each(|e| e.visit_args(f)),
            Expr::Not(e) => e.visit_args(f),
        }
    }

    fn render(&self, r: &mut Renderer<'_>) {
        match self {
            Expr::Compare { column, op, arg } => {
                r.column(*column);
                r.out.push_str(op.sql());
                r.arg(arg);
                match op {
                    Op::Like => {
                        if let Some(escape) = r.d.like_escape() {
                            r.out.push_str(escape);
                        }
                    }
                    Op::LikeEscaped => r.out.push_str(" ESCAPE '\\'"),
                    _ => {}
                }
            }
            Expr::In { args, .. } if args.is_empty() => r.out.push_str("1 = 0"),
            Expr::In { column, args } => {
                r.column(*column);
                r.out.push_str(" IN (");
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        r.out.push_str(", ");
                    }
                    r.arg(a);
                }
                r.out.push(')');
            }
            Expr::IsNull { column } => {
                r.column(*column);
                r.out.push_str(" IS NULL");
            }
            Expr::Between { column, low, high } => {
                r.column(*column);
                r.out.push_str(" BETWEEN ");
                r.arg(low);
                r.out.push_str(" AND ");
                r.arg(high);
            }
            Expr::And(all) => r.all(all, " AND ", "1 = 1"),
            Expr::Or(all) => r.all(all, " OR ", "1 = 0"),
            Expr::Not(e) => {
                r.out.push_str("NOT (");
                e.render(r);
                r.out.push(')');
            }
        }
    }
}

/// A statement's SQL text and the values of its parameters (without the [`Arg::Param`]s,
/// which the caller binds).
#[derive(Clone, Debug, PartialEq)]
pub struct Sql {
    /// The text.
    pub text: String,
    /// The values of its placeholders, in order.
    pub params: Vec<Value>,
}

impl Sql {
    /// The parameters, borrowed, as a connection takes them.
    pub fn param_refs(&self) -> Vec<crate::value::ValueRef<'_>> {
        self.params.iter().map(Value::as_ref).collect()
    }
}

/// Builds the text of one statement of one table.
struct Renderer<'a> {
    d: &'a dyn Dialect,
    meta: &'a ModelMeta,
    out: String,
    params: Vec<Value>,
    placeholders: usize,
}

impl<'a> Renderer<'a> {
    fn new(d: &'a dyn Dialect, meta: &'a ModelMeta) -> Self {
        Renderer {
            d,
            meta,
            out: String::with_capacity(64),
            params: Vec::new(),
            placeholders: 0,
        }
    }

    fn column(&mut self, c: usize) {
        self.d.quote(self.meta.columns[c].name, &mut self.out);
    }

    fn table(&mut self) {
        self.d.quote(self.meta.table, &mut self.out);
    }

    fn placeholder(&mut self) {
        self.placeholders += 1;
        self.d.placeholder(self.placeholders, &mut self.out);
    }

    fn arg(&mut self, a: &Arg) {
        self.placeholder();
        if !matches!(a, Arg::Param) {
            self.params.push(a.clone().into_value());
        }
    }

    fn value(&mut self, v: Value) {
        self.arg(&Arg::Value(v));
    }

    fn all(&mut self, all: &[Expr], sep: &str, empty: &str) {
        if all.is_empty() {
            self.out.push_str(empty);
            return;
        }
        for (i, e) in all.iter().enumerate() {
            if i > 0 {
                self.out.push_str(sep);
            }
            self.out.push('(');
            e.render(self);
            self.out.push(')');
        }
    }

    fn columns(&mut self, columns: impl IntoIterator<Item = usize>) {
        for (i, c) in columns.into_iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.column(c);
        }
    }

    fn filter(&mut self, filter: Option<&Expr>) {
        if let Some(e) = filter {
            self.out.push_str(" WHERE ");
            e.render(self);
        }
    }

    fn finish(self) -> Sql {
        Sql {
            text: self.out,
            params: self.params,
        }
    }
}

/// What a [`Select`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Columns {
    /// Every column, in the model's order (rows that become objects).
    All,
    /// These columns, in this order.
    Only(Vec<usize>),
    /// `count(*)` of the rows.
    Count,
    /// `1` for the first row, if there is one.
    Exists,
}

/// A key of `ORDER BY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// The column.
    pub column: usize,
    /// `DESC` rather than `ASC`.
    pub descending: bool,
}

/// `SELECT .. FROM t [WHERE ..] [ORDER BY ..] [LIMIT ..] [OFFSET ..] [FOR UPDATE]`.
#[derive(Clone, Debug)]
pub struct Select {
    /// The table.
    pub meta: &'static ModelMeta,
    /// What it reads.
    pub columns: Columns,
    /// Which rows.
    pub filter: Option<Expr>,
    /// In what order.
    pub order_by: Vec<Order>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// After skipping this many.
    pub offset: Option<u64>,
    /// Locks the rows until the transaction ends, where the database has row locks.
    pub for_update: bool,
}

impl Select {
    /// Every column of every row, in no particular order.
    pub fn new(meta: &'static ModelMeta) -> Select {
        Select {
            meta,
            columns: Columns::All,
            filter: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
            for_update: false,
        }
    }

    /// Keeps the rows for which `filter` holds.
    pub fn filter(mut self, filter: Expr) -> Select {
        self.filter = Some(filter);
        self
    }

    /// The rows whose `column` equals a value the caller binds, in key order.
    pub fn by_column(meta: &'static ModelMeta, column: usize) -> Select {
        Select::new(meta).filter(Expr::eq_param(column)).by_key()
    }

    /// Orders the rows by key.
    pub fn by_key(mut self) -> Select {
        self.order_by = vec![Order {
            column: self.meta.key,
            descending: false,
        }];
        self
    }

    /// The SQL text and its parameters. A count of the rows a limit, an offset or a row lock
    /// applies to counts them in a subquery; a count or an existence check has no order.
    pub fn render(&self, d: &dyn Dialect) -> Sql {
        let mut r = Renderer::new(d, self.meta);
        let wrap_count = self.columns == Columns::Count
            && (self.limit.is_some() || self.offset.is_some() || self.for_update);
        if wrap_count {
            r.out.push_str("SELECT count(*) FROM (SELECT 1 FROM ");
        } else {
            r.out.push_str("SELECT ");
            match &self.columns {
                Columns::All => r.columns(0..self.meta.columns.len()),
                Columns::Only(cs) => r.columns(cs.iter().copied()),
                Columns::Count => r.out.push_str("count(*)"),
                Columns::Exists => r.out.push('1'),
            }
            r.out.push_str(" FROM ");
        }
        r.table();
        r.filter(self.filter.as_ref());
        self.order_and_limit(&mut r, wrap_count);
        if self.for_update {
            if let Some(lock) = d.row_lock() {
                r.out.push(' ');
                r.out.push_str(lock);
            }
        }
        if wrap_count {
            r.out.push_str(") AS q");
        }
        r.finish()
    }

    fn order_and_limit(&self, r: &mut Renderer<'_>, wrapped: bool) {
        let ordered = match self.columns {
            Columns::All | Columns::Only(_) => true,
            // Which rows a limit or offset keeps depends on the order.
            Columns::Count => wrapped && (self.limit.is_some() || self.offset.is_some()),
            Columns::Exists => self.offset.is_some(),
        };
        for (i, o) in self.order_by.iter().enumerate().filter(|_| ordered) {
            r.out.push_str(if i == 0 { " ORDER BY " } else { ", " });
            r.column(o.column);
            if o.descending {
                r.out.push_str(" DESC");
            }
            if self.meta.columns[o.column].nullable {
                if let Some(nulls) = r.d.nulls_order(o.descending) {
                    r.out.push_str(nulls);
                }
            }
        }
        let limit = match self.columns {
            Columns::Exists => Some(self.limit.map_or(1, |l| l.min(1))),
            _ => self.limit,
        };
        let as_param = |n: u64| Value::I64(i64::try_from(n).unwrap_or(i64::MAX));
        match limit {
            Some(n) => {
                r.out.push_str(" LIMIT ");
                r.value(as_param(n));
            }
            None if self.offset.is_some() => {
                if let Some(all) = r.d.limit_all() {
                    r.out.push(' ');
                    r.out.push_str(all);
                }
            }
            None => {}
        }
        if let Some(n) = self.offset {
            r.out.push_str(" OFFSET ");
            r.value(as_param(n));
        }
    }
}

/// `INSERT INTO t (every column) VALUES (..), (..)`: `rows` rows of placeholders.
#[derive(Clone, Copy, Debug)]
pub struct Insert {
    /// The table.
    pub meta: &'static ModelMeta,
    /// How many rows.
    pub rows: usize,
}

impl Insert {
    /// The SQL text (every value a placeholder the caller binds).
    pub fn render(&self, d: &dyn Dialect) -> Sql {
        let n = self.meta.columns.len();
        let mut r = Renderer::new(d, self.meta);
        r.out.reserve(self.rows * (n * 4 + 4));
        r.out.push_str("INSERT INTO ");
        r.table();
        r.out.push_str(" (");
        r.columns(0..n);
        r.out.push_str(") VALUES ");
        for row in 0..self.rows {
            if row > 0 {
                r.out.push_str(", ");
            }
            r.out.push('(');
            for c in 0..n {
                if c > 0 {
                    r.out.push_str(", ");
                }
                r.placeholder();
            }
            r.out.push(')');
        }
        r.finish()
    }
}

/// `UPDATE t SET c1 = ?, .. WHERE key = ?`.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    /// The table.
    pub meta: &'static ModelMeta,
    /// The columns set, in the order they are bound (then the key).
    pub columns: &'a [usize],
}

impl Update<'_> {
    /// `key = ?`, and `AND version = ?` where the columns set include the `#[version]`
    /// (the version the row was read with).
    fn by_key(&self) -> Expr {
        match self.meta.version.filter(|v| self.columns.contains(v)) {
            Some(v) => Expr::And(vec![Expr::eq_param(self.meta.key), Expr::eq_param(v)]),
            None => Expr::eq_param(self.meta.key),
        }
    }

    /// The SQL text (every value a placeholder the caller binds).
    pub fn render(&self, d: &dyn Dialect) -> Sql {
        let mut r = Renderer::new(d, self.meta);
        r.out.push_str("UPDATE ");
        r.table();
        r.out.push_str(" SET ");
        for (i, &c) in self.columns.iter().enumerate() {
            if i > 0 {
                r.out.push_str(", ");
            }
            r.column(c);
            r.out.push_str(" = ");
            r.placeholder();
        }
        r.filter(Some(&self.by_key()));
        r.finish()
    }
}

/// `DELETE FROM t WHERE ..`.
#[derive(Clone, Debug)]
pub struct Delete {
    /// The table.
    pub meta: &'static ModelMeta,
    /// Which rows.
    pub filter: Expr,
}

impl Delete {
    /// The row of a key and a `#[version]` the caller binds (`key = ? AND version = ?`).
    pub fn versioned(meta: &'static ModelMeta, version: usize) -> Delete {
        Delete {
            meta,
            filter: Expr::And(vec![Expr::eq_param(meta.key), Expr::eq_param(version)]),
        }
    }

    /// The rows whose `column` is one of `n` values the caller binds.
    pub fn where_in(meta: &'static ModelMeta, column: usize, n: usize) -> Delete {
        Delete {
            meta,
            filter: Expr::in_params(column, n),
        }
    }

    /// The SQL text and its parameters.
    pub fn render(&self, d: &dyn Dialect) -> Sql {
        let mut r = Renderer::new(d, self.meta);
        r.out.push_str("DELETE FROM ");
        r.table();
        r.filter(Some(&self.filter));
        r.finish()
    }
}

/// `INSERT .. VALUES .. ON CONFLICT (on) DO UPDATE SET .. RETURNING ..`: `rows` rows of
/// every column of `meta`; a row that holds the same value of `on` as one of them takes its
/// other columns instead (but the key; a `#[version]` goes up by one), and every row written
/// comes back with every column.
pub fn upsert(d: &dyn Dialect, meta: &'static ModelMeta, on: usize, rows: usize) -> String {
    let mut out = Insert { meta, rows }.render(d).text;
    let column = |c: usize, out: &mut String| d.quote(meta.columns[c].name, out);
    out.push_str(" ON CONFLICT (");
    column(on, &mut out);
    out.push_str(") DO UPDATE SET ");
    let set: Vec<usize> = (0..meta.columns.len())
        .filter(|&c| c != meta.key && c != on)
        .collect();
    // Nothing else to set: the row is still "updated" to itself, so that it comes back.
    let set = if set.is_empty() { vec![on] } else { set };
    for (i, &c) in set.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        column(c, &mut out);
        out.push_str(" = ");
        if meta.version == Some(c) {
            d.quote(meta.table, &mut out);
            out.push('.');
            column(c, &mut out);
            out.push_str(" + 1");
        } else {
            out.push_str("excluded.");
            column(c, &mut out);
        }
    }
    out.push_str(" RETURNING ");
    for c in 0..meta.columns.len() {
        if c > 0 {
            out.push_str(", ");
        }
        column(c, &mut out);
    }
    out
}

/// How many placeholders an `IN` list of `n` keys gets (the last key repeated): a power of
/// two up to 1,024, then a multiple of 1,024, so that a model has a few dozen statement
/// shapes and fewer than 1,024 keys are repeated past that.
pub fn in_list_len(n: usize) -> usize {
    if n <= 1024 {
        n.next_power_of_two()
    } else {
        n.div_ceil(1024) * 1024
    }
}

/// Keys as the parameters of an `IN` list of [`in_list_len`] placeholders (the last key
/// repeated), so that a model has a few statement shapes, not one per count. `keys` is not
/// empty.
pub fn padded_keys(keys: &[i64]) -> Vec<crate::value::ValueRef<'static>> {
    let last = *keys.last().expect("an IN list is never empty");
    keys.iter()
        .copied()
        .chain(std::iter::repeat(last))
        .take(in_list_len(keys.len()))
        .map(crate::value::ValueRef::I64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_have_few_shapes() {
        assert_eq!(in_list_len(1), 1);
        assert_eq!(in_list_len(3), 4);
        assert_eq!(in_list_len(1000), 1024);
        assert_eq!(in_list_len(1025), 2048);
        assert_eq!(in_list_len(10_000), 10_240);
        assert_eq!(in_list_len(16384), 16384);
        let keys = padded_keys(&[7, 8, 9]);
        assert_eq!(keys.len(), 4);
        assert_eq!(keys[3], crate::value::ValueRef::I64(9));
    }
}
