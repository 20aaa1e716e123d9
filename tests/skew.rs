//! Seeing skew: the map-output tracker's partition sizes, the sampled hot
//! keys and the skew rule, as EXPLAIN ANALYZE shows them.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use minispark::client::run_script_in_session;
use minispark_planner::session::session_context;

use crate::common::{cluster, session, timed};

/// The most viewed title of `netflix.small` and its share, by DataFusion.
async fn hot_title() -> (i64, f64) {
    let ctx = session_context(&Default::default()).unwrap();
    let batches = ctx
        .sql(
            "SELECT title_id, count(*) AS n, (SELECT count(*) FROM netflix.small.viewing_events) AS total
             FROM netflix.small.viewing_events GROUP BY title_id ORDER BY n DESC LIMIT 1",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let b = &batches[0];
    let id = b.column(0).as_primitive::<Int64Type>().value(0);
    let n = b.column(1).as_primitive::<Int64Type>().value(0);
    let total = b.column(2).as_primitive::<Int64Type>().value(0);
    (id, n as f64 / total as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_shows_partition_sizes_hot_keys_and_skew() {
    let (title, share) = hot_title().await;
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "8")]);
    let script = "
        SET minispark.sql.autoBroadcastJoinThreshold = -1;
        SET minispark.skew.skewedPartitionThresholdInBytes = 0;
        SET minispark.skew.skewedPartitionFactor = 2;
        EXPLAIN ANALYZE
        SELECT t.title, count(*) FROM netflix.small.viewing_events v
        JOIN netflix.small.titles t ON v.title_id = t.title_id GROUP BY t.title";
    let mut plan = String::new();
    timed(
        "explain analyze",
        run_script_in_session(&s, script, &mut |out| {
            plan = out.plan_text().join("\n");
            Ok(())
        }),
    )
    .await
    .unwrap();
    // The events' shuffle stage: eight bars, the hot title named with
    // about its real share, and its partition marked skewed.
    let events_stage = plan
        .split("Stage ")
        .find(|s| s.contains("table=viewing_events"))
        .expect("a stage scans the events");
    assert_eq!(events_stage.matches("\n    p").count(), 8, "{events_stage}");
    let hot = format!("title_id={title} ~");
    let line = events_stage
        .lines()
        .find(|l| l.contains("hot keys (sampled)"))
        .unwrap_or_else(|| panic!("no hot keys: {events_stage}"));
    let first = line.split("; ").next().unwrap();
    assert!(first.contains(&hot), "{line}");
    let pct: f64 = first
        .split("rows (")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        (pct / 100.0 - share).abs() < 0.03,
        "estimated {pct}%, really {:.1}%",
        share * 100.0
    );
    let partition = first.rsplit("-> p").next().unwrap().trim();
    let bar = events_stage
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("p{partition} ")))
        .unwrap_or_else(|| panic!("no bar for p{partition}: {events_stage}"));
    assert!(bar.contains("<- skewed"), "{bar}\n{events_stage}");
    assert!(plan.contains("skewed"), "{plan}");
}
