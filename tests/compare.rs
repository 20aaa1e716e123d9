//! Comparing a result with the oracle's (single-node DataFusion) as a user
//! would see it.
//!
//! The rules:
//! - Columns: same count, same names (unless [`Expected::ignoring_names`])
//!   and the same Arrow data types. A result of no batches at all carries no
//!   schema: then only its row count (zero) is compared.
//! - Row order: a result is compared in order when the oracle's optimized
//!   logical plan ends in a sort (its top node, under projections, limits and
//!   aliases, is a `Sort`). The leading sort keys that are output columns
//!   cut the rows into groups of equal keys; groups are compared in order,
//!   the rows inside a group (ties, which any order may give) as a
//!   multiset. If not even the first sort key is an output column (`ORDER
//!   BY` a hidden expression), ties cannot be seen: every row is compared
//!   in order. When a LIMIT cut the sorted rows (the oracle returned as
//!   many rows as the limit), which of the tied rows of the last group got
//!   in is arbitrary: that group is compared on its key columns only
//!   (likewise the first group under an OFFSET). Any other result is
//!   compared as a multiset (both sides sorted canonically, then zipped).
//! - Values: exact for every type (decimals with their scale, integers,
//!   strings, dates, timestamps, booleans, lists...), NULL distinct from
//!   every value (in particular from `''`), except that floating-point
//!   columns (Float16/32/64) are equal within [`FLOAT_RELATIVE_TOLERANCE`].
//!
//! [`compare`] names the first mismatch (row, column, both values);
//! [`assert_result`] panics with it.

use std::cmp::Ordering;
use std::fmt;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{Result, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, FetchType, LogicalPlan, SkipType};

/// Largest relative difference |a - b| / max(|a|, |b|) at which two
/// floating-point values (Float16/32/64 columns only) are equal: float sums
/// and averages depend on the order rows are added in, which partitioning
/// changes, in their last bits (f64 has ~2.2e-16 relative precision, and
/// every addition may lose that). No absolute floor: 0.0 equals only 0.0
/// (and -0.0); NaN equals NaN.
pub const FLOAT_RELATIVE_TOLERANCE: f64 = 1e-9;

/// How the oracle's rows are ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// No order: compared as a multiset.
    Any,
    /// The plan ends in a sort.
    Sorted {
        /// Output columns (indexes) that are the leading sort keys: the
        /// keys up to the first one that is not an output column. Empty:
        /// each row is a group of its own.
        keys: Vec<usize>,
        /// An OFFSET skipped sorted rows: the first group may be any of
        /// its tied rows.
        cut_first: bool,
        /// A LIMIT may have dropped sorted rows: the last group may be any
        /// of its tied rows.
        cut_last: bool,
    },
}

/// The oracle's answer: its rows and how they are ordered.
#[derive(Debug, Clone)]
pub struct Expected {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub order: Order,
    /// Whether column names must match (they do unless two different APIs
    /// build the "same" query).
    pub compare_names: bool,
}

impl Expected {
    /// Runs `df` on DataFusion; the order comes from its optimized logical
    /// plan.
    pub async fn from_dataframe(df: DataFrame) -> Result<Self> {
        let plan = df.clone().into_optimized_plan()?;
        let logical = df.schema().inner().clone();
        let batches = df.collect().await?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let order = order_of(&plan, rows);
        // What a user of the result sees: the batches' schema.
        let schema = batches.first().map(|b| b.schema()).unwrap_or(logical);
        Ok(Expected {
            schema,
            batches,
            order,
            compare_names: true,
        })
    }

    /// The same, column names not compared.
    pub fn ignoring_names(mut self) -> Self {
        self.compare_names = false;
        self
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// The order of `plan`'s output of `rows` rows: sorted if its top node,
/// under projections, limits and aliases, is a sort.
pub fn order_of(plan: &LogicalPlan, rows: usize) -> Order {
    // The nodes above the sort, top first.
    let mut above = vec![];
    let mut node = plan;
    let (mut cut_first, mut cut_last) = (false, false);
    // Rows skipped by OFFSETs above the sort.
    let mut skipped = 0;
    let sort = loop {
        match node {
            LogicalPlan::Projection(p) => {
                above.push(node);
                node = &p.input;
            }
            LogicalPlan::SubqueryAlias(a) => {
                above.push(node);
                node = &a.input;
            }
            LogicalPlan::Limit(l) => {
                match l.get_skip_type() {
                    Ok(SkipType::Literal(0)) => {}
                    Ok(SkipType::Literal(n)) => {
                        cut_first = true;
                        skipped += n;
                    }
                    _ => cut_first = true,
                }
                // A limit the output did not reach cut nothing.
                cut_last |= match l.get_fetch_type() {
                    Ok(FetchType::Literal(None)) => false,
                    Ok(FetchType::Literal(Some(n))) => rows >= n,
                    _ => true,
                };
                above.push(node);
                node = &l.input;
            }
            LogicalPlan::Sort(s) => break s,
            _ => return Order::Any,
        }
    };
    cut_last |= sort.fetch.is_some_and(|n| rows + skipped >= n);
    let mut keys = vec![];
    for sort_expr in &sort.expr {
        let Expr::Column(c) = &sort_expr.expr else {
            break;
        };
        let Ok(mut index) = sort.input.schema().index_of_column(c) else {
            break;
        };
        // Follow the column up to the output.
        let mut visible = true;
        for up in above.iter().rev() {
            if let LogicalPlan::Projection(p) = up {
                let position = p.expr.iter().position(|e| match e.clone().unalias() {
                    Expr::Column(c) => p.input.schema().index_of_column(&c).ok() == Some(index),
                    _ => false,
                });
                match position {
                    Some(j) => index = j,
                    None => {
                        visible = false;
                        break;
                    }
                }
            }
        }
        if !visible {
            break;
        }
        keys.push(index);
    }
    Order::Sorted {
        keys,
        cut_first,
        cut_last,
    }
}

/// The first difference between a result and the oracle's.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Row index in the result (in sorted, canonical order for rows
    /// compared as a multiset), if the mismatch is in a row.
    pub row: Option<usize>,
    /// Column name, if the mismatch is in a column.
    pub column: Option<String>,
    pub expected: String,
    pub got: String,
    /// What differs, and where rows compared as a multiset were.
    pub what: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": expected {}, got {}", self.expected, self.got)
    }
}

/// Panics with the first mismatch of `got` against `expected`, prefixed
/// by `context`.
pub fn assert_result(got: &[RecordBatch], expected: &Expected, context: impl fmt::Display) {
    if let Err(m) = compare(got, expected) {
        panic!("{context}: {m}");
    }
}

/// One value, as compared.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Float(f64),
    Exact(ScalarValue),
}

impl Cell {
    fn matches(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Float(a), Cell::Float(b)) => floats_match(*a, *b),
            (Cell::Exact(a), Cell::Exact(b)) => a == b,
            _ => false,
        }
    }

    /// A total order for canonical sorting (not SQL's order).
    fn canonical_cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Null, Cell::Null) => Ordering::Equal,
            (Cell::Null, _) => Ordering::Less,
            (_, Cell::Null) => Ordering::Greater,
            (Cell::Float(a), Cell::Float(b)) => a.total_cmp(b),
            (Cell::Exact(a), Cell::Exact(b)) => a
                .partial_cmp(b)
                .unwrap_or_else(|| a.to_string().cmp(&b.to_string())),
            (Cell::Float(_), Cell::Exact(_)) => Ordering::Less,
            (Cell::Exact(_), Cell::Float(_)) => Ordering::Greater,
        }
    }
}

/// Whether two floats are equal within [`FLOAT_RELATIVE_TOLERANCE`].
pub fn floats_match(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= FLOAT_RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// All rows of `batches`, each with the arrays and index it came from (for
/// messages).
struct Rows<'a> {
    cells: Vec<Vec<Cell>>,
    sources: Vec<(&'a [ArrayRef], usize)>,
}

fn rows(batches: &[RecordBatch]) -> std::result::Result<Rows<'_>, String> {
    let mut out = Rows {
        cells: vec![],
        sources: vec![],
    };
    for batch in batches {
        for r in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(batch.num_columns());
            for column in batch.columns() {
                row.push(cell(column.as_ref(), r)?);
            }
            out.cells.push(row);
            out.sources.push((batch.columns(), r));
        }
    }
    Ok(out)
}

fn cell(array: &dyn Array, row: usize) -> std::result::Result<Cell, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    Ok(match array.data_type() {
        DataType::Float16 => Cell::Float(array.as_primitive::<Float16Type>().value(row).to_f64()),
        DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
        _ => Cell::Exact(ScalarValue::try_from_array(array, row).map_err(|e| e.to_string())?),
    })
}

/// A value as a user reads it: NULL as `NULL`, strings quoted, the rest as
/// Arrow prints it.
fn render(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let options = FormatOptions::default().with_null("NULL");
    let text = match ArrayFormatter::try_new(array, &options) {
        Ok(f) => f.value(row).to_string(),
        Err(e) => format!("<{e}>"),
    };
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => format!("{text:?}"),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            // Every digit, to show a difference in the last bits.
            match cell(array, row) {
                Ok(Cell::Float(v)) => format!("{v:e}"),
                _ => text,
            }
        }
        _ => text,
    }
}

fn render_row(source: (&[ArrayRef], usize)) -> String {
    let (columns, r) = source;
    let cells: Vec<_> = columns.iter().map(|c| render(c.as_ref(), r)).collect();
    format!("[{}]", cells.join(", "))
}

/// Compares `got` with `expected` by the rules of this module; the error
/// names the first mismatch.
pub fn compare(got: &[RecordBatch], expected: &Expected) -> std::result::Result<(), Mismatch> {
    let mismatch = |what: &str, expected: String, got: String| Mismatch {
        row: None,
        column: None,
        expected,
        got,
        what: what.to_string(),
    };
    if let Some(first) = got.first() {
        let (g, e) = (first.schema(), &expected.schema);
        if g.fields().len() != e.fields().len() {
            let names = |s: &arrow::datatypes::Schema| {
                s.fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
            };
            return Err(mismatch(
                "column count differs",
                format!("{} {:?}", e.fields().len(), names(e)),
                format!("{} {:?}", g.fields().len(), names(&g)),
            ));
        }
        for (gf, ef) in g.fields().iter().zip(e.fields()) {
            if expected.compare_names && gf.name() != ef.name() {
                return Err(Mismatch {
                    column: Some(ef.name().clone()),
                    ..mismatch("column name differs", ef.name().clone(), gf.name().clone())
                });
            }
            if gf.data_type() != ef.data_type() {
                return Err(Mismatch {
                    column: Some(ef.name().clone()),
                    ..mismatch(
                        "column type differs",
                        ef.data_type().to_string(),
                        gf.data_type().to_string(),
                    )
                });
            }
        }
    }
    let bad = |e: String| mismatch("unreadable value", String::new(), e);
    let got_rows = rows(got).map_err(bad)?;
    let expected_rows = rows(&expected.batches).map_err(bad)?;
    let (g, e) = (got_rows.cells.len(), expected_rows.cells.len());
    if g != e {
        // Name the first row that differs, as a hint.
        let first = (0..g.min(e))
            .find(|&i| !row_matches(&got_rows.cells[i], &expected_rows.cells[i]))
            .unwrap_or(g.min(e));
        let show = |rows: &Rows, i: usize| {
            rows.sources
                .get(i)
                .map(|s| render_row(*s))
                .unwrap_or_else(|| "no row".into())
        };
        return Err(mismatch(
            &format!(
                "row count differs ({e} expected, {g} got; the first difference in plain order is at row {first})"
            ),
            show(&expected_rows, first),
            show(&got_rows, first),
        ));
    }
    let names: Vec<String> = expected
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let ctx = Ctx {
        got: &got_rows,
        expected: &expected_rows,
        names: &names,
    };
    match &expected.order {
        Order::Any => ctx.multiset(0..e, "rows compared as a multiset (sorted canonically)"),
        Order::Sorted {
            keys,
            cut_first,
            cut_last,
        } => {
            // Groups of equal sort keys, in the oracle's order.
            let mut start = 0;
            while start < e {
                let mut end = start + 1;
                while end < e
                    && !keys.is_empty()
                    && keys.iter().all(|&k| {
                        expected_rows.cells[start][k].canonical_cmp(&expected_rows.cells[end][k])
                            == Ordering::Equal
                    })
                {
                    end += 1;
                }
                let cut = (*cut_first && start == 0) || (*cut_last && end == e);
                if cut && !keys.is_empty() {
                    // Any of the tied rows may have made it: the keys only.
                    ctx.keys(start..end, keys)?;
                } else {
                    let what = if end - start == 1 {
                        "rows compared in order".to_string()
                    } else {
                        format!(
                            "rows compared in order, the {} rows {start}..{end} of equal sort keys as a multiset",
                            end - start
                        )
                    };
                    ctx.multiset(start..end, &what)?;
                }
                start = end;
            }
            Ok(())
        }
    }
}

fn row_matches(a: &[Cell], b: &[Cell]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.matches(y))
}

struct Ctx<'a> {
    got: &'a Rows<'a>,
    expected: &'a Rows<'a>,
    names: &'a [String],
}

impl Ctx<'_> {
    /// Rows `range` of both sides as multisets: each side sorted
    /// canonically (exact columns first, then floats, so that float noise
    /// does not reorder rows), then compared row by row.
    fn multiset(&self, range: std::ops::Range<usize>, what: &str) -> Result<(), Mismatch> {
        let width = self.names.len();
        let floats: Vec<bool> = (0..width)
            .map(|c| {
                range
                    .clone()
                    .any(|r| matches!(self.expected.cells[r].get(c), Some(Cell::Float(_))))
            })
            .collect();
        let column_order: Vec<usize> = (0..width)
            .filter(|&c| !floats[c])
            .chain((0..width).filter(|&c| floats[c]))
            .collect();
        let sorted = |rows: &Rows| {
            let mut indexes: Vec<usize> = range.clone().collect();
            indexes.sort_by(|&a, &b| {
                column_order
                    .iter()
                    .map(|&c| rows.cells[a][c].canonical_cmp(&rows.cells[b][c]))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            indexes
        };
        let (g, e) = (sorted(self.got), sorted(self.expected));
        for (position, (&gi, &ei)) in g.iter().zip(&e).enumerate() {
            for c in 0..width {
                if !self.got.cells[gi][c].matches(&self.expected.cells[ei][c]) {
                    return Err(self.cell_mismatch(range.start + position, gi, ei, c, what));
                }
            }
        }
        Ok(())
    }

    /// Rows `range`: only the columns `keys`, row by row.
    fn keys(&self, range: std::ops::Range<usize>, keys: &[usize]) -> Result<(), Mismatch> {
        for r in range.clone() {
            for &c in keys {
                if !self.got.cells[r][c].matches(&self.expected.cells[r][c]) {
                    let what = format!(
                        "sort keys compared in order (rows {}..{} are tied rows a LIMIT or OFFSET cut)",
                        range.start, range.end
                    );
                    return Err(self.cell_mismatch(r, r, r, c, &what));
                }
            }
        }
        Ok(())
    }

    fn cell_mismatch(&self, row: usize, gi: usize, ei: usize, c: usize, what: &str) -> Mismatch {
        let (gc, gr) = self.got.sources[gi];
        let (ec, er) = self.expected.sources[ei];
        Mismatch {
            row: Some(row),
            column: Some(format!("{} ({c})", self.names[c])),
            expected: format!(
                "{} in row {}",
                render(ec[c].as_ref(), er),
                render_row(self.expected.sources[ei])
            ),
            got: format!(
                "{} in row {}",
                render(gc[c].as_ref(), gr),
                render_row(self.got.sources[gi])
            ),
            what: what.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The comparator fails where a user would see a difference, and only
    //! there. No cluster: both sides come from DataFusion.

    use datafusion::prelude::SessionContext;

    use super::*;

    async fn expected(sql: &str) -> Expected {
        Expected::from_dataframe(SessionContext::new().sql(sql).await.unwrap())
            .await
            .unwrap()
    }

    async fn batches(sql: &str) -> Vec<RecordBatch> {
        let ctx = SessionContext::new();
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    const ROWS: &str = "(VALUES (1, 'a'), (2, 'b'), (3, 'c'), (3, 'd')) AS t(k, v)";

    #[tokio::test]
    async fn an_order_by_query_in_the_wrong_order_fails() {
        let e = expected(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC")).await;
        assert_eq!(
            e.order,
            Order::Sorted {
                keys: vec![0],
                cut_first: false,
                cut_last: false
            }
        );
        let right = batches(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC, v")).await;
        compare(&right, &e).unwrap();
        let wrong = batches(&format!("SELECT k, v FROM {ROWS} ORDER BY k")).await;
        let m = compare(&wrong, &e).unwrap_err();
        assert_eq!(m.row, Some(0), "{m}");
        assert_eq!(m.column.as_deref(), Some("k (0)"), "{m}");
        assert!(m.expected.starts_with("3 in row"), "{m}");
        assert!(m.got.starts_with("1 in row"), "{m}");
        // The same rows without ORDER BY: any order is right.
        let any = expected(&format!("SELECT k, v FROM {ROWS}")).await;
        assert_eq!(any.order, Order::Any);
        compare(&wrong, &any).unwrap();
    }

    #[tokio::test]
    async fn tied_rows_may_come_in_any_order_but_groups_may_not() {
        let e = expected(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC, v")).await;
        // Sorted by k only: the tie (3, 'c'), (3, 'd') swapped.
        let e_by_k = Expected {
            order: Order::Sorted {
                keys: vec![0],
                cut_first: false,
                cut_last: false,
            },
            ..e.clone()
        };
        let swapped = batches(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC, v DESC")).await;
        compare(&swapped, &e_by_k).unwrap();
        // Sorted by k and v: no tie, so the swap is wrong.
        let m = compare(&swapped, &e).unwrap_err();
        assert_eq!(
            (m.row, m.column.as_deref()),
            (Some(0), Some("v (1)")),
            "{m}"
        );
        // A key hidden by the projection ends the keys: k decides groups.
        let hidden = expected(&format!("SELECT k FROM {ROWS} ORDER BY k DESC, v")).await;
        assert!(matches!(&hidden.order, Order::Sorted { keys, .. } if keys == &[0]));
    }

    #[tokio::test]
    async fn a_limit_may_cut_ties_anywhere() {
        let e = expected(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC LIMIT 1")).await;
        assert!(
            matches!(e.order, Order::Sorted { cut_last: true, .. }),
            "{:?}",
            e.order
        );
        for v in ["c", "d"] {
            let got = batches(&format!("SELECT 3 AS k, '{v}' AS v")).await;
            compare(&got, &e).unwrap();
        }
        let got = batches("SELECT 2 AS k, 'c' AS v").await;
        compare(&got, &e).unwrap_err();
        // A limit the rows did not reach cut no tie: compared in full.
        let e = expected(&format!("SELECT k, v FROM {ROWS} ORDER BY k DESC LIMIT 5")).await;
        assert!(
            matches!(
                e.order,
                Order::Sorted {
                    cut_last: false,
                    ..
                }
            ),
            "{:?}",
            e.order
        );
        let swapped = batches(&format!(
            "SELECT k, CASE WHEN v = 'c' THEN 'x' ELSE v END AS v FROM {ROWS} ORDER BY k DESC"
        ))
        .await;
        let m = compare(&swapped, &e).unwrap_err();
        assert_eq!(m.column.as_deref(), Some("v (1)"), "{m}");
    }

    #[tokio::test]
    async fn without_a_visible_sort_key_every_row_is_in_order() {
        let e = expected(&format!("SELECT v FROM {ROWS} ORDER BY k DESC, v")).await;
        assert!(
            matches!(&e.order, Order::Sorted { keys, .. } if keys.is_empty()),
            "{:?}",
            e.order
        );
        compare(
            &batches("SELECT * FROM (VALUES ('c'), ('d'), ('b'), ('a')) AS t(v)").await,
            &e,
        )
        .unwrap();
        let m = compare(
            &batches("SELECT * FROM (VALUES ('d'), ('c'), ('b'), ('a')) AS t(v)").await,
            &e,
        )
        .unwrap_err();
        assert_eq!(m.row, Some(0), "{m}");
    }

    #[tokio::test]
    async fn a_decimal_one_cent_off_fails() {
        let e = expected("SELECT CAST(100.00 AS DECIMAL(15, 2)) AS d").await;
        let got = batches("SELECT CAST(100.01 AS DECIMAL(15, 2)) AS d").await;
        let m = compare(&got, &e).unwrap_err();
        assert_eq!(
            (m.row, m.column.as_deref()),
            (Some(0), Some("d (0)")),
            "{m}"
        );
        assert!(m.expected.starts_with("100.00 in"), "{m}");
        assert!(m.got.starts_with("100.01 in"), "{m}");
        // Another scale is another type.
        let got = batches("SELECT CAST(100.00 AS DECIMAL(15, 3)) AS d").await;
        let m = compare(&got, &e).unwrap_err();
        assert!(m.what.contains("type"), "{m}");
    }

    #[tokio::test]
    async fn null_is_not_the_empty_string() {
        // Both strings of one type (VARCHAR is Utf8View).
        let e = expected("SELECT CAST('' AS VARCHAR) AS s").await;
        let got = batches("SELECT CAST(NULL AS VARCHAR) AS s").await;
        let m = compare(&got, &e).unwrap_err();
        assert_eq!(m.row, Some(0), "{m}");
        assert!(m.expected.starts_with("\"\" in"), "{m}");
        assert!(m.got.starts_with("NULL in"), "{m}");
        let m = compare(
            &batches("SELECT CAST('' AS VARCHAR) AS s").await,
            &expected("SELECT CAST(NULL AS VARCHAR) AS s").await,
        )
        .unwrap_err();
        assert_eq!(m.row, Some(0), "{m}");
    }

    #[tokio::test]
    async fn floats_differ_only_within_the_tolerance() {
        let e = expected("SELECT CAST(1234.5 AS DOUBLE) AS x").await;
        let off = batches("SELECT CAST(1234.5 AS DOUBLE) * (1 + 1e-8) AS x").await;
        let m = compare(&off, &e).unwrap_err();
        assert_eq!(m.column.as_deref(), Some("x (0)"), "{m}");
        let noise = batches("SELECT CAST(1234.5 AS DOUBLE) * (1 + 1e-12) AS x").await;
        compare(&noise, &e).unwrap();
        assert!(!floats_match(0.0, 1e-300));
        assert!(floats_match(f64::NAN, f64::NAN));
        assert!(!floats_match(f64::INFINITY, f64::MAX));
        // Integers are exact.
        let m = compare(
            &batches("SELECT CAST(1000000001 AS BIGINT) AS n").await,
            &expected("SELECT CAST(1000000000 AS BIGINT) AS n").await,
        )
        .unwrap_err();
        assert_eq!(m.row, Some(0), "{m}");
    }

    #[tokio::test]
    async fn columns_and_row_counts_are_compared() {
        let e = expected(&format!("SELECT k, v FROM {ROWS}")).await;
        let m = compare(
            &batches(&format!("SELECT k AS key, v FROM {ROWS}")).await,
            &e,
        )
        .unwrap_err();
        assert!(m.what.contains("name"), "{m}");
        compare(
            &batches(&format!("SELECT k AS key, v FROM {ROWS}")).await,
            &e.clone().ignoring_names(),
        )
        .unwrap();
        let m = compare(&batches(&format!("SELECT k FROM {ROWS}")).await, &e).unwrap_err();
        assert!(m.what.contains("column count"), "{m}");
        let m = compare(
            &batches(&format!("SELECT k, v FROM {ROWS} WHERE k > 1")).await,
            &e,
        )
        .unwrap_err();
        assert!(m.what.contains("row count"), "{m}");
        let m = compare(
            &batches(&format!("SELECT CAST(k AS INT) AS k, v FROM {ROWS}")).await,
            &e,
        )
        .unwrap_err();
        assert!(m.what.contains("type"), "{m}");
        // A multiset: a duplicated row is not another row.
        let m = compare(
            &batches("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (3, 'c')) AS t(k, v)")
                .await,
            &e,
        )
        .unwrap_err();
        assert_eq!(m.row, Some(3), "{m}");
    }
}
