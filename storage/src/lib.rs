//! # minispark-storage: object stores
//!
//! Reading and writing `s3://`, `gs://`, `az://` (also `azure://`,
//! `abfs[s]://`, `adl://`) and `http(s)://` locations, wherever a path is
//! accepted: `CREATE EXTERNAL TABLE ... LOCATION`, `COPY ... TO`,
//! `Session::read_parquet` and friends, `DataFrame::write_parquet`.
//!
//! Each session gets a [`StoreRegistry`] (DataFusion's object store
//! registry) that builds a bucket's store on first use from the session's
//! `minispark.s3.*` / `.gcs.*` / `.azure.*` settings over the process's
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`): see [`store_settings`].
//! The settings travel to every task with the job, so the driver and each
//! executor build the same store without depending on the environment of
//! the client that submitted it. Secret settings show as `********` in
//! `SHOW`, `information_schema`, `Debug` and error messages.
//!
//! The planner stays free of sockets: this crate builds the runtime
//! environment and hands it to
//! [`minispark_planner::session::session_state_with_runtime`]; the driver,
//! the executors and the client call [`session_state`] /
//! [`session_context`] instead of the planner's local-files-only ones.
//!
//! * [`object_store_registry`]: the registry, and the process-wide cache of
//!   stores.
//! * [`store_settings`]: the settings, and building one bucket's store.

pub mod object_store_registry;
pub mod store_settings;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use minispark_planner::runtime_settings::RuntimeSettings;
use minispark_planner::session::{session_config, session_state_with_runtime, task_context};

pub use object_store_registry::StoreRegistry;
pub use store_settings::StoreSettings;

/// A session state with minispark's functions and catalogs that reads and
/// writes object stores, with the object store settings of `config`.
pub fn session_state(config: SessionConfig) -> Result<SessionState> {
    session_state_on(config, RuntimeEnvBuilder::new())
}

/// [`session_state`] on a runtime built from `runtime` (a memory pool and
/// spill files of its own, say), with minispark's object store registry.
pub fn session_state_on(config: SessionConfig, runtime: RuntimeEnvBuilder) -> Result<SessionState> {
    let (config, runtime) = with_store_registry(config, runtime)?;
    Ok(session_state_with_runtime(config, Some(runtime)))
}

/// A task's context (see [`minispark_planner::session::task_context`]) on
/// a runtime built from `runtime`, with minispark's object store registry
/// following `config`'s store settings.
pub fn task_context_on(
    session_id: String,
    config: SessionConfig,
    runtime: RuntimeEnvBuilder,
) -> Result<TaskContext> {
    let (config, runtime) = with_store_registry(config, runtime)?;
    Ok(task_context(session_id, config, runtime))
}

/// `config` and a runtime built from `runtime`, both with an object store
/// registry following `config`'s store settings.
fn with_store_registry(
    config: SessionConfig,
    runtime: RuntimeEnvBuilder,
) -> Result<(SessionConfig, Arc<RuntimeEnv>)> {
    let registry = Arc::new(StoreRegistry::new(StoreSettings::from_options(
        config.options(),
    )));
    let runtime = runtime
        .with_object_store_registry(Arc::clone(&registry) as _)
        .build_arc()?;
    // Kept in the config too, so that `sync_settings` finds it after a SET.
    Ok((config.with_extension(registry), runtime))
}

/// A fresh context with minispark's functions, catalogs, `settings` and
/// object stores.
pub fn session_context(settings: &HashMap<String, String>) -> Result<SessionContext> {
    // `datafusion.runtime.*` (a memory limit, say) shape this process's
    // runtime, as DataFusion's own SET would.
    let runtime = RuntimeSettings::from_settings(settings)?.apply(RuntimeEnvBuilder::new());
    Ok(SessionContext::new_with_state(session_state_on(
        session_config(settings)?,
        runtime,
    )?))
}

/// Makes `ctx`'s object stores follow its current settings: call it before
/// running a statement, since `SET minispark.s3.endpoint = ...` changes
/// only the settings. A context without a [`StoreRegistry`] (one of
/// [`minispark_planner::session::session_context`]) is left as it is.
pub fn sync_settings(ctx: &SessionContext) {
    let state = ctx.state_ref();
    let state = state.read();
    let config = state.config();
    if let Some(registry) = config.get_extension::<StoreRegistry>() {
        registry.set_settings(StoreSettings::from_options(config.options()));
    }
}
