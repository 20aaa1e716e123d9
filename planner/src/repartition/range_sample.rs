//! The sampling pass of a range repartition (`REPARTITION_BY_RANGE`,
//! `df.repartition_by_range`): Spark's `RangePartitioner.sketch`.
//!
//! Before a range shuffle is written, its bounds must be known
//! ([`crate::exchange::range`]). As Spark does, the driver runs a job of its
//! own over the shuffle's input first: each task keeps a uniform sample of
//! its partition's keys (reservoir sampling, seeded by the partition, so a
//! task run again samples the same keys), and reports how many rows each
//! sampled key stands for. The driver then cuts the weighted sample into
//! ranges of equal weight ([`crate::exchange::range::determine_bounds`]),
//! and the bounds are bound into the shuffle's writer before the query's
//! own job starts.
//!
//! ```text
//!   sampling job:  input ─▶ RangeSampleExec (≤ k keys per partition + weight) ─▶ driver
//!                                                         determine_bounds ─┘
//!   query job:     input ─▶ ShuffleWriterExec(range, bounds) ─▶ ...
//! ```
//!
//! Sample size as Spark SQL's: `min(100 n, 1e6)` keys for `n` partitions,
//! drawn as `3x` that spread over the input partitions
//! ([`sample_per_partition`]). Like Spark, the input is computed twice
//! (once for the sample, once for the shuffle).

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, new_empty_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

use crate::exchange::range::WEIGHT_COLUMN;

/// Keys sampled per output partition (Spark's
/// `spark.sql.execution.rangeExchange.sampleSizePerPartition`).
pub const SAMPLE_PER_OUTPUT_PARTITION: usize = 100;

/// Most keys sampled in all (Spark's limit).
pub const MAX_SAMPLE: usize = 1_000_000;

/// Keys each of `input_partitions` tasks keeps for a range repartition
/// into `partitions`: Spark's `ceil(3 * min(100 n, 1e6) / input partitions)`.
pub fn sample_per_partition(partitions: usize, input_partitions: usize) -> usize {
    let total = (SAMPLE_PER_OUTPUT_PARTITION * partitions.max(1)).min(MAX_SAMPLE);
    (3 * total).div_ceil(input_partitions.max(1))
}

/// Keeps a uniform sample of at most `per_partition` keys of each input
/// partition; outputs them (columns `k0, k1, ..`) with the rows each one
/// stands for ([`WEIGHT_COLUMN`]).
#[derive(Debug)]
pub struct RangeSampleExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    per_partition: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RangeSampleExec {
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        per_partition: usize,
    ) -> Result<Self> {
        if keys.is_empty() {
            return internal_err!("a range sample needs keys");
        }
        let input_schema = input.schema();
        let mut fields = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Ok(Field::new(
                    format!("k{i}"),
                    k.data_type(&input_schema)?,
                    true,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        fields.push(Field::new(WEIGHT_COLUMN, DataType::Float64, false));
        let schema = Arc::new(Schema::new(fields));
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            input,
            keys,
            per_partition: per_partition.max(1),
            schema,
            properties,
        })
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    pub fn keys(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.keys
    }

    pub fn per_partition(&self) -> usize {
        self.per_partition
    }
}

impl DisplayAs for RangeSampleExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        write!(
            f,
            "RangeSampleExec: keys=[{}], {} per partition",
            keys.join(", "),
            self.per_partition
        )
    }
}

impl ExecutionPlan for RangeSampleExec {
    fn name(&self) -> &str {
        "RangeSampleExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(Self::try_new(
                input,
                self.keys.clone(),
                self.per_partition,
            )?)),
            _ => internal_err!("RangeSampleExec has exactly one child"),
        }
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for k in &self.keys {
            if f(k)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let keys = self.keys.clone();
        let schema = Arc::clone(&self.schema);
        let mut reservoir = Reservoir::new(self.per_partition, partition as u64);
        let out_schema = Arc::clone(&schema);
        let stream = futures::stream::once(async move {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let columns = keys
                    .iter()
                    .map(|k| k.evaluate(&batch)?.into_array(batch.num_rows()))
                    .collect::<Result<Vec<_>>>()?;
                reservoir.observe(&columns, batch.num_rows())?;
            }
            reservoir.finish(&out_schema)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Algorithm R: after `seen` rows, each is in the sample with probability
/// `capacity / seen`.
struct Reservoir {
    capacity: usize,
    seen: u64,
    rows: Vec<Vec<ScalarValue>>,
    rng: u64,
}

impl Reservoir {
    fn new(capacity: usize, seed: u64) -> Self {
        Self {
            capacity,
            seen: 0,
            rows: Vec::with_capacity(capacity.min(1 << 16)),
            rng: 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9),
        }
    }

    /// xorshift64*: cheap, and the same draws for the same partition.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn observe(&mut self, columns: &[ArrayRef], rows: usize) -> Result<()> {
        let key = |row: usize| {
            columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row))
                .collect::<Result<Vec<_>>>()
        };
        for row in 0..rows {
            self.seen += 1;
            if self.rows.len() < self.capacity {
                self.rows.push(key(row)?);
            } else {
                let slot = self.next() % self.seen;
                if (slot as usize) < self.capacity {
                    self.rows[slot as usize] = key(row)?;
                }
            }
        }
        Ok(())
    }

    fn finish(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let keys = schema.fields().len() - 1;
        let mut columns = (0..keys)
            .map(|c| {
                if self.rows.is_empty() {
                    Ok(new_empty_array(schema.field(c).data_type()))
                } else {
                    ScalarValue::iter_to_array(self.rows.iter().map(|r| r[c].clone()))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let weight = self.seen as f64 / self.rows.len().max(1) as f64;
        columns.push(Arc::new(Float64Array::from(vec![weight; self.rows.len()])));
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;

    use super::*;

    #[test]
    fn spark_sample_sizes() {
        // 8 partitions from 4 input partitions: 3 * 800 / 4.
        assert_eq!(sample_per_partition(8, 4), 600);
        // Capped at a million keys in all.
        assert_eq!(sample_per_partition(100_000, 3), 1_000_000);
    }

    #[tokio::test]
    async fn a_partition_keeps_k_keys_weighted_by_its_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let input =
            MemorySourceConfig::try_new_exec(&[vec![batch.clone()], vec![]], schema, None).unwrap();
        let sample =
            RangeSampleExec::try_new(input, vec![Arc::new(Column::new("k", 0))], 50).unwrap();
        let ctx = SessionContext::new().task_ctx();
        let got: Vec<RecordBatch> = sample
            .execute(0, Arc::clone(&ctx))
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(got[0].num_rows(), 50);
        let weights = got[0]
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(weights.iter().all(|w| w == Some(20.0)));
        // Spread over the partition, not its first rows.
        let keys = got[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert!(keys.iter().any(|k| k.unwrap() >= 500));
        // The same keys when run again.
        let again: Vec<RecordBatch> = sample
            .execute(0, Arc::clone(&ctx))
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(got, again);
        // An empty partition: no keys.
        let empty: Vec<RecordBatch> = sample.execute(1, ctx).unwrap().try_collect().await.unwrap();
        assert_eq!(empty[0].num_rows(), 0);
    }
}
