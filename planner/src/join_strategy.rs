//! Which strategy each join got, and why: what `EXPLAIN` says about joins.
//!
//! ```text
//!   broadcast hash join                      shuffled hash join
//!   ┌──────────┐ whole, to every task        ┌──────────┐ hash(k) % N ┌──────────┐
//!   │  small   │──────────┐                  │  left    │────────────▶│ join p   │
//!   └──────────┘          ▼                  └──────────┘             │ (N tasks)│
//!   ┌──────────┐    ┌──────────┐             ┌──────────┐ hash(k) % N │          │
//!   │  big     │───▶│ join     │             │  right   │────────────▶│          │
//!   └──────────┘    └──────────┘             └──────────┘             └──────────┘
//!   the big side never moves                 both sides cross the network once
//! ```
//!
//! A side is broadcast when its estimated size is under
//! `minispark.sql.autoBroadcastJoinThreshold` (Spark's 10 MB by default; -1
//! turns automatic broadcasts off), or when a hint asks for it. Joins that
//! must emit the unmatched rows of their build side (LEFT, FULL, SEMI and
//! ANTI with the build side on the left) are shuffled even then: every task
//! holding the whole build side would emit those rows once per task.
//!
//! ```text
//!   sort-merge join (MERGE hint)
//!   ┌──────────┐ hash(k) % N ┌────────┐   ┌──────────┐
//!   │  left    │────────────▶│ sort k │──▶│ merge p  │  walks both sorted
//!   └──────────┘             └────────┘   │ (N tasks)│  partitions in step:
//!   ┌──────────┐ hash(k) % N ┌────────┐   │          │  no hash table, little
//!   │  right   │────────────▶│ sort k │──▶│          │  memory (sorts spill)
//!   └──────────┘             └────────┘   └──────────┘
//! ```
//!
//! A MERGE hint (`/*+ MERGE(t) */`, also `SHUFFLE_MERGE`, `MERGEJOIN`) on
//! either side makes the join a sort-merge join, Spark's default for large
//! joins: both sides shuffled as for a shuffled hash join, then sorted by
//! the keys within each partition and merged. It works for every join type,
//! so the hint is never ignored, except on a null-aware anti join (`NOT
//! IN`), which only the hash join implements. The hint wins over a
//! SHUFFLE_HASH or BROADCAST hint on the other side.
//!
//! The plan described is DataFusion's, before the stage cutter: a
//! merge-hinted join is still a hash join there, and is described as what
//! the cutter ([`crate::stages`]) makes of it.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::{ExecutionPlan, displayable};

use crate::explain::fmt_bytes;
use crate::hints::{JoinHint, hint_on};
use crate::stages::{emits_unmatched_build_rows, is_merge_join};

/// The setting's value as DataFusion's join-selection thresholds
/// `(bytes, rows)`: a side under both is collected (broadcast). Disabled
/// (-1) leaves room only for broadcast hints, which report size 0.
pub fn broadcast_thresholds(auto_broadcast_threshold: i64, default_rows: usize) -> (usize, usize) {
    if auto_broadcast_threshold < 0 {
        (1, 1)
    } else {
        (auto_broadcast_threshold as usize, default_rows)
    }
}

/// One line per join of `plan` (an optimized physical plan, hints still in
/// it), in plan order: the join, the strategy, the reason.
pub fn describe_joins(plan: &Arc<dyn ExecutionPlan>, threshold: i64) -> Vec<String> {
    let mut lines = vec![];
    visit(plan, threshold, &mut lines);
    lines
}

fn visit(plan: &Arc<dyn ExecutionPlan>, threshold: i64, lines: &mut Vec<String>) {
    if let Some(line) = describe(plan, threshold) {
        lines.push(format!("join {}: {line}", lines.len() + 1));
    }
    for child in plan.children() {
        visit(child, threshold, lines);
    }
}

fn describe(plan: &Arc<dyn ExecutionPlan>, threshold: i64) -> Option<String> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let keys: Vec<String> = join
            .on()
            .iter()
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        let head = format!(
            "{} hash join on [{}]",
            join_name(join.join_type()),
            keys.join(", ")
        );
        let (left, right) = (join.left(), join.right());
        let merge_hint =
            hint_on(left) == Some(JoinHint::Merge) || hint_on(right) == Some(JoinHint::Merge);
        if is_merge_join(join) {
            return Some(format!(
                "{} sort-merge join on [{}]: both sides shuffled and sorted by the keys (MERGE hint)",
                join_name(join.join_type()),
                keys.join(", ")
            ));
        }
        if merge_hint {
            return Some(format!(
                "{head}: shuffled. The MERGE hint is ignored: a null-aware anti join \
                 (NOT IN) must be a hash join"
            ));
        }
        let limit = match threshold {
            t if t < 0 => {
                "automatic broadcasts are off (autoBroadcastJoinThreshold = -1)".to_string()
            }
            t => format!("autoBroadcastJoinThreshold {}", fmt_size(Some(t as u64))),
        };
        let text = match join.partition_mode() {
            PartitionMode::CollectLeft if emits_unmatched_build_rows(join.join_type()) => format!(
                "{head}: shuffled. Its build side ({}) could be broadcast, but a {} join \
                 must emit the build side's unmatched rows, and every task would emit them",
                sides(left),
                join_name(join.join_type())
            ),
            PartitionMode::CollectLeft
                if hint_on(left) == Some(JoinHint::Shuffle)
                    || hint_on(right) == Some(JoinHint::Shuffle) =>
            {
                format!("{head}: shuffled (hint)")
            }
            PartitionMode::CollectLeft => match hint_on(left) {
                Some(JoinHint::Broadcast) => {
                    format!("{head}: broadcast of {} (hint)", sides(left))
                }
                _ => format!(
                    "{head}: broadcast of {}: estimated {} < {limit}",
                    sides(left),
                    fmt_size(estimated_bytes(left))
                ),
            },
            _ => match (hint_on(left), hint_on(right)) {
                (Some(JoinHint::Shuffle), _) | (_, Some(JoinHint::Shuffle)) => {
                    format!("{head}: shuffled (hint)")
                }
                _ => format!(
                    "{head}: shuffled: {} estimated {}, {} estimated {}; {limit}",
                    sides(left),
                    fmt_size(estimated_bytes(left)),
                    sides(right),
                    fmt_size(estimated_bytes(right)),
                ),
            },
        };
        return Some(text);
    }
    if let Some(join) = plan.downcast_ref::<NestedLoopJoinExec>() {
        return Some(format!(
            "{} nested-loop join (no equality keys): {} is broadcast",
            join_name(join.join_type()),
            sides(join.left())
        ));
    }
    if plan.is::<CrossJoinExec>() {
        return Some(format!(
            "cross join: {} is broadcast",
            sides(&plan.children()[0].clone())
        ));
    }
    if let Some(join) = plan.downcast_ref::<SortMergeJoinExec>() {
        return Some(format!(
            "{} sort-merge join: both sides shuffled and sorted by the keys",
            join_name(&join.join_type())
        ));
    }
    None
}

fn join_name(join_type: &JoinType) -> String {
    join_type.to_string().to_uppercase()
}

/// A join side by the scans under it, e.g. "scan of titles".
fn sides(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut leaves = vec![];
    collect_leaves(plan, &mut leaves);
    leaves.dedup();
    match leaves.len() {
        0 => "an empty input".to_string(),
        1 => leaves.remove(0),
        n => format!("{} and {} more", leaves[0], n - 1),
    }
}

fn collect_leaves(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<String>) {
    let children = plan.children();
    if children.is_empty() {
        let line = displayable(plan.as_ref()).one_line().to_string();
        out.push(leaf_name(&line));
        return;
    }
    for child in children {
        collect_leaves(child, out);
    }
}

/// "NetflixScanExec: table=titles, ..." -> "titles"; a file scan -> its folder.
fn leaf_name(line: &str) -> String {
    if let Some(rest) = line.split("table=").nth(1) {
        return rest.split([',', ' ']).next().unwrap_or(rest).to_string();
    }
    if let Some(location) = line.split("location=").nth(1) {
        // An Iceberg scan: the table's folder.
        let location = location.split([',', ' ']).next().unwrap_or(location);
        if let Some(name) = location.trim_end_matches('/').rsplit('/').next() {
            return name.to_string();
        }
    }
    if let Some(files) = line.split("file_groups={").nth(1) {
        // The folder of the first file: the table's directory.
        if let Some(path) = files.split("[[").nth(1) {
            let file = path.split([',', ']', ':']).next().unwrap_or(path);
            let parts: Vec<&str> = file.rsplitn(3, '/').collect();
            if parts.len() >= 2 {
                return parts[1].to_string();
            }
        }
    }
    line.split(':').next().unwrap_or(line).to_string()
}

fn estimated_bytes(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    SizeEstimate::of(plan).bytes.map(|b| b as u64)
}

/// A plan's estimated rows and bytes, as DataFusion's join selection sees
/// them (`None` when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeEstimate {
    pub rows: Option<usize>,
    pub bytes: Option<usize>,
}

impl SizeEstimate {
    /// The estimate of a physical plan; unknown when statistics fail.
    pub fn of(plan: &Arc<dyn ExecutionPlan>) -> Self {
        match StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new()) {
            Ok(stats) => Self {
                rows: stats.num_rows.get_value().copied(),
                bytes: stats.total_byte_size.get_value().copied(),
            },
            Err(_) => Self::default(),
        }
    }

    /// DataFusion's rule for collecting (broadcasting) a join side under
    /// the thresholds of [`broadcast_thresholds`]: by bytes when known,
    /// else by rows.
    pub fn is_broadcastable(&self, (bytes, rows): (usize, usize)) -> bool {
        match (self.bytes, self.rows) {
            (Some(b), _) => b != 0 && b < bytes,
            (None, Some(r)) => r != 0 && r < rows,
            (None, None) => false,
        }
    }

    /// True when this is estimated bigger than `other`: by bytes when both
    /// are known, else by rows; an unknown size (usually a join or an
    /// aggregate below) counts as big.
    pub fn is_bigger_than(&self, other: &Self) -> bool {
        match (self.bytes, other.bytes, self.rows, other.rows) {
            (Some(a), Some(b), _, _) | (_, _, Some(a), Some(b)) => a > b,
            _ => {
                let known = |e: &Self| e.bytes.or(e.rows).is_some();
                !known(self) && known(other)
            }
        }
    }
}

fn fmt_size(bytes: Option<u64>) -> String {
    match bytes {
        None => "unknown size".to_string(),
        Some(b) => fmt_bytes(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(rows: Option<usize>, bytes: Option<usize>) -> SizeEstimate {
        SizeEstimate { rows, bytes }
    }

    #[test]
    fn leaves_are_named_by_their_tables() {
        assert_eq!(
            leaf_name(
                "IcebergScanExec: location=file:///w/tpch/customer, snapshot=1, files=1 of 1, \
                 projection=[c_custkey]"
            ),
            "customer"
        );
        assert_eq!(
            leaf_name("NetflixScanExec: table=titles, scale=small"),
            "titles"
        );
    }

    #[test]
    fn broadcastable_by_bytes_else_rows() {
        let thresholds = broadcast_thresholds(1000, 100);
        assert!(size(Some(10_000), Some(999)).is_broadcastable(thresholds));
        assert!(!size(Some(1), Some(1000)).is_broadcastable(thresholds));
        assert!(size(Some(99), None).is_broadcastable(thresholds));
        assert!(!size(None, None).is_broadcastable(thresholds));
        // -1: nothing is broadcast automatically.
        assert!(!size(Some(1), Some(1)).is_broadcastable(broadcast_thresholds(-1, 100)));
    }

    #[test]
    fn bigger_compares_like_units_and_unknown_is_big() {
        assert!(size(None, Some(2)).is_bigger_than(&size(None, Some(1))));
        assert!(size(Some(2), None).is_bigger_than(&size(Some(1), Some(10))));
        assert!(size(None, None).is_bigger_than(&size(Some(1), None)));
        assert!(!size(Some(1), None).is_bigger_than(&size(None, None)));
        assert!(!size(None, None).is_bigger_than(&size(None, None)));
    }
}
