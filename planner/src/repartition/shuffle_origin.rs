//! What asked for a shuffle decides what adaptive execution may do to its
//! partitions (Spark's `ShuffleOrigin`).
//!
//! | asked for by | Spark's origin | adaptive execution |
//! |---|---|---|
//! | the planner (joins, aggregates) | `ENSURE_REQUIREMENTS` | coalesces small partitions, splits skewed join partitions |
//! | `DISTRIBUTE BY`, `CLUSTER BY`, `/*+ REPARTITION(c, ..) */` | `REPARTITION_BY_COL` | coalesces small partitions |
//! | a partition count: `/*+ REPARTITION(n[, c, ..]) */`, `df.repartition(n)`, `df.repartition_by(n, ..)` | `REPARTITION_BY_NUM` | nothing: the user's `n` partitions stay |
//! | `/*+ REBALANCE(c, ..) */` | `REBALANCE_PARTITIONS_BY_COL` | splits partitions over `minispark.adaptive.advisoryPartitionSizeInBytes` by map ranges, coalesces small ones ([`crate::adaptive::rebalance`]) |
//!
//! A stage reading several shuffles adapts only as far as all of them allow.

/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Default)]
pub enum ShuffleOrigin {
    /// A shuffle the planner added.
    #[default]
    EnsureRequirements,
    /// Asked for by columns, no partition count: may be coalesced.
    RepartitionByCol,
    /// Asked for with a partition count: kept as asked.
    RepartitionByNum,
    /// `REBALANCE`: may be split and coalesced toward the advisory size.
    RebalanceByCol,
}

/// What adaptive execution may do to a stage whose hash readers read
/// shuffles of these origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageAdaptivity {
    /// Nothing: a shuffle with a partition count asked for is among them.
    Fixed,
    /// The one shuffle read is a `REBALANCE`: split big partitions,
    /// coalesce small ones.
    Rebalance,
    /// The usual rules.
    Usual,
}

impl StageAdaptivity {
    pub fn of(hash_origins: &[ShuffleOrigin]) -> Self {
        if hash_origins.contains(&ShuffleOrigin::RepartitionByNum) {
            Self::Fixed
        } else if hash_origins == [ShuffleOrigin::RebalanceByCol] {
            Self::Rebalance
        } else {
            Self::Usual
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_count_fixes_the_stage_and_a_rebalance_alone_rebalances() {
        use ShuffleOrigin::*;
        assert_eq!(
            StageAdaptivity::of(&[EnsureRequirements, RepartitionByNum]),
            StageAdaptivity::Fixed
        );
        assert_eq!(
            StageAdaptivity::of(&[RebalanceByCol]),
            StageAdaptivity::Rebalance
        );
        assert_eq!(
            StageAdaptivity::of(&[RebalanceByCol, EnsureRequirements]),
            StageAdaptivity::Usual
        );
        assert_eq!(
            StageAdaptivity::of(&[RepartitionByCol]),
            StageAdaptivity::Usual
        );
    }
}
