//! Spark SQL functions from the `datafusion-spark` crate.
//!
//! A Spark SQL job should port without rewriting its function calls. The
//! `datafusion-spark` crate (Apache DataFusion's own, released with
//! DataFusion) implements many of Spark's functions with Spark's semantics:
//! `pmod`, `date_add`, `last_day`, `soundex`, `sha2`, `collect_list`, ...
//! [`register_spark_functions`] adds them to a session, with these rules for
//! a name the session already has:
//!
//! * **minispark's own functions win.** `hash` is Spark's Murmur3 with seed 42
//!   that also gives the shuffle's partition ids (see [`crate::hash`]);
//!   `datafusion-spark` has no `hash` today, and would not replace it if it
//!   got one. `array` is the planner's alias of DataFusion's `make_array`
//!   (not replaced either: see [`NOT_REGISTERED`]).
//! * **DataFusion's built-ins win**, except the names in [`SPARK_WINS`].
//!   Queries and tests already rely on DataFusion's `avg`, `round`,
//!   `substring`, `date_trunc`, ...; how far each differs from Spark's
//!   version has not been checked. README.md lists the names kept this way.
//! * Spark's expression planner (`EXTRACT` as Spark's `date_part`) is not
//!   installed: `EXTRACT` keeps DataFusion's meaning.
//!
//! Every session registers the same functions (the planner's session does it
//! for the driver and every executor), so a plan that uses them serializes by
//! name and executors resolve the name in their own registry.
//!
//! README.md's "Spark SQL functions" section lists the names registered and
//! the names kept; a test checks the lists against [`register_spark_functions`],
//! so they stay current when `datafusion-spark` is upgraded.

use std::collections::{BTreeSet, HashSet};

use datafusion::prelude::SessionContext;
#[cfg(test)]
use std::sync::Arc;

/// `datafusion-spark` functions never registered, whatever the session has,
/// and why.
pub const NOT_REGISTERED: &[(&str, &str)] = &[
    (
        "hash",
        "minispark's `hash` is Spark's Murmur3 and the shuffle's partitioning",
    ),
    (
        "array",
        "the planner registers `array` as an alias of DataFusion's `make_array`, \
         which the rest of minispark (salting, nested types) is built on",
    ),
];

/// Names where Spark's version replaces DataFusion's built-in, because it is
/// what a ported Spark job needs and DataFusion's differs in ordinary use.
pub const SPARK_WINS: &[(&str, &str)] = &[];

/// Every name of `datafusion-spark`'s scalar and aggregate functions, with
/// their aliases: `(name, [name, aliases..])`.
fn spark_function_names() -> Vec<(String, Vec<String>)> {
    let scalars = datafusion_spark::all_default_scalar_functions()
        .into_iter()
        .map(|f| (f.name().to_string(), names(f.name(), f.aliases())));
    let aggregates = datafusion_spark::all_default_aggregate_functions()
        .into_iter()
        .map(|f| (f.name().to_string(), names(f.name(), f.aliases())));
    scalars.chain(aggregates).collect()
}

fn names(name: &str, aliases: &[String]) -> Vec<String> {
    std::iter::once(name.to_string())
        .chain(aliases.iter().cloned())
        .collect()
}

/// The names of every scalar, aggregate and window function `ctx` has.
/// (`ctx.state()` copies the whole session state: take it once, not per
/// name; every task's session registers these functions.)
fn taken_names(ctx: &SessionContext) -> HashSet<String> {
    let state = ctx.state();
    let scalars = state.scalar_functions().keys();
    let aggregates = state.aggregate_functions().keys();
    let windows = state.window_functions().keys();
    scalars.chain(aggregates).chain(windows).cloned().collect()
}

/// Whether `ctx` already has a scalar, aggregate or window function `name`.
#[cfg(test)]
fn taken(ctx: &SessionContext, name: &str) -> bool {
    taken_names(ctx).contains(name)
}

/// Registers `datafusion-spark`'s functions in `ctx` under the rules of the
/// module docs. Call it after the session's own functions, so that they are
/// seen as taken. Returns the names registered (aliases included), sorted.
/// Every task's session calls it: it does nothing else.
pub fn register_spark_functions(ctx: &SessionContext) -> Vec<String> {
    let never = |n: &str| NOT_REGISTERED.iter().any(|(m, _)| *m == n);
    let spark_wins = |n: &str| SPARK_WINS.iter().any(|(m, _)| *m == n);
    let taken = taken_names(ctx);
    let register = |name: &str, all: &[String]| {
        !all.iter().any(|n| never(n))
            && (spark_wins(name) || !all.iter().any(|n| taken.contains(n)))
    };
    let mut registered = BTreeSet::new();
    for f in datafusion_spark::all_default_scalar_functions() {
        let all = names(f.name(), f.aliases());
        if register(f.name(), &all) {
            ctx.register_udf(f.as_ref().clone());
            registered.extend(all);
        }
    }
    for f in datafusion_spark::all_default_aggregate_functions() {
        let all = names(f.name(), f.aliases());
        if register(f.name(), &all) {
            ctx.register_udaf(f.as_ref().clone());
            registered.extend(all);
        }
    }
    registered.into_iter().collect()
}

/// The names of `datafusion-spark`'s functions (aliases included) not in
/// `registered`, sorted: where the session's own function is kept. For the
/// README's list and its test.
pub fn kept_names(registered: &[String]) -> Vec<String> {
    let kept: BTreeSet<String> = spark_function_names()
        .into_iter()
        .flat_map(|(_, all)| all)
        .filter(|n| !registered.contains(n))
        .collect();
    kept.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::FunctionRegistry;

    #[test]
    fn minispark_and_datafusion_functions_are_kept() {
        let ctx = SessionContext::new();
        crate::register_minispark_functions(&ctx).unwrap();
        let hash_before = ctx.udf("hash").unwrap();
        let registered = register_spark_functions(&ctx);
        let kept = kept_names(&registered);
        // minispark's hash (not datafusion-spark's, should it ever get one).
        assert!(Arc::ptr_eq(&hash_before, &ctx.udf("hash").unwrap()));
        assert!(!registered.iter().any(|n| n == "hash" || n == "array"));
        // Spark's functions that DataFusion lacks are registered...
        for name in ["pmod", "date_add", "last_day", "soundex"] {
            assert!(registered.iter().any(|n| n == name), "{name}");
            assert!(taken(&ctx, name), "{name}");
        }
        // ... and DataFusion's own are kept where both exist.
        let kept_somewhere = kept.iter().any(|n| taken(&SessionContext::new(), n));
        assert!(kept_somewhere, "{kept:?}");
        // Nothing is in both lists, and a second registration adds nothing.
        assert!(registered.iter().all(|n| !kept.contains(n)));
        assert!(register_spark_functions(&ctx).is_empty());
    }

    #[tokio::test]
    async fn pmod_is_sparks() {
        let ctx = crate::test_context();
        let batches = ctx
            .sql("SELECT pmod(-7, 3) AS a, pmod(7, -3) AS b, pmod(CAST(NULL AS INT), 3) AS c")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let shown = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        // Spark 3.5: pmod(-7, 3) = 2, pmod(7, -3) = 1, pmod(NULL, 3) = NULL.
        assert!(shown.contains("| 2 | 1 |   |"), "{shown}");
    }
}
