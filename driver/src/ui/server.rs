//! The UI's HTTP server: routes, and answers for what is not there.
//!
//! Every request goes through [`route`], which reads the path segment by
//! segment. Ids in a path are checked against the store, never trusted: an
//! unknown job, a stage number that is not a number or not in the job, an
//! unknown path, all answer 404 with a page (or, under `/api/`, a JSON
//! object) saying what was not found. Only GET and HEAD are served.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;

use super::html::{Tab, esc, page};
use super::{UiSource, api, executors_page, job_page, jobs_page, sql_page, stage_page};
use crate::status_store::{JobStatus, StageStatus};

/// The longest path served (anything longer is not one of ours).
const MAX_PATH: usize = 512;

/// The UI's router: one handler that routes by path.
pub fn router(source: Arc<UiSource>) -> Router {
    Router::new().fallback(handle).with_state(source)
}

async fn handle(State(source): State<Arc<UiSource>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".into(),
        );
    }
    let (status, content_type, body) = route(&source, uri.path());
    reply(status, content_type, body)
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::from("internal error")))
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An answer: status, content type, body.
pub type Answer = (StatusCode, &'static str, String);

/// What to answer for `path`.
pub fn route(source: &UiSource, path: &str) -> Answer {
    if path.len() > MAX_PATH {
        return not_found(
            source,
            false,
            "not a page of this UI: the path is too long".into(),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] | ["jobs"] => (StatusCode::OK, HTML, jobs_page::render(source)),
        ["executors"] => (StatusCode::OK, HTML, executors_page::render(source)),
        ["metrics"] => {
            let alive = match &source.cluster {
                Some(cluster) => cluster.size().0,
                None => source
                    .store
                    .executors()
                    .iter()
                    .filter(|e| e.lost_ms.is_none())
                    .count(),
            };
            (
                StatusCode::OK,
                OPENMETRICS,
                source.store.metrics.encode(alive),
            )
        }
        ["jobs", job] => with_job(source, job, false, |j| {
            (StatusCode::OK, HTML, job_page::render(source, j))
        }),
        ["jobs", job, "sql"] => with_job(source, job, false, |j| {
            (StatusCode::OK, HTML, sql_page::render(source, j))
        }),
        ["jobs", job, "stages", n] => with_stage(source, job, n, false, |j, s| {
            (StatusCode::OK, HTML, stage_page::render(source, j, s))
        }),
        ["api", "v1", "jobs"] => (StatusCode::OK, JSON, api::jobs(source)),
        ["api", "v1", "executors"] => (StatusCode::OK, JSON, api::executors(source)),
        ["api", "v1", "jobs", job] => {
            with_job(source, job, true, |j| (StatusCode::OK, JSON, api::job(j)))
        }
        ["api", "v1", "jobs", job, "stages"] => with_job(source, job, true, |j| {
            (StatusCode::OK, JSON, api::stages(j))
        }),
        ["api", "v1", "jobs", job, "stages", n] => with_stage(source, job, n, true, |j, s| {
            (StatusCode::OK, JSON, api::stage(j, s))
        }),
        ["api", "v1", "jobs", job, "stages", n, "tasks"] => {
            with_stage(source, job, n, true, |_, s| {
                (StatusCode::OK, JSON, api::tasks(s))
            })
        }
        ["api", ..] => not_found(
            source,
            true,
            format!(
                "no API endpoint {path}: see /api/v1/jobs, /api/v1/jobs/{{job}}, \
                 /api/v1/jobs/{{job}}/stages[/{{n}}[/tasks]], /api/v1/executors"
            ),
        ),
        _ => not_found(
            source,
            false,
            format!("no page {path}: see /jobs and /executors"),
        ),
    }
}

fn with_job(
    source: &UiSource,
    job_id: &str,
    json: bool,
    f: impl FnOnce(&JobStatus) -> Answer,
) -> Answer {
    match source.store.job(job_id) {
        Some(job) => f(&job),
        None => not_found(
            source,
            json,
            format!(
                "no job {job_id}: it never ran here, or is older than the last {} jobs kept",
                source.store.retained_jobs
            ),
        ),
    }
}

fn with_stage(
    source: &UiSource,
    job_id: &str,
    stage: &str,
    json: bool,
    f: impl FnOnce(&JobStatus, &StageStatus) -> Answer,
) -> Answer {
    with_job(source, job_id, json, |job| {
        match stage.parse::<usize>().ok().and_then(|n| job.stages.get(n)) {
            Some(s) => f(job, s),
            None => not_found(
                source,
                json,
                format!(
                    "job {job_id} has no stage {stage}: its stages are 0 to {}",
                    job.stages.len().saturating_sub(1)
                ),
            ),
        }
    })
}

fn not_found(source: &UiSource, json: bool, message: String) -> Answer {
    if json {
        let body = serde_json::json!({ "error": "not found", "message": message }).to_string();
        return (StatusCode::NOT_FOUND, JSON, body);
    }
    let body = format!(
        "<p class=\"error\" id=\"not-found\">{}</p><p><a href=\"/jobs\">All jobs</a></p>",
        esc(&message)
    );
    (
        StatusCode::NOT_FOUND,
        HTML,
        page("Not found", Tab::Jobs, false, source.is_history(), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_store::{StageInfo, StatusEvent, StatusStore};

    fn source() -> UiSource {
        let store = Arc::new(StatusStore::default());
        store.record(StatusEvent::JobStart {
            job_id: "job-1".into(),
            time_ms: 1,
            statement: "SELECT '<b>'".into(),
            plan: "join 1: x\nStage 0 (1 task; result)\n  ProjectionExec".into(),
            stages: vec![StageInfo {
                id: 0,
                tasks: 1,
                inputs: vec![],
                exchange: "result".into(),
                partitions: 1,
                operators: vec!["ProjectionExec".into()],
            }],
            skew_factor: 5.0,
            skew_threshold_bytes: 0,
        });
        UiSource::history(store, vec![])
    }

    #[test]
    fn hostile_paths_are_404_with_a_reason() {
        let s = source();
        for (path, status) in [
            ("/", 200),
            ("/jobs", 200),
            ("/jobs/job-1", 200),
            ("/jobs/job-1/sql", 200),
            ("/jobs/job-1/stages/0", 200),
            ("/api/v1/jobs/job-1/stages/0/tasks", 200),
            ("/executors", 200),
            ("/jobs/job-2", 404),
            ("/jobs/job-1/stages/1", 404),
            ("/jobs/job-1/stages/-1", 404),
            ("/jobs/job-1/stages/99999999999999999999999", 404),
            ("/jobs/<script>", 404),
            ("/api/v1/jobs/job-1/stages/x", 404),
            ("/api/v2", 404),
            ("//..//etc/passwd", 404),
        ] {
            let (code, _, body) = route(&s, path);
            assert_eq!(code.as_u16(), status, "{path}: {body}");
            assert!(!body.contains("<script>"), "{path} echoes markup: {body}");
        }
        let (_, _, body) = route(&s, "/jobs/job-1/stages/7");
        assert!(body.contains("job job-1 has no stage 7"), "{body}");
        let (_, _, body) = route(&s, "/jobs/job-1");
        assert!(body.contains("&lt;b&gt;"), "{body}");
        assert_eq!(body.matches("class=\"stage-node\"").count(), 1);
        let long = "/".repeat(MAX_PATH + 1);
        assert_eq!(route(&s, &long).0, StatusCode::NOT_FOUND);
    }
}
