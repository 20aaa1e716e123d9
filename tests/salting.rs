//! Key salting: the SKEW hint and `minispark.skew.salting = auto` spread a
//! hot key over several partitions, and never change an answer.

use minispark::client::run_script_in_session;
use minispark_driver::job::JobSession;
use minispark_planner::session::session_context;

use crate::common::{assert_result, cluster, oracle_sql, run_sql, session, skewed_joins, timed};

const SETTINGS: [(&str, &str); 4] = [
    ("minispark.shuffle.partitions", "8"),
    ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
    ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
    ("minispark.adaptive.enabled", "false"),
];

async fn explain(s: &JobSession, sql: &str) -> String {
    let mut plan = String::new();
    run_script_in_session(s, sql, &mut |out| {
        plan = out.plan_text().join("\n");
        Ok(())
    })
    .await
    .unwrap();
    plan
}

/// Rows of the largest output partition of the stage that scans the events
/// and hash-shuffles them to the join.
fn largest_events_partition(plan: &str) -> u64 {
    let stage = plan
        .split("Stage ")
        .find(|s| s.contains("table=viewing_events") && s.contains("hash"))
        .unwrap_or_else(|| panic!("no events shuffle stage: {plan}"));
    stage
        .lines()
        .filter(|l| l.trim_start().starts_with('p'))
        .filter_map(|l| {
            let rows = l.split(" rows").next()?;
            rows.rsplit(' ')
                .next()?
                .replace(',', "")
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no partition bars: {stage}"))
}

/// Every join type that may be salted, with the hint and automatically:
/// DataFusion's answer, and EXPLAIN names the salted hot key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salted_joins_equal_datafusion_for_every_join_type() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    for join in skewed_joins() {
        let name = join.name;
        let query = |hint: &str| join.sql(hint);
        let expected = oracle_sql(&oracle, &query("")).await;
        for (mode, hint, extra) in [
            ("hint", "/*+ SKEW('v', 'title_id') */", None),
            ("auto", "", Some(("minispark.skew.salting", "auto"))),
        ] {
            // Automatic salting at the default factor 5 needs 16 partitions
            // for a 23% key to count as skewed.
            let mut settings = vec![("minispark.shuffle.partitions", "16")];
            settings.extend_from_slice(&SETTINGS[1..]);
            settings.extend(extra);
            let s = session(&cluster, &settings);
            let sql = query(hint);
            let got = timed(&format!("{name} {mode}"), run_sql(&s, &sql))
                .await
                .unwrap();
            assert_result(&got, &expected, format!("{name} join salted by {mode}"));
            let plan = explain(&s, &format!("EXPLAIN {sql}")).await;
            assert!(
                plan.contains("salted hot keys of v: 145 ("),
                "{name} {mode}: {plan}"
            );
            assert!(plan.contains("__salt_"), "{name} {mode}: {plan}");
        }
    }
}

/// The hot key's rows really spread: the events' largest shuffle partition
/// shrinks, by about the share the hot key lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salting_spreads_the_hot_partition() {
    let cluster = cluster(2).await;
    let sql = "SELECT HINT t.kind, count(*) FROM netflix.small.viewing_events v
               JOIN netflix.small.titles t ON v.title_id = t.title_id GROUP BY t.kind";
    let s = session(&cluster, &SETTINGS);
    let plain = explain(&s, &format!("EXPLAIN ANALYZE {}", sql.replace("HINT", ""))).await;
    let salted = explain(
        &s,
        &format!(
            "EXPLAIN ANALYZE {}",
            sql.replace("HINT", "/*+ SKEW('v', 'title_id') */")
        ),
    )
    .await;
    let (before, after) = (
        largest_events_partition(&plain),
        largest_events_partition(&salted),
    );
    // Other popular titles remain (the next holds ~10%), so the largest
    // partition shrinks by less than the hot key's 23%.
    assert!(
        after * 4 < before * 3,
        "largest events partition: {before} rows plain, {after} salted\n{salted}"
    );
    // The sampled hot keys of the salted shuffle: title 145 in pieces, in
    // different partitions.
    let hot_line = salted
        .lines()
        .find(|l| l.contains("hot keys (sampled)") && l.contains("__salt_"))
        .unwrap_or_else(|| panic!("{salted}"));
    let mut partitions: Vec<&str> = hot_line
        .split("; ")
        .filter(|k| k.contains("title_id=145,"))
        .filter_map(|k| k.rsplit("-> ").next())
        .collect();
    partitions.sort();
    partitions.dedup();
    assert!(partitions.len() >= 3, "{hot_line}");
    assert!(salted.contains("sampled"), "{salted}");
}

/// Listed hot values skip the sampling pass; a hint on a side that may not
/// be salted is reported and ignored; bad hints are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skew_hint_values_and_refusals() {
    let cluster = cluster(1).await;
    let oracle = session_context(&Default::default()).unwrap();
    let s = session(&cluster, &SETTINGS);
    let sql = "SELECT HINT t.kind, count(*) FROM netflix.tiny.viewing_events v
               LEFT JOIN netflix.tiny.titles t ON v.title_id = t.title_id GROUP BY t.kind";
    let expected = oracle_sql(&oracle, &sql.replace("HINT", "")).await;
    for hint in [
        "/*+ SKEW('v', 'title_id', (145, 12)) */",
        // t is the right side of a LEFT join: salting it would replicate
        // the preserved events. Reported, not applied.
        "/*+ SKEW('t', 'title_id') */",
    ] {
        let q = sql.replace("HINT", hint);
        let got = run_sql(&s, &q).await.unwrap();
        assert_result(&got, &expected, hint);
        let plan = explain(&s, &format!("EXPLAIN {q}")).await;
        if hint.contains("145") {
            assert!(
                plan.contains("salted hot keys of v: 145 x8, 12 x8"),
                "{plan}"
            );
            assert!(!plan.contains("sampled"), "{plan}");
        } else {
            assert!(plan.contains("not applied"), "{plan}");
        }
    }
    for (hint, message) in [
        (
            "/*+ SKEW('w', 'title_id') */",
            "no table or alias of that name",
        ),
        ("/*+ SKEW('v') */", "needs a relation and a column"),
        (
            "/*+ SKEW('v', 'title_id', (abc)) */",
            "is not a value of title_id",
        ),
    ] {
        let err = run_sql(&s, &sql.replace("HINT", hint))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{hint}: {err}");
    }
    // The cluster still serves the next job.
    let got = run_sql(&s, &sql.replace("HINT", "")).await.unwrap();
    assert_result(&got, &expected, "the next job");
}

/// A skewed GROUP BY in two phases, (key, salt) then key: with the hint and
/// automatically (for distinct counts), the answer is DataFusion's,
/// including COUNT(DISTINCT) and AVG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salted_group_by_equals_datafusion() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    let events = "netflix.small.viewing_events";
    let aggregates = "count(*) AS n, count(DISTINCT v.user_id) AS users, \
                      avg(v.watched_minutes) AS avg_minutes, sum(v.watched_minutes) AS minutes, \
                      min(v.device) AS first_device, max(v.watched_minutes) AS longest";
    let queries = [
        // One key: salts spread over the partitions.
        format!("SELECT HINT v.title_id, {aggregates} FROM {events} v GROUP BY v.title_id"),
        // Two keys, one salted.
        format!(
            "SELECT HINT v.device, v.title_id, {aggregates} FROM {events} v \
             GROUP BY v.device, v.title_id"
        ),
        // A join then a GROUP BY on the hot key: both salted.
        format!(
            "SELECT HINT v.title_id, t.kind, {aggregates} FROM {events} v \
             JOIN netflix.small.titles t ON v.title_id = t.title_id GROUP BY v.title_id, t.kind"
        ),
    ];
    for q in queries {
        let expected = oracle_sql(&oracle, &q.replace("HINT", "")).await;
        for (mode, hint, settings) in [
            ("hint", "/*+ SKEW('v', 'title_id') */", SETTINGS.to_vec()),
            ("auto", "", {
                let mut s = vec![("minispark.shuffle.partitions", "16")];
                s.extend_from_slice(&SETTINGS[1..]);
                s.push(("minispark.skew.salting", "auto"));
                s
            }),
        ] {
            let s = session(&cluster, &settings);
            let sql = q.replace("HINT", hint);
            let got = timed(mode, run_sql(&s, &sql)).await.unwrap();
            assert_result(&got, &expected, format!("{mode}: {sql}"));
            let plan = explain(&s, &format!("EXPLAIN {sql}")).await;
            if mode == "auto" && q.contains("GROUP BY v.device") {
                // (device, title) pairs: the hottest holds ~10%, under the
                // 20% that skews one of 16 partitions at factor 5.
                assert!(plan.contains("no hot key"), "{mode}: {plan}");
                continue;
            }
            if mode == "auto" && q.contains("JOIN") {
                // Sampling a GROUP BY's input would run the join under it
                // whole: auto leaves it (the join itself is salted).
                assert!(!plan.contains("aggregated in pieces"), "{mode}: {plan}");
                assert!(
                    plan.contains("salted hot keys of v: 145 ("),
                    "{mode}: {plan}"
                );
                continue;
            }
            // "145 (23.1%) x10", or "(145, series) (..." for two keys.
            let line = plan
                .lines()
                .find(|l| l.contains("hot keys aggregated in pieces, then combined: "))
                .unwrap_or_else(|| panic!("{mode}: {plan}"));
            assert!(
                line.contains("combined: 145 (") || line.contains("combined: (145, "),
                "{mode}: {line}"
            );
            assert!(plan.contains("__salt_g"), "{mode}: {plan}");
        }
    }

    // Aggregates that cannot be combined from pieces are left alone, and
    // EXPLAIN says why.
    let s = session(&cluster, &SETTINGS);
    let sql = format!(
        "SELECT /*+ SKEW('v', 'title_id') */ v.title_id, median(v.watched_minutes) \
         FROM {events} v GROUP BY v.title_id"
    );
    let plan = explain(&s, &format!("EXPLAIN {sql}")).await;
    assert!(plan.contains("not applied: median"), "{plan}");
    let expected = oracle_sql(&oracle, &sql).await;
    let got = run_sql(&s, &sql).await.unwrap();
    assert_result(&got, &expected, &sql);
}

/// `df.skewed(col)` and `df.skewed_at(col, values)` in the DataFrame API,
/// through a remote driver (the hint travels in the serialized plan).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_skewed_salts_like_the_hint() {
    use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
    use minispark::prelude::*;
    let cluster = cluster(2).await;
    let session = crate::common::remote_session(&cluster, &SETTINGS).await;
    let oracle = session_context(&Default::default()).unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT kind, count(*), count(DISTINCT user_id) FROM netflix.small.viewing_events v
             JOIN netflix.small.titles t ON v.title_id = t.title_id GROUP BY kind",
    )
    .await
    .ignoring_names();
    for values in [vec![], vec![145i64]] {
        let events = session
            .table("netflix.small.viewing_events")
            .await
            .unwrap()
            .skewed_at("title_id", values.clone())
            .unwrap();
        let titles = session
            .table("netflix.small.titles")
            .await
            .unwrap()
            .select(vec![col("title_id").alias("id"), col("kind")])
            .unwrap();
        let df = events
            .join(titles, JoinType::Inner, &["title_id"], &["id"], None)
            .unwrap()
            .aggregate(
                vec![col("kind")],
                vec![count(lit(1)), count_distinct(col("user_id"))],
            )
            .unwrap();
        let plan = df.explain().await.unwrap();
        assert!(
            plan.contains("skewed('title_id'") && plan.contains("salted hot keys of"),
            "{values:?}: {plan}"
        );
        let got = df.collect().await.unwrap();
        assert_result(&got, &expected, format!("{values:?}"));
    }
    let err = session
        .table("netflix.small.viewing_events")
        .await
        .unwrap()
        .skewed("titel_id")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no column titel_id"), "{err}");
}
