//! The hash table of a broadcast hash join, built once per executor and
//! probed by all of that executor's tasks of the joining stage (Spark
//! builds a broadcast's `HashedRelation` once and every task probes it).
//!
//! [`crate::broadcast_cache`] already reads a broadcast stage's output once
//! per executor. Each task still built its own hash table from those
//! batches: a copy of the build side plus the table, per running task, and
//! the CPU to hash every build row again in every task. Now the first task
//! of the stage on an executor builds it, and the others probe the same one:
//!
//! ```text
//!   task 0 ─┐                         ┌─ build (once): concat + hash map
//!   task 1 ─┼─▶ tables[(job, stage, join)] ─┤
//!   task 7 ─┘                         └─ the others probe the same table
//! ```
//!
//! How: every task decodes its own stage plan. DataFusion's `HashJoinExec`
//! in `CollectLeft` mode keeps its build side in a once-only future that
//! all the partitions executed on one instance share. The first task's
//! join is kept here as a template; a later task's join is rebuilt from it
//! ([`HashJoinExec::builder`] keeps that future) with the later task's own
//! children, so only the build is shared: each task probes with its own
//! input and its own context.
//!
//! Which joins: a `CollectLeft` hash join whose build side reads only
//! broadcast exchanges (so it is the same in every task of the stage), and
//! whose type never emits unmatched build rows at the end (inner and right
//! joins, right semi / anti / mark): those need all the probe partitions to
//! have run on one instance, which minispark never broadcasts anyway.
//!
//! An entry is keyed by the job, the stage and the join's place in the
//! plan, and remembers the stage plan it came from: a stage bound again
//! (recomputed map outputs, an adaptive change) has another plan, and its
//! tasks build again. A task that fails drops its stage's entries, so a
//! retry does not meet a cached failure. The table is accounted in the
//! executor's memory pool as DataFusion's `HashJoinInput` and kept until the
//! job ends, as are the broadcast's batches (Spark too keeps a broadcast
//! until it is no longer used by the job).
//!
//! Counted: `broadcast_hash_tables_built` in the task's report and the
//! job's counters (one per executor per broadcast join, not one per task).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinType, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use minispark_planner::exchange::{ExchangeKind, ShuffleReaderExec};

/// One shared build side: the stage plan it belongs to and the join whose
/// once-only build future the stage's tasks share.
#[derive(Debug)]
struct Entry {
    plan: Arc<[u8]>,
    /// A `HashJoinExec`.
    template: Arc<dyn ExecutionPlan>,
}

/// The shared broadcast hash tables of an executor, by job, stage and join.
#[derive(Debug, Default)]
pub struct BroadcastHashTables {
    entries: Mutex<HashMap<(String, u32, usize), Entry>>,
}

impl BroadcastHashTables {
    /// `plan` (decoded from `plan_bytes`, the stage plan of a task of
    /// `stage` of `job_id`) with each of its broadcast hash joins sharing
    /// the build side of the first task of this stage plan on this
    /// executor; and how many build sides this task will build itself
    /// (those it found no other task's for).
    pub fn share(
        &self,
        job_id: &str,
        stage: u32,
        plan_bytes: &[u8],
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<(Arc<dyn ExecutionPlan>, u64)> {
        let mut place = 0;
        let mut built = 0;
        let mut bytes: Option<Arc<[u8]>> = None;
        let shared = plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            place += 1;
            if !is_shareable(join) {
                return Ok(Transformed::no(node));
            }
            let key = (job_id.to_string(), stage, place);
            let mut entries = self.entries.lock().expect("hash table lock");
            if let Some(entry) = entries.get(&key)
                && *entry.plan == *plan_bytes
                && let Some(template) = entry.template.downcast_ref::<HashJoinExec>()
            {
                let children = join.children().into_iter().cloned().collect();
                let probe_own = template
                    .builder()
                    .with_new_children(children)?
                    .build_exec()?;
                return Ok(Transformed::yes(probe_own));
            }
            // The first task of this stage plan here (or the first after
            // the stage was bound again): its join builds the table.
            let template = Arc::clone(&node);
            let plan = bytes.get_or_insert_with(|| Arc::from(plan_bytes)).clone();
            entries.insert(key, Entry { plan, template });
            built += 1;
            Ok(Transformed::no(node))
        })?;
        Ok((shared.data, built))
    }

    /// Forgets the build sides of a stage of a job (one of its tasks
    /// failed: a retry builds again rather than meet the same failure).
    pub fn forget_stage(&self, job_id: &str, stage: u32) {
        self.entries
            .lock()
            .expect("hash table lock")
            .retain(|(job, s, _), _| !(job == job_id && *s == stage));
    }

    /// Forgets the build sides of `job_id` (the job is over); returns how
    /// many there were. Each is freed once no running task probes it.
    pub fn remove_job(&self, job_id: &str) -> usize {
        let mut entries = self.entries.lock().expect("hash table lock");
        let before = entries.len();
        entries.retain(|(job, _, _), _| job != job_id);
        before - entries.len()
    }

    /// Build sides held now.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("hash table lock").len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `join` builds the same table in every task of its stage and can
/// share it: collected (not partitioned), its build side read only from
/// broadcast exchanges, and a type that emits nothing for unmatched build
/// rows.
fn is_shareable(join: &HashJoinExec) -> bool {
    if *join.partition_mode() != PartitionMode::CollectLeft {
        return false;
    }
    if !matches!(
        join.join_type(),
        JoinType::Inner
            | JoinType::Right
            | JoinType::RightSemi
            | JoinType::RightAnti
            | JoinType::RightMark
    ) {
        return false;
    }
    reads_only_broadcasts(join.left())
}

/// Whether every leaf of `plan` is a broadcast exchange's reader.
fn reads_only_broadcasts(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut leaves = 0;
    let mut only = true;
    let _ = plan.apply(|node| {
        if node.children().is_empty() {
            leaves += 1;
            only &= node
                .downcast_ref::<ShuffleReaderExec>()
                .is_some_and(|r| r.kind() == ExchangeKind::Broadcast);
        }
        Ok(if only {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    only && leaves > 0
}
