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

/// Adaptive execution splits the hot title's partition of a shuffled join
/// by map ranges, for every join type where that is correct, and the
/// answer stays DataFusion's; small partitions are coalesced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_execution_splits_skewed_joins_and_coalesces_small_partitions() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    let settings = [
        ("minispark.shuffle.partitions", "8"),
        ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
        ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
        ("minispark.skew.skewedPartitionFactor", "2"),
        ("minispark.adaptive.advisoryPartitionSizeInBytes", "65536"),
    ];
    let joins = [
        ("INNER", "JOIN", true),
        ("LEFT", "LEFT JOIN", true),
        ("RIGHT", "RIGHT JOIN", false),
        ("LEFT SEMI", "LEFT SEMI JOIN", true),
        ("LEFT ANTI", "LEFT ANTI JOIN", true),
    ];
    for (name, join, splits) in joins {
        // The events (the skewed side) on the left: split for the join
        // types that process left rows apart, never for RIGHT.
        let columns = if name.contains("SEMI") || name.contains("ANTI") {
            "v.device, count(*), sum(v.watched_minutes)"
        } else {
            "v.device, t.kind, count(*), sum(v.watched_minutes), count(t.title)"
        };
        let group = if name.contains("SEMI") || name.contains("ANTI") {
            "v.device"
        } else {
            "v.device, t.kind"
        };
        let sql = format!(
            "SELECT {columns} FROM netflix.small.viewing_events v {join}
             (SELECT * FROM netflix.small.titles WHERE title_id % 3 <> 0) t
             ON v.title_id = t.title_id GROUP BY {group}"
        );
        let expected = crate::common::oracle_sql(&oracle, &sql).await;
        let s = session(&cluster, &settings);
        let got = timed(name, crate::common::run_sql(&s, &sql)).await.unwrap();
        crate::common::assert_result(
            &got,
            &expected,
            format!("{name} join with adaptive splitting"),
        );
        let mut plan = String::new();
        run_script_in_session(&s, &format!("EXPLAIN ANALYZE {sql}"), &mut |out| {
            plan = out.plan_text().join("\n");
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(plan.contains("split into"), splits, "{name}: {plan}");
        assert!(plan.contains("adaptive: 8 partitions ->"), "{name}: {plan}");
    }

    // Off: one task per partition, no adaptive line.
    let mut off = settings.to_vec();
    off.push(("minispark.adaptive.enabled", "false"));
    let s = session(&cluster, &off);
    let mut plan = String::new();
    run_script_in_session(
        &s,
        "EXPLAIN ANALYZE SELECT device, count(*) FROM netflix.small.viewing_events GROUP BY device",
        &mut |out| {
            plan = out.plan_text().join("\n");
            Ok(())
        },
    )
    .await
    .unwrap();
    assert!(!plan.contains("adaptive:"), "{plan}");
}

/// A stage whose operators change the partition count (a UNION of two
/// shuffled aggregates) keeps one task per partition: reshaping it would
/// drop partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_execution_leaves_unions_of_shuffles_alone() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    let sql = "SELECT device, count(*) FROM netflix.tiny.viewing_events GROUP BY device
               UNION ALL
               SELECT device, count(*) FROM netflix.tiny.viewing_events
               WHERE watched_minutes > 30 GROUP BY device";
    let expected = crate::common::oracle_sql(&oracle, sql).await;
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "8"),
            ("minispark.adaptive.advisoryPartitionSizeInBytes", "1000000"),
        ],
    );
    let got = timed("union", crate::common::run_sql(&s, sql))
        .await
        .unwrap();
    crate::common::assert_result(&got, &expected, "a union of shuffles");
}

/// Every join strategy, on the skewed events, for every join type it
/// applies to, with aggregates that partial aggregation does not simply add
/// up (COUNT(DISTINCT), AVG): always single-node DataFusion's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_gives_datafusions_answer() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    let base = [
        ("minispark.shuffle.partitions", "8"),
        ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
        ("minispark.skew.skewedPartitionFactor", "2"),
    ];
    // (strategy, hint, settings)
    type Strategy<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let strategies: [Strategy; 6] = [
        (
            "shuffled",
            "/*+ SHUFFLE_HASH(t) */",
            &[("minispark.adaptive.enabled", "false")],
        ),
        (
            "broadcast",
            "/*+ BROADCAST(t) */",
            &[("minispark.adaptive.enabled", "false")],
        ),
        ("sort-merge", "/*+ MERGE(t) */", &[]),
        (
            "adaptive split",
            "",
            &[("minispark.sql.autoBroadcastJoinThreshold", "-1")],
        ),
        (
            "salted",
            "/*+ SKEW('v', 'title_id') */",
            &[
                ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
                ("minispark.adaptive.enabled", "false"),
            ],
        ),
        (
            "salted auto and adaptive",
            "",
            &[
                ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
                ("minispark.skew.salting", "auto"),
            ],
        ),
    ];
    for join in crate::common::skewed_joins() {
        let name = join.name;
        let sql = |hint: &str| join.sql(hint);
        let expected = crate::common::oracle_sql(&oracle, &sql("")).await;
        for (strategy, hint, settings) in &strategies {
            let mut all = base.to_vec();
            all.extend_from_slice(settings);
            let s = session(&cluster, &all);
            let got = timed(
                &format!("{name} {strategy}"),
                crate::common::run_sql(&s, &sql(hint)),
            )
            .await
            .unwrap();
            crate::common::assert_result(&got, &expected, format!("{name} join, {strategy}"));
            // The strategy really ran, and no other took over.
            let c = s.last_job_counters().expect("the job's counters");
            let what = format!("{name} join, {strategy}: {c}");
            match *strategy {
                "shuffled" | "sort-merge" => {
                    assert_eq!(c.broadcast_stages + c.broadcast_switches, 0, "{what}");
                    assert_eq!(c.salted_sites, 0, "{what}");
                }
                "broadcast" => {
                    assert_eq!(c.broadcast_stages, 1, "{what}");
                    assert_eq!(c.adaptive_decisions + c.salted_sites, 0, "{what}");
                }
                "adaptive split" => {
                    assert!(c.skew_splits > 0, "{what}");
                    assert_eq!(c.salted_sites + c.broadcast_stages, 0, "{what}");
                }
                "salted" => {
                    assert!(c.salted_sites > 0, "{what}");
                    assert_eq!(c.adaptive_decisions + c.broadcast_stages, 0, "{what}");
                }
                "salted auto and adaptive" => assert!(c.salted_sites > 0, "{what}"),
                other => panic!("no check for strategy {other}"),
            }
        }
    }
}
