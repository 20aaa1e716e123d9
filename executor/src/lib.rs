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
//!                                                  │   ShuffleReaderExec: local blocks streamed from disk,
//!                                                  │   remote blocks via FetchPartition, concurrently
//!                                                  │   (bounded bytes in flight), retried with backoff
//!                                                  ▼ write <job>/stage-<s>/map-<p>.attempt-<a>-*.tmp/{data,index}
//!                                                    rename to <job>/stage-<s>/map-<p>/: first commit wins
//!         ◀──────────── TaskStatus (committed attempt, rows and bytes of each block) ──
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
//!   they spill; the shuffle writer's and reader's buffers and broadcast
//!   build sides are named consumers in it.
//! * [`shuffle`]: the map side: partitioner, one data file and one index
//!   per map task attempt, then the commit.
//! * [`shuffle_index`]: that layout (Spark's), and reading a block's bytes
//!   as a stream.
//! * [`map_output_commit`]: attempts write under names of their own and
//!   rename into place; the first commit wins, the loser's files go, and
//!   an attempt that fails or is cancelled removes its files at once.
//! * [`shuffle_block_fetcher`]: the reduce side: local blocks streamed,
//!   remote ones fetched concurrently within `minispark.reducer.maxSizeInFlight`
//!   and the task's memory, with retries and a per-fetch timeout
//!   (`minispark.shuffle.io.connectionTimeout`); a block that is gone is a
//!   typed `FetchFailed`.
//! * [`broadcast_cache`]: the build side of a broadcast join, read once
//!   per executor and stage and shared by its tasks (accounted in the
//!   memory pool, freed when the job ends).
//! * [`broadcast_hash_table`]: a broadcast join's hash table, built by the
//!   first task of the stage on the executor and probed by the others.
//! * [`shuffle_faults`]: test-only fault injection (environment variables).
//! * [`work_dir`]: where ids from the wire become paths, checked; a job's
//!   files are removed only by the executor that wrote them; job
//!   directories a dead executor left behind are removed when the next one
//!   starts on the same work dir (unless a live executor shares it).
//! * [`task_definition`]: checks on a `LaunchTask` request before it runs.
//! * [`driver_connection`]: registration and heartbeats; a driver that
//!   restarts at the same address is waited for (backoff up to 5 s, for
//!   `--driver-timeout`, 15 minutes by default) and registered with again,
//!   so executors outlive their driver's restarts.
//! * [`executor_metrics`]: Prometheus `/metrics` on a port of its own
//!   (`--metrics-port`): tasks, task durations, shuffle bytes written and
//!   served, spill, fetch failures.
//! * [`straggler_faults`]: test-only: a sleep injected into one task
//!   through an environment variable, to test speculation and task timeouts.

pub mod broadcast_cache;
pub mod broadcast_hash_table;
pub mod driver_connection;
pub mod executor_metrics;
pub mod map_output_commit;
pub mod memory;
pub mod service;
pub mod shuffle;
pub mod shuffle_block_fetcher;
pub mod shuffle_faults;
pub mod shuffle_index;
pub mod straggler_faults;
pub mod task_definition;
pub mod work_dir;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use minispark_proto::executor_server::ExecutorServer;
use minispark_proto::{ExecutorInfo, Security};
use tokio::net::TcpListener;
use tracing::info;

use crate::driver_connection::DriverLink;
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
    /// How long the executor waits for a silent driver (to come back after
    /// a restart) before it stops (`--driver-timeout`; see
    /// [`driver_connection`]).
    pub driver_timeout: Duration,
    /// Bytes its tasks may hold at once (`--memory`); unbounded when `None`.
    pub memory: Option<u64>,
    /// Where to serve Prometheus metrics at `/metrics`, `HOST:PORT` (port 0
    /// picks a free one; the address is printed on stderr); `None`: not
    /// served. See [`executor_metrics`].
    pub metrics_listen: Option<String>,
}

/// Starts an executor and serves until the process is stopped or the driver
/// is gone for good (silent for [`ExecutorOptions::driver_timeout`]; a
/// driver restarting at the same address is waited for and registered
/// with again).
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
    // This process's token: the driver knows it by it when it registers
    // again.
    let instance = uuid::Uuid::new_v4().simple().to_string();
    // Held while the executor runs: another executor starting on the same
    // work dir sees it is in use. Job directories a previous (dead) process
    // left behind are removed now, unless a live executor shares the dir.
    let (_work_dir_lock, stale) = work_dir::WorkDirLock::acquire(&options.work_dir, &id);
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
    let memory = crate::memory::ExecutorMemory::new(
        options.memory,
        options.slots.max(1),
        &options.work_dir,
        !stale.shared,
    )?;
    let memory_limit = memory.limit();
    if let Some(limit) = memory_limit {
        info!(
            executor_id = id,
            memory_mib = limit >> 20,
            "executor memory bounded"
        );
    }
    let service = ExecutorService::new(
        id.clone(),
        options.work_dir.clone(),
        task_handle,
        options.security.clone(),
        memory,
    );
    let active = Arc::clone(&service.active_tasks);
    let _metrics_server = match &options.metrics_listen {
        Some(listen) => {
            let (bound, server) =
                executor_metrics::serve(listen, Arc::clone(&service.metrics)).await?;
            // On stderr whatever the log level: with port 0 this is the only
            // way to learn it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "minispark executor {id} metrics at http://{bound}/metrics"
            );
            Some(AbortTaskOnDrop(server))
        }
        None => None,
    };
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
        instance,
        memory_bytes: memory_limit.unwrap_or(0) as u64,
    };
    // Registers, heartbeats, and registers again after a driver restart,
    // until the driver is gone for good or the server stops.
    let link = DriverLink {
        driver_url: options.driver_url.clone(),
        security: options.security.clone(),
        info,
        active_tasks: active,
        driver_timeout: options.driver_timeout,
    };
    let mut server = server;
    tokio::select! {
        stopped = link.run() => stopped,
        served = &mut server.0 => Err(DataFusionError::Execution(format!(
            "executor server stopped: {}",
            match served {
                Ok(Ok(())) => "it returned".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            }
        ))),
    }
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

/// Aborts a spawned task (the metrics server) when dropped.
struct AbortTaskOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortTaskOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), tonic::transport::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
