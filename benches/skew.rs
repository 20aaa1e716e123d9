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
//! stage's slowest task over its median task (median over iterations), as
//! Markdown ready for BENCHMARKS.md, under a header (command, commit, date,
//! machine, each run's settings). Every run's answer is checked against the
//! plain run's.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use common::{median, report, start_cluster};
use datafusion::common::Result;
use futures::StreamExt;
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

    let mut table = String::from(
        "| run | median wall ms | vs uniform | join stage slowest / median task: median | min to max |\n\
         |---|---:|---:|---:|---:|\n",
    );
    let uniform = median(walls[0].clone());
    let mut wall_ratio = vec![0.0; ORDER.len()];
    let mut task_ratio = vec![0.0; ORDER.len()];
    for (i, strategy) in ORDER.iter().enumerate() {
        let wall = median(walls[i].clone());
        wall_ratio[i] = wall.as_secs_f64() / uniform.as_secs_f64();
        let mut r = task_ratios[i].clone();
        r.sort_by(f64::total_cmp);
        task_ratio[i] = r[r.len() / 2];
        let _ = writeln!(
            table,
            "| {} | {:.1} | {:.2}x | {:.1}x | {:.1}x to {:.1}x |",
            strategy.short(),
            wall.as_secs_f64() * 1e3,
            wall_ratio[i],
            task_ratio[i],
            r[0],
            r[r.len() - 1],
        );
    }

    // The settings of the plain run, read from a session made with them
    // (planning one query, as minispark sets some DataFusion options then).
    let plain_settings: HashMap<String, String> = Strategy::Plain
        .settings(options)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let probe = cluster.driver.session(&plain_settings)?;
    for statement in minispark::driver::job::parse_script("EXPLAIN SELECT 1")? {
        let mut stream = probe.execute_statement(statement).await?.stream;
        while let Some(b) = stream.next().await {
            b?;
        }
    }
    let (executors, slots) = cluster.driver.cluster.size();
    println!("{}", report::run_header("skew"));
    println!(
        "- Data: `netflix.{}`, {} viewing events generated inside the tasks, {} titles, \
         title popularity Zipf {} (the top title holds {:.1}% of the events); \
         uniform: the same size at skew 0",
        options.schema(),
        params.viewing_events(),
        params.titles(),
        options.skew,
        100.0 * options.top_title_share()?,
    );
    println!(
        "- minispark, plain run: {}",
        report::minispark_line(probe.context().copied_config().options(), executors, slots)
    );
    println!("- Each run's session settings:");
    for strategy in ORDER {
        let settings: Vec<String> = strategy
            .settings(options)
            .into_iter()
            .map(|(k, v)| format!("`{k} = {v}`"))
            .collect();
        let hint = if strategy == Strategy::Broadcast {
            " and `/*+ BROADCAST(t) */` on titles"
        } else {
            ""
        };
        println!("  - {}: {}{hint}", strategy.short(), settings.join(", "));
    }
    println!(
        "- One warm-up round, then {} rounds of the five runs in the order above, each in a \
         fresh session; a run's time is planning (and sampling), every stage and reading the \
         result back. Every run's answer was checked against the plain run's.",
        args.iterations
    );
    println!();
    print!("{table}");
    println!();
    let plain = ORDER
        .iter()
        .position(|s| *s == Strategy::Plain)
        .expect("plain");
    let adaptive = ORDER
        .iter()
        .position(|s| *s == Strategy::Adaptive)
        .expect("adaptive");
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    println!(
        "Targets (issue 4): the plain join's slowest join task at least 4x its median: {:.1}x, {}; \
         adaptive execution within 1.3x of uniform keys: {:.2}x, {}.",
        task_ratio[plain],
        met(task_ratio[plain] >= 4.0),
        wall_ratio[adaptive],
        met(wall_ratio[adaptive] <= 1.3),
    );
    if !salting_engaged {
        println!("\nSalting did not engage in this build: salted = plain.");
    }
    Ok(())
}
