//! The reduce side of an exchange.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};

use super::{BlockLocation, ExchangeKind, ShuffleRuntimeExt};

/// Reads the output of a finished stage. Each of its partitions is a list of
/// blocks (see [`super::assign_blocks`]); the driver fills the lists in once
/// the input stage has finished, just before it launches this stage.
#[derive(Debug, Clone)]
pub struct ShuffleReaderExec {
    /// The stage whose output this reads.
    stage_id: usize,
    kind: ExchangeKind,
    /// `None` until the input stage has finished.
    partitions: Option<Vec<Vec<BlockLocation>>>,
    properties: Arc<PlanProperties>,
}

impl ShuffleReaderExec {
    /// A reader not yet bound to map outputs. `partitioning` is what the
    /// replaced exchange promised its parent; `eq_properties` carries the
    /// orderings that survive the exchange (only `Forward` keeps any).
    pub fn new(
        stage_id: usize,
        kind: ExchangeKind,
        partitioning: Partitioning,
        eq_properties: EquivalenceProperties,
    ) -> Self {
        let properties = PlanProperties::new(
            eq_properties,
            partitioning,
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            stage_id,
            kind,
            partitions: None,
            properties: Arc::new(properties),
        }
    }

    /// A plain reader of `schema` with no ordering.
    pub fn new_unordered(
        stage_id: usize,
        kind: ExchangeKind,
        partitioning: Partitioning,
        schema: SchemaRef,
    ) -> Self {
        Self::new(
            stage_id,
            kind,
            partitioning,
            EquivalenceProperties::new(schema),
        )
    }

    /// The same reader bound to the blocks of each partition.
    pub fn resolved(&self, partitions: Vec<Vec<BlockLocation>>) -> Result<Self> {
        let expected = self.properties.partitioning.partition_count();
        if partitions.len() != expected {
            return internal_err!(
                "shuffle reader of stage {} has {expected} partitions, got {} block lists",
                self.stage_id,
                partitions.len()
            );
        }
        Ok(Self {
            partitions: Some(partitions),
            ..self.clone()
        })
    }

    /// The same reader bound to one block list per task of an adaptive
    /// stage (see [`crate::adaptive`]): it now has as many partitions as
    /// the stage has tasks. It keeps declaring the hash expressions, so
    /// operators that check their inputs are partitioned alike (a UNION's
    /// interleave) still accept it: every hash reader of the stage is
    /// reshaped the same way, and executors only use the count.
    pub fn resolved_tasks(&self, tasks: Vec<Vec<BlockLocation>>) -> Self {
        let partitioning = match &self.properties.partitioning {
            Partitioning::Hash(exprs, _) => Partitioning::Hash(exprs.clone(), tasks.len()),
            _ => Partitioning::UnknownPartitioning(tasks.len()),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(self.schema()),
            partitioning,
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            stage_id: self.stage_id,
            kind: self.kind,
            partitions: Some(tasks),
            properties: Arc::new(properties),
        }
    }

    pub fn stage_id(&self) -> usize {
        self.stage_id
    }

    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    pub fn partitions(&self) -> Option<&Vec<Vec<BlockLocation>>> {
        self.partitions.as_ref()
    }

    pub fn partitioning(&self) -> &Partitioning {
        &self.properties.partitioning
    }
}

impl DisplayAs for ShuffleReaderExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ShuffleReaderExec: stage={}, kind={}, partitioning={}",
            self.stage_id,
            self.kind.name(),
            self.properties.partitioning
        )?;
        if let Some(parts) = &self.partitions {
            let blocks: usize = parts.iter().map(Vec::len).sum();
            let bytes: u64 = parts.iter().flatten().map(|b| b.bytes).sum();
            write!(f, ", blocks={blocks}, bytes={bytes}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ShuffleReaderExec {
    fn name(&self) -> &str {
        "ShuffleReaderExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("ShuffleReaderExec has no children");
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("ShuffleReaderExec has no children");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(partitions) = &self.partitions else {
            return internal_err!(
                "shuffle reader of stage {} ran before its input stage finished",
                self.stage_id
            );
        };
        let Some(blocks) = partitions.get(partition) else {
            return internal_err!(
                "shuffle reader of stage {} has no partition {partition}",
                self.stage_id
            );
        };
        let Some(runtime) = context
            .session_config()
            .get_extension::<ShuffleRuntimeExt>()
        else {
            return internal_err!("no shuffle runtime installed in this task's session");
        };
        let config = crate::config::minispark_config(context.session_config().options());
        let fetch = super::FetchSettings::from_config(&config);
        if self.kind == ExchangeKind::Broadcast {
            // Every task of the stage reads the same blocks: the executor
            // may share one copy among its tasks.
            return runtime
                .0
                .read_broadcast(blocks.clone(), self.schema(), fetch);
        }
        runtime.0.read(blocks.clone(), self.schema(), fetch)
    }
}
