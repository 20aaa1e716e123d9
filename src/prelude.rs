//! Everything a DataFrame program needs: `use minispark::prelude::*;`
//!
//! The session and DataFrame types, plus DataFusion's expression builders
//! (`col`, `lit`, scalar, aggregate, window and nested-type functions).

pub use crate::dataframe::{DataFrame, JoinStrategy};
pub use crate::save_mode::SaveMode;
pub use crate::session::{Master, Session, SessionBuilder};

pub use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
// `session.context().udf("student_t_cdf")`: minispark's own SQL functions.
pub use datafusion::execution::FunctionRegistry;
pub use datafusion::functions::expr_fn::*;
pub use datafusion::functions_aggregate::expr_fn::*;
pub use datafusion::functions_nested::expr_fn::*;
pub use datafusion::functions_window::expr_fn::*;
pub use datafusion::logical_expr::expr_fn::*;
// Both the aggregate and the window modules define these; the aggregates
// win here (window versions: `datafusion::functions_window::expr_fn`).
pub use datafusion::functions_aggregate::expr_fn::{first_value, last_value, nth_value};
pub use datafusion::logical_expr::{Expr, ExprFunctionExt, JoinType, SortExpr, lit};
pub use std::ops::{Add, Div, Mul, Neg, Not, Rem, Sub};
