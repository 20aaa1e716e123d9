//! The Stage page: what adaptive execution decided for the stage and why,
//! its output partition-size histogram with skewed partitions marked and
//! hot keys named, Spark's task summary quantiles, the task timeline per
//! executor slot with stragglers marked, and every task attempt.

use std::fmt::Write;

use super::UiSource;
use super::histogram_svg::histogram_svg;
use super::html::{Tab, esc, fmt_bytes, fmt_ms, page, table};
use super::quantiles::summarize;
use super::timeline_svg::{stragglers, timeline_svg};
use crate::status_store::{JobStatus, StageStatus, now_ms};

fn value(unit: &str, v: f64) -> String {
    match unit {
        "ms" => fmt_ms(v),
        "bytes" => fmt_bytes(v as u64),
        _ => format!("{v:.0}"),
    }
}

/// The page of stage `stage` of `job`.
pub fn render(source: &UiSource, job: &JobStatus, stage: &StageStatus) -> String {
    let failed = job.state() == "failed";
    let state = stage.state(failed);
    let id = esc(&job.job_id);
    let n = stage.info.id;
    let now = now_ms();
    let mut body = format!(
        "<p><a href=\"/jobs/{id}\">\u{2190} job {id}</a> \u{b7} Status: <strong class=\"{state}\">{state}</strong> \u{b7} \
         {tasks} tasks ({planned} planned) \u{b7} {done} succeeded, {failed_attempts} failed attempts \u{b7} output: {ex}, \
         {parts} partitions \u{b7} reads stages [{inputs}] \u{b7} <a href=\"/api/v1/jobs/{id}/stages/{n}\">JSON</a></p>\
         <p>Operators: <code>{ops}</code></p>",
        tasks = stage.num_tasks,
        planned = stage.info.tasks,
        done = stage.tasks_succeeded,
        failed_attempts = stage.tasks_failed,
        ex = esc(&stage.info.exchange),
        parts = stage.info.partitions,
        inputs = stage
            .info
            .inputs
            .iter()
            .map(|i| format!("<a href=\"/jobs/{id}/stages/{i}\">{i}</a>"))
            .collect::<Vec<_>>()
            .join(", "),
        ops = esc(&stage.info.operators.join(" \u{2190} ")),
    );
    body.push_str("<h2>Adaptive execution and salting</h2>");
    match &stage.adaptive {
        Some(a) => {
            let _ = write!(body, "<p class=\"adaptive\">{}</p>", esc(a));
        }
        None => {
            body.push_str("<p class=\"adaptive\">No adaptive change: the stage ran as planned.</p>")
        }
    }
    if stage.rebinds > 0 {
        let _ = write!(
            body,
            "<p>Bound again {} time(s) after an input lost outputs (recomputed).</p>",
            stage.rebinds
        );
    }
    let salting: Vec<&str> = job.plan.lines().filter(|l| l.contains("salt")).collect();
    for line in salting {
        let _ = write!(
            body,
            "<p class=\"salting\"><code>{}</code></p>",
            esc(line.trim())
        );
    }
    body.push_str("<h2>Output partition sizes</h2>");
    match histogram_svg(stage) {
        Some(svg) => {
            body.push_str(&svg);
            if stage.skewed_partitions.is_empty() {
                body.push_str("<p>No skewed partition (by the job's skew rule).</p>");
            } else {
                let _ = write!(
                    body,
                    "<p class=\"skewed-list\">Skewed partitions (over {} x the median and over {}): {}</p>",
                    job.skew_factor,
                    fmt_bytes(job.skew_threshold_bytes),
                    stage
                        .skewed_partitions
                        .iter()
                        .map(|p| format!("p{p} ({})", fmt_bytes(stage.partitions[*p].bytes)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        None => body.push_str(
            "<p>No measured output partitions (the stage has not completed, or it writes one).</p>",
        ),
    }
    if !stage.hot_keys.is_empty() {
        body.push_str(&table(
            "hot-keys",
            &["Hot key (sampled)", "Estimated rows", "Output partition"],
            stage.hot_keys.iter().map(|k| {
                format!(
                    "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}{}</td></tr>",
                    esc(&k.key),
                    k.estimated_rows,
                    k.partition,
                    if stage.skewed_partitions.contains(&k.partition) { " (skewed)" } else { "" }
                )
            }),
        ));
    }
    body.push_str("<h2>Summary of successful tasks</h2>");
    let summary = summarize(&stage.tasks);
    if summary.is_empty() {
        body.push_str("<p>No task has finished yet.</p>");
    } else {
        body.push_str(&table(
            "quantiles",
            &[
                "Metric",
                "Min",
                "25th percentile",
                "Median",
                "75th percentile",
                "Max",
            ],
            summary.iter().map(|m| {
                let mut row = format!("<tr><td>{}</td>", m.metric);
                for q in m.quantiles {
                    let _ = write!(row, "<td class=\"num\">{}</td>", value(m.unit, q));
                }
                row.push_str("</tr>");
                row
            }),
        ));
    }
    body.push_str("<h2>Task timeline</h2>");
    match timeline_svg(stage, now) {
        Some(svg) => body.push_str(&svg),
        None => body.push_str("<p>No task has started.</p>"),
    }
    let slow = stragglers(stage, now);
    let _ = write!(body, "<h2>Tasks ({})</h2>", stage.tasks.len());
    if stage.tasks_dropped > 0 {
        let _ = write!(
            body,
            "<p class=\"note\">{} more attempts were not kept.</p>",
            stage.tasks_dropped
        );
    }
    let rows = stage.tasks.iter().enumerate().map(|(i, t)| {
        let m = t.metrics.unwrap_or_default();
        let straggler = slow.contains(&i);
        let wall = t.end_ms.unwrap_or(now).saturating_sub(t.start_ms);
        format!(
            "<tr class=\"task-row{cls}\" data-partition=\"{p}\"><td class=\"num\">{p}</td><td class=\"num\">{a}{spec}</td><td>{e}</td>\
             <td class=\"{st}\">{st}{strag}</td><td class=\"num\">{wall}</td><td class=\"num\">{run}</td><td class=\"num\">{ri}</td>\
             <td class=\"num\">{bi}</td><td class=\"num\">{ro}</td><td class=\"num\">{bo}</td><td class=\"num\">{br}</td>\
             <td class=\"num\">{sp}</td><td>{err}</td></tr>",
            cls = if straggler { " straggler" } else { "" },
            p = t.partition,
            a = t.attempt,
            spec = if t.speculative { " (speculative)" } else { "" },
            e = esc(&t.executor_id),
            st = t.status,
            strag = if straggler { " \u{b7} straggler" } else { "" },
            wall = fmt_ms(wall as f64),
            run = t.metrics.map(|m| fmt_ms(m.duration_ms)).unwrap_or_default(),
            ri = m.rows_in,
            bi = fmt_bytes(m.bytes_in),
            ro = m.rows_out,
            bo = fmt_bytes(m.bytes_out),
            br = fmt_bytes(m.bytes_remote),
            sp = fmt_bytes(m.spilled_bytes),
            err = esc(t.error.as_deref().unwrap_or("")),
        )
    });
    body.push_str(&table(
        "tasks",
        &[
            "Partition",
            "Attempt",
            "Executor",
            "Status",
            "Wall time",
            "Run time",
            "Rows in",
            "Bytes in",
            "Rows out",
            "Bytes out",
            "Fetched remotely",
            "Spill",
            "Error",
        ],
        rows,
    ));
    page(
        &format!("Stage {n} of job {}", job.job_id),
        Tab::Jobs,
        job.completed_ms.is_none(),
        source.is_history(),
        &body,
    )
}
