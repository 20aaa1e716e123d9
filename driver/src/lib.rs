//! # minispark-driver: the brain of a cluster
//!
//! The driver knows the executors, turns each query into a stage graph and
//! runs it, and answers clients.
//!
//! ```text
//!  client ──SubmitJob(script)──▶ DriverService ──▶ JobSession (catalog, settings)
//!                                                    │ plan_stages
//!                                                    ▼
//!                                 scheduler::run_job ──LaunchTask──▶ executors
//!                                                    │ result blocks
//!  client ◀──────── JobEvent stream (Arrow IPC) ─────┘
//! ```
//!
//! Its URL ([`Driver::url`]) is its advertised address: bound to 0.0.0.0, an
//! address of its host others reach (`minispark_proto::advertised_address`).
//!
//! * [`cluster`]: live executors, slots, heartbeat expiry.
//! * [`scheduler`]: stages in dependency order, retries, lost executors.
//! * [`speculation`]: a second attempt of a straggler on another executor
//!   (`minispark.speculation`, off by default as in Spark); the first
//!   attempt to finish wins, the other is cancelled.
//! * [`task_timeout`]: an attempt with no result within
//!   `minispark.task.timeout` is cancelled and retried.
//! * [`map_output_tracker`]: where each finished map task's output is
//!   (Spark's MapOutputTracker): stage completeness, lost outputs.
//! * [`ids`]: typed job, stage and task-attempt ids.
//! * [`job_counters`]: what a job did (attempts, failures, lost executors,
//!   recomputed outputs, adaptive and salting decisions), for tests and users.
//! * [`job`]: sessions and statements; EXPLAIN and EXPLAIN ANALYZE.
//! * [`results`]: reading result blocks back.
//! * [`salting`]: key salting, the driver half: which skewed joins and
//!   GROUP BYs to salt, from a sampling pass (the rewrites are the planner's).
//! * [`service`]: the gRPC service, behind the cluster's authentication
//!   (and TLS) layer: [`DriverOptions::security`], see
//!   `minispark_proto::security`.
//! * [`registration`]: who may register as an executor (ids, slots,
//!   duplicates). Executors outlive a driver restart: a new driver process
//!   at the same address gets them back as they register again (see
//!   `minispark_executor::driver_connection`).
//! * [`status_store`]: what the web UI shows, recorded as jobs run (Spark's
//!   listener bus and `AppStatusStore`): jobs, stages, tasks with their
//!   metrics, output partition sizes and hot keys, adaptive decisions,
//!   executors added and lost; the last `--ui-retained-jobs` jobs.
//! * [`event_log`]: a job's events as JSON lines
//!   (`minispark.eventLog.dir`), read back by the history server.
//! * [`driver_metrics`]: Prometheus metrics at `/metrics` (jobs, stages,
//!   tasks, task durations, shuffle and spill bytes, executors, fetch
//!   failures, recomputed outputs), counted from the same events.
//! * [`ui`]: the web UI on `--ui-port` (default 4040): jobs, the stage DAG,
//!   stages with task quantiles, the partition-size histogram and the task
//!   timeline, executors, SQL; a JSON API under `/api/v1/`.
//! * [`deep_work`]: parsing, decoding and planning what arrives over the
//!   wire on threads with room for deep plans, and the nesting limit.
//! * [`statement_errors`]: errors that name the script's statement (number,
//!   line, first line), and syntax errors in user words.
//! * [`unsupported`]: statements, formats and plans minispark refuses by
//!   name (indexes, transactions, unknown `STORED AS`, recursive CTEs).
//! * [`table_files`]: a new external table's files checked (missing
//!   locations, `PARTITIONED BY` folders, empty and corrupt Parquet files).
//! * [`write`]: distributed writes, the driver half of the file commit
//!   protocol: the job commit (or abort) of what the tasks wrote.

pub mod cluster;
pub mod deep_work;
pub mod driver_metrics;
pub mod event_log;
pub mod ids;
pub mod job;
pub mod job_counters;
pub mod map_output_tracker;
pub mod range_bounds;
pub mod registration;
pub mod results;
pub mod salting;
pub mod scheduler;
pub mod service;
pub mod speculation;
pub mod statement_errors;
pub mod status_store;
pub mod table_files;
pub mod task_timeout;
pub mod ui;
pub mod unsupported;
pub mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use minispark_proto::Security;
use minispark_proto::driver_server::DriverServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::cluster::Cluster;
use crate::service::DriverService;

/// How to start a driver.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Where to listen, e.g. "0.0.0.0:7077" or "127.0.0.1:0".
    pub listen: String,
    /// The address executors and clients are told to use, `HOST[:PORT]`
    /// (the port defaults to the bound one). When `None`: the bound address,
    /// or, bound to 0.0.0.0 / [::], an address of this host others can reach
    /// (see `minispark_proto::advertised_address`).
    pub advertise: Option<String>,
    pub heartbeat_interval: Duration,
    /// An executor silent for this long is declared lost.
    pub heartbeat_timeout: Duration,
    /// The cluster secret every request must prove, and TLS.
    pub security: Security,
    /// Listen on a non-loopback address without a secret (`--insecure`).
    pub insecure: bool,
    /// Where the web UI listens, `HOST:PORT` (`--ui-host`, `--ui-port`);
    /// `None`: no UI.
    pub ui_listen: Option<String>,
    /// Jobs the UI keeps (Spark's `spark.ui.retainedJobs`).
    pub retained_jobs: usize,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7077".into(),
            advertise: None,
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(10),
            security: Security::default(),
            insecure: false,
            ui_listen: None,
            retained_jobs: status_store::DEFAULT_RETAINED_JOBS,
        }
    }
}

/// A running driver: its gRPC server and its cluster state.
#[derive(Debug)]
pub struct Driver {
    pub cluster: Arc<Cluster>,
    /// The bound address.
    pub address: SocketAddr,
    /// The address handed to others, `host:port` ([`DriverOptions::advertise`]).
    pub advertised: String,
    /// Settings every session of this driver starts with (a session's own
    /// settings override them).
    pub default_settings: std::collections::HashMap<String, String>,
    /// This driver's secret and TLS settings.
    pub security: Security,
    /// The web UI's bound address, when it runs.
    pub ui_address: Option<SocketAddr>,
    server: JoinHandle<()>,
    expiry: JoinHandle<()>,
    ui: Option<JoinHandle<()>>,
}

impl Driver {
    /// Binds the listen address and starts serving.
    pub async fn start(options: DriverOptions) -> Result<Self> {
        let listener = TcpListener::bind(&options.listen).await.map_err(|e| {
            DataFusionError::Configuration(format!(
                "driver cannot listen on {}: {e}",
                options.listen
            ))
        })?;
        let address = listener.local_addr()?;
        minispark_proto::security::check_listen(
            address,
            &options.security,
            options.insecure,
            "driver",
        )?;
        let advertised = minispark_proto::advertised_address::driver_address(
            address,
            options.advertise.as_deref(),
        )
        .await?;
        let mut cluster = Cluster::new(
            options.heartbeat_interval,
            options.heartbeat_timeout,
            options.security.clone(),
        );
        cluster.status = Arc::new(status_store::StatusStore::new(options.retained_jobs));
        let cluster = Arc::new(cluster);
        let (ui_address, ui) = match &options.ui_listen {
            Some(listen) => {
                let (address, handle) =
                    ui::start(listen, ui::UiSource::live(Arc::clone(&cluster))).await?;
                info!(%address, "web UI listening");
                (Some(address), Some(handle))
            }
            None => (None, None),
        };
        let service = DriverService {
            cluster: Arc::clone(&cluster),
        };
        let routes = tonic::service::Routes::new(
            // Requests carry plans (SubmitJob); answers carry results.
            DriverServer::new(service)
                .max_decoding_message_size(minispark_proto::limits::PLAN_MESSAGE_LIMIT)
                .max_encoding_message_size(minispark_proto::limits::RESULT_MESSAGE_LIMIT),
        );
        let security = options.security.clone();
        let server = tokio::spawn(async move {
            // Authentication (and TLS) in front of every service.
            let result = minispark_proto::security::serve(routes, listener, &security).await;
            if let Err(e) = result {
                tracing::error!(error = %e, "driver server stopped");
            }
        });
        let expiry_cluster = Arc::clone(&cluster);
        let expiry = tokio::spawn(async move {
            loop {
                tokio::time::sleep(expiry_cluster.heartbeat_interval).await;
                expiry_cluster.expire_silent();
            }
        });
        info!(%address, %advertised, "driver listening");
        Ok(Self {
            cluster,
            address,
            advertised,
            default_settings: Default::default(),
            security: options.security,
            ui_address,
            server,
            expiry,
            ui,
        })
    }

    /// The URL executors and clients use to reach this driver.
    pub fn url(&self) -> String {
        format!("{}://{}", self.security.scheme(), self.advertised)
    }

    /// The web UI's URL, `http://HOST:PORT/`, when it runs.
    pub fn ui_url(&self) -> Option<String> {
        self.ui_address.map(|a| format!("http://{a}/"))
    }

    /// A new client session on this driver.
    pub fn session(
        &self,
        settings: &std::collections::HashMap<String, String>,
    ) -> Result<job::JobSession> {
        let mut merged = self.default_settings.clone();
        merged.extend(settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        job::JobSession::new(Arc::clone(&self.cluster), &merged)
    }

    /// Serves until the server stops.
    pub async fn wait(mut self) -> Result<()> {
        let r = (&mut self.server).await;
        r.map_err(|e| DataFusionError::Execution(format!("driver server task: {e}")))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.server.abort();
        self.expiry.abort();
        if let Some(ui) = &self.ui {
            ui.abort();
        }
    }
}
