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
//! * [`cluster`]: live executors, slots, heartbeat expiry.
//! * [`scheduler`]: stages in dependency order, retries, lost executors.
//! * [`map_output_tracker`]: where each finished map task's output is
//!   (Spark's MapOutputTracker): stage completeness, lost outputs.
//! * [`ids`]: typed job, stage and task-attempt ids.
//! * [`job_counters`]: what a job did (attempts, failures, lost executors,
//!   recomputed outputs, adaptive and salting decisions), for tests and users.
//! * [`job`]: sessions and statements; EXPLAIN and EXPLAIN ANALYZE.
//! * [`results`]: reading result blocks back.
//! * [`salting`]: key salting, the driver half: which skewed joins and
//!   GROUP BYs to salt, from a sampling pass (the rewrites are the planner's).
//! * [`service`]: the gRPC service.
//! * [`registration`]: who may register as an executor (ids, slots,
//!   duplicates).
//! * [`deep_work`]: parsing, decoding and planning what arrives over the
//!   wire on threads with room for deep plans, and the nesting limit.

pub mod cluster;
pub mod deep_work;
pub mod ids;
pub mod job;
pub mod job_counters;
pub mod map_output_tracker;
pub mod registration;
pub mod results;
pub mod salting;
pub mod scheduler;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
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
    pub heartbeat_interval: Duration,
    /// An executor silent for this long is declared lost.
    pub heartbeat_timeout: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7077".into(),
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(10),
        }
    }
}

/// A running driver: its gRPC server and its cluster state.
#[derive(Debug)]
pub struct Driver {
    pub cluster: Arc<Cluster>,
    pub address: SocketAddr,
    /// Settings every session of this driver starts with (a session's own
    /// settings override them).
    pub default_settings: std::collections::HashMap<String, String>,
    server: JoinHandle<()>,
    expiry: JoinHandle<()>,
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
        let cluster = Arc::new(Cluster::new(
            options.heartbeat_interval,
            options.heartbeat_timeout,
        ));
        let service = DriverService {
            cluster: Arc::clone(&cluster),
        };
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .max_concurrent_streams(minispark_proto::limits::MAX_CONCURRENT_STREAMS)
                .add_service(
                    // Requests carry plans (SubmitJob); answers carry results.
                    DriverServer::new(service)
                        .max_decoding_message_size(minispark_proto::limits::PLAN_MESSAGE_LIMIT)
                        .max_encoding_message_size(minispark_proto::limits::RESULT_MESSAGE_LIMIT),
                )
                .serve_with_incoming(
                    // No Nagle: small task and status messages must not wait for ACKs.
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await;
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
        info!(%address, "driver listening");
        Ok(Self {
            cluster,
            address,
            default_settings: Default::default(),
            server,
            expiry,
        })
    }

    /// The URL executors and clients use to reach this driver.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
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
    }
}
