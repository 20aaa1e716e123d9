//! The DataFusion session every minispark process plans and runs with.
//!
//! The driver plans with it and executors decode plans with it, so both see
//! the same functions (Spark's `hash`), catalogs (`tpch.*`, `netflix.*`) and settings.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::netflix::register_netflix_catalog;
use crate::catalog::tpch::register_tpch_catalog;
use crate::config::MinisparkConfig;
use crate::hints::MinisparkQueryPlanner;

/// DataFusion settings minispark fixes, and why.
pub const FORCED_SETTINGS: &[(&str, &str)] = &[
    // Scans are already split into partitions; a round-robin repartition
    // would be an extra shuffle over the network for nothing.
    (
        "datafusion.optimizer.enable_round_robin_repartition",
        "false",
    ),
    // Dynamic filters are shared memory between a join and a scan; across
    // stages they live in different processes.
    (
        "datafusion.optimizer.enable_dynamic_filter_pushdown",
        "false",
    ),
    (
        "datafusion.optimizer.enable_join_dynamic_filter_pushdown",
        "false",
    ),
    (
        "datafusion.optimizer.enable_topk_dynamic_filter_pushdown",
        "false",
    ),
    (
        "datafusion.optimizer.enable_aggregate_dynamic_filter_pushdown",
        "false",
    ),
    // Each task reads exactly its own file group: partitions of one scan run
    // in different processes and cannot steal files from each other.
    (
        "datafusion.execution.enable_file_stream_work_stealing",
        "false",
    ),
    // Plan scalar subqueries as joins, which minispark knows how to distribute.
    (
        "datafusion.optimizer.enable_physical_uncorrelated_scalar_subquery",
        "false",
    ),
];

/// A session config with minispark's settings registered and forced.
pub fn session_config(settings: &HashMap<String, String>) -> Result<SessionConfig> {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_option_extension(MinisparkConfig::default());
    for (k, v) in FORCED_SETTINGS {
        config.options_mut().set(k, v)?;
    }
    let mut keys: Vec<_> = settings.keys().collect();
    keys.sort();
    for key in keys {
        config.options_mut().set(key, &settings[key])?;
    }
    Ok(config)
}

/// A session state with minispark's functions and catalogs.
pub fn session_state(config: SessionConfig) -> SessionState {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(Arc::new(MinisparkQueryPlanner))
        .build();
    let ctx = SessionContext::new_with_state(state);
    if let Err(e) = minispark_functions::register_all(&ctx) {
        // Registering into a SessionState does not fail today.
        tracing::error!("registering minispark's SQL functions: {e}");
    }
    // Spark spells `make_array` as `array`.
    let make_array = datafusion::functions_nested::make_array::make_array_udf();
    ctx.register_udf(make_array.as_ref().clone().with_aliases(["array"]));
    register_tpch_catalog(&ctx);
    register_netflix_catalog(&ctx);
    ctx.state()
}

/// A fresh context with minispark's functions, catalogs and `settings`.
pub fn session_context(settings: &HashMap<String, String>) -> Result<SessionContext> {
    Ok(SessionContext::new_with_state(session_state(
        session_config(settings)?,
    )))
}

/// Every setting of `ctx` that differs from a fresh session, as key/values:
/// what a task needs to run a plan the way the driver planned it.
pub fn changed_settings(ctx: &SessionContext) -> HashMap<String, String> {
    let fresh = session_config(&HashMap::new())
        .map(|c| c.options().entries())
        .unwrap_or_default();
    let fresh: HashMap<String, Option<String>> =
        fresh.into_iter().map(|e| (e.key, e.value)).collect();
    ctx.state()
        .config()
        .options()
        .entries()
        .into_iter()
        .filter(|e| fresh.get(&e.key) != Some(&e.value))
        .filter_map(|e| e.value.map(|v| (e.key, v)))
        .collect()
}
