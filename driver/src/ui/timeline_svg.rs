//! A stage's task timeline, a Gantt chart: one lane per executor slot, one
//! bar per task attempt from launch to end. A straggler (a task that took
//! more than [`STRAGGLER_FACTOR`] times the stage's median) is drawn in
//! orange and named, so the one long task of a skewed stage stands out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::{esc, fmt_ms};
use crate::status_store::{StageStatus, TaskRecord};

/// A task counts as a straggler above this many times its stage's median
/// task time (and at least [`STRAGGLER_MIN_MS`]).
pub const STRAGGLER_FACTOR: f64 = 2.0;
pub const STRAGGLER_MIN_MS: u64 = 50;

const LANE_H: usize = 18;
const WIDTH: usize = 900;
const LEFT: usize = 130;

/// A task attempt's wall time as the driver saw it (to now when running).
fn wall_ms(t: &TaskRecord, now_ms: u64) -> u64 {
    t.end_ms.unwrap_or(now_ms).saturating_sub(t.start_ms)
}

/// The indexes (into `stage.tasks`) of the stage's stragglers.
pub fn stragglers(stage: &StageStatus, now_ms: u64) -> Vec<usize> {
    let mut times: Vec<u64> = stage
        .tasks
        .iter()
        .filter(|t| t.status == "success")
        .map(|t| wall_ms(t, now_ms))
        .collect();
    if times.len() < 2 {
        return vec![];
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    let limit = ((median as f64 * STRAGGLER_FACTOR) as u64).max(STRAGGLER_MIN_MS);
    stage
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.status != "failed" && wall_ms(t, now_ms) > limit)
        .map(|(i, _)| i)
        .collect()
}

/// Puts each task on a slot of its executor: the first lane free at its
/// start. Returns (executor, slot) per task and the lanes in order.
pub fn lanes(tasks: &[TaskRecord], now_ms: u64) -> (Vec<usize>, Vec<(String, usize)>) {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (tasks[i].start_ms, i));
    // Per executor: each slot's end time.
    let mut slots: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut slot_of = vec![(String::new(), 0); tasks.len()];
    for i in order {
        let t = &tasks[i];
        let ends = slots.entry(t.executor_id.as_str()).or_default();
        let end = t.end_ms.unwrap_or(now_ms).max(t.start_ms + 1);
        let slot = match ends.iter().position(|&e| e <= t.start_ms) {
            Some(s) => {
                ends[s] = end;
                s
            }
            None => {
                ends.push(end);
                ends.len() - 1
            }
        };
        slot_of[i] = (t.executor_id.clone(), slot);
    }
    let lanes: Vec<(String, usize)> = slots
        .iter()
        .flat_map(|(e, ends)| (0..ends.len()).map(move |s| (e.to_string(), s)))
        .collect();
    let lane_of = slot_of
        .iter()
        .map(|l| lanes.iter().position(|x| x == l).unwrap_or(0))
        .collect();
    (lane_of, lanes)
}

/// The SVG timeline of `stage`'s tasks; `None` when it ran none.
pub fn timeline_svg(stage: &StageStatus, now_ms: u64) -> Option<String> {
    let tasks = &stage.tasks;
    let start = tasks.iter().map(|t| t.start_ms).min()?;
    let end = tasks
        .iter()
        .map(|t| t.end_ms.unwrap_or(now_ms))
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let span = (end - start) as f64;
    let (lane_of, lanes) = lanes(tasks, now_ms);
    let slow = stragglers(stage, now_ms);
    let height = lanes.len() * LANE_H + 30;
    let x = |ms: u64| LEFT as f64 + (ms - start) as f64 / span * (WIDTH - LEFT - 10) as f64;
    let mut svg = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-label=\"task timeline of stage {}\">",
        stage.info.id
    );
    for (l, (executor, slot)) in lanes.iter().enumerate() {
        let y = l * LANE_H;
        let _ = write!(
            svg,
            "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{LANE_H}\" fill=\"{}\"/>\
             <text x=\"4\" y=\"{}\" font-size=\"10\">{} slot {slot}</text>",
            if l % 2 == 0 { "#f4f4f4" } else { "#fff" },
            y + 13,
            esc(executor)
        );
    }
    for (i, t) in tasks.iter().enumerate() {
        let straggler = slow.contains(&i);
        let x0 = x(t.start_ms);
        let x1 = x(t.end_ms.unwrap_or(now_ms)).max(x0 + 1.5);
        let y = lane_of[i] * LANE_H + 2;
        let (class, fill) = match (t.status, straggler) {
            ("failed", _) => ("task failed", "#d55"),
            (_, true) => ("task straggler", "#f80"),
            ("running", _) => ("task running", "#8bd"),
            _ => ("task", "#5a5"),
        };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" data-partition=\"{p}\" data-attempt=\"{a}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{fill}\">\
             <title>partition {p} attempt {a} on {e}: {d}{s}</title></rect>",
            p = t.partition,
            a = t.attempt,
            w = x1 - x0,
            h = LANE_H - 4,
            e = esc(&t.executor_id),
            d = fmt_ms(wall_ms(t, now_ms) as f64),
            s = if straggler { " (straggler)" } else { "" },
        );
        if straggler {
            let _ = write!(
                svg,
                "<text class=\"straggler-label\" x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"#a40\">straggler: partition {}</text>",
                (x1 + 4.0).min((WIDTH - 120) as f64),
                y + 11,
                t.partition
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"10\">0</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        height - 8,
        WIDTH - 10,
        height - 8,
        esc(&fmt_ms(span))
    );
    Some(svg)
}
