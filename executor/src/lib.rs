//! # minispark-executor: where tasks run and shuffle data lives
//!
//! An executor is a long-running process. It registers with the driver,
//! heartbeats, and serves the `Executor` gRPC service:
//!
//! ```text
//!            LaunchTask(stage plan, partition)
//!  driver ─────────────────────────────────────▶ executor
//!                                                  │ decode plan (datafusion-proto + MinisparkCodec)
//!                                                  │ execute partition p of the stage plan
//!                                                  │   ShuffleReaderExec: local blocks from disk,
//!                                                  │   remote blocks via FetchPartition
//!                                                  ▼
//!                                   <work-dir>/<job>/stage-<s>/map-<p>-reduce-<r>.arrow
//!         ◀──────────── TaskStatus (rows and bytes of each block) ──────
//! ```
//!
//! It registers at an address the driver and the other executors can reach:
//! `--advertise`, the bound address, or, bound to 0.0.0.0, the local address
//! of its connection to the driver (`minispark_proto::advertised_address`).
//!
//! * [`service`]: the gRPC service (task runner, block server), behind the
//!   cluster's authentication (and TLS) layer: [`ExecutorOptions::security`],
//!   see `minispark_proto::security`. Shuffle fetches from other executors
//!   prove the same secret.
//! * [`memory`]: the memory pool its tasks share (`--memory`) and where
//!   they spill.
//! * [`shuffle`]: block files, the map-side partitioner, the block reader.
//! * [`work_dir`]: where ids from the wire become paths, checked; a job's
//!   files are removed only by the executor that wrote them.
//! * [`task_definition`]: checks on a `LaunchTask` request before it runs.

pub mod memory;
pub mod service;
pub mod shuffle;
pub mod task_definition;
pub mod work_dir;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use minispark_proto::executor_server::ExecutorServer;
use minispark_proto::{
    AuthChannel, ExecutorInfo, HeartbeatRequest, RegisterExecutorRequest, Security,
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::service::ExecutorService;

/// How to start an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The driver's address, e.g. "http://127.0.0.1:7077".
    pub driver_url: String,
    /// Where to listen, e.g. "127.0.0.1:0" (port 0 picks a free port).
    pub listen: String,
    /// Address other processes use to reach this executor, `HOST[:PORT]`
    /// (the port defaults to the bound one). When `None`: the bound address,
    /// or, bound to 0.0.0.0 / [::], the local address of its connection to
    /// the driver (see `minispark_proto::advertised_address`).
    pub advertise: Option<String>,
    /// Tasks run concurrently.
    pub slots: usize,
    /// Directory for shuffle files.
    pub work_dir: PathBuf,
    /// Executor id; a random one when `None`.
    pub id: Option<String>,
    /// The cluster secret every request must prove (served and sent), and TLS.
    pub security: Security,
    /// Listen on a non-loopback address without a secret (`--insecure`).
    pub insecure: bool,
    /// Bytes its tasks may hold at once (`--memory`); unbounded when `None`.
    pub memory: Option<u64>,
}

/// Starts an executor and serves until the process is stopped or the driver
/// is gone for good.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let id = options
        .id
        .clone()
        .unwrap_or_else(|| format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    minispark_proto::limits::check_executor_id(&id).map_err(DataFusionError::Configuration)?;
    minispark_proto::limits::check_slots(options.slots.max(1) as u64)
        .map_err(DataFusionError::Configuration)?;
    std::fs::create_dir_all(&options.work_dir).map_err(|e| {
        DataFusionError::Configuration(format!(
            "cannot create work dir {}: {e}",
            options.work_dir.display()
        ))
    })?;
    let listener = TcpListener::bind(&options.listen).await.map_err(|e| {
        DataFusionError::Configuration(format!("executor cannot listen on {}: {e}", options.listen))
    })?;
    let local: SocketAddr = listener.local_addr()?;
    minispark_proto::security::check_listen(
        local,
        &options.security,
        options.insecure,
        "executor",
    )?;
    // What the driver, other executors (shuffle fetches) and the driver's
    // result reader connect to: never 0.0.0.0.
    let address = minispark_proto::advertised_address::executor_address(
        local,
        options.advertise.as_deref(),
        &options.driver_url,
    )
    .await?;
    info!(executor_id = id, bound = %local, %address, "executor listening");

    // Tasks get a runtime of their own (one worker per slot), so a busy task
    // never delays a heartbeat.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.slots.max(1))
        .thread_name("minispark-task")
        // Plans and expressions recurse: room for them (address space only).
        .thread_stack_size(minispark_proto::limits::TASK_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(|e| DataFusionError::Execution(format!("cannot start the task runtime: {e}")))?;
    let task_handle = runtime.handle().clone();
    let _task_runtime = TaskRuntime(Some(runtime));
    let memory = crate::memory::ExecutorMemory::new(options.memory, &options.work_dir)?;
    let memory_limit = memory.limit();
    if let Some(limit) = memory_limit {
        info!(executor_id = id, memory_mib = limit >> 20, "executor memory bounded");
    }
    let service = ExecutorService::new(
        id.clone(),
        options.work_dir.clone(),
        task_handle,
        options.security.clone(),
        memory,
    );
    let active = Arc::clone(&service.active_tasks);
    let routes = tonic::service::Routes::new(
        // Requests carry plans (LaunchTask); answers are block chunks.
        ExecutorServer::new(service)
            .max_decoding_message_size(minispark_proto::limits::PLAN_MESSAGE_LIMIT)
            .max_encoding_message_size(minispark_proto::limits::BLOCK_MESSAGE_LIMIT),
    );
    let security = options.security.clone();
    // Authentication (and TLS) in front of every service.
    let server = async move { minispark_proto::security::serve(routes, listener, &security).await };
    // Stopping this future (an executor inside another process, e.g. a
    // DataFrame session's `local[N]`) stops its server and its tasks too.
    let server = AbortOnDrop(tokio::spawn(server));

    let info = ExecutorInfo {
        id: id.clone(),
        address,
        slots: options.slots.max(1) as u32,
        instance: uuid::Uuid::new_v4().simple().to_string(),
        memory_bytes: memory_limit.unwrap_or(0) as u64,
    };
    let mut driver = minispark_proto::driver_client(&options.driver_url, &options.security)?;
    let interval = register(&mut driver, &info, &options.driver_url).await?;

    // Heartbeat until the driver is gone for good.
    let mut failures = 0u32;
    loop {
        if server.0.is_finished() {
            return Err(DataFusionError::Execution("executor server stopped".into()));
        }
        tokio::time::sleep(interval).await;
        let beat = HeartbeatRequest {
            executor_id: id.clone(),
            running_tasks: active.load(Ordering::SeqCst) as u32,
        };
        match driver.heartbeat(beat).await {
            Ok(resp) => {
                failures = 0;
                if !resp.into_inner().known {
                    warn!(
                        executor_id = id,
                        "driver does not know this executor; registering again"
                    );
                    register(&mut driver, &info, &options.driver_url).await?;
                }
            }
            Err(status) => {
                failures += 1;
                warn!(executor_id = id, error = %status.message(), "heartbeat failed");
                if failures >= 30 {
                    return Err(DataFusionError::Execution(format!(
                        "driver at {} unreachable for {failures} heartbeats; executor {id} stops",
                        options.driver_url
                    )));
                }
            }
        }
    }
}

/// Registers with the driver, retrying for a while: the driver may still be
/// starting.
async fn register(
    driver: &mut minispark_proto::driver_client::DriverClient<AuthChannel>,
    info: &ExecutorInfo,
    driver_url: &str,
) -> Result<Duration> {
    let mut last_err = String::new();
    for _ in 0..50 {
        match driver
            .register_executor(RegisterExecutorRequest {
                executor: Some(info.clone()),
            })
            .await
        {
            Ok(resp) => {
                let ms = resp.into_inner().heartbeat_interval_ms.max(10);
                info!(executor_id = info.id, driver_url, "registered with driver");
                return Ok(Duration::from_millis(ms));
            }
            // A wrong or missing secret will not get better by retrying.
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(DataFusionError::Execution(format!(
                    "the driver at {driver_url} refused this executor: {}",
                    status.message()
                )));
            }
            Err(status) => {
                last_err = status.message().to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Err(DataFusionError::Execution(format!(
        "cannot reach the driver at {driver_url}: {last_err}"
    )))
}

/// The executor's task runtime; shut down without blocking when the
/// executor stops (a runtime must not be dropped inside async code).
struct TaskRuntime(Option<tokio::runtime::Runtime>);

impl Drop for TaskRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), tonic::transport::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
