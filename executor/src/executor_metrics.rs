//! The executor's Prometheus metrics, served at `/metrics` on a port of
//! its own (`minispark executor --metrics-port`): tasks started, succeeded
//! and failed, a task duration histogram, shuffle bytes written and served
//! (to other executors' reduce tasks and to the driver's result reader),
//! bytes spilled to disk, and tasks that failed because a shuffle block
//! could not be fetched. Spark's executor metrics, counted where they
//! happen (atomic counters), in the OpenMetrics text format of the
//! `prometheus-client` crate, as the driver's `/metrics`
//! (`minispark_driver::driver_metrics`) is.
//!
//! The server answers `GET /metrics` (and `HEAD`) only; it has no
//! authentication, like most Prometheus endpoints: bind it where only the
//! scraper can reach it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use datafusion::common::{DataFusionError, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of an executor, and the registry that encodes them.
#[derive(Debug)]
pub struct ExecutorMetrics {
    registry: Registry,
    pub tasks_started: Counter,
    pub tasks_succeeded: Counter,
    pub tasks_failed: Counter,
    pub tasks_running: Gauge,
    pub task_duration: Histogram,
    pub shuffle_written: Counter,
    pub shuffle_served: Counter,
    pub spilled: Counter,
    pub fetch_failures: Counter,
}

impl Default for ExecutorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("minispark_executor");
        let m = Self {
            tasks_started: Counter::default(),
            tasks_succeeded: Counter::default(),
            tasks_failed: Counter::default(),
            tasks_running: Gauge::default(),
            // 1 ms to about 9 hours, doubling (as the driver's).
            task_duration: Histogram::new(exponential_buckets(0.001, 2.0, 25)),
            shuffle_written: Counter::default(),
            shuffle_served: Counter::default(),
            spilled: Counter::default(),
            fetch_failures: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "tasks_started",
            "Task attempts launched on this executor",
            m.tasks_started.clone(),
        );
        r.register(
            "tasks_succeeded",
            "Task attempts that committed their output",
            m.tasks_succeeded.clone(),
        );
        r.register(
            "tasks_failed",
            "Task attempts that failed, panicked or were cancelled",
            m.tasks_failed.clone(),
        );
        r.register(
            "tasks_running",
            "Task attempts running now",
            m.tasks_running.clone(),
        );
        r.register(
            "task_duration_seconds",
            "Run time of successful task attempts",
            m.task_duration.clone(),
        );
        r.register(
            "shuffle_written_bytes",
            "Shuffle bytes successful task attempts wrote",
            m.shuffle_written.clone(),
        );
        r.register(
            "shuffle_served_bytes",
            "Shuffle bytes sent to other executors and to the driver (FetchPartition)",
            m.shuffle_served.clone(),
        );
        r.register(
            "spilled_bytes",
            "Bytes successful task attempts spilled to disk",
            m.spilled.clone(),
        );
        r.register(
            "fetch_failures",
            "Task attempts that failed because a shuffle block could not be fetched",
            m.fetch_failures.clone(),
        );
        Self { registry, ..m }
    }
}

impl ExecutorMetrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            return format!("# error encoding the metrics: {e}\n");
        }
        out
    }
}

/// Binds `listen` (HOST:PORT; port 0 picks a free one) and serves
/// `metrics` at `/metrics` there until the returned task is aborted.
/// Returns the bound address.
pub async fn serve(
    listen: &str,
    metrics: Arc<ExecutorMetrics>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        DataFusionError::Configuration(format!(
            "executor cannot serve its metrics on {listen}: {e}"
        ))
    })?;
    let address = listener.local_addr()?;
    let app = Router::new().fallback(
        move |method: Method, uri: Uri| -> std::future::Ready<Response> {
            std::future::ready(answer(&metrics, &method, &uri))
        },
    );
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the executor's metrics server stopped");
        }
    });
    Ok((address, server))
}

fn answer(metrics: &ExecutorMetrics, method: &Method, uri: &Uri) -> Response {
    let (status, content_type, body) = if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".to_string(),
        )
    } else if uri.path() == "/metrics" {
        (StatusCode::OK, OPENMETRICS, metrics.encode())
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: an executor serves only /metrics\n".to_string(),
        )
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::from("internal error")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family_with_its_prefix() {
        let m = ExecutorMetrics::default();
        m.tasks_started.inc();
        m.shuffle_served.inc_by(42);
        m.task_duration.observe(0.25);
        let text = m.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("minispark_executor_tasks_started_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("minispark_executor_shuffle_served_bytes_total 42\n"),
            "{text}"
        );
        assert!(
            text.contains("minispark_executor_task_duration_seconds_count 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE minispark_executor_fetch_failures counter"),
            "{text}"
        );
    }
}
