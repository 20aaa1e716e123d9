//! Which joins and GROUP BYs to salt, on which side and keys, and the
//! EXPLAIN line saying why (see the [module docs](super), step 1).

use datafusion::common::Result;
use datafusion::logical_expr::Expr;
use minispark_planner::config::MinisparkConfig;
use minispark_planner::join_strategy::broadcast_thresholds;
use minispark_planner::salting::{
    AggregateSite, HotValue, JoinSite, SaltedAggregate, SaltedJoin, Side, cheap_to_sample,
    describe_relation, saltable_sides,
};

use crate::job::{DATAFUSION_DEFAULT_ROWS, JobSession};

impl JobSession {
    /// Decides whether and how to salt one join.
    pub(super) async fn salt_join(
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
    pub(super) async fn salt_aggregate(
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
