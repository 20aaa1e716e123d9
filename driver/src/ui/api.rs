//! The JSON API under `/api/v1/`, in the spirit of Spark's REST API:
//!
//! | Path | Answer |
//! |------|--------|
//! | `/api/v1/jobs` | every retained job, newest first, without tasks |
//! | `/api/v1/jobs/{job}` | one job with its stages (without tasks) |
//! | `/api/v1/jobs/{job}/stages` | its stages (without tasks) |
//! | `/api/v1/jobs/{job}/stages/{n}` | one stage: tasks, summary quantiles, stragglers |
//! | `/api/v1/jobs/{job}/stages/{n}/tasks` | its task attempts |
//! | `/api/v1/executors` | executors alive and lost |
//!
//! The pages render the same snapshot types these return.

use serde::Serialize;

use super::UiSource;
use super::executors_page::summaries;
use super::quantiles::{MetricSummary, summarize};
use super::timeline_svg::stragglers;
use crate::status_store::{JobStatus, StageStatus, now_ms};

/// A job as `/api/v1/jobs` lists it.
#[derive(Debug, Serialize)]
pub struct JobListEntry<'a> {
    pub job_id: &'a str,
    pub state: &'static str,
    pub statement: &'a str,
    pub submitted_ms: u64,
    pub completed_ms: Option<u64>,
    pub duration_ms: u64,
    pub stages_total: usize,
    pub stages_complete: usize,
    pub error: Option<&'a str>,
}

/// A stage with its state, for `/api/v1/jobs/{job}/stages/{n}`.
#[derive(Debug, Serialize)]
pub struct StageDetail<'a> {
    pub state: &'static str,
    #[serde(flatten)]
    pub stage: &'a StageStatus,
    pub summary: Vec<MetricSummary>,
    /// Indexes into `tasks` of the stragglers.
    pub stragglers: Vec<usize>,
}

pub fn jobs(source: &UiSource) -> String {
    let jobs = source.store.job_summaries();
    let list: Vec<JobListEntry> = jobs
        .iter()
        .map(|j| JobListEntry {
            job_id: &j.job_id,
            state: j.state(),
            statement: &j.statement,
            submitted_ms: j.submitted_ms,
            completed_ms: j.completed_ms,
            duration_ms: super::jobs_page::duration_ms(j),
            stages_total: j.stages.len(),
            stages_complete: j.stages_complete(),
            error: j.error.as_deref(),
        })
        .collect();
    to_json(&list)
}

/// A job without its stages' task lists.
fn without_tasks(job: &JobStatus) -> JobStatus {
    JobStatus {
        stages: job
            .stages
            .iter()
            .map(|s| StageStatus {
                tasks: vec![],
                ..s.clone()
            })
            .collect(),
        ..job.clone()
    }
}

#[derive(Serialize)]
struct JobDetail<'a> {
    state: &'static str,
    #[serde(flatten)]
    job: &'a JobStatus,
}

pub fn job(job: &JobStatus) -> String {
    let light = without_tasks(job);
    to_json(&JobDetail {
        state: job.state(),
        job: &light,
    })
}

pub fn stages(job: &JobStatus) -> String {
    let light = without_tasks(job);
    let failed = job.state() == "failed";
    let list: Vec<StageDetail> = light
        .stages
        .iter()
        .map(|s| StageDetail {
            state: s.state(failed),
            stage: s,
            summary: vec![],
            stragglers: vec![],
        })
        .collect();
    to_json(&list)
}

pub fn stage(job: &JobStatus, stage: &StageStatus) -> String {
    to_json(&StageDetail {
        state: stage.state(job.state() == "failed"),
        stage,
        summary: summarize(&stage.tasks),
        stragglers: stragglers(stage, now_ms()),
    })
}

pub fn tasks(stage: &StageStatus) -> String {
    to_json(&stage.tasks)
}

pub fn executors(source: &UiSource) -> String {
    to_json(&summaries(source))
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode: {e}\"}}"))
}
