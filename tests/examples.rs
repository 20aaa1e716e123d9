//! Every example job of `examples/` on real clusters, checked against
//! single-node DataFusion on the same generated data, under several cluster
//! shapes: the answers must not depend on executors or shuffle partitions.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use minispark::client::run_script_in_session;
use minispark_planner::session::session_context;

use crate::common::{
    Expected, assert_result, cluster, netflix_sql_examples, oracle_sql, remote_session, row_count,
    session, timed,
};

#[allow(dead_code)]
#[path = "../examples/ab_readout.rs"]
mod ab_readout;
#[allow(dead_code)]
#[path = "../examples/catalog_availability.rs"]
mod catalog_availability;
#[allow(dead_code)]
#[path = "../examples/daily_engagement_iceberg.rs"]
mod daily_engagement_iceberg;
#[allow(dead_code)]
#[path = "../examples/engagement_drop.rs"]
mod engagement_drop;
#[allow(dead_code)]
#[path = "../examples/season_completion.rs"]
mod season_completion;
#[allow(dead_code)]
#[path = "../examples/skewed_join.rs"]
mod skewed_join;

/// The example's SQL, writing under `out` instead of the example's folder.
fn example_sql(name: &str, out: &Path) -> String {
    let path = format!("{}/examples/netflix/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    let sql = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    sql.replace("target/minispark-examples", out.to_str().unwrap())
}

/// Batches of each statement that returns rows (by statement index), and
/// the text of each EXPLAIN.
#[derive(Debug, Default)]
struct ScriptOutput {
    batches: BTreeMap<usize, Vec<RecordBatch>>,
    plans: Vec<String>,
}

async fn run_on_cluster(session: &minispark::driver::job::JobSession, sql: &str) -> ScriptOutput {
    let mut out = ScriptOutput::default();
    run_script_in_session(session, sql, &mut |o| {
        if o.is_plan_text() {
            out.plans.push(o.plan_text().join("\n"));
        } else {
            out.batches.insert(o.index, o.batches);
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- in ---\n{sql}"));
    out
}

/// The oracle: the same statements on single-node DataFusion, with the
/// same built-in data and functions.
async fn run_on_datafusion(sql: &str) -> BTreeMap<usize, Expected> {
    let ctx = session_context(&Default::default()).unwrap();
    let mut rows = BTreeMap::new();
    for (index, statement) in minispark::driver::job::parse_script(sql)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let plan = ctx.state().statement_to_plan(statement).await.unwrap();
        let returns_rows = !matches!(
            plan,
            LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Statement(_)
        );
        let expected = Expected::from_dataframe(ctx.execute_logical_plan(plan).await.unwrap())
            .await
            .unwrap();
        if returns_rows {
            rows.insert(index, expected);
        }
    }
    rows
}

/// Runs every SQL example on the cluster shapes given and compares each
/// result with DataFusion's.
async fn check_sql_examples(executors: usize, partitions: &[usize]) {
    let cluster = cluster(executors).await;
    let names = netflix_sql_examples();
    // Jobs 1-4 and 6-10 of docs/WORKLOADS.md, at least.
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        let name = name.as_str();
        let oracle_dir = tempfile::tempdir().unwrap();
        let expected = run_on_datafusion(&example_sql(name, oracle_dir.path())).await;
        for &p in partitions {
            let dir = tempfile::tempdir().unwrap();
            let sql = example_sql(name, dir.path());
            let partitions = p.to_string();
            let session = session(&cluster, &[("minispark.shuffle.partitions", &partitions)]);
            let got = timed(name, run_on_cluster(&session, &sql)).await;
            assert_eq!(
                got.batches.keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "{name}: statements returning rows"
            );
            for (index, batches) in &got.batches {
                assert_result(
                    batches,
                    &expected[index],
                    format!(
                        "{name} (statement {index}) with {executors} executors and {p} partitions differs from DataFusion"
                    ),
                );
                assert!(row_count(batches) > 0, "{name}: an empty result");
            }
            check_example_specifics(name, &got, dir.path()).await;
        }
    }
}

/// What each example is there to show, checked on its output.
async fn check_example_specifics(name: &str, got: &ScriptOutput, out: &Path) {
    match name {
        "ab_readout" => check_welch_against_direct_computation(&got.batches[&0]).await,
        "skewed_join" => {
            // The top title holds a large share of all events.
            let top = &got.batches[&0][0];
            let share = top.column(4).as_primitive::<Float64Type>().value(0);
            assert!(share > 15.0, "top title share {share}%");
        }
        "playback_quality" => {
            // The degraded ISP leads the ranking and is flagged.
            let first = &got.batches[&0][0];
            assert_eq!(first.column(0).as_string::<i32>().value(0), "RuralWave");
            assert!(first.column(6).as_boolean().value(0));
        }
        "experiment_guardrails" => {
            // Nobody is in both variants of an experiment.
            for b in &got.batches[&0] {
                for i in 0..b.num_rows() {
                    let both = b.column(b.num_columns() - 1).as_primitive::<Int64Type>();
                    assert_eq!(both.value(i), 0, "row {i} of {b:?}");
                }
            }
        }
        "telemetry_layout" => check_telemetry_layout(got, out).await,
        _ => {}
    }
}

/// The readout's t, df and p-value against the formulas computed here from
/// the raw per-viewer metrics.
async fn check_welch_against_direct_computation(readout: &[RecordBatch]) {
    let ctx = session_context(&Default::default()).unwrap();
    let raw = ctx
        .sql(
            "SELECT a.experiment_id, a.variant, m.watch_minutes
             FROM netflix.small.experiment_assignments a
             JOIN netflix.small.experiment_metrics m
               ON a.experiment_id = m.experiment_id AND a.user_id = m.user_id",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut samples: BTreeMap<(i32, String), Vec<f64>> = BTreeMap::new();
    for b in &raw {
        let exp = b.column(0).as_primitive::<arrow::datatypes::Int32Type>();
        let variant = b.column(1).as_string::<i32>();
        let minutes = b.column(2).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            samples
                .entry((exp.value(i), variant.value(i).to_string()))
                .or_default()
                .push(minutes.value(i));
        }
    }
    let moments = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let mut checked = 0;
    for b in readout {
        let exp = b.column(0).as_primitive::<arrow::datatypes::Int32Type>();
        for i in 0..b.num_rows() {
            let e = exp.value(i);
            let (nc, mc, vc) = moments(&samples[&(e, "control".to_string())]);
            let (nt, mt, vt) = moments(&samples[&(e, "treatment".to_string())]);
            let (sc, st) = (vc / nc, vt / nt);
            let t = (mt - mc) / (sc + st).sqrt();
            let df = (sc + st).powi(2) / (sc * sc / (nc - 1.0) + st * st / (nt - 1.0));
            let p = 2.0 * (1.0 - student_t_cdf(t.abs(), df));
            let col = |j: usize| b.column(j).as_primitive::<Float64Type>().value(i);
            assert_eq!(b.column(1).as_primitive::<Int64Type>().value(i), nc as i64);
            assert!(
                (col(6) - t).abs() < 1e-4,
                "experiment {e}: t {} vs {t}",
                col(6)
            );
            assert!(
                (col(7) - df).abs() < 0.06,
                "experiment {e}: df {} vs {df}",
                col(7)
            );
            assert!(
                (col(8) - p).abs() < 2e-6,
                "experiment {e}: p {} vs {p}",
                col(8)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "one row per experiment");
}

/// Student's t CDF by numerical integration of its density (Simpson's rule):
/// independent of the statistics crate behind the SQL function.
fn student_t_cdf(t: f64, df: f64) -> f64 {
    let ln_gamma = |x: f64| {
        // Lanczos approximation (g = 7, n = 9).
        const C: [f64; 9] = [
            0.999_999_999_999_809_9,
            676.5203681218851,
            -1259.1392167224028,
            771.323_428_777_653_1,
            -176.615_029_162_140_6,
            12.507343278686905,
            -0.13857109526572012,
            9.984_369_578_019_572e-6,
            1.5056327351493116e-7,
        ];
        let x = x - 1.0;
        let mut a = C[0];
        let t = x + 7.5;
        for (i, c) in C.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    };
    let log_norm =
        ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0) - 0.5 * (df * std::f64::consts::PI).ln();
    let density = |x: f64| (log_norm - (df + 1.0) / 2.0 * (1.0 + x * x / df).ln()).exp();
    // P(T <= t) = 1/2 + integral of the density from 0 to t.
    let n = 20_000;
    let h = t / n as f64;
    let mut s = density(0.0) + density(t);
    for k in 1..n {
        let w = if k % 2 == 1 { 4.0 } else { 2.0 };
        s += w * density(k as f64 * h);
    }
    0.5 + s * h / 3.0
}

/// Written partitioned by date and hour, sorted by user_id inside each
/// file, and the EXPLAIN of the filtered read lists only the chosen hours.
async fn check_telemetry_layout(got: &ScriptOutput, out: &Path) {
    let dir = out.join("telemetry");
    let dates: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(dates.len(), 7, "one folder per day");
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let mut files = 0;
    for hour in glob_parquet(&dir) {
        let batches = ctx
            .read_parquet(hour.to_str().unwrap(), Default::default())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut last = i64::MIN;
        for b in &batches {
            let users = b.column(1).as_primitive::<Int64Type>();
            for i in 0..users.len() {
                assert!(
                    users.value(i) >= last,
                    "{} is not sorted by user_id",
                    hour.display()
                );
                last = users.value(i);
            }
        }
        files += 1;
    }
    assert!(files >= 7 * 24, "{files} files");
    let plan = &got.plans[0];
    for h in 18..=21 {
        assert!(
            plan.contains(&format!("date=2025-06-03/hour={h}/")),
            "{plan}"
        );
    }
    assert!(!plan.contains("hour=17/"), "hour 17 is pruned: {plan}");
    assert!(
        !plan.contains("date=2025-06-02"),
        "other days are pruned: {plan}"
    );
}

fn glob_parquet(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(glob_parquet(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_examples_three_executors() {
    check_sql_examples(3, &[1, 7]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_examples_one_executor() {
    check_sql_examples(1, &[3]).await;
}

/// The DataFrame versions of the examples give the rows of their SQL
/// versions, through a remote driver (the plans travel serialized).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_examples_match_their_sql() {
    let cluster = cluster(2).await;
    let client = remote_session(&cluster, &[("minispark.shuffle.partitions", "5")]).await;
    let sql_session = session(&cluster, &[("minispark.shuffle.partitions", "5")]);
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "season_completion",
        "engagement_drop",
        "ab_readout",
        "skewed_join",
        "catalog_availability",
    ] {
        let df = match name {
            "season_completion" => season_completion::job(&client, "small").await,
            "engagement_drop" => engagement_drop::job(&client, "small").await,
            "ab_readout" => ab_readout::job(&client, "small").await,
            "skewed_join" => skewed_join::job(&client, "small").await,
            "catalog_availability" => catalog_availability::job(&client, "small", "DE").await,
            _ => unreachable!(),
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = timed(name, df.collect()).await.unwrap();
        let sql = example_sql(name, dir.path());
        let on_cluster = run_on_cluster(&sql_session, &sql).await;
        let on_cluster = on_cluster.batches.values().next().expect("a query");
        let expected = run_on_datafusion(&sql).await;
        let expected = expected.into_values().next().expect("a query");
        // The SQL on the cluster and the DataFrame both give the SQL's
        // answer on DataFusion, in its order.
        assert_result(
            on_cluster,
            &expected,
            format!("the SQL of {name} differs from DataFusion"),
        );
        assert_result(
            &got,
            &expected,
            format!("the DataFrame version of {name} differs from its SQL"),
        );
    }
}

/// `examples/daily_engagement_iceberg.rs` on 2 executors: two nightly
/// appends make a table partitioned by day with two snapshots; the report
/// at the first snapshot is DataFusion's over the first load's events
/// only, the report at the current one DataFusion's over all of them (and
/// they differ: the late events are there); the day's filter reads only
/// that day's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_engagement_over_an_iceberg_table() {
    use daily_engagement_iceberg::{DAY, LOADS, daily_engagement, load, snapshot_ids};
    use minispark::iceberg::SnapshotChoice;

    let cluster = cluster(2).await;
    let s = remote_session(&cluster, &[("minispark.shuffle.partitions", "3")]).await;
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("viewing_events");
    let location = location.to_str().unwrap();
    let rows = timed("two appends", load(&s, "small", location))
        .await
        .unwrap();

    let oracle = session_context(&Default::default()).unwrap();
    let range = |(from, until): (&str, &str)| {
        format!("event_ts >= TIMESTAMP '{from}' AND event_ts < TIMESTAMP '{until}'")
    };
    let count = |sql: String| {
        let oracle = oracle.clone();
        async move {
            let batches = oracle.sql(&sql).await.unwrap().collect().await.unwrap();
            batches[0].column(0).as_primitive::<Int64Type>().value(0) as u64
        }
    };
    for (load, written) in LOADS.iter().zip(&rows) {
        let sql = format!(
            "SELECT count(*) FROM netflix.small.viewing_events WHERE {}",
            range(*load)
        );
        assert_eq!(*written, count(sql).await, "rows of the load {load:?}");
    }

    // Two snapshots, the second made on the first, each adding its load.
    let snapshots = s
        .iceberg_snapshots(location)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ids = snapshot_ids(&s, location).await.unwrap();
    assert_eq!(ids.len(), 2, "{snapshots:?}");
    let added = crate::common::column::<Int64Type>(&snapshots, "added_records", &DataType::Int64);
    assert_eq!(added, rows.iter().map(|r| *r as i64).collect::<Vec<_>>());
    let parents = crate::common::column::<Int64Type>(&snapshots, "parent_id", &DataType::Int64);
    assert_eq!(parents[1], ids[0]);
    assert_eq!(
        crate::common::column_strings(&snapshots, "is_current"),
        ["false", "true"]
    );

    // Hidden partitioning: one folder per day under data/, no day column.
    let mut days: Vec<String> =
        crate::distributed_writes::files_under(&dir.path().join("viewing_events/data"))
            .iter()
            .filter_map(|f| f.split('/').next().map(str::to_string))
            .collect();
    days.sort();
    days.dedup();
    assert_eq!(
        days,
        [
            "event_ts_day=2025-06-28",
            "event_ts_day=2025-06-29",
            "event_ts_day=2025-06-30"
        ]
    );

    let report_sql = |until: &str| {
        format!(
            "SELECT arrow_cast(device, 'Utf8View') AS device, \
               COUNT(DISTINCT user_id) AS viewers, COUNT(1) AS plays, \
               round(SUM(watched_minutes) / 60.0, 1) AS hours, \
               round(CAST(SUM(watched_minutes) AS DOUBLE) / COUNT(DISTINCT user_id), 1) \
                 AS minutes_per_viewer \
             FROM netflix.small.viewing_events \
             WHERE event_ts >= TIMESTAMP '{DAY} 00:00:00' AND event_ts < TIMESTAMP '{until}' \
             GROUP BY 1 ORDER BY hours DESC, device"
        )
    };
    let then = s
        .read_iceberg(location, SnapshotChoice::Id(ids[0]))
        .await
        .unwrap();
    let published = daily_engagement(then, DAY)
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_result(
        &published,
        &oracle_sql(&oracle, &report_sql(LOADS[0].1)).await,
        "the report at the first snapshot",
    );
    let now = s
        .read_iceberg(location, SnapshotChoice::Current)
        .await
        .unwrap();
    let report = daily_engagement(now, DAY).unwrap();
    let restated = report.clone().collect().await.unwrap();
    assert_result(
        &restated,
        &oracle_sql(&oracle, &report_sql("2025-06-30 00:00:00")).await,
        "the report at the current snapshot",
    );
    let plays = |b: &[arrow::array::RecordBatch]| {
        crate::common::column::<Int64Type>(b, "plays", &DataType::Int64)
            .iter()
            .sum::<i64>()
    };
    assert!(
        plays(&published) < plays(&restated),
        "the late events are in the current snapshot only"
    );

    // The filter on event_ts reads only the day's files.
    let day_files = crate::distributed_writes::files_under(&dir.path().join("viewing_events/data"))
        .iter()
        .filter(|f| f.starts_with(&format!("event_ts_day={DAY}/")) && f.ends_with(".parquet"))
        .count();
    let all_files = crate::distributed_writes::files_under(&dir.path().join("viewing_events/data"))
        .iter()
        .filter(|f| f.ends_with(".parquet"))
        .count();
    let plan = report.explain().await.unwrap();
    assert!(
        plan.contains(&format!("files={day_files} of {all_files}")) && day_files < all_files,
        "{day_files} of {all_files} files expected in\n{plan}"
    );
}
