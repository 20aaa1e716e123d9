//! DataFusion filters as Iceberg predicates, so that scan planning skips
//! what cannot match: whole partitions (from the partition values in the
//! manifests) and data files (from their column bounds and null counts).
//!
//! A filter is offered to the scan as *inexact*: DataFusion still applies
//! it to the rows read, so a predicate only has to never drop a file that
//! holds a matching row. What is converted: comparisons (`= <> < <= > >=`)
//! of a column with a literal, either way round; `IS [NOT] NULL`,
//! `[NOT] IN (literals)`, `BETWEEN`, `LIKE 'prefix%'`, and `AND`, `OR`,
//! `NOT` of those. Literals of booleans, integers, floats, strings, dates
//! and timestamps. Anything else (functions, casts, decimals, columns
//! compared with columns) is left to DataFusion alone.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Like, Operator};
use iceberg::expr::{Bind, Predicate, Reference};
use iceberg::spec::{Datum, Schema};

/// `expr` as an Iceberg predicate over `schema`, if it converts and binds
/// (names a column of the table, with a literal its type accepts).
pub fn to_predicate(expr: &Expr, schema: &Schema) -> Option<Predicate> {
    let predicate = convert(expr, false)?;
    predicate.bind(schema.clone().into(), true).ok()?;
    Some(predicate)
}

/// `expr` as a predicate that holds for every row `expr` holds for; when
/// `exact`, for those rows only (what a `NOT` needs of its operand).
fn convert(expr: &Expr, exact: bool) -> Option<Predicate> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => match (convert(left, exact), convert(right, exact)) {
                (Some(l), Some(r)) => Some(l.and(r)),
                // Skipping files by one side of an AND is still safe,
                // unless the AND is negated.
                (Some(one), None) | (None, Some(one)) if !exact => Some(one),
                _ => None,
            },
            Operator::Or => Some(convert(left, exact)?.or(convert(right, exact)?)),
            _ => comparison(left, *op, right),
        },
        Expr::Not(inner) => Some(!convert(inner, true)?),
        Expr::IsNull(inner) => Some(column(inner)?.is_null()),
        Expr::IsNotNull(inner) => Some(column(inner)?.is_not_null()),
        Expr::InList(list) => {
            let reference = column(&list.expr)?;
            let values = list.list.iter().map(literal).collect::<Option<Vec<_>>>()?;
            Some(if list.negated {
                reference.is_not_in(values)
            } else {
                reference.is_in(values)
            })
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let within = column(expr)?
                .greater_than_or_equal_to(literal(low)?)
                .and(column(expr)?.less_than_or_equal_to(literal(high)?));
            Some(if *negated { !within } else { within })
        }
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char: None,
            case_insensitive: false,
        }) => {
            let Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _) =
                pattern.as_ref()
            else {
                return None;
            };
            let prefix = p.strip_suffix('%')?;
            if prefix.contains(['%', '_', '\\']) {
                return None;
            }
            Some(column(expr)?.starts_with(Datum::string(prefix)))
        }
        _ => None,
    }
}

/// `left op right` where one side is a column and the other a literal.
fn comparison(left: &Expr, op: Operator, right: &Expr) -> Option<Predicate> {
    let (reference, value, op) = match (column(left), column(right)) {
        (Some(c), None) => (c, literal(right)?, op),
        (None, Some(c)) => (c, literal(left)?, op.swap()?),
        _ => return None,
    };
    Some(match op {
        Operator::Eq => reference.equal_to(value),
        Operator::NotEq => reference.not_equal_to(value),
        Operator::Lt => reference.less_than(value),
        Operator::LtEq => reference.less_than_or_equal_to(value),
        Operator::Gt => reference.greater_than(value),
        Operator::GtEq => reference.greater_than_or_equal_to(value),
        _ => return None,
    })
}

fn column(expr: &Expr) -> Option<Reference> {
    match expr {
        Expr::Column(c) => Some(Reference::new(c.name.clone())),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<Datum> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    Some(match value {
        ScalarValue::Boolean(Some(v)) => Datum::bool(*v),
        ScalarValue::Int8(Some(v)) => Datum::int(*v),
        ScalarValue::Int16(Some(v)) => Datum::int(*v),
        ScalarValue::Int32(Some(v)) => Datum::int(*v),
        ScalarValue::Int64(Some(v)) => Datum::long(*v),
        ScalarValue::Float32(Some(v)) => Datum::float(*v),
        ScalarValue::Float64(Some(v)) => Datum::double(*v),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => Datum::string(v),
        ScalarValue::Date32(Some(v)) => Datum::date(*v),
        ScalarValue::TimestampMicrosecond(Some(v), None) => Datum::timestamp_micros(*v),
        ScalarValue::TimestampMicrosecond(Some(v), Some(_)) => Datum::timestamptz_micros(*v),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};
    use iceberg::spec::{NestedField, PrimitiveType, Type};

    use super::*;

    fn schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "day", Type::Primitive(PrimitiveType::Date)).into(),
                NestedField::optional(3, "name", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .unwrap()
    }

    fn shown(e: Expr) -> Option<String> {
        to_predicate(&e, &schema()).map(|p| p.to_string())
    }

    #[test]
    fn comparisons_and_their_combinations_convert() {
        assert_eq!(shown(col("id").gt(lit(5i64))).unwrap(), "id > 5");
        // The literal on the left: the comparison is turned round.
        assert_eq!(shown(lit(5i64).gt(col("id"))).unwrap(), "id < 5");
        let both = shown(col("id").eq(lit(1i64)).or(col("name").is_null())).unwrap();
        assert!(
            both.contains("id = 1") && both.contains("name IS NULL"),
            "{both}"
        );
        let inlist = shown(col("name").in_list(vec![lit("a"), lit("b")], false)).unwrap();
        assert!(inlist.contains("IN"), "{inlist}");
        let between = shown(col("id").between(lit(1i64), lit(9i64))).unwrap();
        assert!(
            between.contains(">= 1") && between.contains("<= 9"),
            "{between}"
        );
        assert!(
            shown(col("name").like(lit("ab%")))
                .unwrap()
                .contains("STARTS WITH")
        );
    }

    #[test]
    fn what_cannot_skip_files_safely_is_left_to_datafusion() {
        // An OR with an unconvertible side could drop matching files.
        assert_eq!(
            shown(col("id").eq(lit(1i64)).or(col("id").eq(col("id")))),
            None
        );
        // An AND keeps its convertible side.
        assert_eq!(
            shown(col("id").eq(lit(1i64)).and(col("id").eq(col("id")))).unwrap(),
            "id = 1"
        );
        // A column the table does not have does not bind.
        assert_eq!(shown(col("nope").eq(lit(1i64))), None);
        // A pattern that is not a plain prefix.
        assert_eq!(shown(col("name").like(lit("a_b%"))), None);
        // NOT of an AND with an unconvertible side: NOT (id = 1) would
        // skip files holding rows the filter keeps.
        assert_eq!(
            shown(!(col("id").eq(lit(1i64)).and(col("id").eq(col("id"))))),
            None
        );
        assert_eq!(shown(!col("id").eq(lit(1i64))).unwrap(), "NOT (id = 1)");
    }
}
