//! Marker functions that carry `SORT BY` and the repartition hints through
//! DataFusion's SQL planner and optimizer to [`super::plan_repartitions`].
//!
//! * `__minispark_repartition('<what asked>', n)` heads a `DISTRIBUTE BY`
//!   list: the repartition was asked for by a hint or `CLUSTER BY`, into
//!   `n` partitions (`-1`: `minispark.shuffle.partitions`).
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
            signature: Signature::any(2, Volatility::Volatile),
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
