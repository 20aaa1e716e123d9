//! Which keys are hot, and how many salts each gets: listed in a `SKEW`
//! hint, or measured by a sampling pass on the cluster (see the
//! [module docs](super), steps 2 and 3).

use std::time::Instant;

use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use futures::TryStreamExt;
use minispark_planner::config::MinisparkConfig;
use minispark_planner::explain::fmt_bytes;
use minispark_planner::join_strategy::SizeEstimate;
use minispark_planner::salting::{
    HotValue, Sample, SkewHint, describe_relation, hinted_relation, read_sample, sample_plan,
    spread_salts, strip_skew_nodes,
};

use crate::job::JobSession;

/// Rows the sampling pass aims to read.
const SAMPLE_ROWS: f64 = 200_000.0;
/// Sampling fraction when a side's row count is unknown.
const UNKNOWN_FRACTION: f64 = 0.01;
/// Most frequent keys the sampling pass returns.
const TOP_KEYS: usize = 64;
/// A key seen fewer times in the sample is never called hot: too noisy.
const MIN_SAMPLED: u64 = 20;

impl JobSession {
    /// The hot values of `keys` over `input`: listed in the hint, or measured
    /// by a sampling pass. `spread` picks salts landing in different
    /// partitions (when `keys` are all the shuffle's keys); `estimate` is
    /// `input`'s size when the caller has it already.
    pub(super) async fn hot_keys(
        &self,
        input: &LogicalPlan,
        keys: &[Expr],
        hint: Option<&SkewHint>,
        spread: bool,
        estimate: Option<SizeEstimate>,
        config: &MinisparkConfig,
    ) -> Result<HotKeys> {
        let partitions = self.shuffle_partitions();
        let buckets_for = |share: f64| {
            if config.salt_buckets > 0 {
                config.salt_buckets
            } else {
                // Pieces of about half a typical partition, (1 - s) / N.
                ((2.0 * share * partitions as f64 / (1.0 - share).max(1e-9)).ceil() as usize)
                    .clamp(2, partitions.max(2))
            }
        };

        // Hot values listed in the hint: salted over every partition.
        if let Some(hint) = hint.filter(|h| !h.values.is_empty()) {
            let data_type = keys[0].get_type(input.schema())?;
            let buckets = if config.salt_buckets > 0 {
                config.salt_buckets
            } else {
                partitions.max(2)
            };
            let mut hot = hint
                .values
                .iter()
                .map(|v| {
                    let key = ScalarValue::try_from_string(v.clone(), &data_type).or_else(|e| {
                        plan_err!(
                            "{hint}: '{v}' is not a value of {} ({data_type}): {e}",
                            hint.column
                        )
                    })?;
                    Ok(HotValue::new(vec![key], buckets, None))
                })
                .collect::<Result<Vec<_>>>()?;
            if spread {
                spread_salts(&mut hot, &[], partitions)?;
            }
            return Ok(HotKeys {
                hot,
                note: hint.to_string(),
            });
        }

        // Measure: a sampling pass on the cluster, over the relation a hint
        // names (not the joins above it), or over the input itself.
        let hinted = hint.and_then(|h| hinted_relation(input, h));
        let (input, keys) = match &hinted {
            Some((relation, column)) => (relation, std::slice::from_ref(column)),
            None => (input, keys),
        };
        let estimate = match (&hinted, estimate) {
            (None, Some(known)) => known,
            _ => self.estimate(input).await?,
        };
        let fraction = match estimate.rows {
            Some(rows) if rows > 0 => (SAMPLE_ROWS / rows as f64).min(1.0),
            _ => UNKNOWN_FRACTION,
        };
        let start = Instant::now();
        let sample = sample_plan(input.clone(), keys, fraction, TOP_KEYS)?;
        let graph = self.plan_stages_unsalted(sample).await?;
        let batches: Vec<_> = self.run_graph(&graph).await?.stream.try_collect().await?;
        let Sample { counts, total } = read_sample(&batches, keys.len())?;
        let seconds = start.elapsed().as_secs_f64();
        // A key is hot when its partition would be skewed: the key alone
        // (share s) against a typical partition of the other rows
        // ((1 - s) / N) is over skewedPartitionFactor (over 2 with a hint).
        let factor = if hint.is_some() {
            2.0
        } else {
            config.skewed_partition_factor
        };
        let n = partitions as f64;
        let is_hot = |share: f64| share * n > (factor - 1.0) * (1.0 - share);
        let limit = (factor - 1.0) / (n + factor - 1.0);
        let big_enough = |share: f64| {
            hint.is_some()
                || estimate.bytes.is_none_or(|b| {
                    share * b as f64 > config.skewed_partition_threshold_bytes as f64
                })
        };
        let mut hot: Vec<HotValue> = counts
            .iter()
            .filter(|(_, count)| *count >= MIN_SAMPLED)
            .map(|(key, count)| (key, *count as f64 / total.max(1) as f64))
            .filter(|(_, share)| is_hot(*share) && big_enough(*share))
            .map(|(key, share)| HotValue::new(key.clone(), buckets_for(share), Some(share)))
            .collect();
        if spread {
            // The other sampled keys keep salt 0: keep the pieces off their
            // partitions.
            let others: Vec<(Vec<ScalarValue>, f64)> = counts
                .iter()
                .filter(|(key, _)| !hot.iter().any(|h| h.key == *key))
                .map(|(key, count)| (key.clone(), *count as f64 / total.max(1) as f64))
                .collect();
            spread_salts(&mut hot, &others, partitions)?;
        }
        let why = hint.map(|h| format!("{h}, ")).unwrap_or_default();
        let mut note = format!(
            "{why}sampled {:.2}% of {} ({total} rows) in {seconds:.2}s",
            fraction * 100.0,
            describe_relation(input)
        );
        if hot.is_empty() {
            let top = counts
                .first()
                .map(|(k, count)| {
                    let key: Vec<String> = k.iter().map(ScalarValue::to_string).collect();
                    format!(
                        "the most frequent key, {}, holds {:.1}%",
                        key.join(", "),
                        *count as f64 / total.max(1) as f64 * 100.0
                    )
                })
                .unwrap_or_else(|| "the sample is empty".to_string());
            note.push_str(&format!(
                "; no hot key: {top}, hot means over {:.1}% of the rows",
                limit * 100.0
            ));
            if hint.is_none() {
                note.push_str(&format!(
                    " and over {} (skew.skewedPartitionThresholdInBytes)",
                    fmt_bytes(config.skewed_partition_threshold_bytes)
                ));
            }
        }
        Ok(HotKeys { hot, note })
    }

    /// A logical plan's size estimate: planned physically, as the join
    /// planner will see it.
    pub(super) async fn estimate(&self, plan: &LogicalPlan) -> Result<SizeEstimate> {
        let physical = self
            .context()
            .state()
            .create_physical_plan(&strip_skew_nodes(plan.clone())?)
            .await?;
        Ok(SizeEstimate::of(&physical))
    }
}

/// Hot keys found for one join or GROUP BY, and how they were found.
pub(super) struct HotKeys {
    pub(super) hot: Vec<HotValue>,
    /// What was sampled (or which hint listed them); why none is hot.
    pub(super) note: String,
}
