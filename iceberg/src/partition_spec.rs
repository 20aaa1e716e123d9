//! A new table's partitioning, written as Spark SQL writes it:
//! `PARTITIONED BY (days(event_ts), country)` is
//! `&["days(event_ts)", "country"]`.
//!
//! Iceberg partitions by *transforms* of columns (hidden partitioning): a
//! table partitioned by `days(event_ts)` keeps one folder of files per day
//! without a `day` column, and a query's filter on `event_ts` prunes the
//! days it cannot match. Each partition field is named as Iceberg's own
//! writers name it: the column for `identity`, `<column>_<transform>`
//! otherwise (`event_ts_day`).
//!
//! Only the transforms minispark's writers compute are accepted
//! (`identity`, `years`, `months`, `days`, `hours`, singular or plural);
//! `bucket(n, c)` and `truncate(n, c)` need Iceberg's own hash and
//! truncation of every type and are refused by name.

use datafusion::common::{DataFusionError, Result, plan_err};
use iceberg::spec::{PartitionSpec, Schema, Transform, UnboundPartitionSpec};

/// One partition field to create: its source column and transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    pub column: String,
    pub transform: Transform,
}

impl PartitionField {
    /// The field's name in the spec (and in the data folders' paths).
    pub fn name(&self) -> String {
        match self.transform {
            Transform::Identity => self.column.clone(),
            other => format!("{}_{other}", self.column),
        }
    }

    /// The field as [`parse`] reads it: `days(event_ts)`, `country`.
    pub fn describe(&self) -> String {
        let column = &self.column;
        match self.transform {
            Transform::Identity => column.clone(),
            Transform::Year => format!("years({column})"),
            Transform::Month => format!("months({column})"),
            Transform::Day => format!("days({column})"),
            Transform::Hour => format!("hours({column})"),
            other => format!("{other}({column})"),
        }
    }
}

/// The field `text` names: `column`, or `transform(column)` with one of
/// the transforms of the module docs.
pub fn parse(text: &str) -> Result<PartitionField> {
    let text = text.trim();
    let Some((function, rest)) = text.split_once('(') else {
        return column_name(text, text).map(|column| PartitionField {
            column,
            transform: Transform::Identity,
        });
    };
    let Some(arguments) = rest.trim_end().strip_suffix(')') else {
        return plan_err!("Iceberg partition '{text}' is missing its closing ')'");
    };
    let transform = match function.trim().to_ascii_lowercase().as_str() {
        "identity" => Transform::Identity,
        "years" | "year" => Transform::Year,
        "months" | "month" => Transform::Month,
        "days" | "day" => Transform::Day,
        "hours" | "hour" => Transform::Hour,
        "bucket" | "truncate" => {
            return plan_err!(
                "Iceberg partition '{text}': minispark writes identity, years, months, days \
                 and hours partitions, not {}",
                function.trim()
            );
        }
        other => {
            return plan_err!(
                "Iceberg partition '{text}': unknown transform '{other}'; use a column, or \
                 identity, years, months, days or hours of one, e.g. 'days(event_ts)'"
            );
        }
    };
    Ok(PartitionField {
        column: column_name(arguments, text)?,
        transform,
    })
}

fn column_name(name: &str, text: &str) -> Result<String> {
    let name = name.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    if name.is_empty() || name.contains([',', '(', ')']) {
        return plan_err!(
            "Iceberg partition '{text}' is not a column or a transform of one, e.g. \
             'country' or 'days(event_ts)'"
        );
    }
    Ok(name.to_string())
}

/// The spec of `fields` over `schema` (a new table's, ids assigned),
/// checked: every column exists and its type takes the transform.
pub fn spec(schema: &Schema, fields: &[PartitionField]) -> Result<UnboundPartitionSpec> {
    let mut builder = PartitionSpec::builder(schema.clone());
    for field in fields {
        let Some(source) = schema.field_by_name(&field.column) else {
            let columns: Vec<&str> = schema
                .as_struct()
                .fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            return plan_err!(
                "cannot partition an Iceberg table by '{}': it has no column '{}' (its \
                 columns: {})",
                field.name(),
                field.column,
                columns.join(", ")
            );
        };
        if field.transform.result_type(&source.field_type).is_err() {
            return plan_err!(
                "cannot partition an Iceberg table by {}({}): '{}' is {}, and {} applies to \
                 dates and timestamps",
                field.transform,
                field.column,
                field.column,
                source.field_type,
                field.transform
            );
        }
        builder = builder
            .add_partition_field(&field.column, field.name(), field.transform)
            .map_err(|e| {
                DataFusionError::Plan(format!(
                    "cannot partition an Iceberg table by {}: {e}",
                    field.name()
                ))
            })?;
    }
    let spec = builder
        .build()
        .map_err(|e| DataFusionError::Plan(format!("an Iceberg partition spec: {e}")))?;
    Ok(spec.into_unbound())
}

/// Whether `spec` (an existing table's) is the partitioning `fields` ask
/// for, so an append that names its partitioning goes to a table
/// partitioned that way.
pub fn matches(spec: &PartitionSpec, schema: &Schema, fields: &[PartitionField]) -> bool {
    spec.fields().len() == fields.len()
        && spec.fields().iter().zip(fields).all(|(have, want)| {
            have.transform == want.transform
                && schema
                    .field_by_id(have.source_id)
                    .is_some_and(|source| source.name == want.column)
        })
}

/// `spec` as the transforms of [`parse`]: `days(event_ts), country`.
pub fn describe(spec: &PartitionSpec, schema: &Schema) -> String {
    if spec.fields().is_empty() {
        return "nothing (unpartitioned)".into();
    }
    spec.fields()
        .iter()
        .map(|f| {
            PartitionField {
                column: schema
                    .field_by_id(f.source_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| format!("field {}", f.source_id)),
                transform: f.transform,
            }
            .describe()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{NestedField, PrimitiveType, Type};

    use super::*;

    fn schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "user_id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "event_ts", Type::Primitive(PrimitiveType::Timestamp))
                    .into(),
                NestedField::optional(3, "country", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .unwrap()
    }

    #[test]
    fn spark_spellings_parse() {
        let day = parse("days(event_ts)").unwrap();
        assert_eq!(day.transform, Transform::Day);
        assert_eq!(day.name(), "event_ts_day");
        assert_eq!(
            parse(" HOUR( event_ts ) ").unwrap().transform,
            Transform::Hour
        );
        assert_eq!(parse("months(event_ts)").unwrap().name(), "event_ts_month");
        let country = parse("country").unwrap();
        assert_eq!(country.transform, Transform::Identity);
        assert_eq!(country.name(), "country");
        assert_eq!(parse("identity(country)").unwrap(), country);
    }

    #[test]
    fn what_cannot_be_written_is_refused_by_name() {
        let bucket = parse("bucket(16, user_id)").unwrap_err().to_string();
        assert!(bucket.contains("not bucket"), "{bucket}");
        let unknown = parse("weeks(event_ts)").unwrap_err().to_string();
        assert!(unknown.contains("unknown transform 'weeks'"), "{unknown}");
        let open = parse("days(event_ts").unwrap_err().to_string();
        assert!(open.contains("closing ')'"), "{open}");
        assert!(parse("").is_err());
    }

    #[test]
    fn a_spec_is_checked_against_the_columns() {
        let s = schema();
        let fields = [parse("days(event_ts)").unwrap(), parse("country").unwrap()];
        let unbound = spec(&s, &fields).unwrap();
        let bound = unbound.bind(s.clone()).unwrap();
        assert!(matches(&bound, &s, &fields));
        assert!(!matches(&bound, &s, &fields[..1]));
        assert_eq!(describe(&bound, &s), "days(event_ts), country");

        let missing = spec(&s, &[parse("days(at)").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no column 'at'"), "{missing}");
        assert!(missing.contains("user_id, event_ts, country"), "{missing}");
        let wrong_type = spec(&s, &[parse("days(country)").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(wrong_type.contains("'country' is string"), "{wrong_type}");
    }
}
