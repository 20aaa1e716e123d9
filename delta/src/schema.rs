//! A Delta table's schema (the `schemaString` of its `metaData`) as Arrow,
//! and its partition values (strings in the log) as typed values.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use datafusion::common::{Result, ScalarValue, plan_datafusion_err, plan_err};
use serde_json::Value;

/// The Arrow schema of a Delta `schemaString` (a struct type as JSON).
/// With `view_types` strings and binaries are `Utf8View` / `BinaryView`, as
/// DataFusion reads Parquet by default
/// (`datafusion.execution.parquet.schema_force_view_types`).
pub fn arrow_schema(schema_string: &str, view_types: bool) -> Result<Schema> {
    let value: Value = serde_json::from_str(schema_string)
        .map_err(|e| plan_datafusion_err!("the Delta table's schema is not JSON: {e}"))?;
    match struct_fields(&value, view_types)? {
        DataType::Struct(fields) => Ok(Schema::new(fields)),
        _ => plan_err!("the Delta table's schema is not a struct"),
    }
}

fn struct_fields(value: &Value, view_types: bool) -> Result<DataType> {
    let fields = value
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| plan_datafusion_err!("a Delta struct type without fields: {value}"))?;
    let fields = fields
        .iter()
        .map(|f| {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| plan_datafusion_err!("a Delta field without a name: {f}"))?;
            let data_type = data_type(
                f.get("type")
                    .ok_or_else(|| plan_datafusion_err!("Delta field {name} has no type"))?,
                view_types,
            )
            .map_err(|e| e.context(format!("Delta field {name}")))?;
            let nullable = f.get("nullable").and_then(Value::as_bool).unwrap_or(true);
            Ok(Arc::new(Field::new(name, data_type, nullable)))
        })
        .collect::<Result<Fields>>()?;
    Ok(DataType::Struct(fields))
}

fn data_type(value: &Value, view_types: bool) -> Result<DataType> {
    if let Some(name) = value.as_str() {
        return Ok(match (primitive(name)?, view_types) {
            (DataType::Utf8, true) => DataType::Utf8View,
            (DataType::Binary, true) => DataType::BinaryView,
            (t, _) => t,
        });
    }
    match value.get("type").and_then(Value::as_str) {
        Some("struct") => struct_fields(value, view_types),
        Some("array") => {
            let element = data_type(
                value
                    .get("elementType")
                    .ok_or_else(|| plan_datafusion_err!("array without elementType"))?,
                view_types,
            )?;
            let nullable = value
                .get("containsNull")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            Ok(DataType::List(Arc::new(Field::new(
                "element", element, nullable,
            ))))
        }
        Some("map") => {
            let key = data_type(
                value
                    .get("keyType")
                    .ok_or_else(|| plan_datafusion_err!("map without keyType"))?,
                view_types,
            )?;
            let val = data_type(
                value
                    .get("valueType")
                    .ok_or_else(|| plan_datafusion_err!("map without valueType"))?,
                view_types,
            )?;
            let nullable = value
                .get("valueContainsNull")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let entries = Field::new(
                "key_value",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", val, nullable),
                ])),
                false,
            );
            Ok(DataType::Map(Arc::new(entries), false))
        }
        _ => plan_err!("unknown Delta type {value}"),
    }
}

fn primitive(name: &str) -> Result<DataType> {
    Ok(match name {
        "string" => DataType::Utf8,
        "long" => DataType::Int64,
        "integer" => DataType::Int32,
        "short" => DataType::Int16,
        "byte" => DataType::Int8,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => match other
            .strip_prefix("decimal(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.split_once(','))
        {
            Some((p, s)) => {
                let precision: u8 = p
                    .trim()
                    .parse()
                    .map_err(|_| plan_datafusion_err!("bad Delta type {other}"))?;
                let scale: i8 = s
                    .trim()
                    .parse()
                    .map_err(|_| plan_datafusion_err!("bad Delta type {other}"))?;
                DataType::Decimal128(precision, scale)
            }
            None => return plan_err!("the Delta type {other} is not supported by minispark"),
        },
    })
}

/// The Delta `schemaString` of an Arrow schema (a new table's columns),
/// or an error naming the first column Delta cannot hold. Strings of
/// every width are `string`, timestamps of every unit `timestamp` (with a
/// time zone) or `timestamp_ntz` (without); unsigned integers, times,
/// durations and intervals have no Delta type.
pub fn delta_schema_string(schema: &Schema) -> Result<String> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| delta_field(f))
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::json!({"type": "struct", "fields": fields}).to_string())
}

fn delta_field(field: &Field) -> Result<Value> {
    let data_type =
        delta_type(field.data_type()).map_err(|e| e.context(format!("column {}", field.name())))?;
    Ok(serde_json::json!({
        "name": field.name(),
        "type": data_type,
        "nullable": field.is_nullable(),
        "metadata": {},
    }))
}

fn delta_type(data_type: &DataType) -> Result<Value> {
    let name = match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Int64 => "long",
        DataType::Int32 => "integer",
        DataType::Int16 => "short",
        DataType::Int8 => "byte",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Boolean => "boolean",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, Some(_)) => "timestamp",
        DataType::Timestamp(_, None) => "timestamp_ntz",
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => {
            return Ok(Value::String(format!("decimal({p},{s})")));
        }
        DataType::Struct(fields) => {
            let fields = fields
                .iter()
                .map(|f| delta_field(f))
                .collect::<Result<Vec<_>>>()?;
            return Ok(serde_json::json!({"type": "struct", "fields": fields}));
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            return Ok(serde_json::json!({
                "type": "array",
                "elementType": delta_type(f.data_type())?,
                "containsNull": f.is_nullable(),
            }));
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return plan_err!("a map whose entries are not a struct");
            };
            let (Some(key), Some(value), None) = (kv.first(), kv.get(1), kv.get(2)) else {
                return plan_err!("a map whose entries are not (key, value)");
            };
            return Ok(serde_json::json!({
                "type": "map",
                "keyType": delta_type(key.data_type())?,
                "valueType": delta_type(value.data_type())?,
                "valueContainsNull": value.is_nullable(),
            }));
        }
        other => {
            return plan_err!(
                "the type {other} has no Delta Lake type (Delta has no unsigned integers, \
                 times, durations or intervals): cast the column first"
            );
        }
    };
    Ok(Value::String(name.to_string()))
}

/// Checks that rows of `input` can be written to a Delta table with the
/// columns `table` as they are: the same column names, each of the same
/// Delta type (string widths and timestamp units aside). The error names
/// every column that is missing, extra or of another type: minispark
/// neither casts nor evolves a table's schema on a write.
pub fn check_write_schema(table: &Schema, input: &Schema, location: &str) -> Result<()> {
    let mut problems = vec![];
    for field in table.fields() {
        match input.field_with_name(field.name()) {
            Err(_) => problems.push(format!("column {} is missing", field.name())),
            Ok(given) => {
                let want = delta_type(field.data_type()).ok();
                let got = delta_type(given.data_type()).ok();
                if want.is_none() || want != got {
                    problems.push(format!(
                        "column {} is {} in the table but {} in the rows",
                        field.name(),
                        field.data_type(),
                        given.data_type()
                    ));
                }
            }
        }
    }
    for field in input.fields() {
        if table.field_with_name(field.name()).is_err() {
            problems.push(format!("column {} is not in the table", field.name()));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    plan_err!(
        "the rows do not match the columns of Delta table '{location}': {} (minispark \
         neither casts nor adds columns on a write: select and cast the columns to the \
         table's schema)",
        problems.join("; ")
    )
}

/// Whether a `schemaString` has a `timestamp_ntz` column (the table then
/// needs the `timestampNtz` table feature).
pub fn uses_timestamp_ntz(schema_string: &str) -> bool {
    schema_string.contains("\"timestamp_ntz\"")
}

/// A partition value from the log (`None`: null) as a value of `data_type`.
pub fn partition_value(value: Option<&str>, data_type: &DataType) -> Result<ScalarValue> {
    let Some(text) = value else {
        return ScalarValue::try_from(data_type);
    };
    // An empty string is a null for every type but string.
    if text.is_empty() && !matches!(data_type, DataType::Utf8 | DataType::Utf8View) {
        return ScalarValue::try_from(data_type);
    }
    let text = match data_type {
        // The log writes timestamps as `2026-01-01 10:00:00[.ffffff]`, some
        // writers in ISO 8601 with a `Z`: both parse as UTC instants.
        DataType::Timestamp(_, _) => text.trim_end_matches('Z').replacen('T', " ", 1),
        _ => text.to_string(),
    };
    ScalarValue::try_from_string(text.clone(), data_type)
        .map_err(|e| e.context(format!("partition value '{text}' as {data_type}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_of_every_type() {
        let schema = arrow_schema(
            r#"{"type":"struct","fields":[
              {"name":"id","type":"long","nullable":false,"metadata":{}},
              {"name":"s","type":"string","nullable":true,"metadata":{}},
              {"name":"d","type":"decimal(10,2)","nullable":true,"metadata":{}},
              {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
              {"name":"l","type":{"type":"array","elementType":"integer","containsNull":true},"nullable":true,"metadata":{}},
              {"name":"m","type":{"type":"map","keyType":"string","valueType":"date","valueContainsNull":true},"nullable":true,"metadata":{}}
            ]}"#,
            false,
        )
        .unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(10, 2));
        assert_eq!(
            schema.field(3).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(matches!(schema.field(4).data_type(), DataType::List(_)));
        assert!(matches!(
            schema.field(5).data_type(),
            DataType::Map(_, false)
        ));
        assert!(
            arrow_schema(
                r#"{"type":"struct","fields":[{"name":"v","type":"variant"}]}"#,
                false
            )
            .is_err()
        );
        let view = arrow_schema(
            r#"{"type":"struct","fields":[{"name":"s","type":"string"}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(view.field(0).data_type(), &DataType::Utf8View);
    }

    #[test]
    fn arrow_schemas_become_delta_schemas() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8View, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
        ]);
        let text = delta_schema_string(&schema).unwrap();
        assert!(!uses_timestamp_ntz(&text));
        let back = arrow_schema(&text, false).unwrap();
        let types: Vec<String> = back
            .fields()
            .iter()
            .map(|f| format!("{}:{}:{}", f.name(), f.data_type(), f.is_nullable()))
            .collect();
        assert_eq!(
            types,
            [
                "id:Int64:false",
                "s:Utf8:true",
                "d:Decimal128(10, 2):true",
                "ts:Timestamp(µs, \"UTC\"):true",
                "day:Date32:true",
                "l:List(Int32, field: 'element'):true",
            ]
        );
        let ntz = Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]);
        assert!(uses_timestamp_ntz(&delta_schema_string(&ntz).unwrap()));
        let err = delta_schema_string(&Schema::new(vec![Field::new("u", DataType::UInt32, true)]))
            .unwrap_err();
        assert!(err.to_string().contains("column u"), "{err}");
        assert!(err.to_string().contains("no Delta Lake type"), "{err}");
    }

    #[test]
    fn written_rows_must_have_the_tables_columns() {
        let table = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8View, true),
        ]);
        let same = Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ]);
        check_write_schema(&table, &same, "t").unwrap();
        let other = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("extra", DataType::Utf8, true),
        ]);
        let err = check_write_schema(&table, &other, "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column id is Int64 in the table but Int32 in the rows"),
            "{err}"
        );
        assert!(err.contains("column s is missing"), "{err}");
        assert!(err.contains("column extra is not in the table"), "{err}");
    }

    #[test]
    fn partition_values_are_typed() {
        assert_eq!(
            partition_value(Some("2026-01-02"), &DataType::Date32).unwrap(),
            ScalarValue::Date32(Some(20455))
        );
        assert_eq!(
            partition_value(None, &DataType::Int64).unwrap(),
            ScalarValue::Int64(None)
        );
        assert_eq!(
            partition_value(Some(""), &DataType::Int32).unwrap(),
            ScalarValue::Int32(None)
        );
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            partition_value(Some("1970-01-01 00:00:01"), &ts).unwrap(),
            partition_value(Some("1970-01-01T00:00:01Z"), &ts).unwrap()
        );
        assert!(partition_value(Some("x"), &DataType::Int32).is_err());
    }
}
