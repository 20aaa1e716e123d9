//! Printing a stage graph: what `EXPLAIN` and `EXPLAIN ANALYZE` show.

use std::fmt::Write;
use std::time::Duration;

use datafusion::physical_plan::displayable;

use crate::exchange::hot_keys::SAMPLE_EVERY;
use crate::exchange::{ExchangeKind, HotKey};
use crate::skew::{SkewRule, median_bytes};
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
    /// Bytes its tasks' operators spilled to disk for lack of memory.
    pub spilled_bytes: u64,
    /// Wall time of each successful task.
    pub task_times: Vec<Duration>,
    /// Rows and bytes of each output partition (the map-output tracker).
    pub partitions: Vec<PartitionSize>,
    /// The heaviest keys of a hash shuffle, estimated from samples.
    pub hot_keys: Vec<HotKey>,
    /// How adaptive execution chose the stage's tasks, when it changed them.
    pub adaptive: Option<String>,
    /// What each map task wrote: (task, executor, blocks), for the shuffle
    /// demo's map x reduce matrix.
    pub map_outputs: Vec<(usize, String, Vec<crate::exchange::BlockStats>)>,
}

/// What the map tasks of a stage wrote to one output partition, together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionSize {
    pub rows: u64,
    pub bytes: u64,
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
        ExchangeKind::Range => format!("range shuffle on [{keys}] into {partitions} partitions"),
    }
}

/// A duration for people: `1.23s` or `45.6ms`.
pub fn fmt_duration(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    }
}

/// Renders the stage graph, stages in execution order, each with its plan.
/// With `metrics` (one entry per stage), adds what each stage measured.
/// Skewed partitions (by `skew`) are marked in the partition histograms.
pub fn format_stage_graph(
    graph: &StageGraph,
    metrics: Option<&[StageMetrics]>,
    skew: &SkewRule,
) -> String {
    let mut out = String::new();
    for line in &graph.join_strategies {
        let _ = writeln!(out, "{line}");
    }
    let final_id = graph.final_stage().id;
    for stage in &graph.stages {
        let writer = stage.writer();
        let mut keys: Vec<String> = writer.hash_exprs().iter().map(|e| e.to_string()).collect();
        if let Some(range) = writer.range() {
            keys = vec![range.describe_keys()];
        }
        let inputs = if stage.inputs.is_empty() {
            "reads: scans".to_string()
        } else {
            let ids: Vec<String> = stage.inputs.iter().map(|i| format!("stage {i}")).collect();
            format!("reads: {}", ids.join(", "))
        };
        // Planned tasks, or after a run the tasks that ran (adaptive
        // execution may have changed their number).
        let tasks = metrics
            .and_then(|m| m.get(stage.id))
            .map(|m| m.map_outputs.len())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| stage.num_tasks());
        let _ = writeln!(
            out,
            "Stage {} ({} task{}; {}; output: {}{})",
            stage.id,
            tasks,
            if tasks == 1 { "" } else { "s" },
            inputs,
            describe_output(
                writer.kind(),
                writer.num_partitions(),
                &keys.join(", "),
                stage.id == final_id
            ),
            stage
                .origin
                .as_ref()
                .map(|o| format!(", asked for by {o}"))
                .unwrap_or_default(),
        );
        if let Some(filter) = &stage.runtime_filter {
            let _ = writeln!(out, "  {}", filter.describe());
        }
        if let Some(range) = writer.range() {
            let _ = match range.describe_bounds(8) {
                Some(bounds) => writeln!(
                    out,
                    "  range bounds, from a sample of {} keys: {bounds}",
                    range.sampled_rows
                ),
                None => writeln!(out, "  range bounds: sampled before the query runs"),
            };
        }
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
            if m.spilled_bytes > 0 {
                let _ = writeln!(
                    out,
                    "  spilled to disk: {} (operators over their share of the executors' memory)",
                    fmt_bytes(m.spilled_bytes)
                );
            }
        }
        if let Some(note) = metrics
            .and_then(|m| m.get(stage.id))
            .and_then(|m| m.adaptive.as_ref())
        {
            let _ = writeln!(out, "  {note}");
        }
        if let Some(m) = metrics.and_then(|m| m.get(stage.id)) {
            let shuffled = matches!(
                writer.kind(),
                ExchangeKind::Hash | ExchangeKind::RoundRobin | ExchangeKind::Range
            );
            if shuffled && stage.id != final_id {
                write_partitions(&mut out, &m.partitions, skew);
                write_hot_keys(&mut out, &m.hot_keys, m.rows_out);
            }
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

/// Partitions drawn at most, largest first when there are more.
const MAX_BARS: usize = 32;
const BAR_WIDTH: usize = 30;

/// The histogram `EXPLAIN ANALYZE` draws for a shuffle's output partitions
/// (one bar each, scaled to the largest, skewed ones marked by `skew`), as
/// a string: for demos that show one shuffle on its own.
pub fn partition_histogram(sizes: &[PartitionSize], skew: &SkewRule) -> String {
    let mut out = String::new();
    write_partitions(&mut out, sizes, skew);
    out
}

/// One bar per output partition, scaled to the largest; skewed ones marked.
fn write_partitions(out: &mut String, sizes: &[PartitionSize], skew: &SkewRule) {
    if sizes.is_empty() {
        return;
    }
    let skewed = skew.skewed(sizes);
    let median = median_bytes(sizes);
    let max = sizes.iter().map(|s| s.bytes).max().unwrap_or(0);
    let total: u64 = sizes.iter().map(|s| s.rows).sum();
    let _ = writeln!(
        out,
        "  output partitions: {} (bytes: median of non-empty {}, max {}, max/median {:.1}x){}",
        sizes.len(),
        fmt_bytes(median),
        fmt_bytes(max),
        max as f64 / median.max(1) as f64,
        match skewed.len() {
            0 => String::new(),
            n => format!("; {n} skewed"),
        }
    );
    let mut shown: Vec<usize> = (0..sizes.len()).collect();
    if sizes.len() > MAX_BARS {
        shown.sort_by_key(|&p| std::cmp::Reverse(sizes[p].bytes));
        shown.truncate(MAX_BARS);
        shown.sort_unstable();
    }
    for p in &shown {
        let size = sizes[*p];
        let _ = write!(
            out,
            "    p{:<4} {} {:>10} rows {:>5.1}% {:>10}",
            p,
            bar(size.bytes, max),
            size.rows,
            100.0 * size.rows as f64 / total.max(1) as f64,
            fmt_bytes(size.bytes),
        );
        match skewed.iter().find(|(s, _)| s == p) {
            Some((_, ratio)) => {
                let _ = writeln!(out, "  <- skewed: {ratio:.1}x the median");
            }
            None => out.push('\n'),
        }
    }
    if shown.len() < sizes.len() {
        let _ = writeln!(
            out,
            "    ... {} smaller partitions not drawn",
            sizes.len() - shown.len()
        );
    }
}

/// The stage's heaviest keys with their share of its output rows.
fn write_hot_keys(out: &mut String, keys: &[HotKey], rows: u64) {
    // A key is hot when it holds at least 1% of the rows and was sampled
    // often enough (8 samples) for that estimate to mean something.
    let min_rows = (8 * SAMPLE_EVERY as u64).max(rows / 100);
    let hot: Vec<&HotKey> = keys
        .iter()
        .filter(|k| k.estimated_rows >= min_rows)
        .collect();
    if hot.is_empty() {
        return;
    }
    let text: Vec<String> = hot
        .iter()
        .map(|k| {
            format!(
                "{} ~{} rows ({:.1}%) -> p{}",
                k.display,
                k.estimated_rows,
                100.0 * k.estimated_rows as f64 / rows.max(1) as f64,
                k.partition
            )
        })
        .collect();
    let _ = writeln!(out, "  hot keys (sampled): {}", text.join("; "));
}

fn bar(value: u64, max: u64) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (value as f64 / max.max(1) as f64 * (BAR_WIDTH * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8]);
    }
    format!("{s:<width$}", width = BAR_WIDTH)
}

/// Bytes for people: `12.3 MiB`.
pub fn fmt_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
