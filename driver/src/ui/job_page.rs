//! The Job page: the job's status, its stage DAG (SVG; each stage links to
//! its page, each edge names its exchange and the bytes it moved) and a
//! table of its stages.

use super::UiSource;
use super::dag_svg::dag_svg;
use super::html::{Tab, esc, fmt_bytes, fmt_ms, fmt_time, page, table};
use super::jobs_page::duration_ms;
use crate::status_store::{JobStatus, now_ms};

/// The page of `job`.
pub fn render(source: &UiSource, job: &JobStatus) -> String {
    let state = job.state();
    let id = esc(&job.job_id);
    let mut body = format!(
        "<p>Status: <strong class=\"{state}\" id=\"job-state\">{state}</strong> \u{b7} submitted {} UTC \u{b7} \
         duration {} \u{b7} stages {}/{} \u{b7} <a href=\"/jobs/{id}/sql\">SQL and plan</a> \u{b7} \
         <a href=\"/api/v1/jobs/{id}\">JSON</a></p><pre>{}</pre>",
        fmt_time(job.submitted_ms),
        fmt_ms(duration_ms(job) as f64),
        job.stages_complete(),
        job.stages.len(),
        esc(&job.statement),
    );
    if let Some(e) = &job.error {
        body.push_str(&format!(
            "<div class=\"error\" id=\"job-error\">{}</div>",
            esc(e)
        ));
    }
    if let Some(c) = &job.counters {
        body.push_str(&format!("<p><code>{}</code></p>", esc(c)));
    }
    body.push_str("<h2>Stage DAG</h2>");
    body.push_str(&dag_svg(job));
    body.push_str("<h2>Stages</h2>");
    let failed = state == "failed";
    let now = now_ms();
    let rows = job.stages.iter().map(|s| {
        let st = s.state(failed);
        let dur = s
            .submitted_ms
            .map(|t| fmt_ms(s.completed_ms.unwrap_or(now).saturating_sub(t) as f64))
            .unwrap_or_default();
        format!(
            "<tr><td><a href=\"/jobs/{id}/stages/{n}\">Stage {n}</a></td><td class=\"{st}\">{st}</td>\
             <td>{ops}</td><td>{inputs}</td><td>{ex}</td><td class=\"num\">{done}/{tasks}</td><td class=\"num\">{failed}</td>\
             <td class=\"num\">{dur}</td><td class=\"num\">{out}</td><td>{adaptive}</td></tr>",
            n = s.info.id,
            ops = esc(&s.info.operators.join(" \u{2190} ")),
            inputs = s
                .info
                .inputs
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            ex = esc(&s.info.exchange),
            done = s.tasks_succeeded.min(s.num_tasks),
            tasks = s.num_tasks,
            failed = s.tasks_failed,
            out = fmt_bytes(s.bytes_out()),
            adaptive = esc(s.adaptive.as_deref().unwrap_or("")),
        )
    });
    body.push_str(&table(
        "stages",
        &[
            "Stage",
            "Status",
            "Operators",
            "Reads stages",
            "Output",
            "Tasks",
            "Failed attempts",
            "Duration",
            "Bytes written",
            "Adaptive",
        ],
        rows,
    ));
    page(
        &format!("Job {}", job.job_id),
        Tab::Jobs,
        job.completed_ms.is_none(),
        source.is_history(),
        &body,
    )
}
