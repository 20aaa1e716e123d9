//! The Executors page: each executor's address, slots, running tasks,
//! shuffle bytes written and fetched, spill, memory and last heartbeat
//! (live driver only), and the executors that were lost and why.

use std::collections::BTreeMap;

use serde::Serialize;

use super::UiSource;
use super::html::{Tab, esc, fmt_bytes, fmt_ms, fmt_time, page, table};

/// An executor as the page and `/api/v1/executors` show it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExecutorSummary {
    pub executor_id: String,
    pub address: String,
    pub slots: usize,
    /// "alive" or "lost".
    pub state: &'static str,
    pub added_ms: u64,
    pub lost_ms: Option<u64>,
    pub lost_reason: Option<String>,
    /// Live only: tasks running as of its last heartbeat, free slots,
    /// memory (`--memory`, 0 unbounded), and ms since its last heartbeat.
    pub running_tasks: Option<usize>,
    pub free_slots: Option<usize>,
    pub memory_bytes: Option<u64>,
    pub since_heartbeat_ms: Option<u64>,
    /// Over the retained jobs.
    pub tasks_succeeded: u64,
    pub tasks_failed: u64,
    pub shuffle_bytes_written: u64,
    /// Bytes its tasks read from other executors.
    pub shuffle_bytes_fetched: u64,
    pub spilled_bytes: u64,
}

/// Every executor known: live ones first.
pub fn summaries(source: &UiSource) -> Vec<ExecutorSummary> {
    let mut by_id: BTreeMap<String, ExecutorSummary> = BTreeMap::new();
    for e in source.store.executors() {
        by_id.insert(
            e.executor_id.clone(),
            ExecutorSummary {
                state: if e.lost_ms.is_some() { "lost" } else { "alive" },
                executor_id: e.executor_id,
                address: e.address,
                slots: e.slots,
                added_ms: e.added_ms,
                lost_ms: e.lost_ms,
                lost_reason: e.lost_reason,
                ..Default::default()
            },
        );
    }
    if let Some(cluster) = &source.cluster {
        for live in cluster.live_executors() {
            let e = by_id.entry(live.id.clone()).or_default();
            e.executor_id = live.id;
            e.address = live.address;
            e.slots = live.slots;
            e.state = "alive";
            e.lost_ms = None;
            e.lost_reason = None;
            e.running_tasks = Some(live.running_tasks);
            e.free_slots = Some(live.free);
            e.memory_bytes = Some(live.memory);
            e.since_heartbeat_ms = Some(live.since_heartbeat.as_millis() as u64);
        }
    }
    for job in source.store.jobs() {
        for stage in &job.stages {
            for t in &stage.tasks {
                let Some(e) = by_id.get_mut(&t.executor_id) else {
                    continue;
                };
                match t.metrics {
                    Some(m) => {
                        e.tasks_succeeded += 1;
                        e.shuffle_bytes_written += m.bytes_out;
                        e.shuffle_bytes_fetched += m.bytes_remote;
                        e.spilled_bytes += m.spilled_bytes;
                    }
                    None if t.status == "failed" => e.tasks_failed += 1,
                    None => {}
                }
            }
        }
    }
    let mut all: Vec<ExecutorSummary> = by_id.into_values().collect();
    all.sort_by_key(|e| (e.state != "alive", e.executor_id.clone()));
    all
}

/// The page.
pub fn render(source: &UiSource) -> String {
    let all = summaries(source);
    let (alive, lost): (Vec<_>, Vec<_>) = all.iter().partition(|e| e.state == "alive");
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut body = format!("<h2>Alive ({})</h2>", alive.len());
    body.push_str(&table(
        "executors alive",
        &[
            "Executor", "Address", "Slots", "Running tasks", "Free slots", "Memory",
            "Last heartbeat", "Tasks done", "Failed attempts", "Shuffle written",
            "Fetched remotely", "Spill",
        ],
        alive.iter().map(|e| {
            format!(
                "<tr class=\"executor-row\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&e.executor_id),
                esc(&e.address),
                e.slots,
                opt(e.running_tasks.map(|v| v.to_string())),
                opt(e.free_slots.map(|v| v.to_string())),
                opt(e.memory_bytes.map(|m| if m == 0 { "unbounded".into() } else { fmt_bytes(m) })),
                opt(e.since_heartbeat_ms.map(|ms| format!("{} ago", fmt_ms(ms as f64)))),
                e.tasks_succeeded,
                e.tasks_failed,
                fmt_bytes(e.shuffle_bytes_written),
                fmt_bytes(e.shuffle_bytes_fetched),
                fmt_bytes(e.spilled_bytes),
            )
        }),
    ));
    body.push_str(&format!("<h2>Lost ({})</h2>", lost.len()));
    body.push_str(&table(
        "executors lost",
        &["Executor", "Address", "Slots", "Added (UTC)", "Lost (UTC)", "Why"],
        lost.iter().map(|e| {
            format!(
                "<tr class=\"executor-row lost\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.executor_id),
                esc(&e.address),
                e.slots,
                fmt_time(e.added_ms),
                e.lost_ms.map(fmt_time).unwrap_or_default(),
                esc(e.lost_reason.as_deref().unwrap_or("")),
            )
        }),
    ));
    body.push_str("<p>JSON: <a href=\"/api/v1/executors\">/api/v1/executors</a></p>");
    page(
        "Executors",
        Tab::Executors,
        source.store.any_running(),
        source.is_history(),
        &body,
    )
}
