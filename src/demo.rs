//! `minispark demo shuffle`: what a shuffle really is, on a real cluster.
//!
//! One GROUP BY and one join over the built-in viewing events. For each:
//! the stage graph, then, once it ran, what every map task wrote to every
//! reduce partition (a matrix), and how many of the bytes the next stage
//! read came over the network rather than from its own executor's disk.

use std::fmt::Write;

use arrow::util::pretty::pretty_format_batches;
use datafusion::common::Result;
use futures::StreamExt;
use minispark_driver::job::JobSession;
use minispark_planner::exchange::ExchangeKind;
use minispark_planner::explain::{StageMetrics, fmt_bytes, format_stage_graph};
use minispark_planner::skew::SkewRule;
use minispark_planner::stages::StageGraph;

use crate::local::LocalCluster;

pub mod skew;

/// What the shuffle demo runs on.
#[derive(Debug, Clone)]
pub struct ShuffleDemoOptions {
    /// Schema of the built-in netflix catalog, e.g. "small".
    pub scale: String,
    /// Shuffle partitions (reduce tasks).
    pub partitions: usize,
}

const INTRO: &str = "\
A shuffle moves rows between tasks so that all rows with the same key meet
in one task. Each map task hashes every row's key (Spark's Murmur3) into
one of N reduce partitions and writes one block per partition to its local
disk; each reduce task then fetches its partition's block from every map
task: from its own executor's disk, or from another executor over gRPC.
";

/// Runs the demo on `cluster` and returns its text.
pub async fn shuffle_demo(cluster: &LocalCluster, options: &ShuffleDemoOptions) -> Result<String> {
    let mut out = String::from(INTRO);
    let events = format!("netflix.{}.viewing_events", options.scale);
    let titles = format!("netflix.{}.titles", options.scale);
    let partitions = options.partitions.to_string();
    let settings = [
        ("minispark.shuffle.partitions", partitions.as_str()),
        // Show the plain shuffles: no broadcast, no adaptive reshaping.
        ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
        ("minispark.adaptive.enabled", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let session = cluster.driver.session(&settings)?;

    let group_by = format!(
        "SELECT device, count(*) AS views, sum(watched_minutes) AS minutes \
         FROM {events} GROUP BY device ORDER BY device"
    );
    let _ = writeln!(out, "\n=== 1. GROUP BY: {group_by}\n");
    out.push_str(&explain_run(&session, &group_by).await?);
    out.push_str(
        "\nEvery map task first aggregates its own rows (partial aggregation), so it\n\
         writes at most one row per device to the shuffle, not every event: the\n\
         shuffle moves a few rows instead of all of them. Each device's partial rows\n\
         all land in the same reduce partition, where the final aggregate adds them.\n",
    );

    let join = format!(
        "SELECT t.kind, count(*) AS views FROM {events} v \
         JOIN {titles} t ON v.title_id = t.title_id GROUP BY t.kind ORDER BY t.kind"
    );
    let _ = writeln!(out, "\n=== 2. JOIN (broadcast off): {join}\n");
    out.push_str(&explain_run(&session, &join).await?);
    out.push_str(
        "\nBoth sides are shuffled by title_id, so a title's events and the title\n\
         itself meet in the same reduce task. Every event crosses the shuffle: this\n\
         is what a broadcast join avoids (the small side is sent to every task\n\
         instead, and the events never move). And the partition holding the most\n\
         watched title is the biggest: that is skew.\n",
    );
    Ok(out)
}

/// The stage graph, then the run's shuffle matrices and the result.
async fn explain_run(session: &JobSession, sql: &str) -> Result<String> {
    let plan = session.context().state().create_logical_plan(sql).await?;
    session.set_statement(sql.trim().to_string());
    let graph = session.plan_stages(plan).await?;
    let skew = SkewRule::from_config(&Default::default());
    let mut out = String::from("The stages:\n");
    out.push_str(&format_stage_graph(&graph, None, &skew));
    let job = session.run_graph(&graph).await?;
    let mut batches = vec![];
    let mut stream = job.stream;
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    for stage in &graph.stages {
        let writer = stage.writer();
        if writer.kind() != ExchangeKind::Hash {
            continue;
        }
        if let Some(m) = job.metrics.get(stage.id) {
            out.push_str(&shuffle_matrix(stage.id, writer.num_partitions(), m));
            out.push_str(&network_split(&graph, &job.metrics, stage.id));
        }
    }
    let _ = writeln!(out, "\nThe result:\n{}", pretty_format_batches(&batches)?);
    Ok(out)
}

/// Rows each map task wrote to each reduce partition.
fn shuffle_matrix(stage: usize, partitions: usize, m: &StageMetrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nStage {stage}'s shuffle: rows written by each map task (row) to each reduce partition (column)"
    );
    let _ = write!(out, "  {:<22}", "map task @ executor");
    for p in 0..partitions {
        let _ = write!(out, "{:>10}", format!("p{p}"));
    }
    out.push('\n');
    let mut maps = m.map_outputs.clone();
    maps.sort_by_key(|(map, _, _)| *map);
    let mut totals = vec![0u64; partitions];
    for (map, executor, blocks) in &maps {
        let _ = write!(out, "  {:<22}", format!("task {map} @ {executor}"));
        for (p, total) in totals.iter_mut().enumerate() {
            let rows: u64 = blocks
                .iter()
                .filter(|b| b.reduce_partition == p)
                .map(|b| b.rows)
                .sum();
            *total += rows;
            let _ = write!(out, "{rows:>10}");
        }
        out.push('\n');
    }
    let _ = write!(out, "  {:<22}", "reduce partition total");
    for t in &totals {
        let _ = write!(out, "{t:>10}");
    }
    out.push('\n');
    out
}

/// How the bytes a stage's consumers read were split between local disk
/// and the network.
fn network_split(graph: &StageGraph, metrics: &[StageMetrics], stage: usize) -> String {
    let mut out = String::new();
    for consumer in graph.consumers(stage) {
        let Some(m) = metrics.get(consumer) else {
            continue;
        };
        let local = m.bytes_in.saturating_sub(m.bytes_remote);
        let _ = writeln!(
            out,
            "  stage {consumer} read {} of shuffle blocks (all its inputs): {} from its own executor's disk, {} over the network ({:.0}%)",
            fmt_bytes(m.bytes_in),
            fmt_bytes(local),
            fmt_bytes(m.bytes_remote),
            100.0 * m.bytes_remote as f64 / m.bytes_in.max(1) as f64
        );
    }
    out
}
