//! Spark's `coalesce(n)` / `/*+ COALESCE(n) */`: fewer partitions, no shuffle.
//!
//! Output partition `i` of `n` reads input partitions `i*k/n .. (i+1)*k/n`
//! of the `k` its input has, one after the other, in the same task: no
//! rows move between executors, and no stage boundary is added. With
//! `n >= k` it keeps the `k` partitions, as Spark's does.
//!
//! ```text
//!   input partitions   p0 p1 p2 │ p3 p4 p5      COALESCE(2) of 6
//!   tasks              task 0   │ task 1
//! ```
//!
//! A stage holding one runs without adaptive execution, which shapes a
//! stage's tasks from its reader partitions one by one.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

/// See the module docs.
#[derive(Debug)]
pub struct CoalesceExec {
    input: Arc<dyn ExecutionPlan>,
    /// The partition count asked for.
    requested: usize,
    origin: String,
    properties: Arc<PlanProperties>,
}

impl CoalesceExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, requested: usize, origin: String) -> Self {
        let k = input.output_partitioning().partition_count();
        let out = requested.min(k).max(1);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(out),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            input,
            requested: requested.max(1),
            origin,
            properties,
        }
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    pub fn requested(&self) -> usize {
        self.requested
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The input partitions output partition `i` reads.
    pub fn group(&self, i: usize) -> Range<usize> {
        let k = self.input.output_partitioning().partition_count();
        let out = self.properties.output_partitioning().partition_count();
        (i * k / out)..((i + 1) * k / out)
    }
}

/// True when `plan` holds a [`CoalesceExec`] (not looking into other stages).
pub fn contains_coalesce(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<CoalesceExec>() || plan.children().into_iter().any(contains_coalesce)
}

impl DisplayAs for CoalesceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "CoalesceExec: {} partitions -> {}, no shuffle, asked for by {}",
            self.input.output_partitioning().partition_count(),
            self.properties.output_partitioning().partition_count(),
            self.origin
        )
    }
}

impl ExecutionPlan for CoalesceExec {
    fn name(&self) -> &str {
        "CoalesceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(Self::new(
                input,
                self.requested,
                self.origin.clone(),
            ))),
            _ => internal_err!("CoalesceExec has exactly one child"),
        }
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let out = self.properties.output_partitioning().partition_count();
        if partition >= out {
            return internal_err!("CoalesceExec has {out} partitions, asked for {partition}");
        }
        let input = Arc::clone(&self.input);
        // Each input partition is started when the one before it is done.
        let stream = futures::stream::iter(self.group(partition))
            .map(move |p| input.execute(p, Arc::clone(&context)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            stream,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;

    fn batch(v: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![v]))]).unwrap()
    }

    #[tokio::test]
    async fn six_partitions_into_two_read_in_order() {
        let partitions: Vec<Vec<RecordBatch>> = (0..6).map(|i| vec![batch(i)]).collect();
        let schema = partitions[0][0].schema();
        let input = MemorySourceConfig::try_new_exec(&partitions, schema, None).unwrap();
        let coalesce = CoalesceExec::new(input, 2, "test".into());
        assert_eq!(
            coalesce
                .properties()
                .output_partitioning()
                .partition_count(),
            2
        );
        let ctx = Arc::new(TaskContext::default());
        let mut got = vec![];
        for p in 0..2 {
            let batches: Vec<RecordBatch> = coalesce
                .execute(p, Arc::clone(&ctx))
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let values: Vec<i32> = batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<Int32Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect();
            got.push(values);
        }
        assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4, 5]]);
        // More partitions asked for than there are: they stay as they are.
        let partitions: Vec<Vec<RecordBatch>> = (0..2).map(|i| vec![batch(i)]).collect();
        let schema = partitions[0][0].schema();
        let input = MemorySourceConfig::try_new_exec(&partitions, schema, None).unwrap();
        let coalesce = CoalesceExec::new(input, 5, "test".into());
        assert_eq!(
            coalesce
                .properties()
                .output_partitioning()
                .partition_count(),
            2
        );
    }
}
