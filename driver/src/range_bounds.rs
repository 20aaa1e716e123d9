//! The bounds of range repartitions (`REPARTITION_BY_RANGE`,
//! `df.repartition_by_range`), sampled on the cluster before the query's
//! job runs, as Spark's `RangePartitioner` samples its input before the
//! shuffle that needs the bounds.
//!
//! For each range repartition of the physical plan, innermost first (an
//! outer one's input then already has its bounds): a job of its own runs
//! a [`RangeSampleExec`] over the repartition's input, the driver cuts the
//! sampled keys into ranges ([`determine_bounds`]), and the bounds are
//! bound into the repartition, whence the stage cutter puts them in the
//! shuffle's writer. How the keys are sampled and the bounds chosen:
//! `minispark_planner::repartition::range_sample`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::Result;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, replace_children_if_necessary,
};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use minispark_planner::exchange::range::determine_bounds;
use minispark_planner::repartition::RepartitionExchangeExec;
use minispark_planner::repartition::range_sample::{RangeSampleExec, sample_per_partition};
use minispark_planner::stages::plan_stages;
use tracing::info;

use crate::job::JobSession;

impl JobSession {
    /// `plan` with the bounds of its range repartitions sampled (see the
    /// module docs).
    pub(crate) fn sample_range_bounds(
        &self,
        plan: Arc<dyn ExecutionPlan>,
    ) -> BoxFuture<'_, Result<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let children: Vec<Arc<dyn ExecutionPlan>> =
                plan.children().into_iter().cloned().collect();
            let mut sampled = Vec::with_capacity(children.len());
            let mut changed = false;
            for child in children {
                let new = self.sample_range_bounds(Arc::clone(&child)).await?;
                changed |= !Arc::ptr_eq(&new, &child);
                sampled.push(new);
            }
            let plan = if changed {
                replace_children_if_necessary(plan, sampled)?
            } else {
                plan
            };
            let Some(exchange) = plan.downcast_ref::<RepartitionExchangeExec>() else {
                return Ok(plan);
            };
            let Some(range) = exchange.range().filter(|r| r.bounds.is_none()) else {
                return Ok(plan);
            };
            let partitions = exchange.partitioning().partition_count();
            let input = Arc::clone(exchange.input());
            let per_partition =
                sample_per_partition(partitions, input.output_partitioning().partition_count());
            let keys = range.keys.iter().map(|k| Arc::clone(&k.expr)).collect();
            let sample: Arc<dyn ExecutionPlan> =
                Arc::new(RangeSampleExec::try_new(input, keys, per_partition)?);
            let schema = sample.schema();
            let graph = plan_stages(sample, self.shuffle_partitions())?;
            let mut batches: Vec<RecordBatch> =
                self.run_graph(&graph).await?.stream.try_collect().await?;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(schema));
            }
            let keys_sampled: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let bounds = determine_bounds(&batches, &range.options(), partitions)?;
            info!(
                origin = exchange.origin(),
                keys_sampled,
                bounds = bounds.num_rows(),
                "range repartition: bounds sampled"
            );
            Ok(Arc::new(exchange.with_bounds(bounds, keys_sampled as u64))
                as Arc<dyn ExecutionPlan>)
        })
    }
}
