//! The Jobs page: running and finished jobs, their status, duration,
//! statement and stages done out of all.

use super::UiSource;
use super::html::{Tab, esc, fmt_ms, fmt_time, page, table};
use crate::status_store::{JobStatus, now_ms};

/// A statement shortened to one line for a table cell.
pub fn short_statement(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(120) {
        Some((i, _)) => format!("{}\u{2026}", &one_line[..i]),
        None => one_line,
    }
}

/// A job's duration so far, or in all.
pub fn duration_ms(job: &JobStatus) -> u64 {
    job.completed_ms
        .unwrap_or_else(now_ms)
        .saturating_sub(job.submitted_ms)
}

fn row(job: &JobStatus) -> String {
    let state = job.state();
    format!(
        "<tr class=\"job-row\" data-state=\"{state}\"><td><a href=\"/jobs/{id}\">{id}</a></td><td class=\"{state}\">{state}</td>\
         <td><code>{stmt}</code></td><td>{time}</td><td class=\"num\">{dur}</td><td class=\"num\">{done}/{total}</td>\
         <td><a href=\"/jobs/{id}/sql\">SQL</a></td></tr>",
        id = esc(&job.job_id),
        stmt = esc(&short_statement(&job.statement)),
        time = fmt_time(job.submitted_ms),
        dur = fmt_ms(duration_ms(job) as f64),
        done = job.stages_complete(),
        total = job.stages.len(),
    )
}

/// The page.
pub fn render(source: &UiSource) -> String {
    let jobs = source.store.job_summaries();
    let header = [
        "Job",
        "Status",
        "Statement",
        "Submitted (UTC)",
        "Duration",
        "Stages",
        "",
    ];
    let mut body = String::new();
    for note in &source.notes {
        body.push_str(&format!("<div class=\"note\">{}</div>", esc(note)));
    }
    let running: Vec<&JobStatus> = jobs.iter().filter(|j| j.completed_ms.is_none()).collect();
    let finished: Vec<&JobStatus> = jobs.iter().filter(|j| j.completed_ms.is_some()).collect();
    body.push_str(&format!("<h2>Running jobs ({})</h2>", running.len()));
    body.push_str(&table(
        "jobs running",
        &header,
        running.iter().map(|j| row(j)),
    ));
    body.push_str(&format!("<h2>Finished jobs ({})</h2>", finished.len()));
    body.push_str(&table(
        "jobs finished",
        &header,
        finished.iter().map(|j| row(j)),
    ));
    body.push_str(&format!(
        "<p>Keeps the last {} jobs. JSON: <a href=\"/api/v1/jobs\">/api/v1/jobs</a></p>",
        source.store.retained_jobs
    ));
    page(
        "Jobs",
        Tab::Jobs,
        !running.is_empty(),
        source.is_history(),
        &body,
    )
}
