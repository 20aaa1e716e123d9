//! A scan's statistics from the table's manifests, for the planner.
//!
//! Join selection (which side to broadcast, which to build on) and the
//! filters' row estimates read a scan's rows, bytes and per-column bounds.
//! DataFusion's Parquet scan takes them from the files' footers; an Iceberg
//! table keeps them in its manifests, one data file entry each: record
//! count, per column the bytes on disk, value and null counts, and lower
//! and upper bounds. This module sums them over the files a scan planned,
//! for the projected columns only, so an Iceberg scan is estimated as the
//! same rows read from Parquet would be:
//!
//! * bytes: a fixed-width column is its width times the rows (as
//!   DataFusion counts it); a string or other variable-width column is its
//!   bytes on disk (compressed: an underestimate where DataFusion counts
//!   the uncompressed pages);
//! * `min`/`max`: the files' bounds, inexact (Iceberg truncates long
//!   strings' bounds, and a bound covers rows deleted since);
//! * `null_count`: the sum of the files' null counts.
//!
//! A column some file has no metrics for (a table written with metrics
//! off) gets unknown bounds; the rows are always known.

use std::collections::{HashMap, HashSet};

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DataFusionError, Result, ScalarValue, Statistics};
use futures::future::try_join_all;
use iceberg::spec::{
    DataContentType, DataFile, Datum, ManifestContentType, PrimitiveLiteral, PrimitiveType,
    Schema as IcebergSchema,
};
use iceberg::table::Table;

use crate::scan::chain;

/// The manifests' entries for the data files at `paths` of snapshot
/// `snapshot_id` (live entries only).
pub async fn data_files(
    table: &Table,
    snapshot_id: i64,
    paths: &HashSet<&str>,
) -> Result<Vec<DataFile>> {
    let failed = |e: iceberg::Error| {
        DataFusionError::Plan(format!(
            "reading the manifests of an Iceberg table for its statistics: {}",
            chain(&e)
        ))
    };
    let Some(snapshot) = table.metadata().snapshot_by_id(snapshot_id) else {
        return Ok(vec![]);
    };
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(failed)?;
    let manifests = try_join_all(
        list.entries()
            .iter()
            .filter(|m| m.content == ManifestContentType::Data)
            .map(|m| m.load_manifest(table.file_io())),
    )
    .await
    .map_err(failed)?;
    Ok(manifests
        .iter()
        .flat_map(|m| m.entries())
        .filter(|e| e.is_alive() && e.content_type() == DataContentType::Data)
        .map(|e| e.data_file())
        .filter(|f| paths.contains(f.file_path()))
        .cloned()
        .collect())
}

/// Statistics of a scan of `files` reading the columns of `projected`
/// (DataFusion's Arrow types) that `schema` (the table's, at the snapshot
/// read) gives field ids.
pub fn statistics(files: &[DataFile], projected: &SchemaRef, schema: &IcebergSchema) -> Statistics {
    let rows: u64 = files.iter().map(DataFile::record_count).sum();
    let columns: Vec<ColumnStatistics> = projected
        .fields()
        .iter()
        .map(|field| match schema.field_by_name(field.name()) {
            Some(source) => column(files, source.id, field.data_type(), rows),
            None => ColumnStatistics::new_unknown(),
        })
        .collect();
    let bytes = columns
        .iter()
        .map(|c| c.byte_size.get_value().copied())
        .sum::<Option<usize>>();
    Statistics {
        num_rows: Precision::Inexact(rows as usize),
        total_byte_size: bytes.map_or(Precision::Absent, Precision::Inexact),
        column_statistics: columns,
    }
}

/// Column `id`'s statistics over `files`, as `data_type` values.
fn column(files: &[DataFile], id: i32, data_type: &DataType, rows: u64) -> ColumnStatistics {
    let byte_size = match data_type.primitive_width() {
        Some(width) => Precision::Inexact(width * rows as usize),
        None => files
            .iter()
            .map(|f| f.column_sizes().get(&id).copied())
            .sum::<Option<u64>>()
            .map_or(Precision::Absent, |b| Precision::Inexact(b as usize)),
    };
    let null_count = files
        .iter()
        .map(|f| f.null_value_counts().get(&id).copied())
        .sum::<Option<u64>>();
    let has_nan = files
        .iter()
        .any(|f| f.nan_value_counts().get(&id).is_some_and(|n| *n > 0));
    // A file whose values are all NULL has no bounds and needs none.
    let all_null = |f: &DataFile| f.null_value_counts().get(&id) == Some(&f.record_count());
    let bound = |bounds: fn(&DataFile) -> &HashMap<i32, Datum>, keep_max: bool| {
        if has_nan {
            return Precision::Absent;
        }
        let mut best: Option<ScalarValue> = None;
        for file in files.iter().filter(|f| !all_null(f)) {
            let Some(value) = bounds(file).get(&id).and_then(|d| scalar(d, data_type)) else {
                return Precision::Absent;
            };
            best = match best {
                None => Some(value),
                Some(b) => match value.partial_cmp(&b) {
                    Some(std::cmp::Ordering::Greater) if keep_max => Some(value),
                    Some(std::cmp::Ordering::Less) if !keep_max => Some(value),
                    Some(_) => Some(b),
                    None => return Precision::Absent,
                },
            };
        }
        best.map_or(Precision::Absent, Precision::Inexact)
    };
    ColumnStatistics {
        null_count: null_count.map_or(Precision::Absent, |n| Precision::Inexact(n as usize)),
        min_value: bound(DataFile::lower_bounds, false),
        max_value: bound(DataFile::upper_bounds, true),
        sum_value: Precision::Absent,
        distinct_count: Precision::Absent,
        byte_size,
    }
}

/// An Iceberg bound as a DataFusion value of `data_type` (the scan's type
/// of the column); `None` for types a bound is not kept for here.
fn scalar(datum: &Datum, data_type: &DataType) -> Option<ScalarValue> {
    use PrimitiveLiteral as L;
    use PrimitiveType as T;
    let value = match (datum.data_type(), datum.literal()) {
        (T::Boolean, L::Boolean(b)) => ScalarValue::Boolean(Some(*b)),
        (T::Int, L::Int(i)) => ScalarValue::Int32(Some(*i)),
        (T::Long, L::Long(i)) => ScalarValue::Int64(Some(*i)),
        (T::Float, L::Float(f)) => ScalarValue::Float32(Some(f.0)),
        (T::Double, L::Double(f)) => ScalarValue::Float64(Some(f.0)),
        (T::Date, L::Int(days)) => ScalarValue::Date32(Some(*days)),
        (T::Timestamp, L::Long(us)) => ScalarValue::TimestampMicrosecond(Some(*us), None),
        (T::Timestamptz, L::Long(us)) => {
            ScalarValue::TimestampMicrosecond(Some(*us), Some("+00:00".into()))
        }
        (T::String, L::String(s)) => ScalarValue::Utf8(Some(s.clone())),
        (T::Decimal { precision, scale }, L::Int128(v)) => ScalarValue::Decimal128(
            Some(*v),
            u8::try_from(*precision).ok()?,
            i8::try_from(*scale).ok()?,
        ),
        _ => return None,
    };
    value.cast_to(data_type).ok()
}

/// `whole` (a scan's statistics) for the part of it holding `rows` of its
/// rows: rows and bytes in proportion, bounds and null counts as they are
/// (inexact).
pub fn share(whole: &Statistics, rows: u64) -> Statistics {
    let all = whole.num_rows.get_value().copied().unwrap_or(0);
    let fraction = if all == 0 {
        0.0
    } else {
        rows as f64 / all as f64
    };
    let scale = |p: &Precision<usize>| match p.get_value() {
        Some(v) => Precision::Inexact((*v as f64 * fraction) as usize),
        None => Precision::Absent,
    };
    Statistics {
        num_rows: Precision::Inexact(rows as usize),
        total_byte_size: scale(&whole.total_byte_size),
        column_statistics: whole
            .column_statistics
            .iter()
            .map(|c| ColumnStatistics {
                byte_size: scale(&c.byte_size),
                null_count: scale(&c.null_count),
                ..c.clone()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema, TimeUnit};
    use iceberg::spec::{DataFileBuilder, DataFileFormat, NestedField, Struct, Type};

    use super::*;

    /// A data file of `rows` rows: `id` in `[lower, upper]` (no bounds
    /// when `id_bounds` is false), `nulls` of `name` NULL (no bounds for it
    /// when all are), `at` in `[lower, upper]` µs.
    fn file(rows: u64, lower: i64, upper: i64, nulls: u64, id_bounds: bool) -> DataFile {
        let mut lowers = HashMap::from([(3, Datum::timestamp_micros(lower))]);
        let mut uppers = HashMap::from([(3, Datum::timestamp_micros(upper))]);
        if id_bounds {
            lowers.insert(1, Datum::long(lower));
            uppers.insert(1, Datum::long(upper));
        }
        if nulls < rows {
            lowers.insert(2, Datum::string("apple"));
            uppers.insert(2, Datum::string("pear"));
        }
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!("file:///t/data/{lower}.parquet"))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::empty())
            .record_count(rows)
            .file_size_in_bytes(1000)
            .column_sizes(HashMap::from([(1, rows * 2), (2, rows * 4)]))
            .null_value_counts(HashMap::from([(1, 0), (2, nulls)]))
            .lower_bounds(lowers)
            .upper_bounds(uppers)
            .build()
            .unwrap()
    }

    fn schemas() -> (SchemaRef, IcebergSchema) {
        let arrow = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let iceberg = IcebergSchema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(3, "at", Type::Primitive(PrimitiveType::Timestamp)).into(),
            ])
            .build()
            .unwrap();
        (arrow, iceberg)
    }

    /// Rows, fixed-width bytes, bounds and nulls add up over the files.
    #[test]
    fn files_add_up() {
        let (arrow, iceberg) = schemas();
        let files = [file(100, 5, 50, 3, true), file(300, -2, 20, 0, true)];
        let s = statistics(&files, &arrow, &iceberg);
        assert_eq!(s.num_rows, Precision::Inexact(400));
        let id = &s.column_statistics[0];
        assert_eq!(
            id.min_value,
            Precision::Inexact(ScalarValue::Int64(Some(-2)))
        );
        assert_eq!(
            id.max_value,
            Precision::Inexact(ScalarValue::Int64(Some(50)))
        );
        assert_eq!(id.byte_size, Precision::Inexact(3200));
        let name = &s.column_statistics[1];
        assert_eq!(name.null_count, Precision::Inexact(3));
        assert_eq!(name.byte_size, Precision::Inexact(1600));
        assert_eq!(
            name.min_value,
            Precision::Inexact(ScalarValue::Utf8View(Some("apple".into())))
        );
        let at = &s.column_statistics[2];
        assert_eq!(
            at.max_value,
            Precision::Inexact(ScalarValue::TimestampMicrosecond(Some(50), None))
        );
        assert_eq!(s.total_byte_size, Precision::Inexact(3200 + 1600 + 3200));

        // Projected: only the columns read count.
        let only_id = Arc::new(arrow.project(&[0]).unwrap());
        assert_eq!(
            statistics(&files, &only_id, &iceberg).total_byte_size,
            Precision::Inexact(3200)
        );

        // A quarter of the rows: a quarter of the bytes, the same bounds.
        let part = share(&s, 100);
        assert_eq!(part.num_rows, Precision::Inexact(100));
        assert_eq!(part.total_byte_size, Precision::Inexact(2000));
        assert_eq!(part.column_statistics[0].min_value, id.min_value);
    }

    /// A file without a column's bounds makes them unknown, unless all its
    /// values are NULL.
    #[test]
    fn missing_bounds_are_unknown() {
        let (arrow, iceberg) = schemas();
        let s = statistics(
            &[file(10, 5, 6, 0, true), file(10, 0, 1, 0, false)],
            &arrow,
            &iceberg,
        );
        assert_eq!(s.column_statistics[0].min_value, Precision::Absent);
        assert_eq!(s.column_statistics[0].max_value, Precision::Absent);
        assert_eq!(
            s.column_statistics[2].max_value,
            Precision::Inexact(ScalarValue::TimestampMicrosecond(Some(6), None))
        );

        let s = statistics(
            &[file(10, 5, 6, 0, true), file(10, 0, 0, 10, true)],
            &arrow,
            &iceberg,
        );
        assert_eq!(s.column_statistics[1].null_count, Precision::Inexact(10));
        assert_eq!(
            s.column_statistics[1].max_value,
            Precision::Inexact(ScalarValue::Utf8View(Some("pear".into())))
        );
    }
}
