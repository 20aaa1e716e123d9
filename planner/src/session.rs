//! The DataFusion session every minispark process plans and runs with.
//!
//! The driver plans with it and executors decode plans with it, so both see
//! the same functions (Spark's `hash`), catalogs (`tpch.*`, `netflix.*`),
//! table formats (`STORED AS DELTA`) and settings.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::{SessionConfig, SessionContext};

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
/// DataFusion's runtime settings (`datafusion.runtime.*`) are not part of a
/// config: they are checked here and applied to a runtime environment by
/// whoever builds one ([`crate::runtime_settings`]).
pub fn session_config(settings: &HashMap<String, String>) -> Result<SessionConfig> {
    crate::runtime_settings::RuntimeSettings::from_settings(settings)?;
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_option_extension(MinisparkConfig::default());
    for (k, v) in FORCED_SETTINGS {
        config.options_mut().set(k, v)?;
    }
    let mut keys: Vec<_> = settings.keys().collect();
    keys.sort();
    for key in keys {
        if !crate::runtime_settings::is_runtime_setting(key) {
            config.options_mut().set(key, &settings[key])?;
        }
    }
    Ok(config)
}

/// A session state with minispark's functions and catalogs, reading local
/// files only (`file://` and paths).
pub fn session_state(config: SessionConfig) -> SessionState {
    session_state_with_runtime(config, None)
}

/// [`session_state`] with its own runtime environment: what the processes
/// that read object stores give it, with their object store registry (the
/// `minispark-storage` crate builds both; the planner opens no sockets).
pub fn session_state_with_runtime(
    config: SessionConfig,
    runtime: Option<Arc<RuntimeEnv>>,
) -> SessionState {
    let mut builder = SessionStateBuilder::new().with_config(config);
    if let Some(runtime) = runtime {
        builder = builder.with_runtime_env(runtime);
    }
    let mut state = builder
        .with_default_features()
        // `STORED AS DELTA`: Delta Lake tables (the `minispark-delta` crate).
        .with_table_factory(
            minispark_delta::STORED_AS.to_string(),
            Arc::new(minispark_delta::DeltaTableFactory),
        )
        .with_query_planner(Arc::new(MinisparkQueryPlanner))
        .build();
    // `CREATE EXTERNAL TABLE ... STORED AS ICEBERG`.
    state.table_factories_mut().insert(
        "ICEBERG".into(),
        Arc::new(minispark_iceberg::IcebergTableFactory),
    );
    let ctx = SessionContext::new_with_state(state);
    if let Err(e) = minispark_functions::register_all(&ctx) {
        // Registering into a SessionState does not fail today.
        tracing::error!("registering minispark's SQL functions: {e}");
    }
    // Spark spells `make_array` as `array`.
    let make_array = datafusion::functions_nested::make_array::make_array_udf();
    ctx.register_udf(make_array.as_ref().clone().with_aliases(["array"]));
    for marker in crate::repartition::markers::marker_udfs() {
        ctx.register_udf(marker);
    }
    crate::ansi_arithmetic::register_ansi_arithmetic(&ctx);
    minispark_datagen::register_tpch_catalog(&ctx);
    minispark_datagen::register_netflix_catalog(&ctx, netflix_settings);
    ctx.state()
}

/// Every function of a minispark session, by name and alias: what a task
/// needs to decode and run a plan. Built once per process: a session with
/// DataFusion's, minispark's and `datafusion-spark`'s functions costs
/// about 400 registrations, and an executor runs a task every few
/// milliseconds of a short job.
struct Functions {
    scalar: HashMap<String, Arc<ScalarUDF>>,
    higher_order: HashMap<String, Arc<HigherOrderUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    window: HashMap<String, Arc<WindowUDF>>,
}

fn functions() -> &'static Functions {
    static FUNCTIONS: OnceLock<Functions> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let state =
            session_state(SessionConfig::new().with_option_extension(MinisparkConfig::default()));
        Functions {
            scalar: state.scalar_functions().clone(),
            higher_order: state.higher_order_functions().clone(),
            aggregate: state.aggregate_functions().clone(),
            window: state.window_functions().clone(),
        }
    })
}

/// The context a task runs in: `session_id` (naming the task), `config`
/// (its job's settings), `runtime`
/// (its memory pool, spill files and object stores) and the functions of
/// [`session_state`], without building a session: a task plans nothing,
/// it decodes a physical plan and runs it. Functions that depend on the
/// settings (a time zone, say) are specialised to `config`, as a session
/// built with it would do.
pub fn task_context(
    session_id: String,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> TaskContext {
    let functions = functions();
    let mut scalar = functions.scalar.clone();
    for udf in scalar.values_mut() {
        if let Some(updated) = udf.inner().with_updated_config(config.options()) {
            *udf = Arc::new(updated);
        }
    }
    TaskContext::new(
        None,
        session_id,
        config,
        scalar,
        functions.higher_order.clone(),
        functions.aggregate.clone(),
        functions.window.clone(),
        runtime,
    )
}

/// The session's `minispark.netflix.skew` and `.seed`, read by the built-in
/// netflix tables when a scan is planned.
pub fn netflix_settings(options: &ConfigOptions) -> (f64, u64) {
    let settings = crate::config::minispark_config(options);
    (settings.netflix_skew, settings.netflix_seed)
}

/// A fresh context with minispark's functions, catalogs and `settings`.
pub fn session_context(settings: &HashMap<String, String>) -> Result<SessionContext> {
    Ok(SessionContext::new_with_state(session_state(
        session_config(settings)?,
    )))
}

/// Every setting of `ctx` that differs from a fresh session, as key/values:
/// what a task needs to run a plan the way the driver planned it. Secret
/// settings (object store keys) are included with their values: a task
/// reads its data with the credentials of the session that submitted it.
pub fn changed_settings(ctx: &SessionContext) -> HashMap<String, String> {
    let fresh = session_config(&HashMap::new())
        .map(|c| c.options().entries())
        .unwrap_or_default();
    let fresh: HashMap<String, Option<String>> =
        fresh.into_iter().map(|e| (e.key, e.value)).collect();
    let state = ctx.state();
    let options = state.config().options();
    let mut changed: HashMap<String, String> = options
        .entries()
        .into_iter()
        .filter(|e| fresh.get(&e.key) != Some(&e.value))
        .filter_map(|e| e.value.map(|v| (e.key, v)))
        .collect();
    // The entries show secrets as `********`.
    changed.extend(crate::config::secret_settings(
        &crate::config::minispark_config(options),
    ));
    // `SET datafusion.runtime.*` changed the session's runtime, not its
    // config: tasks apply these to theirs.
    changed.extend(crate::runtime_settings::changed_runtime_settings(
        state.runtime_env(),
    ));
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::{collect_partitioned, displayable};
    use minispark_datagen::{NetflixParams, NetflixScanExec};

    fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `minispark.netflix.skew` / `.seed` reach the scan node the driver
    /// plans, and the node survives the plan codec an executor decodes.
    #[tokio::test]
    async fn netflix_settings_reach_the_scan_and_the_codec() {
        let ctx = session_context(&settings(&[
            ("minispark.netflix.skew", "0.5"),
            ("minispark.netflix.seed", "7"),
            ("datafusion.execution.target_partitions", "3"),
        ]))
        .unwrap();
        let plan = ctx
            .sql("SELECT user_id, device FROM netflix.tiny.viewing_events")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        assert!(text.contains("skew=0.5, seed=7, partitions=3"), "{text}");
        let bytes = crate::codec::encode_plan(Arc::clone(&plan)).unwrap();
        let task = ctx.task_ctx();
        let decoded = crate::codec::decode_plan(&bytes, &task).unwrap();
        let mut scan = Arc::clone(&decoded);
        while scan.downcast_ref::<NetflixScanExec>().is_none() {
            scan = Arc::clone(scan.children()[0]);
        }
        let scan = scan.downcast_ref::<NetflixScanExec>().unwrap();
        assert_eq!(
            scan.params(),
            NetflixParams::try_new(0.001, 0.5, 7).unwrap()
        );
        let a = collect_partitioned(plan, ctx.task_ctx()).await.unwrap();
        let b = collect_partitioned(decoded, task).await.unwrap();
        assert_eq!(a, b);
    }

    /// A secret setting shows as `********` in SHOW, information_schema and
    /// Debug, yet travels to the tasks with its value.
    #[tokio::test]
    async fn secrets_are_hidden_but_travel() {
        let ctx = session_context(&settings(&[
            ("minispark.s3.secretAccessKey", "hunter2-secret"),
            ("minispark.s3.accessKeyId", "AKID"),
        ]))
        .unwrap();
        for sql in [
            "SHOW ALL",
            "SELECT value FROM information_schema.df_settings WHERE name = 'minispark.s3.secretAccessKey'",
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let text = arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            assert!(!text.contains("hunter2"), "{sql}: {text}");
            assert!(text.contains("********"), "{sql}: {text}");
        }
        let debug = format!("{:?}", ctx.state().config().options());
        assert!(!debug.contains("hunter2"), "{debug}");
        let changed = changed_settings(&ctx);
        assert_eq!(
            changed
                .get("minispark.s3.secretAccessKey")
                .map(String::as_str),
            Some("hunter2-secret")
        );
        assert_eq!(
            changed.get("minispark.s3.accessKeyId").map(String::as_str),
            Some("AKID")
        );
        // What travels rebuilds the same session.
        let task = session_context(&changed).unwrap();
        let config = crate::config::minispark_config(task.state().config().options());
        assert_eq!(config.s3_secret_access_key.expose(), "hunter2-secret");
        // Unset secrets do not travel.
        let fresh = session_context(&HashMap::new()).unwrap();
        assert!(changed_settings(&fresh).is_empty());
    }

    #[test]
    fn bad_netflix_settings_are_rejected() {
        assert!(session_context(&settings(&[("minispark.netflix.skew", "-1")])).is_err());
        assert!(session_context(&settings(&[("minispark.netflix.seed", "x")])).is_err());
    }

    /// The defaults the settings table documents are the generator's.
    #[test]
    fn netflix_defaults_are_the_generators() {
        let fresh = session_config(&HashMap::new()).unwrap();
        assert_eq!(
            netflix_settings(fresh.options()),
            (NetflixParams::DEFAULT_SKEW, NetflixParams::DEFAULT_SEED)
        );
    }
}
