//! The SQL page of a job: its statement, the join strategy lines EXPLAIN
//! prints (which strategy each join got, and why), and the physical plan
//! cut into stages with every stage boundary marked.

use std::fmt::Write;

use super::UiSource;
use super::html::{Tab, esc, page};
use crate::status_store::JobStatus;

/// The join strategy lines of a plan text (those before its first stage).
pub fn join_lines(plan: &str) -> Vec<&str> {
    plan.lines()
        .take_while(|l| !l.starts_with("Stage "))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// The page of `job`.
pub fn render(source: &UiSource, job: &JobStatus) -> String {
    let id = esc(&job.job_id);
    let mut body = format!(
        "<p><a href=\"/jobs/{id}\">\u{2190} job {id}</a></p><h2>Statement</h2><pre class=\"statement\">{}</pre>\
         <h2>Join strategies</h2>",
        esc(&job.statement)
    );
    let joins = join_lines(&job.plan);
    if joins.is_empty() {
        body.push_str("<p>No join.</p>");
    } else {
        body.push_str("<ul class=\"joins\">");
        for l in joins {
            let _ = write!(body, "<li class=\"join-line\"><code>{}</code></li>", esc(l));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Physical plan by stage</h2><pre class=\"plan\">");
    let mut in_stages = false;
    for line in job.plan.lines() {
        if let Some(rest) = line.strip_prefix("Stage ") {
            in_stages = true;
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let _ = writeln!(
                body,
                "<a class=\"stage-boundary\" href=\"/jobs/{id}/stages/{n}\">{}</a>",
                esc(line)
            );
        } else if in_stages {
            let _ = writeln!(body, "{}", esc(line));
        }
    }
    body.push_str("</pre>");
    page(
        &format!("SQL of job {}", job.job_id),
        Tab::Jobs,
        job.completed_ms.is_none(),
        source.is_history(),
        &body,
    )
}
