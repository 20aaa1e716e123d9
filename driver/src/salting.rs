//! Key salting on the driver: which joins and GROUP BYs to salt, and which
//! keys are hot.
//!
//! Before a query is planned for the cluster, each equi-join, then each
//! GROUP BY, is looked at:
//!
//! 1. **Is it a candidate?** With a `SKEW('t', 'col')` hint, the join whose
//!    side holds `t` and joins on `col`, and the GROUP BY over `t` grouping
//!    by `col`. With `minispark.skew.salting = auto`, every join that will
//!    be shuffled (both sides estimated above the broadcast threshold: a
//!    broadcast join has no skewed partition to fix), and every GROUP BY
//!    with a `COUNT(DISTINCT ..)`: partial aggregation already absorbs a hot
//!    key for sums and counts, but a distinct count's partial state holds
//!    every distinct value, so the hot key's reduce task merges them all.
//! 2. **Which keys are hot?** The hint may list them. Otherwise a sampling
//!    pass runs on the cluster: a random ~200,000 rows of the relation the
//!    hint names, or (auto) of the join's big side or the GROUP BY's input,
//!    grouped by the keys ([`sample_plan`]). A random filter cannot be
//!    pushed below a join or an aggregate, so auto only samples inputs
//!    without them ([`cheap_to_sample`]): otherwise the pass would compute
//!    them whole. A key is hot when it
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
//! Then [`salt_joins`] and [`salt_aggregates`] rewrite the plan, and
//! EXPLAIN says what was sampled, what was salted, and why.

use std::time::Instant;

use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use futures::TryStreamExt;
use minispark_planner::config::{MinisparkConfig, minispark_config};
use minispark_planner::explain::fmt_bytes;
use minispark_planner::join_strategy::{SizeEstimate, broadcast_thresholds};
use minispark_planner::salting::{
    AggregateSite, HotValue, JoinSite, SaltedAggregate, SaltedJoin, Sample, Side, SkewHint,
    aggregate_sites, cheap_to_sample, describe_relation, has_skew_hints, hinted_relation,
    join_sites, read_sample, salt_aggregates, salt_joins, saltable_sides, sample_plan,
    spread_salts, strip_skew_nodes,
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
        let plan = salt_joins(plan, &salted)?;
        // Then GROUP BYs (a salted GROUP BY adds aggregates, not joins).
        let mut salted = vec![];
        for site in aggregate_sites(&plan)? {
            if let Some(s) = self.salt_aggregate(&site, &config, &mut lines).await? {
                salted.push(s);
            }
        }
        let plan = strip_skew_nodes(salt_aggregates(plan, &salted)?)?;
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
        let (side, keys, hint, estimate) = match hinted.into_iter().next() {
            Some((side, key, hint)) => {
                if site.null_aware || !allowed.contains(&side) {
                    lines.push(format!(
                        "salting: {label}: {hint} not applied: a {} join cannot replicate the other side's rows",
                        site.join_type
                    ));
                    return Ok(None);
                }
                (side, vec![key], Some(hint), None)
            }
            None if config.salting_auto && !site.null_aware && !allowed.is_empty() => {
                let left = self.estimate(&site.left).await?;
                let right = self.estimate(&site.right).await?;
                let thresholds = broadcast_thresholds(
                    config.auto_broadcast_join_threshold,
                    DATAFUSION_DEFAULT_ROWS,
                );
                if left.is_broadcastable(thresholds) || right.is_broadcastable(thresholds) {
                    // A broadcast join shuffles nothing: nothing to skew.
                    return Ok(None);
                }
                let side = match allowed {
                    [only] => *only,
                    _ if right.is_bigger_than(&left) => Side::Right,
                    _ => Side::Left,
                };
                let estimate = if side == Side::Left { left } else { right };
                if !cheap_to_sample(site.input(side)) {
                    lines.push(format!(
                        "salting: {label}: not sampled: {} computes joins or aggregates, which a \
                         sampling pass would run whole (a SKEW hint samples the relation it names)",
                        describe_relation(site.input(side))
                    ));
                    return Ok(None);
                }
                (side, (0..site.on.len()).collect(), None, Some(estimate))
            }
            None => return Ok(None),
        };
        let key_exprs: Vec<_> = keys.iter().map(|&i| site.keys(side)[i].clone()).collect();
        let input = site.input(side);
        let big = describe_relation(input);
        let small = describe_relation(site.input(if side == Side::Left {
            Side::Right
        } else {
            Side::Left
        }));
        // Salts that land in different partitions need every shuffle key.
        let spread = keys.len() == site.on.len();
        let found = self
            .hot_keys(input, &key_exprs, hint.as_ref(), spread, estimate, config)
            .await?;
        if found.hot.is_empty() {
            lines.push(format!("salting: {label}: {}", found.note));
            return Ok(None);
        }
        lines.push(format!(
            "salting: {label}: {}; salted hot keys of {big}: {}; {small}'s rows for them replicated per salt",
            found.note,
            list(&found.hot)
        ));
        Ok(Some(SaltedJoin {
            ordinal: site.ordinal,
            side,
            keys,
            hot: found.hot,
        }))
    }

    /// Decides whether and how to salt one GROUP BY.
    async fn salt_aggregate(
        &self,
        site: &AggregateSite,
        config: &MinisparkConfig,
        lines: &mut Vec<String>,
    ) -> Result<Option<SaltedAggregate>> {
        let label = format!("GROUP BY {}", list_exprs(&site.group));
        let hint = site.hints().into_iter().next();
        let candidate = hint.is_some() || (config.salting_auto && site.has_distinct());
        if !candidate {
            return Ok(None);
        }
        if let Err(why) = site.check_saltable() {
            let what = hint.map(|(_, h)| h.to_string()).unwrap_or("salting".into());
            lines.push(format!("salting: {label}: {what} not applied: {why}"));
            return Ok(None);
        }
        let keys = match &hint {
            Some((i, _)) => vec![*i],
            None => (0..site.group.len()).collect(),
        };
        let hint = hint.map(|(_, h)| h);
        if hint.is_none() && !cheap_to_sample(&site.input) {
            // Sampling would run the joins under it whole: only a hint,
            // which names the relation to sample, salts such a GROUP BY.
            return Ok(None);
        }
        let key_exprs: Vec<_> = keys.iter().map(|&i| site.group[i].clone()).collect();
        let spread = keys.len() == site.group.len();
        let found = self
            .hot_keys(&site.input, &key_exprs, hint.as_ref(), spread, None, config)
            .await?;
        if found.hot.is_empty() {
            lines.push(format!("salting: {label}: {}", found.note));
            return Ok(None);
        }
        lines.push(format!(
            "salting: {label}: {}; hot keys aggregated in pieces, then combined: {}",
            found.note,
            list(&found.hot)
        ));
        Ok(Some(SaltedAggregate {
            ordinal: site.ordinal,
            keys,
            hot: found.hot,
        }))
    }

    /// The hot values of `keys` over `input`: listed in the hint, or measured
    /// by a sampling pass. `spread` picks salts landing in different
    /// partitions (when `keys` are all the shuffle's keys); `estimate` is
    /// `input`'s size when the caller has it already.
    async fn hot_keys(
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
    async fn estimate(&self, plan: &LogicalPlan) -> Result<SizeEstimate> {
        let physical = self
            .context()
            .state()
            .create_physical_plan(&strip_skew_nodes(plan.clone())?)
            .await?;
        Ok(SizeEstimate::of(&physical))
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

/// Hot keys found for one join or GROUP BY, and how they were found.
struct HotKeys {
    hot: Vec<HotValue>,
    /// What was sampled (or which hint listed them); why none is hot.
    note: String,
}

fn list_exprs(exprs: &[Expr]) -> String {
    exprs
        .iter()
        .map(Expr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(hot: &[HotValue]) -> String {
    hot.iter()
        .map(HotValue::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
