//! The skewed join of `minispark demo skew`, four ways, against the same
//! query on uniformly distributed keys.
//!
//! ```text
//! cargo bench --bench skew -- --executors 2 --iterations 5
//! ```
//!
//! On the demo's default data (20 M viewing events generated inside the
//! tasks, title popularity Zipf 1.5: the top title holds ~39% of them; 16
//! shuffle partitions) it runs the plain shuffled join, the broadcast join,
//! the salted join, adaptive execution (split) and the plain join on
//! uniform keys (skew 0, same size), one after the other, `--iterations`
//! times after one warm-up round, each in a fresh session. Prints the
//! median wall time of each with its ratio to uniform keys, and the join
//! stage's slowest task over its median task (median over iterations).
//! Every run's answer is checked against the plain run's.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{RatioTable, median, start_cluster};
use datafusion::common::Result;
use minispark::demo::skew::{SkewDemoOptions, Strategy, answers_equal, run_strategy};

struct Args {
    executors: usize,
    iterations: usize,
    options: SkewDemoOptions,
}

fn parse_args() -> Args {
    let mut args = Args {
        executors: 2,
        iterations: 5,
        options: SkewDemoOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--executors" => args.executors = value().parse().expect("number"),
            "--iterations" => args.iterations = value().parse().expect("number"),
            "--rows" => args.options.rows = value().parse().expect("number"),
            "--skew" => args.options.skew = value().parse().expect("number"),
            "--partitions" => args.options.partitions = value().parse().expect("number"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

const ORDER: [Strategy; 5] = [
    Strategy::Uniform,
    Strategy::Plain,
    Strategy::Broadcast,
    Strategy::Salted,
    Strategy::Adaptive,
];

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args();
    let options = &args.options;
    options.validate()?;
    let params = options.params()?;
    let cluster = start_cluster(args.executors).await?;
    let (executors, slots) = cluster.driver.cluster.size();
    println!(
        "netflix.{}: {} viewing events, {} titles, skew {} (top title {:.1}% of events); \
         {executors} executors, {slots} slots, {} shuffle partitions, skew threshold {} bytes",
        options.schema(),
        params.viewing_events(),
        params.titles(),
        options.skew,
        100.0 * options.top_title_share()?,
        options.partitions,
        options.skew_threshold_bytes(),
    );
    let mut walls: Vec<Vec<Duration>> = vec![vec![]; ORDER.len()];
    let mut task_ratios: Vec<Vec<f64>> = vec![vec![]; ORDER.len()];
    let mut salting_engaged = false;
    for round in 0..=args.iterations {
        let mut reference = None;
        for (i, strategy) in ORDER.iter().enumerate() {
            let run = run_strategy(&cluster, options, *strategy).await?;
            let rows = run.rows()?;
            if *strategy == Strategy::Plain {
                reference = Some(rows);
            } else if let Some(reference) = &reference {
                assert!(
                    answers_equal(reference, &rows),
                    "{} returned another answer than the plain join",
                    strategy.short()
                );
            }
            salting_engaged |= !run.salting_lines().is_empty();
            let ratio = run
                .join_task_times()
                .map(|t| t.max_over_median())
                .unwrap_or(f64::NAN);
            eprintln!(
                "round {round}{}: {:<9} {:>8.1} ms, join task max/median {ratio:.1}x",
                if round == 0 { " (warm-up)" } else { "" },
                strategy.short(),
                run.wall.as_secs_f64() * 1e3,
            );
            if round > 0 {
                walls[i].push(run.wall);
                task_ratios[i].push(ratio);
            }
        }
    }
    let uniform = median(walls[0].clone());
    let mut table = RatioTable::with_headers("strategy", 10, "uniform ms", "strategy ms");
    for (i, strategy) in ORDER.iter().enumerate() {
        table.row(strategy.short(), uniform, median(walls[i].clone()));
    }
    println!();
    println!(
        "join stage, slowest task / median task (median of {} runs):",
        args.iterations
    );
    for (i, strategy) in ORDER.iter().enumerate() {
        let mut r = task_ratios[i].clone();
        r.sort_by(f64::total_cmp);
        println!("{:>10} {:>7.1}x", strategy.short(), r[r.len() / 2]);
    }
    if !salting_engaged {
        println!("\nsalting did not engage in this build: salted = plain");
    }
    Ok(())
}
