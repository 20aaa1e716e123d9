//! Key salting, the driver half: when to salt, and which keys are hot,
//! from what sample.
//!
//! (What a salted plan looks like, and the rewrites themselves, are the
//! planner's half: `minispark_planner::salting`.)
//!
//! Before a query is planned for the cluster, each equi-join, then each
//! GROUP BY, is looked at ([`decision`]):
//!
//! 1. **Is it a candidate?** With a `SKEW('t', 'col')` hint, the join whose
//!    side holds `t` and joins on `col`, and the GROUP BY over `t` grouping
//!    by `col`. With `minispark.skew.salting = auto`, every join that will
//!    be shuffled (both sides estimated above the broadcast threshold: a
//!    broadcast join has no skewed partition to fix), and every GROUP BY
//!    with a `COUNT(DISTINCT ..)`: partial aggregation already absorbs a hot
//!    key for sums and counts, but a distinct count's partial state holds
//!    every distinct value, so the hot key's reduce task merges them all.
//! 2. **Which keys are hot?** ([`sampling`]) The hint may list them.
//!    Otherwise a sampling pass runs on the cluster: a random ~200,000 rows
//!    of the relation the hint names, or (auto) of the join's big side or
//!    the GROUP BY's input, grouped by the keys ([`sample_plan`]). A random
//!    filter cannot be pushed below a join or an aggregate, so auto only
//!    samples inputs without them ([`cheap_to_sample`]): otherwise the pass
//!    would compute them whole. A key is hot when it alone would make its
//!    partition skewed: its share `s` is more than
//!    `skewedPartitionFactor - 1` times a typical partition of the other
//!    rows, `(1 - s) / N` (twice, for a hint), and, for `auto`, more than
//!    `skewedPartitionThresholdInBytes` by the side's estimated size.
//! 3. **How many salts?** ([`sampling`]) `minispark.skew.saltBuckets`, or
//!    enough that each piece of a hot key is about half a typical partition
//!    of the other rows: `⌈2 s N / (1 - s)⌉`, between 2 and N. The salt
//!    values are picked so that the pieces hash to different partitions
//!    ([`spread_salts`]).
//!
//! Then the planner's [`salt_joins`] and [`salt_aggregates`] rewrite the
//! plan, and EXPLAIN says what was sampled, what was salted, and why.
//!
//! ```text
//!   optimized logical plan
//!     │ join_sites: for each join ──▶ decision: candidate? ──▶ sampling: hot keys, salts
//!     ▼
//!   salt_joins (planner)
//!     │ aggregate_sites: for each GROUP BY ──▶ decision ──▶ sampling
//!     ▼
//!   salt_aggregates (planner), SKEW nodes removed ──▶ stage planning
//! ```
//!
//! [`sample_plan`]: minispark_planner::salting::sample_plan
//! [`cheap_to_sample`]: minispark_planner::salting::cheap_to_sample
//! [`spread_salts`]: minispark_planner::salting::spread_salts
//! [`salt_joins`]: minispark_planner::salting::salt_joins
//! [`salt_aggregates`]: minispark_planner::salting::salt_aggregates

pub mod decision;
pub mod sampling;

use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;
use minispark_planner::config::minispark_config;
use minispark_planner::salting::{
    aggregate_sites, has_skew_hints, join_sites, salt_aggregates, salt_joins, strip_skew_nodes,
};

use crate::job::JobSession;

impl JobSession {
    /// `plan` with its skewed joins and GROUP BYs salted, one EXPLAIN line
    /// per site looked at, and how many sites were salted. Without `SKEW`
    /// hints or `minispark.skew.salting = auto`, `plan` is returned as it is.
    pub(crate) async fn salt(
        &self,
        plan: LogicalPlan,
    ) -> Result<(LogicalPlan, Vec<String>, usize)> {
        let config = minispark_config(self.context().state().config().options());
        if !config.salting_auto && !has_skew_hints(&plan)? {
            return Ok((plan, vec![], 0));
        }
        let plan = self.context().state().optimize(&plan)?;
        let mut lines = vec![];
        let mut salted = vec![];
        for site in join_sites(&plan)? {
            if let Some(s) = self.salt_join(&site, &config, &mut lines).await? {
                salted.push(s);
            }
        }
        let mut sites = salted.len();
        let plan = salt_joins(plan, &salted)?;
        // Then GROUP BYs (a salted GROUP BY adds aggregates, not joins).
        let mut salted = vec![];
        for site in aggregate_sites(&plan)? {
            if let Some(s) = self.salt_aggregate(&site, &config, &mut lines).await? {
                salted.push(s);
            }
        }
        sites += salted.len();
        let plan = strip_skew_nodes(salt_aggregates(plan, &salted)?)?;
        Ok((plan, lines, sites))
    }
}
