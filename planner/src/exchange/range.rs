//! Range partitioning of a shuffle: Spark's `RangePartitioner`.
//!
//! A range shuffle sends each row to the partition whose key range holds
//! its key. The ranges are cut by `n - 1` bounds chosen from a sample of
//! the keys before the shuffle is written (the sampling pass:
//! [`crate::repartition::range_sample`]), so that each partition gets
//! about the same number of rows:
//!
//! ```text
//!   keys (ASC NULLS FIRST)   NULL  1  2  3 │ 4  5  6 │ 7  8  9
//!   bounds                               3 ┘       6 ┘
//!   partition                0             1         2
//! ```
//!
//! As in Spark, partition `p` holds the keys in `(bound[p-1], bound[p]]`:
//! a key equal to a bound goes to the partition below it. Keys compare as
//! the sort keys say (`ASC`/`DESC`, `NULLS FIRST`/`LAST`, column after
//! column), through Arrow's row format, whose bytes compare in that order.
//! Bounds never repeat ([`determine_bounds`] skips duplicates, as Spark's
//! `determineBounds` does), so a skewed key leaves fewer, not empty-bounded,
//! partitions: `n` partitions at most.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{Result, exec_datafusion_err, internal_err};
use datafusion::physical_expr::PhysicalSortExpr;

/// The name of the weight column of a sample (rows each sampled key stands for).
pub const WEIGHT_COLUMN: &str = "__minispark_weight";

/// How a range shuffle partitions: its sort keys (evaluated against the
/// writer's input) and, once sampled, the bounds between partitions.
#[derive(Debug, Clone)]
pub struct RangeSpec {
    pub keys: Vec<PhysicalSortExpr>,
    /// One row per bound, one column per key, in key order; `None` until
    /// the sampling pass has run.
    pub bounds: Option<RecordBatch>,
    /// Keys the bounds were chosen from.
    pub sampled_rows: u64,
}

impl RangeSpec {
    pub fn new(keys: Vec<PhysicalSortExpr>) -> Self {
        Self {
            keys,
            bounds: None,
            sampled_rows: 0,
        }
    }

    pub fn options(&self) -> Vec<SortOptions> {
        self.keys.iter().map(|k| k.options).collect()
    }

    /// The keys as EXPLAIN shows them: `k@0 ASC NULLS FIRST, ..`.
    pub fn describe_keys(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        keys.join(", ")
    }

    /// The bounds for people: `(3), (6)`; `None` before sampling.
    pub fn describe_bounds(&self, max: usize) -> Option<String> {
        let bounds = self.bounds.as_ref()?;
        let options = arrow::util::display::FormatOptions::default().with_null("NULL");
        let formatters = bounds
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ok()?;
        let mut shown: Vec<String> = (0..bounds.num_rows().min(max))
            .map(|row| {
                let values: Vec<String> = formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect();
                format!("({})", values.join(", "))
            })
            .collect();
        if bounds.num_rows() > max {
            shown.push(format!("... {} more", bounds.num_rows() - max));
        }
        Some(shown.join(", "))
    }

    /// The map side's partitioner: fails when the bounds were never sampled.
    pub fn partitioner(&self) -> Result<RangePartitioner> {
        let Some(bounds) = &self.bounds else {
            return internal_err!(
                "a range shuffle reached an executor before its bounds were sampled"
            );
        };
        let converter = converter(bounds.schema().fields(), &self.options())?;
        let rows = converter.convert_columns(bounds.columns())?;
        Ok(RangePartitioner {
            keys: self.keys.clone(),
            converter,
            bounds: rows,
        })
    }
}

fn converter(fields: &arrow::datatypes::Fields, options: &[SortOptions]) -> Result<RowConverter> {
    if fields.len() != options.len() {
        return internal_err!(
            "range bounds have {} columns for {} keys",
            fields.len(),
            options.len()
        );
    }
    Ok(RowConverter::new(
        fields
            .iter()
            .zip(options)
            .map(|(f, o)| SortField::new_with_options(f.data_type().clone(), *o))
            .collect(),
    )?)
}

/// Sends rows to partitions by their key's range (see the module docs).
#[derive(Debug)]
pub struct RangePartitioner {
    keys: Vec<PhysicalSortExpr>,
    converter: RowConverter,
    bounds: Rows,
}

impl RangePartitioner {
    /// The partition of every row of `batch`, into `ids`.
    pub fn partition_ids(&self, batch: &RecordBatch, ids: &mut Vec<u32>) -> Result<()> {
        let columns = self
            .keys
            .iter()
            .map(|k| k.expr.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let rows = self.converter.convert_columns(&columns)?;
        ids.clear();
        ids.extend(rows.iter().map(|row| self.partition_of(row)));
        Ok(())
    }

    /// How many bounds are below `row`: bound `p` is the highest key of
    /// partition `p`.
    fn partition_of(&self, row: arrow::row::Row<'_>) -> u32 {
        let (mut low, mut high) = (0, self.bounds.num_rows());
        while low < high {
            let mid = (low + high) / 2;
            if self.bounds.row(mid) < row {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low as u32
    }
}

/// Spark's `RangePartitioner.determineBounds`: the keys of `samples` (key
/// columns, then a [`WEIGHT_COLUMN`] of how many rows each stands for)
/// sorted, and cut into `partitions` runs of equal weight; the bounds are
/// the last key of each run but the last, duplicates skipped. Returns the
/// bounds (at most `partitions - 1` rows, key columns only).
pub fn determine_bounds(
    samples: &[RecordBatch],
    options: &[SortOptions],
    partitions: usize,
) -> Result<RecordBatch> {
    let Some(first) = samples.first() else {
        return internal_err!("a range sample has no schema");
    };
    let keys = first.num_columns().saturating_sub(1);
    if first.schema().field(keys).name() != WEIGHT_COLUMN || keys != options.len() {
        return internal_err!("a range sample has columns {:?}", first.schema());
    }
    let key_schema: SchemaRef = Arc::new(Schema::new(
        first.schema().fields()[..keys]
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let all = arrow::compute::concat_batches(&first.schema(), samples)?;
    let key_columns: Vec<ArrayRef> = all.columns()[..keys].to_vec();
    let weights = all
        .column(keys)
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| exec_datafusion_err!("a range sample's weights are not doubles"))?;
    let converter = converter(key_schema.fields(), options)?;
    let rows = converter.convert_columns(&key_columns)?;
    let mut order: Vec<usize> = (0..rows.num_rows()).collect();
    order.sort_by(|a, b| rows.row(*a).cmp(&rows.row(*b)));
    let total: f64 = (0..weights.len()).map(|i| weights.value(i)).sum();
    let step = total / partitions.max(1) as f64;
    let mut cumulative = 0.0;
    let mut target = step;
    let mut bounds: Vec<u32> = vec![];
    for &i in &order {
        if bounds.len() + 1 >= partitions {
            break;
        }
        cumulative += weights.value(i);
        if cumulative >= target {
            let above_previous = bounds
                .last()
                .is_none_or(|&p| rows.row(i) > rows.row(p as usize));
            if above_previous {
                bounds.push(i as u32);
                target += step;
            }
        }
    }
    let indices = UInt32Array::from(bounds);
    let columns = key_columns
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        key_schema,
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )?)
}

/// Bounds as Arrow IPC stream bytes, for the plan codec.
pub fn encode_bounds(bounds: &RecordBatch) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), &bounds.schema())?;
    writer.write(bounds)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Bounds from [`encode_bounds`]' bytes.
pub fn decode_bounds(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use datafusion::physical_expr::expressions::Column;

    use super::*;

    fn sample(keys: Vec<Option<i64>>, weight: f64) -> RecordBatch {
        let n = keys.len();
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, true),
                Field::new(WEIGHT_COLUMN, DataType::Float64, false),
            ])),
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(Float64Array::from(vec![weight; n])),
            ],
        )
        .unwrap()
    }

    fn spec(bounds: RecordBatch, options: SortOptions) -> RangeSpec {
        RangeSpec {
            keys: vec![PhysicalSortExpr::new(
                Arc::new(Column::new("k", 0)),
                options,
            )],
            bounds: Some(bounds),
            sampled_rows: 0,
        }
    }

    fn ids(spec: &RangeSpec, keys: Vec<Option<i64>>) -> Vec<u32> {
        let batch = sample(keys, 1.0).project(&[0]).unwrap();
        let mut ids = vec![];
        spec.partitioner()
            .unwrap()
            .partition_ids(&batch, &mut ids)
            .unwrap();
        ids
    }

    fn bound_values(bounds: &RecordBatch) -> Vec<Option<i64>> {
        let a = bounds
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        a.iter().collect()
    }

    #[test]
    fn bounds_cut_equal_weights_and_keys_go_below_equal_bounds() {
        let asc = SortOptions::new(false, true);
        let keys: Vec<Option<i64>> = (1..=9).rev().map(Some).collect();
        let bounds = determine_bounds(&[sample(keys, 1.0)], &[asc], 3).unwrap();
        assert_eq!(bound_values(&bounds), [Some(3), Some(6)]);
        let spec = spec(bounds, asc);
        assert_eq!(
            ids(
                &spec,
                vec![None, Some(1), Some(3), Some(4), Some(6), Some(7), Some(100)]
            ),
            [0, 0, 0, 1, 1, 2, 2]
        );
    }

    #[test]
    fn descending_keys_and_nulls_last() {
        let desc = SortOptions::new(true, false);
        let keys: Vec<Option<i64>> = vec![Some(1), Some(2), Some(3), Some(4), None, None];
        let bounds = determine_bounds(&[sample(keys, 1.0)], &[desc], 3).unwrap();
        assert_eq!(bound_values(&bounds), [Some(3), Some(1)]);
        let spec = spec(bounds, desc);
        assert_eq!(
            ids(
                &spec,
                vec![Some(9), Some(3), Some(2), Some(1), Some(0), None]
            ),
            [0, 0, 1, 1, 2, 2]
        );
    }

    #[test]
    fn a_skewed_key_gives_fewer_partitions_and_weights_count() {
        let asc = SortOptions::new(false, true);
        let mut keys = vec![Some(5); 90];
        keys.extend((0..10).map(Some));
        let bounds = determine_bounds(&[sample(keys, 1.0)], &[asc], 8).unwrap();
        let values = bound_values(&bounds);
        assert!(values.len() < 7, "{values:?}");
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        // Samples of a partition with more rows weigh more.
        let bounds = determine_bounds(
            &[
                sample(vec![Some(1), Some(2)], 1.0),
                sample(vec![Some(3), Some(4)], 10.0),
            ],
            &[asc],
            2,
        )
        .unwrap();
        assert_eq!(bound_values(&bounds), [Some(3)]);
        // No sample: no bounds, one partition.
        let empty = determine_bounds(&[sample(vec![], 1.0)], &[asc], 4).unwrap();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(ids(&spec(empty, asc), vec![Some(1), None]), [0, 0]);
    }

    #[test]
    fn bounds_survive_the_codec() {
        let bounds = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
            ],
        )
        .unwrap();
        assert_eq!(
            decode_bounds(&encode_bounds(&bounds).unwrap()).unwrap(),
            bounds
        );
    }
}
