//! The map side of an exchange.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    ReplaceChildrenOptions,
};

use super::{ExchangeKind, RangeSpec};

/// The root of every stage: runs one partition of `input` and writes it as
/// blocks of Arrow IPC, one block per reduce partition.
///
/// This node only describes the write; the executor's task runner performs
/// it (it owns the disk). Executing it like an ordinary operator is an error.
#[derive(Debug, Clone)]
pub struct ShuffleWriterExec {
    stage_id: usize,
    input: Arc<dyn ExecutionPlan>,
    kind: ExchangeKind,
    /// Number of reduce partitions (1 for Single, Broadcast and Forward).
    num_partitions: usize,
    /// Hash keys, evaluated against `input`'s schema (Hash kind only).
    hash_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Sort keys and sampled bounds (Range kind only).
    range: Option<RangeSpec>,
}

impl ShuffleWriterExec {
    pub fn try_new(
        stage_id: usize,
        input: Arc<dyn ExecutionPlan>,
        kind: ExchangeKind,
        num_partitions: usize,
        hash_exprs: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Self> {
        if num_partitions == 0 {
            return internal_err!("stage {stage_id} writes to zero partitions");
        }
        if (kind == ExchangeKind::Hash) == hash_exprs.is_empty() {
            return internal_err!(
                "stage {stage_id}: hash keys must be given exactly for a hash exchange"
            );
        }
        Ok(Self {
            stage_id,
            input,
            kind,
            num_partitions,
            hash_exprs,
            range: None,
        })
    }

    /// A writer of a range shuffle into `num_partitions` partitions.
    pub fn try_new_range(
        stage_id: usize,
        input: Arc<dyn ExecutionPlan>,
        num_partitions: usize,
        range: RangeSpec,
    ) -> Result<Self> {
        if range.keys.is_empty() {
            return internal_err!("stage {stage_id}: a range shuffle needs keys");
        }
        let mut writer =
            Self::try_new(stage_id, input, ExchangeKind::Range, num_partitions, vec![])?;
        writer.range = Some(range);
        Ok(writer)
    }

    /// The sort keys and bounds of a range shuffle.
    pub fn range(&self) -> Option<&RangeSpec> {
        self.range.as_ref()
    }

    pub fn stage_id(&self) -> usize {
        self.stage_id
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    /// Number of partitions of the exchange (not of blocks per map task).
    pub fn num_partitions(&self) -> usize {
        self.num_partitions
    }

    pub fn hash_exprs(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.hash_exprs
    }

    /// How many map tasks the stage has: one per input partition.
    pub fn num_tasks(&self) -> usize {
        self.input.output_partitioning().partition_count()
    }
}

impl DisplayAs for ShuffleWriterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ShuffleWriterExec: stage={}, kind={}, partitions={}",
            self.stage_id,
            self.kind.name(),
            self.num_partitions
        )?;
        if !self.hash_exprs.is_empty() {
            let keys: Vec<String> = self.hash_exprs.iter().map(|e| e.to_string()).collect();
            write!(f, ", keys=[{}]", keys.join(", "))?;
        }
        if let Some(range) = &self.range {
            write!(f, ", keys=[{}]", range.describe_keys())?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ShuffleWriterExec {
    fn name(&self) -> &str {
        "ShuffleWriterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let range_keys = self
            .range
            .iter()
            .flat_map(|r| r.keys.iter().map(|k| &k.expr));
        for expr in self.hash_exprs.iter().chain(range_keys) {
            if f(expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("ShuffleWriterExec has exactly one child");
        }
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            ..(*self).clone()
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        internal_err!(
            "ShuffleWriterExec of stage {} is run by an executor's task runner, not executed as an operator",
            self.stage_id
        )
    }
}
