//! Cutting a physical plan into stages.
//!
//! DataFusion plans a query for one machine: partitions are streams inside
//! one process, and operators such as `RepartitionExec` move rows between
//! them in memory. To run the same plan on many machines, minispark cuts it
//! wherever rows must move between partitions, and puts a
//! [`ShuffleWriterExec`] / [`ShuffleReaderExec`] pair at each cut:
//!
//! | single-node operator                       | becomes                                   |
//! |--------------------------------------------|-------------------------------------------|
//! | `RepartitionExec(Hash(keys, n))`           | hash shuffle into `n` partitions          |
//! | `RepartitionExec(RoundRobinBatch(n))`      | round-robin shuffle into `n` partitions   |
//! | `CoalescePartitionsExec` over `k > 1`      | merge to one partition (`Single`)         |
//! | `SortPreservingMergeExec` over `k > 1`     | `Forward` exchange, merge in the next stage |
//! | build side of a `CollectLeft` hash join, a nested-loop or a cross join | its own `Broadcast` stage |
//! | `RepartitionExchangeExec` (`DISTRIBUTE BY`, `REPARTITION` hints, `df.repartition`) | hash or round-robin shuffle, the stage named after what asked for it |
//! | `RepartitionExchangeExec` by range (`REPARTITION_BY_RANGE`, `df.repartition_by_range`) | range shuffle between sampled bounds ([`crate::exchange::range`]) |
//!
//! Every task of a stage runs one partition of the stage's plan, from its
//! leaves (scans or shuffle readers) to its root (a shuffle writer). The last
//! stage writes the query's result, which the driver reads back.
//!
//! A `CollectLeft` hash join whose join type must emit unmatched build-side
//! rows (LEFT, FULL, LEFT SEMI/ANTI/MARK) cannot be broadcast: every task
//! would emit them. Spark never broadcasts the preserved side of an outer
//! join either; such joins become partitioned hash joins with both sides
//! hash-shuffled on the join keys.
//!
//! A hash join with a MERGE hint on either side (Spark's `/*+ MERGE(t) */`)
//! becomes a sort-merge join, whatever its partition mode:
//!
//! ```text
//!   SortMergeJoinExec                       one task per shuffle partition
//!   ├── SortExec(left keys)                 sorted within the partition
//!   │    └── ShuffleReader(hash, left keys)  ◀── the left side's one shuffle
//!   └── SortExec(right keys)
//!        └── ShuffleReader(hash, right keys) ◀── the right side's one shuffle
//! ```
//!
//! The hash join's own exchanges on its inputs (the hash repartitions of a
//! partitioned join, the merge to one partition of a `CollectLeft` build
//! side) are replaced by these shuffles, not added to them. Only a
//! null-aware anti join (`NOT IN`) stays a hash join: DataFusion's
//! sort-merge join does not implement its null semantics.

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{JoinSide, JoinType, Result, internal_err};
use datafusion::physical_expr::expressions::{Column, Literal, UnKnownColumn};
use datafusion::physical_expr::{
    Distribution, EquivalenceProperties, LexOrdering, Partitioning, PartitioningSatisfaction,
    PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
};
use datafusion::physical_plan::limit::LocalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, replace_children_if_necessary,
};

use crate::exchange::{ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::hints::{HintExec, JoinHint, hint_on};
use crate::join_strategy::SizeEstimate;
use crate::repartition::RepartitionExchangeExec;
use crate::runtime_filter::{Follow, RuntimeFilter, column_origins};

/// One stage: a plan fragment run as one task per partition.
#[derive(Debug, Clone)]
pub struct Stage {
    pub id: usize,
    /// The stage plan; its root is a [`ShuffleWriterExec`].
    pub plan: Arc<dyn ExecutionPlan>,
    /// Stages whose output this stage reads.
    pub inputs: Vec<usize>,
    /// The hash join at the top of the stage (under the writer and
    /// single-input operators only), as adaptive execution needs to know
    /// it once the hints are gone: see [`StageJoin`].
    pub join: Option<StageJoin>,
    /// What asked for the shuffle this stage writes, when the user did
    /// (`DISTRIBUTE BY`, a `REPARTITION` hint, `df.repartition`): see
    /// [`crate::repartition`].
    pub origin: Option<String>,
    /// What adaptive execution may do to the partitions of the shuffle
    /// this stage writes ([`crate::repartition::shuffle_origin`]).
    pub shuffle_origin: crate::repartition::ShuffleOrigin,
    /// The runtime filter on the rows this stage shuffles, when one was
    /// planted ([`crate::runtime_filter`]).
    pub runtime_filter: Option<RuntimeFilter>,
}

/// What the stage cutter remembers of a hash join for adaptive execution
/// (see [`crate::adaptive`]), which may turn it into a broadcast join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageJoin {
    /// Its number in EXPLAIN's list of joins ("join 1: ..."), counted in
    /// plan order like [`crate::join_strategy::describe_joins`].
    pub number: usize,
    /// A `SHUFFLE_HASH` hint is on one of its sides: it stays shuffled.
    pub shuffle_hint: bool,
}

impl Stage {
    pub fn writer(&self) -> &ShuffleWriterExec {
        self.plan
            .downcast_ref::<ShuffleWriterExec>()
            .expect("a stage's root is a ShuffleWriterExec")
    }

    /// The partitions of the plan under the stage's writer (its tasks
    /// before adaptive execution reshapes them).
    pub fn input_partitions(&self) -> usize {
        self.writer()
            .input()
            .properties()
            .partitioning
            .partition_count()
    }

    /// One task per partition of the writer's input.
    pub fn num_tasks(&self) -> usize {
        self.writer().num_tasks()
    }
}

/// The stages of a query, inputs before the stages that read them; the last
/// stage produces the result.
#[derive(Debug, Clone)]
pub struct StageGraph {
    pub stages: Vec<Stage>,
    /// Which strategy each join got and why, for EXPLAIN (set by the driver,
    /// which still sees the hints and size estimates).
    pub join_strategies: Vec<String>,
    /// Joins and GROUP BYs key salting rewrote before this graph was cut
    /// (set by the driver, which decides what to salt).
    pub salted_sites: usize,
    /// Runtime filters the cutter found possible (a join side a runtime
    /// filter may shrink); [`crate::runtime_filter::plant_runtime_filters`]
    /// plants those that pay.
    pub runtime_filter_candidates: Vec<RuntimeFilter>,
}

impl StageGraph {
    pub fn final_stage(&self) -> &Stage {
        self.stages.last().expect("a stage graph has a final stage")
    }

    /// Stages that read stage `id`'s output.
    pub fn consumers(&self, id: usize) -> Vec<usize> {
        self.stages
            .iter()
            .filter(|s| s.inputs.contains(&id))
            .map(|s| s.id)
            .collect()
    }
}

/// Cuts `plan` into stages. `shuffle_partitions` is the partition count used
/// when a join must be turned into a partitioned join.
pub fn plan_stages(plan: Arc<dyn ExecutionPlan>, shuffle_partitions: usize) -> Result<StageGraph> {
    let mut all_joins = vec![];
    number_joins(&plan, &mut all_joins);
    let mut cutter = StageCutter {
        stages: vec![],
        shuffle_partitions: shuffle_partitions.max(1),
        all_joins,
        joins: vec![],
        runtime_filter_candidates: vec![],
        estimates: Default::default(),
    };
    let root = cutter.cut(plan)?;
    // The result stage keeps its partitions as they are (Forward): the driver
    // reads partition after partition, in order.
    cutter.add_stage(root, ExchangeKind::Forward, 1, vec![])?;
    Ok(StageGraph {
        join_strategies: vec![],
        stages: cutter.stages,
        salted_sites: 0,
        runtime_filter_candidates: cutter.runtime_filter_candidates,
    })
}

struct StageCutter {
    stages: Vec<Stage>,
    shuffle_partitions: usize,
    /// The joins of the uncut plan in EXPLAIN's order.
    all_joins: Vec<Arc<dyn ExecutionPlan>>,
    /// Hash joins of the cut plan (the nodes the stages hold) and what
    /// the uncut plan said of them.
    joins: Vec<(Arc<dyn ExecutionPlan>, StageJoin)>,
    /// Runtime filters found possible, see [`StageGraph`].
    runtime_filter_candidates: Vec<RuntimeFilter>,
    /// What the planner estimated of a stage's rows, by stage id, read
    /// from the uncut plan (a cut plan's shuffle readers have no
    /// statistics): for a runtime filter's creation side.
    estimates: std::collections::HashMap<usize, SizeEstimate>,
}

impl StageCutter {
    /// Makes `input` a stage writing with `kind`; returns the new stage's id.
    fn add_stage(
        &mut self,
        input: Arc<dyn ExecutionPlan>,
        kind: ExchangeKind,
        num_partitions: usize,
        hash_exprs: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    ) -> Result<usize> {
        let id = self.stages.len();
        let inputs = input_stages(&input);
        let join = top_join(&input).and_then(|top| {
            self.joins
                .iter()
                .find(|(j, _)| same_node(j, top))
                .map(|(_, note)| *note)
        });
        let writer = ShuffleWriterExec::try_new(id, input, kind, num_partitions, hash_exprs)?;
        self.stages.push(Stage {
            id,
            plan: Arc::new(writer),
            inputs,
            join,
            origin: None,
            shuffle_origin: Default::default(),
            runtime_filter: None,
        });
        Ok(id)
    }

    /// Notes the estimate of `uncut`, the plan a stage's rows came from, for
    /// the stage `reader` reads.
    fn note_estimate(&mut self, reader: &Arc<dyn ExecutionPlan>, uncut: &Arc<dyn ExecutionPlan>) {
        if let Some(reader) = reader.downcast_ref::<ShuffleReaderExec>() {
            self.estimates
                .insert(reader.stage_id(), SizeEstimate::of(uncut));
        }
    }

    /// Cuts `input` off as its own stage and returns the reader that replaces it.
    fn exchange(
        &mut self,
        input: Arc<dyn ExecutionPlan>,
        kind: ExchangeKind,
        partitioning: Partitioning,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = input.schema();
        let (num_partitions, hash_exprs) = match &partitioning {
            Partitioning::Hash(exprs, n) => (*n, exprs.clone()),
            other => (other.partition_count(), vec![]),
        };
        let eq_properties = if kind == ExchangeKind::Forward {
            input.equivalence_properties().clone()
        } else {
            EquivalenceProperties::new(Arc::clone(&schema))
        };
        let reader_partitioning = match kind {
            ExchangeKind::Forward => {
                Partitioning::UnknownPartitioning(input.output_partitioning().partition_count())
            }
            ExchangeKind::Single | ExchangeKind::Broadcast => Partitioning::UnknownPartitioning(1),
            ExchangeKind::Hash | ExchangeKind::RoundRobin | ExchangeKind::Range => {
                partitioning.clone()
            }
        };
        let writer_partitions = match kind {
            ExchangeKind::Hash | ExchangeKind::RoundRobin | ExchangeKind::Range => num_partitions,
            _ => 1,
        };
        let id = self.add_stage(input, kind, writer_partitions, hash_exprs)?;
        Ok(Arc::new(ShuffleReaderExec::new(
            id,
            kind,
            reader_partitioning,
            eq_properties,
        )))
    }

    /// Cuts `input` off as a stage writing a range shuffle into `n`
    /// partitions ([`crate::exchange::range`]); returns its reader.
    fn range_exchange(
        &mut self,
        input: Arc<dyn ExecutionPlan>,
        n: usize,
        range: crate::exchange::RangeSpec,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = input.schema();
        let id = self.add_stage(Arc::clone(&input), ExchangeKind::Range, n, vec![])?;
        self.stages[id].plan = Arc::new(ShuffleWriterExec::try_new_range(id, input, n, range)?);
        Ok(Arc::new(ShuffleReaderExec::new(
            id,
            ExchangeKind::Range,
            Partitioning::UnknownPartitioning(n),
            EquivalenceProperties::new(schema),
        )))
    }

    /// `plan` as one partition: merged by a `Single` exchange when it has
    /// several.
    fn one_task(&mut self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if plan.output_partitioning().partition_count() <= 1 {
            return Ok(plan);
        }
        self.exchange(
            plan,
            ExchangeKind::Single,
            Partitioning::UnknownPartitioning(1),
        )
    }

    /// Gives the build side of a join its own broadcast stage (unless it
    /// already is a plain reader of one partition).
    fn broadcast(&mut self, build: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        // The optimizer put a merge to one partition under the build side;
        // the broadcast stage replaces it.
        let build = match build.downcast_ref::<CoalescePartitionsExec>() {
            Some(c) if c.fetch().is_none() => Arc::clone(c.input()),
            _ => build,
        };
        let build = self.cut(build)?;
        // A build side that is only cheap row-by-row operators over one
        // merged partition is read by every probe task directly: recomputing
        // a projection or filter costs less than one more stage.
        if build.output_partitioning().partition_count() == 1 && is_cheap_over_merged_reads(&build)
        {
            return Ok(build);
        }
        self.exchange(
            build,
            ExchangeKind::Broadcast,
            Partitioning::UnknownPartitioning(1),
        )
    }

    fn cut(&mut self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
            let input = self.cut(Arc::clone(repartition.input()))?;
            let partitioning = repartition.partitioning().clone();
            let kind = match &partitioning {
                Partitioning::Hash(..) => ExchangeKind::Hash,
                Partitioning::RoundRobinBatch(_) => ExchangeKind::RoundRobin,
                other => {
                    return internal_err!("minispark cannot shuffle with {other} partitioning");
                }
            };
            let ordering = repartition
                .preserve_order()
                .then(|| input.output_ordering().cloned())
                .flatten();
            let reader = self.exchange(input, kind, partitioning)?;
            self.note_estimate(&reader, repartition.input());
            // A shuffle interleaves map outputs: restore the order the
            // single-node plan relied on.
            return Ok(match ordering {
                Some(ordering) => {
                    Arc::new(SortExec::new(ordering, reader).with_preserve_partitioning(true))
                }
                None => reader,
            });
        }

        if let Some(coalesce) = plan.downcast_ref::<CoalescePartitionsExec>() {
            let input = self.cut(Arc::clone(coalesce.input()))?;
            if input.output_partitioning().partition_count() <= 1 {
                return replace_children_if_necessary(Arc::clone(&plan), vec![input]);
            }
            let reader = self.exchange(
                input,
                ExchangeKind::Single,
                Partitioning::UnknownPartitioning(1),
            )?;
            return replace_children_if_necessary(Arc::clone(&plan), vec![reader]);
        }

        if let Some(merge) = plan.downcast_ref::<SortPreservingMergeExec>() {
            let input = self.cut(Arc::clone(merge.input()))?;
            if input.output_partitioning().partition_count() <= 1 {
                return replace_children_if_necessary(Arc::clone(&plan), vec![input]);
            }
            let reader = self.exchange(
                input,
                ExchangeKind::Forward,
                Partitioning::UnknownPartitioning(0),
            )?;
            return replace_children_if_necessary(Arc::clone(&plan), vec![reader]);
        }

        // A repartition the user asked for: a shuffle of its own, named
        // after what asked for it.
        if let Some(requested) = plan.downcast_ref::<RepartitionExchangeExec>() {
            let mut input = self.cut(Arc::clone(requested.input()))?;
            let partitioning = requested.partitioning().clone();
            let kind = match &partitioning {
                Partitioning::Hash(..) => ExchangeKind::Hash,
                _ => ExchangeKind::RoundRobin,
            };
            // Rows without columns (`SELECT count(*)` over a repartition)
            // cross the shuffle as one constant column, dropped after it.
            let no_columns = input.schema().fields().is_empty();
            if no_columns {
                let row: Arc<dyn PhysicalExpr> =
                    Arc::new(Literal::new(ScalarValue::Boolean(Some(true))));
                input = Arc::new(ProjectionExec::try_new(
                    vec![(row, "__minispark_row".to_string())],
                    input,
                )?);
            }
            let mut reader = match requested.range() {
                Some(range) => {
                    self.range_exchange(input, partitioning.partition_count(), range.clone())?
                }
                None => self.exchange(input, kind, partitioning)?,
            };
            if let Some(stage) = self.stages.last_mut() {
                stage.origin = Some(requested.origin().to_string());
                stage.shuffle_origin = requested.shuffle_origin();
            }
            if no_columns {
                reader = Arc::new(ProjectionExec::try_new(
                    Vec::<(Arc<dyn PhysicalExpr>, String)>::new(),
                    reader,
                )?);
            }
            return Ok(reader);
        }

        // Hints have done their work: join strategies are chosen.
        if let Some(hint) = plan.downcast_ref::<HintExec>() {
            return self.cut(Arc::clone(hint.input()));
        }

        if let Some(join) = plan.downcast_ref::<HashJoinExec>()
            && is_merge_join(join)
        {
            return self.cut_merge_join(join);
        }

        // NOT IN (a null-aware anti join): one NULL anywhere in the subquery
        // empties the answer, and DataFusion tracks "has the probe side a
        // NULL / any row" across the partitions of one process. Tasks do
        // not share that state, so the probe side runs as one task.
        if let Some(join) = plan.downcast_ref::<HashJoinExec>()
            && join.null_aware
        {
            let build = self.broadcast(Arc::clone(join.left()))?;
            let probe = self.cut(Arc::clone(join.right()))?;
            let probe = self.one_task(probe)?;
            return replace_children_if_necessary(Arc::clone(&plan), vec![build, probe]);
        }

        if let Some(join) = plan.downcast_ref::<HashJoinExec>()
            && *join.partition_mode() == PartitionMode::CollectLeft
        {
            let shuffle_hint = hint_on(join.left()) == Some(JoinHint::Shuffle)
                || hint_on(join.right()) == Some(JoinHint::Shuffle);
            if emits_unmatched_build_rows(join.join_type()) || shuffle_hint {
                let cut = self.cut_partitioned_join(join)?;
                return Ok(self.remember_join(&plan, cut));
            }
            let build = self.broadcast(Arc::clone(join.left()))?;
            let probe = self.cut(Arc::clone(join.right()))?;
            self.note_broadcast_runtime_filters(&plan, join, &build, &probe);
            return replace_children_if_necessary(Arc::clone(&plan), vec![build, probe]);
        }

        if let Some(join) = plan.downcast_ref::<NestedLoopJoinExec>() {
            let build = self.broadcast(Arc::clone(join.left()))?;
            let mut probe = self.cut(Arc::clone(join.right()))?;
            // Unmatched build rows are emitted once all probe partitions are
            // done, which only works when there is one probe task.
            if emits_unmatched_build_rows(join.join_type()) {
                probe = self.one_task(probe)?;
            }
            return replace_children_if_necessary(Arc::clone(&plan), vec![build, probe]);
        }

        if let Some(join) = plan.downcast_ref::<CrossJoinExec>() {
            let build = self.broadcast(Arc::clone(join.left()))?;
            let probe = self.cut(Arc::clone(join.right()))?;
            return replace_children_if_necessary(Arc::clone(&plan), vec![build, probe]);
        }

        let children = plan.children();
        if children.is_empty() {
            return Ok(plan);
        }
        let new_children = children
            .into_iter()
            .map(|c| self.cut(Arc::clone(c)))
            .collect::<Result<Vec<_>>>()?;
        let cut = replace_children_if_necessary(Arc::clone(&plan), new_children)?;
        // A join DataFusion planned partitioned, hints and all.
        Ok(match plan.downcast_ref::<HashJoinExec>() {
            Some(_) => self.remember_join(&plan, cut),
            None => cut,
        })
    }

    /// Notes that hash join `uncut` of the uncut plan became `cut`, for
    /// [`Stage::join`]; returns `cut`.
    fn remember_join(
        &mut self,
        uncut: &Arc<dyn ExecutionPlan>,
        cut: Arc<dyn ExecutionPlan>,
    ) -> Arc<dyn ExecutionPlan> {
        let number = self.all_joins.iter().position(|j| same_node(j, uncut));
        if let (Some(number), Some(join)) = (number, uncut.downcast_ref::<HashJoinExec>()) {
            let shuffle_hint = hint_on(join.left()) == Some(JoinHint::Shuffle)
                || hint_on(join.right()) == Some(JoinHint::Shuffle);
            let note = StageJoin {
                number: number + 1,
                shuffle_hint,
            };
            self.joins.push((Arc::clone(&cut), note));
            self.note_runtime_filters(number + 1, join, &cut);
        }
        cut
    }

    /// Notes hash join `uncut`, cut into `cut` (a partitioned join over
    /// two hash readers), as a candidate for a runtime filter: on its right
    /// side by its left side's keys, or the other way round, as its join
    /// type allows ([`crate::runtime_filter`] plants those whose sizes fit).
    fn note_runtime_filters(
        &mut self,
        number: usize,
        join: &HashJoinExec,
        cut: &Arc<dyn ExecutionPlan>,
    ) {
        let partitioned = cut
            .downcast_ref::<HashJoinExec>()
            .is_some_and(|j| *j.partition_mode() == PartitionMode::Partitioned);
        if join.null_aware || !partitioned {
            return;
        }
        let (Some(left_stage), Some(right_stage)) =
            (hash_input_stage(cut, 0), hash_input_stage(cut, 1))
        else {
            return;
        };
        let left_keys: Vec<_> = join.on().iter().map(|(l, _)| Arc::clone(l)).collect();
        let right_keys: Vec<_> = join.on().iter().map(|(_, r)| Arc::clone(r)).collect();
        // Only a side that filters its rows can be expected to drop many
        // of the other side's: a whole dimension table joined on a foreign
        // key matches every row (Spark asks for a selective filter too).
        let left_filters = has_filter(join.left());
        let right_filters = has_filter(join.right());
        let left = SizeEstimate::of(join.left());
        let right = SizeEstimate::of(join.right());
        let mut sides = vec![];
        if left_filters && RuntimeFilter::filters_right_side(join.join_type()) {
            sides.push((
                left_stage,
                right_stage,
                &left_keys,
                &right_keys,
                left,
                right,
            ));
        }
        if right_filters && RuntimeFilter::filters_left_side(join.join_type()) {
            sides.push((
                right_stage,
                left_stage,
                &right_keys,
                &left_keys,
                right,
                left,
            ));
        }
        for (creation, application, creation_keys, application_keys, estimate, big) in sides {
            // The side itself first, then the same keys from a stage under
            // it, in case the side's own estimate is too big to plant it.
            let deeper =
                self.key_supersets(creation, creation_keys)
                    .into_iter()
                    .map(|(stage, keys)| {
                        let estimate = match self.estimates.get(&stage) {
                            Some(estimate) => *estimate,
                            None => SizeEstimate::of(self.stages[stage].writer().input()),
                        };
                        (stage, keys, estimate)
                    });
            let creations: Vec<_> = std::iter::once((creation, creation_keys.clone(), estimate))
                .chain(deeper)
                .collect();
            for (creation_stage, creation_keys, creation_estimate) in creations {
                self.runtime_filter_candidates.push(RuntimeFilter {
                    join: number,
                    application_stage: application,
                    creation_stage,
                    creation_keys,
                    application_keys: application_keys.clone(),
                    null_equality: join.null_equality(),
                    creation_estimate,
                    application_estimate: big,
                    creation_broadcast: false,
                    threshold: 0,
                });
            }
        }
    }

    /// The stages under stage `creation` that hold every value of its
    /// `keys` (columns of its rows), with those keys over their own rows
    /// ([`column_origins`] with [`Follow::Superset`]), nearest first: a
    /// creation side for the same filter that is ready sooner. TPC-H q21:
    /// the lineitems of one nation's suppliers (a few MB, estimated so)
    /// hold every order key of the `EXISTS` join above them (estimated 90
    /// MiB, after a join whose output DataFusion cannot estimate).
    fn key_supersets(
        &self,
        creation: usize,
        keys: &[Arc<dyn PhysicalExpr>],
    ) -> Vec<(usize, Vec<Arc<dyn PhysicalExpr>>)> {
        let rows = self.stages[creation].writer().input();
        let mut per_key = vec![];
        for key in keys {
            let Some(column) = key.downcast_ref::<Column>() else {
                return vec![];
            };
            let mut origins = vec![];
            column_origins(
                &self.stages,
                rows,
                column.index(),
                Follow::Superset,
                &mut origins,
            );
            per_key.push(origins);
        }
        let Some(first) = per_key.first() else {
            return vec![];
        };
        // Stages every key reaches, each stage once.
        let mut found = vec![];
        for &(stage, _) in first {
            if found.iter().any(|(s, _)| *s == stage) {
                continue;
            }
            let schema = self.stages[stage].writer().input().schema();
            let keys: Option<Vec<Arc<dyn PhysicalExpr>>> = per_key
                .iter()
                .map(|origins| {
                    let &(_, index) = origins.iter().find(|(s, _)| *s == stage)?;
                    Some(Arc::new(Column::new(schema.field(index).name(), index))
                        as Arc<dyn PhysicalExpr>)
                })
                .collect();
            if let Some(keys) = keys {
                found.push((stage, keys));
            }
        }
        found
    }

    /// Notes runtime filters for a broadcast join `uncut` (cut into `build`,
    /// a broadcast reader, and `probe`): the broadcast keys may filter the
    /// rows of the stages under the probe side that carry the probe keys,
    /// before their shuffle ([`column_origins`]).
    /// TPC-H q18: the nine orders of the `IN (... HAVING ...)` subquery
    /// filtering the 6 M lineitems joined with all orders; q7: the two
    /// nations filtering the suppliers (and so the lineitems) joined three
    /// joins below. Only joins that drop the probe rows without a partner
    /// (INNER, RIGHT SEMI) and match no NULL, whose build side filters its
    /// rows. A stage reached by several keys filters on all of them.
    fn note_broadcast_runtime_filters(
        &mut self,
        uncut: &Arc<dyn ExecutionPlan>,
        join: &HashJoinExec,
        build: &Arc<dyn ExecutionPlan>,
        probe: &Arc<dyn ExecutionPlan>,
    ) {
        use datafusion::common::NullEquality;
        use std::collections::BTreeMap;
        let Some(number) = self.all_joins.iter().position(|j| same_node(j, uncut)) else {
            return;
        };
        let Some(creation_stage) = build
            .downcast_ref::<ShuffleReaderExec>()
            .filter(|r| r.kind() == ExchangeKind::Broadcast)
            .map(|r| r.stage_id())
        else {
            return;
        };
        let nothing = NullEquality::NullEqualsNothing;
        // As for shuffled joins: only a build side that filters its rows.
        if !matches!(join.join_type(), JoinType::Inner | JoinType::RightSemi)
            || join.null_equality() != nothing
            || !has_filter(join.left())
        {
            return;
        }
        // Per stage reached: its keys, over the creation stage's output and
        // over the stage's own rows.
        type Keys = (Vec<Arc<dyn PhysicalExpr>>, Vec<Arc<dyn PhysicalExpr>>);
        let mut reached: BTreeMap<usize, Keys> = BTreeMap::new();
        for (creation_key, probe_key) in join.on() {
            let Some(column) = probe_key.downcast_ref::<Column>() else {
                continue;
            };
            let mut origins = vec![];
            column_origins(
                &self.stages,
                probe,
                column.index(),
                Follow::Dropped,
                &mut origins,
            );
            for (stage, index) in origins {
                let field = self.stages[stage]
                    .writer()
                    .input()
                    .schema()
                    .field(index)
                    .clone();
                let keys = reached.entry(stage).or_default();
                if keys.1.iter().any(|k| {
                    k.downcast_ref::<Column>()
                        .is_some_and(|c| c.index() == index)
                }) {
                    continue;
                }
                keys.0.push(Arc::clone(creation_key));
                keys.1.push(Arc::new(Column::new(field.name(), index)));
            }
        }
        for (application_stage, (creation_keys, application_keys)) in reached {
            // What the stage shuffles, as the planner estimates it.
            let rows = Arc::clone(self.stages[application_stage].writer().input());
            self.runtime_filter_candidates.push(RuntimeFilter {
                join: number + 1,
                application_stage,
                creation_stage,
                creation_keys,
                application_keys,
                null_equality: nothing,
                creation_estimate: SizeEstimate::default(),
                application_estimate: SizeEstimate::of(&rows),
                creation_broadcast: true,
                threshold: 0,
            });
        }
    }

    /// Rewrites a `CollectLeft` join into a partitioned one, both sides hash
    /// shuffled on the join keys.
    fn cut_partitioned_join(&mut self, join: &HashJoinExec) -> Result<Arc<dyn ExecutionPlan>> {
        let n = self.shuffle_partitions;
        let strip = |p: &Arc<dyn ExecutionPlan>| match p.downcast_ref::<CoalescePartitionsExec>() {
            Some(c) if c.fetch().is_none() => Arc::clone(c.input()),
            _ => Arc::clone(p),
        };
        let left_keys = join.on().iter().map(|(l, _)| Arc::clone(l)).collect();
        let right_keys = join.on().iter().map(|(_, r)| Arc::clone(r)).collect();
        let left = self.cut(strip(join.left()))?;
        let right = self.cut(strip(join.right()))?;
        let left = self.exchange(left, ExchangeKind::Hash, Partitioning::Hash(left_keys, n))?;
        let right = self.exchange(right, ExchangeKind::Hash, Partitioning::Hash(right_keys, n))?;
        self.note_estimate(&left, join.left());
        self.note_estimate(&right, join.right());
        join.builder()
            .with_partition_mode(PartitionMode::Partitioned)
            .with_new_children(vec![left, right])?
            .build_exec()
    }

    /// Rewrites a hash join into a sort-merge join: each side hash shuffled
    /// on its join keys into `shuffle_partitions` partitions (one shuffle per
    /// side), sorted on them within each partition, then merged.
    fn cut_merge_join(&mut self, join: &HashJoinExec) -> Result<Arc<dyn ExecutionPlan>> {
        let n = self.shuffle_partitions;
        let left_keys: Vec<_> = join.on().iter().map(|(l, _)| Arc::clone(l)).collect();
        let right_keys: Vec<_> = join.on().iter().map(|(_, r)| Arc::clone(r)).collect();
        let sort_options = vec![SortOptions::default(); left_keys.len()];
        let left = self.merge_join_side(join.left(), &left_keys, n)?;
        let right = self.merge_join_side(join.right(), &right_keys, n)?;
        let smj: Arc<dyn ExecutionPlan> = Arc::new(SortMergeJoinExec::try_new(
            left,
            right,
            join.on().to_vec(),
            join.filter().map(merge_join_filter).transpose()?,
            *join.join_type(),
            sort_options,
            join.null_equality(),
        )?);
        // The hash join's embedded projection and fetch, as operators.
        let mut out = match &join.projection {
            Some(indices) => {
                let schema = join.join_schema();
                let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = indices
                    .iter()
                    .map(|&i| {
                        let name = schema.field(i).name().clone();
                        (Arc::new(Column::new(&name, i)) as _, name)
                    })
                    .collect();
                Arc::new(ProjectionExec::try_new(exprs, smj)?) as Arc<dyn ExecutionPlan>
            }
            None => smj,
        };
        if let Some(fetch) = join.fetch() {
            out = Arc::new(LocalLimitExec::new(out, fetch));
        }
        // The operators above were planned for the hash join's output: keep
        // what they may rely on, its partitioning (unless its projection
        // dropped the keys) and its order.
        let properties = join.properties();
        if let Partitioning::Hash(exprs, count) = properties.output_partitioning()
            && exprs
                .iter()
                .all(|e| e.downcast_ref::<UnKnownColumn>().is_none())
            && out.output_partitioning().satisfaction(
                &Distribution::KeyPartitioned(exprs.clone()),
                out.equivalence_properties(),
                false,
            ) != PartitioningSatisfaction::Exact
        {
            out = self.exchange(
                out,
                ExchangeKind::Hash,
                Partitioning::Hash(exprs.clone(), *count),
            )?;
        }
        if let Some(ordering) = properties.output_ordering()
            && !out
                .equivalence_properties()
                .ordering_satisfy(ordering.clone())?
        {
            out = Arc::new(SortExec::new(ordering.clone(), out).with_preserve_partitioning(true));
        }
        Ok(out)
    }

    /// One side of a sort-merge join: its own exchanges stripped, cut, hash
    /// shuffled on `keys` into `n` partitions and sorted on `keys`.
    fn merge_join_side(
        &mut self,
        side: &Arc<dyn ExecutionPlan>,
        keys: &[Arc<dyn PhysicalExpr>],
        n: usize,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self.cut(strip_exchanges(side))?;
        let reader = self.exchange(
            input,
            ExchangeKind::Hash,
            Partitioning::Hash(keys.to_vec(), n),
        )?;
        let ordering = keys
            .iter()
            .map(|k| PhysicalSortExpr::new(Arc::clone(k), SortOptions::default()));
        let Some(ordering) = LexOrdering::new(ordering) else {
            return internal_err!("a sort-merge join needs join keys");
        };
        Ok(Arc::new(
            SortExec::new(ordering, reader).with_preserve_partitioning(true),
        ))
    }
}

/// True when the stage cutter plans `join` as a sort-merge join: a MERGE
/// hint on either side. A null-aware anti join (`NOT IN`) stays a hash join:
/// DataFusion's sort-merge join would treat a NULL key on the right as no
/// match.
pub(crate) fn is_merge_join(join: &HashJoinExec) -> bool {
    let hinted = hint_on(join.left()) == Some(JoinHint::Merge)
        || hint_on(join.right()) == Some(JoinHint::Merge);
    hinted && !join.null_aware
}

/// A hash join's filter as DataFusion 55's sort-merge join can evaluate it.
/// That join builds the filter's input batch from the left side's columns
/// and then the right side's, whatever order the filter lists them in (a
/// join whose inputs were swapped lists the right first), and fills the
/// columns of a side that did not match with nulls, which a non-nullable
/// field refuses. So: left columns first, every field nullable.
fn merge_join_filter(filter: &JoinFilter) -> Result<JoinFilter> {
    let indices = filter.column_indices();
    let order: Vec<usize> = (0..indices.len())
        .filter(|&i| indices[i].side == JoinSide::Left)
        .chain((0..indices.len()).filter(|&i| indices[i].side != JoinSide::Left))
        .collect();
    // Old position in the filter's input -> new position.
    let mut new_position = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_position[old] = new;
    }
    let schema = filter.schema();
    let fields: Vec<_> = order
        .iter()
        .map(|&old| schema.field(old).clone().with_nullable(true))
        .collect();
    let expression = Arc::clone(filter.expression())
        .transform(|e| {
            Ok(match e.downcast_ref::<Column>() {
                Some(c) => {
                    Transformed::yes(Arc::new(Column::new(c.name(), new_position[c.index()])) as _)
                }
                None => Transformed::no(e),
            })
        })?
        .data;
    Ok(JoinFilter::new(
        expression,
        order.iter().map(|&old| indices[old].clone()).collect(),
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
    ))
}

/// `plan` without the exchanges the optimizer put on top of it for a hash
/// join (hints, merges to one partition, repartitions): a sort-merge join
/// side gets one hash shuffle instead.
fn strip_exchanges(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if let Some(hint) = plan.downcast_ref::<HintExec>() {
        return strip_exchanges(hint.input());
    }
    if let Some(c) = plan.downcast_ref::<CoalescePartitionsExec>()
        && c.fetch().is_none()
    {
        return strip_exchanges(c.input());
    }
    if let Some(r) = plan.downcast_ref::<RepartitionExec>() {
        return strip_exchanges(r.input());
    }
    Arc::clone(plan)
}

/// True when `plan` is streaming, row-by-row operators over shuffle readers
/// that each read a whole stage output as one partition.
fn is_cheap_over_merged_reads(plan: &Arc<dyn ExecutionPlan>) -> bool {
    use datafusion::physical_plan::filter::FilterExec;
    use datafusion::physical_plan::projection::ProjectionExec;
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return matches!(
            reader.kind(),
            ExchangeKind::Single | ExchangeKind::Broadcast
        );
    }
    let cheap = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        || plan.is::<CoalescePartitionsExec>();
    cheap && plan.children().into_iter().all(is_cheap_over_merged_reads)
}

/// The stage whose hash shuffle input `i` of `join` reads directly.
fn hash_input_stage(join: &Arc<dyn ExecutionPlan>, i: usize) -> Option<usize> {
    join.children()
        .get(i)
        .and_then(|c| c.downcast_ref::<ShuffleReaderExec>())
        .filter(|r| r.kind() == ExchangeKind::Hash)
        .map(|r| r.stage_id())
}

/// True when `plan` filters rows somewhere (a `FilterExec` in it).
fn has_filter(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<datafusion::physical_plan::filter::FilterExec>()
        || plan.children().into_iter().any(has_filter)
}

/// True for join types whose build (left) side's unmatched rows are
/// emitted: broadcasting that side would emit them once per task.
pub(crate) fn emits_unmatched_build_rows(join_type: &JoinType) -> bool {
    matches!(
        join_type,
        JoinType::Left
            | JoinType::LeftAnti
            | JoinType::LeftSemi
            | JoinType::LeftMark
            | JoinType::Full
    )
}

/// The joins of `plan` in the order EXPLAIN numbers them
/// ([`crate::join_strategy::describe_joins`]: depth first, a join before
/// its inputs).
fn number_joins(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<Arc<dyn ExecutionPlan>>) {
    use datafusion::physical_plan::joins::SortMergeJoinExec;
    if plan.is::<HashJoinExec>()
        || plan.is::<NestedLoopJoinExec>()
        || plan.is::<CrossJoinExec>()
        || plan.is::<SortMergeJoinExec>()
    {
        out.push(Arc::clone(plan));
    }
    for child in plan.children() {
        number_joins(child, out);
    }
}

/// The first node under `plan` with other than one input, when it is a
/// hash join.
fn top_join(plan: &Arc<dyn ExecutionPlan>) -> Option<&Arc<dyn ExecutionPlan>> {
    if plan.is::<HashJoinExec>() {
        return Some(plan);
    }
    match plan.children().as_slice() {
        [only] => top_join(only),
        _ => None,
    }
}

/// True when `a` and `b` are the same plan node (not merely equal).
fn same_node(a: &Arc<dyn ExecutionPlan>, b: &Arc<dyn ExecutionPlan>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// The stages read by the shuffle readers in `plan` (not looking into other stages).
fn input_stages(plan: &Arc<dyn ExecutionPlan>) -> Vec<usize> {
    let mut out = vec![];
    collect_readers(plan, &mut |r| {
        if !out.contains(&r.stage_id()) {
            out.push(r.stage_id());
        }
    });
    out
}

/// Calls `f` for every shuffle reader in `plan`.
pub fn collect_readers(plan: &Arc<dyn ExecutionPlan>, f: &mut dyn FnMut(&ShuffleReaderExec)) {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        f(reader);
    }
    for child in plan.children() {
        collect_readers(child, f);
    }
}

/// Replaces every shuffle reader in `plan` by what `f` returns for it.
pub fn replace_readers(
    plan: Arc<dyn ExecutionPlan>,
    f: &mut dyn FnMut(&ShuffleReaderExec) -> Result<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return f(reader);
    }
    let children = plan.children();
    if children.is_empty() {
        return Ok(plan);
    }
    let new_children = children
        .into_iter()
        .map(|c| replace_readers(Arc::clone(c), f))
        .collect::<Result<Vec<_>>>()?;
    replace_children_if_necessary(plan, new_children)
}

#[cfg(test)]
pub(crate) mod tests {
    //! Stage-graph snapshots for TPC-H queries: where the cuts fall.

    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::session::session_context;
    use minispark_datagen::tpch::{TpchTable, TpchTableProvider};

    /// The stage graph of `sql` over TPC-H SF1 (the generated tables)
    /// with 4 partitions.
    pub(crate) async fn tpch_graph(sql: &str) -> StageGraph {
        let settings: HashMap<String, String> = [(
            "datafusion.execution.target_partitions".to_string(),
            "4".to_string(),
        )]
        .into();
        let ctx = session_context(&settings).unwrap();
        for t in TpchTable::ALL {
            ctx.register_table(t.name(), Arc::new(TpchTableProvider::new(t, 1.0)))
                .unwrap();
        }
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        plan_stages(plan, 4).unwrap()
    }

    /// The stage headers of a TPC-H query planned at SF1 with 4 partitions.
    async fn stage_headers(query: usize) -> String {
        let path = format!(
            "{}/../tests/tpch/queries/q{query}.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        let graph = tpch_graph(&std::fs::read_to_string(path).unwrap()).await;
        crate::explain::format_stage_graph(
            &graph,
            None,
            &crate::skew::SkewRule::from_config(&Default::default()),
        )
        .lines()
        .filter(|l| l.starts_with("Stage"))
        .collect::<Vec<_>>()
        .join("\n")
    }

    #[tokio::test]
    async fn q1_aggregate_then_merge() {
        insta_like(1, &stage_headers(1).await);
    }

    #[tokio::test]
    async fn q3_joins_and_top_k() {
        insta_like(3, &stage_headers(3).await);
    }

    #[tokio::test]
    async fn q5_six_way_join() {
        insta_like(5, &stage_headers(5).await);
    }

    #[tokio::test]
    async fn q13_left_join_is_never_broadcast_on_its_preserved_side() {
        insta_like(13, &stage_headers(13).await);
    }

    /// `sql` over TPC-H at SF1, with a MERGE hint on `hinted`, cut into
    /// stages with 4 partitions.
    async fn merge_hinted_stages(sql: &str, hinted: &str, threshold: &str) -> StageGraph {
        let settings: HashMap<String, String> = [
            (
                "datafusion.execution.target_partitions".to_string(),
                "4".to_string(),
            ),
            (
                "datafusion.optimizer.hash_join_single_partition_threshold".to_string(),
                threshold.to_string(),
            ),
        ]
        .into();
        let ctx = session_context(&settings).unwrap();
        for t in TpchTable::ALL {
            ctx.register_table(t.name(), Arc::new(TpchTableProvider::new(t, 1.0)))
                .unwrap();
        }
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let plan =
            crate::hints::apply_hints(plan, &[(JoinHint::Merge, hinted.to_string())]).unwrap();
        let physical = ctx.state().create_physical_plan(&plan).await.unwrap();
        plan_stages(physical, 4).unwrap()
    }

    /// The stage holding the sort-merge join of a stage graph, its plan
    /// text, and how many hash shuffles it reads.
    fn merge_join_stage(graph: &StageGraph) -> (&Stage, String, usize) {
        let text = |s: &Stage| {
            datafusion::physical_plan::displayable(s.plan.as_ref())
                .indent(false)
                .to_string()
        };
        let stage = graph
            .stages
            .iter()
            .find(|s| text(s).contains("SortMergeJoinExec"))
            .expect("a stage with a sort-merge join");
        let mut hash_reads = 0;
        collect_readers(&stage.plan, &mut |r| {
            hash_reads += usize::from(r.kind() == ExchangeKind::Hash)
        });
        (stage, text(stage), hash_reads)
    }

    #[tokio::test]
    async fn merge_hint_plans_a_sort_merge_join_with_one_shuffle_per_side() {
        // Partitioned by DataFusion (both sides big), and CollectLeft (the
        // nation side tiny; the hinted customers are not broadcast).
        let cases = [
            (
                "SELECT o_orderpriority, count(*) FROM orders JOIN lineitem
                 ON l_orderkey = o_orderkey GROUP BY o_orderpriority",
                "orders",
                "1",
                4,
            ),
            (
                "SELECT n_name, count(*) FROM customer JOIN nation
                 ON c_nationkey = n_nationkey GROUP BY n_name",
                "customer",
                "10485760",
                4,
            ),
            (
                "SELECT count(*) FROM nation FULL JOIN customer
                 ON c_nationkey = n_nationkey AND c_acctbal > 0",
                "nation",
                "10485760",
                4,
            ),
        ];
        for (sql, hinted, threshold, stages) in cases {
            let graph = merge_hinted_stages(sql, hinted, threshold).await;
            let (join_stage, text, hash_reads) = merge_join_stage(&graph);
            assert_eq!(hash_reads, 2, "one hash shuffle per side:\n{text}");
            // Two scans shuffled, the join, the aggregate's result: no
            // shuffle is added after the join.
            assert_eq!(graph.stages.len(), stages, "{sql}:\n{text}");
            assert!(!text.contains("HashJoinExec"), "{text}");
            assert!(!text.contains("HintExec"), "{text}");
            assert_eq!(text.matches("SortExec").count(), 2, "{text}");
            // No side is shuffled twice: every stage feeding the join reads
            // scans, not another shuffle.
            for input in &join_stage.inputs {
                assert!(
                    graph.stages[*input].inputs.is_empty(),
                    "stage {input} reads another stage:\n{text}"
                );
            }
        }
    }

    #[test]
    fn merge_join_filter_lists_left_columns_first_and_nullable() {
        use arrow::datatypes::{DataType, Field};
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::BinaryExpr;
        use datafusion::physical_plan::joins::utils::ColumnIndex;
        // A swapped join's filter: `r > l`, the right side's column first.
        let schema = Arc::new(Schema::new(vec![
            Field::new("r", DataType::Int32, false),
            Field::new("l", DataType::Int32, false),
        ]));
        let expr = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("r", 0)),
            Operator::Gt,
            Arc::new(Column::new("l", 1)),
        ));
        let side = |index, side| ColumnIndex { index, side };
        let indices = vec![side(3, JoinSide::Right), side(5, JoinSide::Left)];
        let filter = merge_join_filter(&JoinFilter::new(expr, indices, schema)).unwrap();
        assert_eq!(
            filter.column_indices(),
            &[side(5, JoinSide::Left), side(3, JoinSide::Right)]
        );
        assert_eq!(filter.expression().to_string(), "r@1 > l@0");
        let names: Vec<_> = filter.schema().fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, ["l", "r"]);
        assert!(filter.schema().fields().iter().all(|f| f.is_nullable()));
    }

    /// Compares with the snapshot in `planner/tests/snapshots/q<N>.txt`;
    /// `MINISPARK_UPDATE_SNAPSHOTS=1` rewrites it.
    fn insta_like(query: usize, actual: &str) {
        let path = format!(
            "{}/tests/snapshots/stages_q{query}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var("MINISPARK_UPDATE_SNAPSHOTS").is_ok() {
            std::fs::create_dir_all(format!("{}/tests/snapshots", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
            std::fs::write(&path, format!("{actual}\n")).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run with MINISPARK_UPDATE_SNAPSHOTS=1)"));
        assert_eq!(
            actual.trim_end(),
            expected.trim_end(),
            "stage graph of q{query} changed"
        );
    }

    /// The stage holding a partitioned join notes it for adaptive
    /// execution: its number in EXPLAIN's join list, and whether a
    /// SHUFFLE_HASH hint (gone from the stage plan) was on a side.
    #[tokio::test]
    async fn a_stage_notes_its_join_and_a_shuffle_hint_on_it() {
        let settings: HashMap<String, String> = [
            ("datafusion.execution.target_partitions", "4"),
            (
                "datafusion.optimizer.hash_join_single_partition_threshold",
                "1",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = session_context(&settings).unwrap();
        for t in TpchTable::ALL {
            ctx.register_table(t.name(), Arc::new(TpchTableProvider::new(t, 1.0)))
                .unwrap();
        }
        // EXPLAIN numbers a join before its inputs: join 1 is the one with
        // customer, join 2 orders x lineitem.
        let sql = "SELECT o_orderpriority, count(*) FROM customer JOIN
                     (SELECT * FROM orders JOIN lineitem ON l_orderkey = o_orderkey) ol
                   ON c_custkey = o_custkey GROUP BY o_orderpriority";
        for hint in [None, Some("lineitem")] {
            let plan = ctx.state().create_logical_plan(sql).await.unwrap();
            let hints: Vec<_> = hint
                .map(|t| (JoinHint::Shuffle, t.to_string()))
                .into_iter()
                .collect();
            let plan = crate::hints::apply_hints(plan, &hints).unwrap();
            let physical = ctx.state().create_physical_plan(&plan).await.unwrap();
            let lines = crate::join_strategy::describe_joins(&physical, 1);
            let graph = plan_stages(physical, 4).unwrap();
            let mut notes: Vec<StageJoin> = graph.stages.iter().filter_map(|s| s.join).collect();
            notes.sort_by_key(|n| n.number);
            assert_eq!(
                notes,
                vec![
                    StageJoin {
                        number: 1,
                        shuffle_hint: false,
                    },
                    StageJoin {
                        number: 2,
                        shuffle_hint: hint.is_some(),
                    },
                ],
                "{lines:?}"
            );
            assert!(lines[0].contains("c_custkey"), "{lines:?}");
            assert!(lines[1].contains("l_orderkey"), "{lines:?}");
        }
    }
}
