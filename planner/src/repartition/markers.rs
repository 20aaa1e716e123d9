//! Marker functions that carry `SORT BY` and the repartition hints through
//! DataFusion's SQL planner and optimizer to [`super::plan_repartitions`].
//!
//! * `__minispark_repartition('<what asked>', n)` heads a `DISTRIBUTE BY`
//!   list: the repartition was asked for by a hint or `CLUSTER BY`, into
//!   `n` partitions (`-1`: `minispark.shuffle.partitions`).
//!   A third argument, `'AF,DL'`, gives a range repartition's key
//!   directions: `A`/`D` (ascending, descending) and `F`/`L` (nulls first,
//!   last) per key; without it every key is `ASC NULLS FIRST`, Spark's
//!   default for `REPARTITION_BY_RANGE`.
//! * `__minispark_sort_by()` heads an `ORDER BY` list: the sort is a `SORT BY`,
//!   within each partition.
//!
//! Both are volatile (never folded or moved) and fail if ever evaluated:
//! they are gone before the physical plan is made.

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub const REPARTITION_MARKER: &str = "__minispark_repartition";
pub const SORT_BY_MARKER: &str = "__minispark_sort_by";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Marker {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Marker {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!(
            "{} marks a repartition for the planner and is never evaluated",
            self.name
        )
    }
}

/// The two marker functions, registered in every session (a DataFrame's
/// plan names them when it travels to a remote driver).
pub fn marker_udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Marker {
            name: REPARTITION_MARKER,
            signature: Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(2),
                    datafusion::logical_expr::TypeSignature::Any(3),
                ],
                Volatility::Volatile,
            ),
        }),
        ScalarUDF::new_from_impl(Marker {
            name: SORT_BY_MARKER,
            signature: Signature::nullary(Volatility::Volatile),
        }),
    ]
}

/// `__minispark_sort_by()` as a logical expression.
pub fn sort_by_marker() -> Expr {
    let udf = marker_udfs().remove(1);
    udf.call(vec![])
}

/// `__minispark_repartition(origin, n)` as a logical expression.
pub fn repartition_marker_expr(origin: &str, n: Option<usize>) -> Expr {
    let udf = marker_udfs().remove(0);
    udf.call(vec![
        Expr::Literal(ScalarValue::Utf8(Some(origin.to_string())), None),
        Expr::Literal(
            ScalarValue::Int64(Some(n.map(|n| n as i64).unwrap_or(-1))),
            None,
        ),
    ])
}

/// `__minispark_repartition(origin, n, 'AF,DL')`: a range repartition
/// with each key's direction (see the module docs).
pub fn range_marker_expr(origin: &str, n: usize, options: &[(bool, bool)]) -> Expr {
    let udf = marker_udfs().remove(0);
    let directions: Vec<String> = options
        .iter()
        .map(|(asc, nulls_first)| {
            format!(
                "{}{}",
                if *asc { 'A' } else { 'D' },
                if *nulls_first { 'F' } else { 'L' }
            )
        })
        .collect();
    udf.call(vec![
        Expr::Literal(ScalarValue::Utf8(Some(origin.to_string())), None),
        Expr::Literal(ScalarValue::Int64(Some(n as i64)), None),
        Expr::Literal(ScalarValue::Utf8(Some(directions.join(","))), None),
    ])
}

/// The key directions a repartition marker carries: `(asc, nulls_first)`
/// per key, `None` when it carries none.
pub fn marker_directions(expr: &Expr) -> Result<Option<Vec<(bool, bool)>>> {
    let Expr::ScalarFunction(f) = expr else {
        return Ok(None);
    };
    if f.func.name() != REPARTITION_MARKER {
        return Ok(None);
    }
    let Some(arg) = f.args.get(2) else {
        return Ok(None);
    };
    let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = arg else {
        return plan_err!("{REPARTITION_MARKER} needs literal key directions");
    };
    text.split(',')
        .filter(|d| !d.is_empty())
        .map(|d| match d {
            "AF" => Ok((true, true)),
            "AL" => Ok((true, false)),
            "DF" => Ok((false, true)),
            "DL" => Ok((false, false)),
            other => plan_err!("{REPARTITION_MARKER}: unknown key direction '{other}'"),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

pub fn is_sort_by_marker(expr: &Expr) -> bool {
    matches!(expr, Expr::ScalarFunction(f) if f.func.name() == SORT_BY_MARKER)
}

/// What a repartition marker says: who asked, and the partition count if
/// one was given. `None` if `expr` is no marker.
pub fn repartition_marker(expr: &Expr) -> Result<Option<(String, Option<usize>)>> {
    let Expr::ScalarFunction(f) = expr else {
        return Ok(None);
    };
    if f.func.name() != REPARTITION_MARKER {
        return Ok(None);
    }
    let origin = match f.args.first() {
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) => s.clone(),
        _ => return plan_err!("{REPARTITION_MARKER} needs a literal origin"),
    };
    let n = match f.args.get(1).and_then(super::literal_count) {
        Some(n) if n > 0 => Some(n as usize),
        Some(_) => None,
        None => return plan_err!("{REPARTITION_MARKER} needs a literal partition count"),
    };
    Ok(Some((origin, n)))
}
