//! Printing a stage graph: what `EXPLAIN` and `EXPLAIN ANALYZE` show.

use std::fmt::Write;
use std::time::Duration;

use datafusion::physical_plan::displayable;

use crate::exchange::ExchangeKind;
use crate::stages::StageGraph;

/// What one stage did, measured while it ran (for `EXPLAIN ANALYZE`).
#[derive(Debug, Clone, Default)]
pub struct StageMetrics {
    /// Rows the stage's tasks read (from scans and shuffle readers).
    pub rows_in: u64,
    /// Bytes the stage read from shuffle blocks (0 for a stage that only scans).
    pub bytes_in: u64,
    pub rows_out: u64,
    /// Compressed bytes the stage wrote for the next stage.
    pub bytes_out: u64,
    /// Bytes read from another executor over the network.
    pub bytes_remote: u64,
    /// Wall time of each successful task.
    pub task_times: Vec<Duration>,
}

fn describe_output(kind: ExchangeKind, partitions: usize, keys: &str, is_final: bool) -> String {
    if is_final {
        return "result".to_string();
    }
    match kind {
        ExchangeKind::Hash => format!("hash shuffle on [{keys}] into {partitions} partitions"),
        ExchangeKind::RoundRobin => format!("round-robin shuffle into {partitions} partitions"),
        ExchangeKind::Single => "merge into 1 partition".to_string(),
        ExchangeKind::Broadcast => "broadcast to every task of the consuming stage".to_string(),
        ExchangeKind::Forward => "forward (one block per task, order kept)".to_string(),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    }
}

/// Renders the stage graph, stages in execution order, each with its plan.
/// With `metrics` (one entry per stage), adds what each stage measured.
pub fn format_stage_graph(graph: &StageGraph, metrics: Option<&[StageMetrics]>) -> String {
    let mut out = String::new();
    let final_id = graph.final_stage().id;
    for stage in &graph.stages {
        let writer = stage.writer();
        let keys: Vec<String> = writer.hash_exprs().iter().map(|e| e.to_string()).collect();
        let inputs = if stage.inputs.is_empty() {
            "reads: scans".to_string()
        } else {
            let ids: Vec<String> = stage.inputs.iter().map(|i| format!("stage {i}")).collect();
            format!("reads: {}", ids.join(", "))
        };
        let _ = writeln!(
            out,
            "Stage {} ({} task{}; {}; output: {})",
            stage.id,
            stage.num_tasks(),
            if stage.num_tasks() == 1 { "" } else { "s" },
            inputs,
            describe_output(
                writer.kind(),
                writer.num_partitions(),
                &keys.join(", "),
                stage.id == final_id
            ),
        );
        if let Some(m) = metrics.and_then(|m| m.get(stage.id)) {
            let mut times = m.task_times.clone();
            times.sort();
            let (min, med, max) = match times.len() {
                0 => (Duration::ZERO, Duration::ZERO, Duration::ZERO),
                n => (times[0], times[n / 2], times[n - 1]),
            };
            let _ = writeln!(
                out,
                "  metrics: rows in={} out={}, bytes in={} out={}, shuffled over network={}, task time min={} median={} max={}",
                m.rows_in,
                m.rows_out,
                m.bytes_in,
                m.bytes_out,
                m.bytes_remote,
                fmt_duration(min),
                fmt_duration(med),
                fmt_duration(max),
            );
        }
        let plan = displayable(writer.input().as_ref())
            .indent(false)
            .to_string();
        for line in plan.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}
