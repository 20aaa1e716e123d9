//! The web UI: Spark's UI on the driver, server-rendered.
//!
//! ```text
//!  StatusStore (jobs, stages, tasks, executors) ──▶ pages (HTML + inline SVG)
//!        ▲                                      └─▶ /api/v1/ (JSON)
//!  scheduler, job runner, cluster  ── StatusEvent ──┘
//! ```
//!
//! Every page and the JSON API render the same [`StatusStore`] snapshot
//! types, so what a page shows is what the API returns. Everything a page
//! needs is in its HTML (style sheet and SVG inline, no script, no CDN): the
//! machines that run a cluster may have no internet. While a job runs, pages
//! reload themselves every two seconds (`<meta http-equiv="refresh">`).
//!
//! * [`server`]: the HTTP server and its routes; every path, id and query
//!   is checked, and an unknown one is a 404 page saying what was not found.
//! * [`jobs_page`], [`job_page`], [`stage_page`], [`executors_page`],
//!   [`sql_page`]: one page each.
//! * [`dag_svg`], [`histogram_svg`], [`timeline_svg`]: the pictures: the
//!   stage DAG, a stage's output partition sizes, its tasks per executor
//!   slot over time.
//! * [`quantiles`]: Spark's task summary (min, 25th, median, 75th, max).
//! * [`api`]: `/api/v1/` as JSON.
//! * [`html`]: the page frame, escaping and number formats.
//! * [`history`]: the history server, this UI over event logs.
//!
//! The history server (`minispark history --dir DIR`) is this UI over a
//! store replayed from event logs ([`UiSource::history`]).

pub mod api;
pub mod dag_svg;
pub mod executors_page;
pub mod histogram_svg;
pub mod history;
pub mod html;
pub mod job_page;
pub mod jobs_page;
pub mod quantiles;
pub mod server;
pub mod sql_page;
pub mod stage_page;
pub mod timeline_svg;

use std::net::SocketAddr;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::status_store::StatusStore;

/// What a UI shows: a live driver's store and cluster, or a store replayed
/// from event logs.
#[derive(Debug)]
pub struct UiSource {
    pub store: Arc<StatusStore>,
    /// The live cluster (running tasks, heartbeats); `None` in the history
    /// server.
    pub cluster: Option<Arc<Cluster>>,
    /// What could not be read from the event logs (history server).
    pub notes: Vec<String>,
}

impl UiSource {
    /// The UI of a running driver.
    pub fn live(cluster: Arc<Cluster>) -> Self {
        Self {
            store: Arc::clone(&cluster.status),
            cluster: Some(cluster),
            notes: vec![],
        }
    }

    /// The history server's UI: `store` replayed from event logs, `notes`
    /// what could not be read.
    pub fn history(store: Arc<StatusStore>, notes: Vec<String>) -> Self {
        Self {
            store,
            cluster: None,
            notes,
        }
    }

    pub fn is_history(&self) -> bool {
        self.cluster.is_none()
    }
}

/// Ports tried after a busy one (Spark's UI moves from 4040 to 4041, ...).
pub const PORT_TRIES: u16 = 16;

/// Binds `listen` (`HOST:PORT`; when the port is taken, the next of
/// [`PORT_TRIES`] ports; port 0 picks a free one) and serves the UI of
/// `source` until the returned task is aborted.
pub async fn start(listen: &str, source: UiSource) -> Result<(SocketAddr, JoinHandle<()>)> {
    let (host, port) = listen
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(|c| c == '[' || c == ']'),
                p.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| {
            DataFusionError::Configuration(format!(
                "the web UI address '{listen}' is not HOST:PORT"
            ))
        })?;
    let ports = if port == 0 {
        0..=0
    } else {
        port..=port.saturating_add(PORT_TRIES - 1)
    };
    let mut last = None;
    for p in ports {
        match TcpListener::bind((host, p)).await {
            Ok(listener) => {
                let address = listener.local_addr()?;
                let app = server::router(Arc::new(source));
                let handle = tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!(error = %e, "web UI server stopped");
                    }
                });
                return Ok((address, handle));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(DataFusionError::Configuration(format!(
        "the web UI cannot listen on {listen} (nor on the {} ports after it): {}",
        PORT_TRIES - 1,
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}
