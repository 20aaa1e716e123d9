//! Key salting on the driver: which joins to salt, and which keys are hot.
//!
//! Before a query is planned for the cluster, each equi-join is looked at:
//!
//! 1. **Is it a candidate?** With a `SKEW('t', 'col')` hint, the join whose
//!    side holds `t` and joins on `col`. With `minispark.skew.salting =
//!    auto`, every join that will be shuffled: both sides are estimated
//!    above the broadcast threshold (a broadcast join has no skewed
//!    partition to fix).
//! 2. **Which keys are hot?** The hint may list them. Otherwise a sampling
//!    pass runs on the cluster: a random ~200,000 rows of the big side,
//!    grouped by the join keys ([`sample_plan`]). A key is hot when it
//!    alone would make its partition skewed: its share `s` is more than
//!    `skewedPartitionFactor - 1` times a typical partition of the other
//!    rows, `(1 - s) / N` (twice, for a hint), and, for `auto`, more than
//!    `skewedPartitionThresholdInBytes` by the side's estimated size.
//! 3. **How many salts?** `minispark.skew.saltBuckets`, or enough that each
//!    piece of a hot key is about half a typical partition of the other
//!    rows: `⌈2 s N / (1 - s)⌉`, between 2 and N. The salt values are
//!    picked so that the pieces hash to different partitions
//!    ([`spread_salts`]).
//!
//! Then [`salt_joins`] rewrites the plan, and EXPLAIN says what was salted
//! and why.

use std::time::Instant;

use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ExprSchemable, LogicalPlan};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use futures::TryStreamExt;
use minispark_planner::config::{MinisparkConfig, minispark_config};
use minispark_planner::join_strategy::broadcast_thresholds;
use minispark_planner::salting::{
    HotValue, JoinSite, SaltedJoin, Side, describe_relation, has_skew_hints, join_sites,
    read_sample, salt_joins, saltable_sides, sample_plan, spread_salts, strip_skew_nodes,
};

use crate::job::{DATAFUSION_DEFAULT_ROWS, JobSession};

/// Rows the sampling pass aims to read.
const SAMPLE_ROWS: f64 = 200_000.0;
/// Sampling fraction when a side's row count is unknown.
const UNKNOWN_FRACTION: f64 = 0.01;
/// Most frequent keys the sampling pass returns.
const TOP_KEYS: usize = 64;
/// A key seen fewer times in the sample is never called hot: too noisy.
const MIN_SAMPLED: u64 = 20;

/// Estimated rows and bytes of a plan, as DataFusion's join selection sees them.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    rows: Option<usize>,
    bytes: Option<usize>,
}

impl JobSession {
    /// `plan` with its skewed joins salted, and one EXPLAIN line per join
    /// looked at. Without `SKEW` hints or `minispark.skew.salting = auto`,
    /// `plan` is returned as it is.
    pub(crate) async fn salt(&self, plan: LogicalPlan) -> Result<(LogicalPlan, Vec<String>)> {
        let config = minispark_config(self.context().state().config().options());
        if !config.salting_auto && !has_skew_hints(&plan)? {
            return Ok((plan, vec![]));
        }
        let plan = self.context().state().optimize(&plan)?;
        let mut lines = vec![];
        let mut salted = vec![];
        for site in join_sites(&plan)? {
            if let Some(s) = self.salt_join(&site, &config, &mut lines).await? {
                salted.push(s);
            }
        }
        let plan = strip_skew_nodes(salt_joins(plan, &salted)?)?;
        Ok((plan, lines))
    }

    /// Decides whether and how to salt one join.
    async fn salt_join(
        &self,
        site: &JoinSite,
        config: &MinisparkConfig,
        lines: &mut Vec<String>,
    ) -> Result<Option<SaltedJoin>> {
        let label = join_label(site);
        let hinted: Vec<_> = [Side::Left, Side::Right]
            .into_iter()
            .flat_map(|side| site.hints(side).into_iter().map(move |(i, h)| (side, i, h)))
            .collect();
        let allowed = saltable_sides(site.join_type);
        let (side, keys, hint) = match hinted.into_iter().next() {
            Some((side, key, hint)) => {
                if site.null_aware || !allowed.contains(&side) {
                    lines.push(format!(
                        "salting: {label}: {hint} not applied: a {} join cannot replicate the other side's rows",
                        site.join_type
                    ));
                    return Ok(None);
                }
                (side, vec![key], Some(hint))
            }
            None if config.salting_auto && !site.null_aware && !allowed.is_empty() => {
                let left = self.estimate(&site.left).await?;
                let right = self.estimate(&site.right).await?;
                let (bytes, rows) = broadcast_thresholds(
                    config.auto_broadcast_join_threshold,
                    DATAFUSION_DEFAULT_ROWS,
                );
                if broadcastable(left, bytes, rows) || broadcastable(right, bytes, rows) {
                    // A broadcast join shuffles nothing: nothing to skew.
                    return Ok(None);
                }
                let size = |e: Estimate| e.bytes.or(e.rows).unwrap_or(0);
                let side = match allowed {
                    [only] => *only,
                    _ if size(right) > size(left) => Side::Right,
                    _ => Side::Left,
                };
                (side, (0..site.on.len()).collect(), None)
            }
            None => return Ok(None),
        };
        let partitions = self.shuffle_partitions();
        let key_exprs: Vec<_> = keys.iter().map(|&i| site.keys(side)[i].clone()).collect();
        let input = site.input(side);
        let big = describe_relation(input);
        let small = describe_relation(site.input(if side == Side::Left {
            Side::Right
        } else {
            Side::Left
        }));

        // Hot values listed in the hint: salted over every partition.
        if let Some(hint) = hint.as_ref().filter(|h| !h.values.is_empty()) {
            let data_type = key_exprs[0].get_type(input.schema())?;
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
            if keys.len() == site.on.len() {
                spread_salts(&mut hot, partitions)?;
            }
            lines.push(format!(
                "salting: {label}: {hint}: salted keys of {big}: {}; {small}'s rows for them replicated per salt",
                list(&hot)
            ));
            return Ok(Some(SaltedJoin {
                ordinal: site.ordinal,
                side,
                keys,
                hot,
            }));
        }

        // Measure: a sampling pass on the cluster.
        let estimate = self.estimate(input).await?;
        let fraction = match estimate.rows {
            Some(rows) if rows > 0 => (SAMPLE_ROWS / rows as f64).min(1.0),
            _ => UNKNOWN_FRACTION,
        };
        let start = Instant::now();
        let sample = sample_plan(input.clone(), &key_exprs, fraction, TOP_KEYS)?;
        let graph = self.plan_stages_unsalted(sample).await?;
        let batches: Vec<_> = self.run_graph(&graph).await?.stream.try_collect().await?;
        let (counts, total) = read_sample(&batches, key_exprs.len())?;
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
        let mut hot: Vec<HotValue> = counts
            .iter()
            .filter(|(_, n)| *n >= MIN_SAMPLED)
            .map(|(key, n)| (key, *n as f64 / total.max(1) as f64))
            .filter(|(_, share)| is_hot(*share))
            .filter(|(_, share)| {
                hint.is_some()
                    || estimate.bytes.is_none_or(|b| {
                        share * b as f64 > config.skewed_partition_threshold_bytes as f64
                    })
            })
            .map(|(key, share)| {
                let buckets = if config.salt_buckets > 0 {
                    config.salt_buckets
                } else {
                    // Pieces of about half a typical partition, (1 - s) / N.
                    ((2.0 * share * n / (1.0 - share).max(1e-9)).ceil() as usize)
                        .clamp(2, partitions.max(2))
                };
                HotValue::new(key.clone(), buckets, Some(share))
            })
            .collect();
        let sampled = format!(
            "sampled {:.2}% of {big} ({total} rows) in {seconds:.2}s",
            fraction * 100.0
        );
        if hot.is_empty() {
            let top = counts
                .first()
                .map(|(k, n)| {
                    let key: Vec<String> = k.iter().map(ScalarValue::to_string).collect();
                    format!(
                        "the most frequent key, {}, holds {:.1}%",
                        key.join(", "),
                        *n as f64 / total.max(1) as f64 * 100.0
                    )
                })
                .unwrap_or_else(|| "the sample is empty".to_string());
            lines.push(format!(
                "salting: {label}: {sampled}; no hot key: {top}, hot means over {:.1}% of the rows{}",
                limit * 100.0,
                if hint.is_some() {
                    String::new()
                } else {
                    format!(
                        " and over {} (skew.skewedPartitionThresholdInBytes)",
                        minispark_planner::explain::fmt_bytes(config.skewed_partition_threshold_bytes)
                    )
                }
            ));
            return Ok(None);
        }
        // When the salted keys are all the shuffle's keys, pick salts that
        // land in different partitions.
        if keys.len() == site.on.len() {
            spread_salts(&mut hot, partitions)?;
        }
        let why = hint.map(|h| format!("{h}, ")).unwrap_or_default();
        lines.push(format!(
            "salting: {label}: {why}{sampled}; salted hot keys of {big}: {}; {small}'s rows for them replicated per salt",
            list(&hot)
        ));
        Ok(Some(SaltedJoin {
            ordinal: site.ordinal,
            side,
            keys,
            hot,
        }))
    }

    async fn estimate(&self, plan: &LogicalPlan) -> Result<Estimate> {
        let physical = self
            .context()
            .state()
            .create_physical_plan(&strip_skew_nodes(plan.clone())?)
            .await?;
        let stats = StatisticsContext::new().compute(physical.as_ref(), &StatisticsArgs::new())?;
        Ok(Estimate {
            rows: stats.num_rows.get_value().copied(),
            bytes: stats.total_byte_size.get_value().copied(),
        })
    }
}

/// DataFusion's rule for collecting a join side: by bytes when known, else
/// by rows.
fn broadcastable(e: Estimate, bytes: usize, rows: usize) -> bool {
    match (e.bytes, e.rows) {
        (Some(b), _) => b != 0 && b < bytes,
        (None, Some(r)) => r != 0 && r < rows,
        (None, None) => false,
    }
}

fn join_label(site: &JoinSite) -> String {
    let on: Vec<String> = site.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
    format!(
        "join {} {} {} on {}",
        describe_relation(&site.left),
        site.join_type,
        describe_relation(&site.right),
        on.join(" AND ")
    )
}

fn list(hot: &[HotValue]) -> String {
    hot.iter()
        .map(HotValue::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
