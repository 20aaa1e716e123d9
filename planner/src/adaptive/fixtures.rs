//! Stage plans and block lists shared by the adaptive rules' unit tests.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

use super::AdaptiveConfig;
use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::skew::SkewRule;
use crate::stages::StageJoin;

pub(super) fn block(map: usize, reduce: usize, bytes: u64) -> BlockLocation {
    BlockLocation {
        executor_id: "e".into(),
        address: "a".into(),
        job_id: "j".into(),
        stage_id: 0,
        map_partition: map,
        reduce_partition: reduce,
        map_attempt: 0,
        bytes,
        rows: bytes,
    }
}

/// `maps` map tasks each writing `sizes[p]` bytes to partition p.
pub(super) fn reader(maps: usize, sizes: &[u64]) -> Vec<Vec<BlockLocation>> {
    sizes
        .iter()
        .enumerate()
        .map(|(p, &s)| (0..maps).map(|m| block(m, p, s)).collect())
        .collect()
}

pub(super) fn config(min_tasks: usize) -> AdaptiveConfig {
    AdaptiveConfig {
        advisory_bytes: 1000,
        min_tasks,
        skew: SkewRule {
            factor: 5.0,
            threshold_bytes: 100,
        },
        broadcast_threshold: Some(500),
        task_memory: None,
    }
}

/// Stage 2: `join_type` of two hash readers (stages 0 and 1, 4
/// partitions) on `k`, partitioned, under a projection, written by a
/// hash writer.
pub(super) fn join_stage(join_type: JoinType) -> Arc<dyn ExecutionPlan> {
    join_stage_sorted(join_type, false)
}

/// [`join_stage`], with the right reader under a sort when `sorted`.
pub(super) fn join_stage_sorted(join_type: JoinType, sorted: bool) -> Arc<dyn ExecutionPlan> {
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::NullEquality;
    use datafusion::physical_expr::expressions::Column;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let k: Arc<dyn datafusion::physical_expr::PhysicalExpr> = Arc::new(Column::new("k", 0));
    let reader = |stage| -> Arc<dyn ExecutionPlan> {
        Arc::new(ShuffleReaderExec::new_unordered(
            stage,
            ExchangeKind::Hash,
            Partitioning::Hash(vec![Arc::clone(&k)], 4),
            Arc::clone(&schema),
        ))
    };
    let mut right = reader(1);
    if sorted {
        let order = datafusion::physical_expr::LexOrdering::new([
            datafusion::physical_expr::PhysicalSortExpr::new_default(Arc::clone(&k)),
        ])
        .unwrap();
        right = Arc::new(SortExec::new(order, right).with_preserve_partitioning(true));
    }
    let join: Arc<dyn ExecutionPlan> = Arc::new(
        HashJoinExec::try_new(
            reader(0),
            right,
            vec![(Arc::clone(&k), Arc::clone(&k))],
            None,
            &join_type,
            None,
            PartitionMode::Partitioned,
            NullEquality::NullEqualsNothing,
            false,
        )
        .unwrap(),
    );
    let first = join.schema().field(0).name().clone();
    let projection: Arc<dyn ExecutionPlan> = Arc::new(
        ProjectionExec::try_new(
            vec![(
                Arc::new(Column::new(&first, 0))
                    as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                first,
            )],
            join,
        )
        .unwrap(),
    );
    Arc::new(ShuffleWriterExec::try_new(2, projection, ExchangeKind::Hash, 4, vec![k]).unwrap())
}

pub(super) const JOIN: Option<StageJoin> = Some(StageJoin {
    number: 3,
    shuffle_hint: false,
});

/// Left and right readers of `left` and `right` bytes per partition.
pub(super) fn sides(left: u64, right: u64) -> Vec<Vec<Vec<BlockLocation>>> {
    vec![reader(2, &[left; 4]), reader(2, &[right; 4])]
}
