//! `minispark demo skew`: one skewed join, four ways.
//!
//! The built-in viewing events, with title popularity following a Zipf law
//! steep enough that the top title holds over a quarter of the rows, joined
//! to the titles and aggregated per kind (film / series). The same query
//! runs as a plain shuffled join, a broadcast join, a salted join and with
//! adaptive execution splitting the hot partition, and once more on
//! uniformly popular titles of the same size as the reference. For each
//! run: wall time, bytes shuffled, the join's reduce partitions (one bar
//! each), the join tasks' times, and why it went that way. The answers of
//! the four runs must be equal.
//!
//! The benchmark `benches/skew.rs` runs the same strategies through
//! [`run_strategy`].

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use minispark_datagen::netflix::NetflixParams;
use minispark_driver::job::{parse_script, plan_statement};
use minispark_planner::config::MinisparkConfig;
use minispark_planner::exchange::ExchangeKind;
use minispark_planner::explain::{StageMetrics, fmt_bytes, fmt_duration, partition_histogram};
use minispark_planner::skew::SkewRule;
use minispark_planner::stages::StageGraph;

use crate::local::LocalCluster;

/// Viewing events per unit of netflix scale (scale 1 = 20 M events).
const EVENTS_PER_SCALE: f64 = 2e7;

/// What the skew demo runs on.
#[derive(Debug, Clone)]
pub struct SkewDemoOptions {
    /// About this many viewing events (the netflix scale is chosen from it).
    pub rows: u64,
    /// Zipf exponent of title popularity (`minispark.netflix.skew`).
    pub skew: f64,
    /// Shuffle partitions (reduce tasks of the join).
    pub partitions: usize,
}

impl Default for SkewDemoOptions {
    /// 20 M events (a run takes seconds), skew 1.5 (the top title holds
    /// about 39% of the events), 16 shuffle partitions.
    ///
    /// Why 1.5: the top title then stands far above every other (39%
    /// against 14% for the next), where at 1.3 it holds 27%, just over
    /// salting's hot limit at 16 partitions: a share s with
    /// s x 16 > (5 - 1) x (1 - s), i.e. over 20%.
    fn default() -> Self {
        Self {
            rows: 20_000_000,
            skew: 1.5,
            partitions: 16,
        }
    }
}

impl SkewDemoOptions {
    /// Errors for options the demo cannot run with.
    pub fn validate(&self) -> Result<()> {
        if self.rows < 1000 {
            return Err(DataFusionError::Configuration(
                "--rows must be at least 1000".into(),
            ));
        }
        if !(self.skew.is_finite() && self.skew >= 0.0) {
            return Err(DataFusionError::Configuration(
                "--skew must be a finite number >= 0 (the Zipf exponent)".into(),
            ));
        }
        if self.partitions == 0 {
            return Err(DataFusionError::Configuration(
                "--partitions must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The netflix scale giving about `rows` viewing events.
    pub fn scale(&self) -> f64 {
        self.rows as f64 / EVENTS_PER_SCALE
    }

    /// The catalog schema of that scale: `sf<scale>` with `_` for the point.
    pub fn schema(&self) -> String {
        format!("sf{}", self.scale()).replace('.', "_")
    }

    /// The generator's parameters at the demo's scale and skew.
    pub fn params(&self) -> Result<NetflixParams> {
        let seed = MinisparkConfig::default().netflix_seed;
        NetflixParams::try_new(self.scale(), self.skew, seed)
    }

    /// Share of all viewing events held by the most watched title: the
    /// generator draws popularity ranks from an exact Zipf law, so it is
    /// 1 / sum over ranks r of r^-skew.
    pub fn top_title_share(&self) -> Result<f64> {
        let titles = self.params()?.titles();
        let sum: f64 = (1..=titles).map(|r| (r as f64).powf(-self.skew)).sum();
        Ok(1.0 / sum)
    }

    /// The skew threshold the demo sets (Spark's default, 256 MB, is far
    /// above this data's hot partition): 1 MiB, or less for small `rows`
    /// (about half an average partition of the events' shuffle, at ~20
    /// bytes per shuffled event), so small runs split too.
    pub fn skew_threshold_bytes(&self) -> u64 {
        let average_partition = self.rows * 20 / self.partitions.max(1) as u64;
        (average_partition / 2).clamp(16 << 10, 1 << 20)
    }

    /// The query, optionally with a broadcast hint on the titles.
    pub fn sql(&self, broadcast_hint: bool) -> String {
        let schema = self.schema();
        let hint = if broadcast_hint {
            "/*+ BROADCAST(t) */ "
        } else {
            ""
        };
        format!(
            "SELECT {hint}t.kind, count(*) AS views, count(DISTINCT v.user_id) AS viewers, \
             avg(v.watched_minutes) AS avg_minutes \
             FROM netflix.{schema}.viewing_events v JOIN netflix.{schema}.titles t \
             ON v.title_id = t.title_id GROUP BY t.kind ORDER BY t.kind"
        )
    }
}

/// One way to run the demo's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Both sides shuffled on title_id, no adaptive execution.
    Plain,
    /// `/*+ BROADCAST(t) */`: titles sent whole to every task.
    Broadcast,
    /// `minispark.skew.salting = auto`: hot keys spread over salt buckets.
    Salted,
    /// Adaptive execution splits the skewed partition by map ranges.
    Adaptive,
    /// The plain shuffled join on uniformly popular titles (skew 0), same
    /// size: the reference.
    Uniform,
}

impl Strategy {
    /// The four runs of the demo, in order.
    pub const DEMO: [Strategy; 4] = [
        Strategy::Plain,
        Strategy::Broadcast,
        Strategy::Salted,
        Strategy::Adaptive,
    ];

    /// A name for people.
    pub fn title(&self) -> &'static str {
        match self {
            Strategy::Plain => "plain shuffled join",
            Strategy::Broadcast => "broadcast join",
            Strategy::Salted => "salted join",
            Strategy::Adaptive => "adaptive (split)",
            Strategy::Uniform => "uniform keys (reference)",
        }
    }

    /// A one-word name for tables.
    pub fn short(&self) -> &'static str {
        match self {
            Strategy::Plain => "plain",
            Strategy::Broadcast => "broadcast",
            Strategy::Salted => "salted",
            Strategy::Adaptive => "adaptive",
            Strategy::Uniform => "uniform",
        }
    }

    /// The session settings of this run (without the `minispark.` prefix
    /// they are the ones `SET` takes).
    pub fn settings(&self, options: &SkewDemoOptions) -> Vec<(&'static str, String)> {
        let skew = match self {
            Strategy::Uniform => 0.0,
            _ => options.skew,
        };
        let mut settings = vec![
            (
                "minispark.shuffle.partitions",
                options.partitions.to_string(),
            ),
            ("minispark.netflix.skew", skew.to_string()),
            // No automatic broadcast: titles is small enough for one.
            ("minispark.sql.autoBroadcastJoinThreshold", "-1".to_string()),
        ];
        let (adaptive, salting) = match self {
            Strategy::Adaptive => (true, "off"),
            Strategy::Salted => (false, "auto"),
            _ => (false, "off"),
        };
        settings.push(("minispark.adaptive.enabled", adaptive.to_string()));
        settings.push(("minispark.skew.salting", salting.to_string()));
        settings.push((
            "minispark.skew.skewedPartitionThresholdInBytes",
            options.skew_threshold_bytes().to_string(),
        ));
        settings
    }
}

/// Task times of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTimes {
    pub tasks: usize,
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

impl TaskTimes {
    /// Min, median (the upper one, as EXPLAIN ANALYZE) and max.
    pub fn of(times: &[Duration]) -> Option<Self> {
        let mut times = times.to_vec();
        times.sort();
        let n = times.len();
        (n > 0).then(|| Self {
            tasks: n,
            min: times[0],
            median: times[n / 2],
            max: times[n - 1],
        })
    }

    /// The slowest task over the median one.
    pub fn max_over_median(&self) -> f64 {
        self.max.as_secs_f64() / self.median.as_secs_f64().max(1e-9)
    }
}

/// One finished run of the demo's query.
pub struct SkewRun {
    pub strategy: Strategy,
    /// Planning, every stage, and reading the result back.
    pub wall: Duration,
    pub graph: StageGraph,
    pub metrics: Vec<StageMetrics>,
    pub batches: Vec<RecordBatch>,
    /// The stage that runs the join.
    pub join_stage: Option<usize>,
    /// The hash shuffle of the events feeding the join (the join side
    /// with the most bytes), when the join is shuffled.
    pub feed_stage: Option<usize>,
}

impl std::fmt::Debug for SkewRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkewRun")
            .field("strategy", &self.strategy)
            .field("wall", &self.wall)
            .field("join_stage", &self.join_stage)
            .field("feed_stage", &self.feed_stage)
            .finish_non_exhaustive()
    }
}

impl SkewRun {
    /// Bytes written to hash shuffles by every stage of the job.
    pub fn bytes_shuffled(&self) -> u64 {
        let final_id = self.graph.final_stage().id;
        self.graph
            .stages
            .iter()
            .filter(|s| s.id != final_id && s.writer().kind() == ExchangeKind::Hash)
            .filter_map(|s| self.metrics.get(s.id))
            .map(|m| m.bytes_out)
            .sum()
    }

    /// Task times of the join stage.
    pub fn join_task_times(&self) -> Option<TaskTimes> {
        let m = self.metrics.get(self.join_stage?)?;
        TaskTimes::of(&m.task_times)
    }

    /// The join strategy lines of the plan that mention salting.
    pub fn salting_lines(&self) -> Vec<&str> {
        self.graph
            .join_strategies
            .iter()
            .map(String::as_str)
            .filter(|l| l.to_lowercase().contains("salt"))
            .collect()
    }

    /// Whether a join was salted (not only looked at).
    pub fn salted(&self) -> bool {
        self.salting_lines().iter().any(|l| l.contains("salted"))
    }

    /// The answer, row by row.
    pub fn rows(&self) -> Result<Vec<Vec<ScalarValue>>> {
        let mut rows = vec![];
        for batch in &self.batches {
            for r in 0..batch.num_rows() {
                let row = batch
                    .columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, r))
                    .collect::<Result<Vec<_>>>()?;
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// Runs the demo's query once with `strategy`, in a fresh session.
pub async fn run_strategy(
    cluster: &LocalCluster,
    options: &SkewDemoOptions,
    strategy: Strategy,
) -> Result<SkewRun> {
    let settings: HashMap<String, String> = strategy
        .settings(options)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let session = cluster.driver.session(&settings)?;
    let sql = options.sql(strategy == Strategy::Broadcast);
    let start = Instant::now();
    let statement = parse_script(&sql)?
        .into_iter()
        .next()
        .ok_or_else(|| DataFusionError::Internal("the demo query is empty".into()))?;
    let plan = plan_statement(session.context(), statement).await?;
    session.set_statement(format!("-- skew demo: {strategy:?}\n{}", sql.trim()));
    let graph = session.plan_stages(plan).await?;
    let job = session.run_graph(&graph).await?;
    let mut batches = vec![];
    let mut stream = job.stream;
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    let wall = start.elapsed();
    let join_stage = graph
        .stages
        .iter()
        .find(|s| has_join(s.writer().input()))
        .map(|s| s.id);
    let feed_stage = join_stage.and_then(|j| {
        graph.stages[j]
            .inputs
            .iter()
            .copied()
            .filter(|&i| graph.stages[i].writer().kind() == ExchangeKind::Hash)
            .max_by_key(|&i| job.metrics.get(i).map(|m| m.bytes_out).unwrap_or(0))
    });
    Ok(SkewRun {
        strategy,
        wall,
        graph,
        metrics: job.metrics,
        batches,
        join_stage,
        feed_stage,
    })
}

fn has_join(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name().contains("Join") || plan.children().into_iter().any(has_join)
}

/// Whether two answers are equal: the same rows in the same order, floats
/// within a relative 1e-9 (an average summed in another order may differ
/// in its last bits).
pub fn answers_equal(a: &[Vec<ScalarValue>], b: &[Vec<ScalarValue>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(u, v)| match (u, v) {
                    (ScalarValue::Float64(Some(u)), ScalarValue::Float64(Some(v))) => {
                        (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1.0)
                    }
                    _ => u == v,
                })
        })
}

/// The demo's text, and whether the four answers were equal.
#[derive(Debug, Clone)]
pub struct SkewDemoReport {
    pub text: String,
    pub answers_equal: bool,
}

const INTRO: &str = "\
A shuffled join sends every row to the reduce partition of its key's hash,
so all rows of one key meet in one task. When one key holds a large share
of the rows, its partition is far bigger than the others: that task runs
long after the rest are done, and the stage (the whole job) waits for it.
This is skew. Below, the same join runs four ways on data with a hot key.
";

/// Runs the demo on `cluster`.
pub async fn skew_demo(
    cluster: &LocalCluster,
    options: &SkewDemoOptions,
) -> Result<SkewDemoReport> {
    options.validate()?;
    let params = options.params()?;
    let mut out = String::from(INTRO);
    let (executors, slots) = cluster.driver.cluster.size();
    let threshold = options.skew_threshold_bytes();
    let _ = writeln!(
        out,
        "\nThe data: netflix.{schema}.viewing_events, {events} viewing events of {titles} titles \
         (generated inside the tasks); title popularity follows a Zipf law with exponent {skew} \
         (minispark.netflix.skew): the most watched title holds {share:.1}% of all events.\n\
         The cluster: {executors} executors, {slots} task slots, {partitions} shuffle partitions.",
        schema = options.schema(),
        events = params.viewing_events(),
        titles = params.titles(),
        skew = options.skew,
        share = 100.0 * options.top_title_share()?,
        partitions = options.partitions,
    );
    let _ = writeln!(out, "\nThe query:\n  {}", options.sql(false));
    // Mark skewed partitions by the demo's rule in every run, so the hot
    // partition is marked in the runs that do not act on it as well.
    let rule = SkewRule {
        threshold_bytes: threshold,
        ..SkewRule::from_config(&MinisparkConfig::default())
    };
    let _ = writeln!(
        out,
        "\nA reduce partition counts as skewed when it is over {}x the median partition and over {} \
         (minispark.skew.skewedPartitionThresholdInBytes, lowered from Spark's 256 MB for this \
         small data).",
        rule.factor,
        fmt_bytes(threshold)
    );

    let mut runs = vec![];
    for (i, strategy) in Strategy::DEMO.iter().enumerate() {
        let run = run_strategy(cluster, options, *strategy).await?;
        let _ = writeln!(out, "\n=== {}. {}", i + 1, strategy.title());
        out.push_str(&describe_run(&run, options, &rule));
        out.push_str(&explain(&run, options));
        runs.push(run);
    }
    let uniform = run_strategy(cluster, options, Strategy::Uniform).await?;
    let _ = writeln!(
        out,
        "\n=== Reference: the plain shuffled join on uniform keys (minispark.netflix.skew = 0, same size)"
    );
    out.push_str(&describe_run(&uniform, options, &rule));
    out.push_str(
        "Every title about equally popular: no partition stands out, every join task has\n\
         about the same work. This is how long the query takes without a hot key.\n",
    );

    let _ = writeln!(
        out,
        "\n=== Side by side\n  {:<26} {:>9} {:>11} {:>15} {:>22}",
        "run", "wall", "vs uniform", "bytes shuffled", "join task max/median"
    );
    for run in runs.iter().chain(std::iter::once(&uniform)) {
        let ratio = run
            .join_task_times()
            .map(|t| format!("{:.1}x", t.max_over_median()))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  {:<26} {:>9} {:>10.2}x {:>15} {:>22}",
            run.strategy.title(),
            fmt_duration(run.wall),
            run.wall.as_secs_f64() / uniform.wall.as_secs_f64(),
            fmt_bytes(run.bytes_shuffled()),
            ratio
        );
    }

    out.push_str(
        "(With fewer cores than tasks, the other join tasks share the cores while the\n\
         hot one runs, so a straggler costs less wall time than its max/median; with\n\
         a core per task the join stage lasts as long as its slowest task.)\n",
    );

    let answers = runs.iter().map(SkewRun::rows).collect::<Result<Vec<_>>>()?;
    let equal = answers.iter().all(|a| answers_equal(a, &answers[0]));
    let _ = writeln!(
        out,
        "\nThe answer (of the plain run):\n{}",
        pretty_format_batches(&runs[0].batches)?
    );
    if equal {
        let _ = writeln!(
            out,
            "The answers of the four runs are equal ({} rows each, checked value by value; \
             averages to 1e-9): the strategy changes how the join runs, never its result.",
            answers[0].len()
        );
    } else {
        let _ = writeln!(out, "\n!!! THE ANSWERS DIFFER: this is a bug. !!!");
        for (run, rows) in runs.iter().zip(&answers) {
            let _ = writeln!(out, "{}:", run.strategy.title());
            let _ = writeln!(out, "{}", pretty_format_batches(&run.batches)?);
            let _ = writeln!(out, "  ({} rows)", rows.len());
        }
    }
    Ok(SkewDemoReport {
        text: out,
        answers_equal: equal,
    })
}

/// Wall time, bytes shuffled, the join's reduce partitions and task times.
fn describe_run(run: &SkewRun, options: &SkewDemoOptions, rule: &SkewRule) -> String {
    let mut out = String::new();
    let settings: Vec<String> = run
        .strategy
        .settings(options)
        .iter()
        .filter(|(k, _)| {
            !matches!(
                *k,
                "minispark.shuffle.partitions" | "minispark.skew.skewedPartitionThresholdInBytes"
            )
        })
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("minispark.")))
        .collect();
    let _ = writeln!(out, "settings: {}", settings.join(", "));
    if run.strategy == Strategy::Broadcast {
        out.push_str("query hint: SELECT /*+ BROADCAST(t) */ ...\n");
    }
    for line in &run.graph.join_strategies {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "wall time: {}   bytes shuffled (all hash shuffles): {}",
        fmt_duration(run.wall),
        fmt_bytes(run.bytes_shuffled())
    );
    match run.feed_stage.and_then(|f| Some((f, run.metrics.get(f)?))) {
        Some((feed, m)) => {
            let _ = writeln!(
                out,
                "the join's reduce partitions (stage {feed}'s hash shuffle of the events, by bytes):"
            );
            out.push_str(&partition_histogram(&m.partitions, rule));
            if let Some(hot) = m.hot_keys.first() {
                let _ = writeln!(
                    out,
                    "  hottest key (sampled): {} ~{} rows ({:.1}% of the events) -> p{}",
                    hot.display,
                    hot.estimated_rows,
                    100.0 * hot.estimated_rows as f64 / m.rows_out.max(1) as f64,
                    hot.partition
                );
            }
        }
        None => out.push_str(
            "the join's reduce partitions: none. The events are not shuffled: each join task\n\
             reads its own slice of the events, generated where the task runs.\n",
        ),
    }
    if let Some(j) = run.join_stage {
        if let Some(note) = run.metrics.get(j).and_then(|m| m.adaptive.as_ref()) {
            let _ = writeln!(out, "stage {j}: {note}");
        }
        if let Some(t) = run.join_task_times() {
            let _ = writeln!(
                out,
                "join stage (stage {j}), {} tasks: task time min {} / median {} / max {}: max/median {:.1}x",
                t.tasks,
                fmt_duration(t.min),
                fmt_duration(t.median),
                fmt_duration(t.max),
                t.max_over_median()
            );
        }
    }
    out
}

/// Why the run went the way it did.
fn explain(run: &SkewRun, options: &SkewDemoOptions) -> String {
    let text = match run.strategy {
        Strategy::Plain | Strategy::Uniform => format!(
            "Both sides are hashed on title_id, so every event of the hot title lands in\n\
             one reduce partition (the long bar): one task must join all of them while\n\
             the others each get a small share. A stage ends when its slowest task ends,\n\
             so the other slots sit idle while that task works: max/median above is the\n\
             cost of skew. More partitions would not help: one key never spans two\n\
             partitions. (Here {} partitions.)\n",
            options.partitions
        ),
        Strategy::Broadcast => {
            "titles is small, so it is sent whole to every task of the events' side\n\
             (the hint asks for it; autoBroadcastJoinThreshold would pick it too when it\n\
             is not -1). The events never move: each task joins the slice of events it\n\
             generated, and the hot title's rows are just rows like any other in every\n\
             slice, so every task has about the same work. Only the aggregation's\n\
             partial results are shuffled. It works while one side fits in every\n\
             task's memory.\n"
                .to_string()
        }
        Strategy::Salted if run.salted() => {
            let mut text =
                "A sampling pass found the hot titles (the salting lines above); their events\n\
             got a salt in [0, S) and the join ran on (title_id, salt), so the hot\n\
             title's events spread over S partitions instead of one. The titles side\n\
             replicated each hot title's row S times (once per salt), so every piece\n\
             still finds its match; other titles are unchanged. Cost: the sampling pass\n\
             and S copies of a few rows. A title below the hot limit stays unsalted:\n\
             the biggest bar left is such a title.\n"
                    .to_string();
            if run.salting_lines().iter().any(|l| l.contains("GROUP BY")) {
                text.push_str(
                    "The GROUP BY was looked at too: its hot groups are aggregated in S pieces\n\
                     first, then the pieces combined.\n",
                );
            }
            text
        }
        Strategy::Salted => {
            "Salting did not engage (see the salting line above, if any: this build may\n\
             have no salting, or the sampling found no key hot enough), so this run is\n\
             the plain shuffled join again. When it engages, a sampling pass finds the\n\
             hot titles; their events get a salt in [0, S) and the join runs on\n\
             (title_id, salt), so a hot title's events spread over S partitions, and its\n\
             row on the titles side is replicated S times so every piece finds it.\n"
                .to_string()
        }
        Strategy::Adaptive => {
            "Adaptive execution waited until the map stages had written their shuffle\n\
             files, then looked at the real partition sizes. The hot partition is over\n\
             the skew rule, so several tasks read it, each a range of the map tasks'\n\
             blocks (a slice of the hot title's events), and each reads the titles'\n\
             whole partition (small: copying it is cheap). Small partitions were\n\
             coalesced into fewer tasks. The join itself is unchanged: only which\n\
             blocks each task reads.\n"
                .to_string()
        }
    };
    format!("\nWhat happened:\n{text}")
}
