//! Join strategies chosen by size, by setting and by SQL hints: EXPLAIN says
//! which and why, and the answer never changes.

use crate::common::{assert_result, cluster, oracle_sql, run_sql, session, single_value, timed};
use datafusion::common::ScalarValue;
use minispark::client::run_script_in_session;
use minispark_planner::session::session_context;

const JOINS: [(&str, &str); 5] = [
    (
        "inner",
        "SELECT {hint} t.kind, count(*), sum(v.watched_minutes) FROM netflix.tiny.viewing_events v
         JOIN netflix.tiny.titles t ON v.title_id = t.title_id GROUP BY t.kind",
    ),
    (
        "left",
        "SELECT {hint} t.kind, count(v.user_id) FROM netflix.tiny.titles t
         LEFT JOIN netflix.tiny.viewing_events v ON v.title_id = t.title_id AND v.device = 'tv'
         GROUP BY t.kind",
    ),
    (
        "right",
        "SELECT {hint} t.kind, count(*) FROM netflix.tiny.viewing_events v
         RIGHT JOIN netflix.tiny.titles t ON v.title_id = t.title_id AND v.watched_minutes > 100
         GROUP BY t.kind",
    ),
    (
        "semi",
        "SELECT {hint} t.kind, count(*) FROM netflix.tiny.titles t
         LEFT SEMI JOIN netflix.tiny.viewing_events v ON v.title_id = t.title_id GROUP BY t.kind",
    ),
    (
        "anti",
        "SELECT {hint} t.kind, count(*) FROM netflix.tiny.titles t
         LEFT ANTI JOIN netflix.tiny.viewing_events v ON v.title_id = t.title_id GROUP BY t.kind",
    ),
];

const HINTS: [&str; 4] = [
    "",
    "/*+ BROADCAST(v) */",
    "/*+ BROADCASTJOIN(t) */",
    "/*+ SHUFFLE_HASH(t) */",
];

async fn explain(s: &minispark::driver::job::JobSession, sql: &str) -> String {
    let mut text = String::new();
    run_script_in_session(s, &format!("EXPLAIN {sql}"), &mut |out| {
        text = out.plan_text().join("\n");
        Ok(())
    })
    .await
    .unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_gives_the_same_answer() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    for (name, template) in JOINS {
        let plain = template.replace("{hint}", "");
        let expected = oracle_sql(&oracle, &plain).await;
        for threshold in ["10485760", "-1"] {
            let s = session(
                &cluster,
                &[
                    ("minispark.shuffle.partitions", "3"),
                    ("minispark.sql.autoBroadcastJoinThreshold", threshold),
                ],
            );
            for hint in HINTS {
                let sql = template.replace("{hint}", hint);
                let plan = timed("explain", explain(&s, &sql)).await;
                let got = timed(name, run_sql(&s, &sql))
                    .await
                    .unwrap_or_else(|e| panic!("{name} {hint}: {e}"));
                assert_result(
                    &got,
                    &expected,
                    format!("{name} join, hint '{hint}', threshold {threshold}\n{plan}"),
                );
                let join_line = plan
                    .lines()
                    .find(|l| l.starts_with("join 1:"))
                    .unwrap_or("");
                // The strategy EXPLAIN names is the one that ran: a
                // broadcast join has a broadcast stage, a shuffled one none.
                let counters = s.last_job_counters().expect("the job's counters");
                if join_line.contains("broadcast of") {
                    assert_eq!(
                        counters.broadcast_stages, 1,
                        "{name} {hint}: {counters}\n{plan}"
                    );
                }
                if join_line.contains("shuffled") {
                    assert_eq!(
                        counters.broadcast_stages, 0,
                        "{name} {hint}: {counters}\n{plan}"
                    );
                }
                assert!(
                    join_line.contains("broadcast of") || join_line.contains("shuffled"),
                    "{name} {hint}: {plan}"
                );
                if hint.contains("SHUFFLE_HASH") || (hint.is_empty() && threshold == "-1") {
                    assert!(join_line.contains("shuffled"), "{name} {hint}: {plan}");
                }
                if hint.contains("BROADCAST(v)") && name == "inner" {
                    assert!(
                        join_line.contains("broadcast of viewing_events (hint)"),
                        "{name} {hint}: {plan}"
                    );
                }
                if hint.is_empty() && threshold != "-1" && name == "inner" {
                    assert!(
                        join_line.contains("broadcast of titles: estimated"),
                        "{plan}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hints_and_settings_are_named() {
    let cluster = cluster(1).await;
    let s = session(&cluster, &[]);
    let sql = "SELECT /*+ BROADCAST(x) */ count(*) FROM netflix.tiny.titles t";
    let err = run_sql(&s, sql).await.unwrap_err().to_string();
    assert!(err.contains("BROADCAST hint names 'x'"), "{err}");
    let sql = "SELECT /*+ BROADCST(t) */ count(*) FROM netflix.tiny.titles t";
    let err = run_sql(&s, sql).await.unwrap_err().to_string();
    assert!(err.contains("unknown hint BROADCST"), "{err}");
    let err = run_sql(&s, "SET minispark.sql.autoBroadcastJoinThreshold = -2")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("autoBroadcastJoinThreshold"), "{err}");
    // The session still works.
    let rows = run_sql(&s, "SELECT count(*) FROM netflix.tiny.titles")
        .await
        .unwrap();
    assert_eq!(single_value(&rows), ScalarValue::Int64(Some(200)));
}

/// A filtered titles table (some events match no title) and filtered events
/// (some titles have no events), so every join type has unmatched rows on
/// the side it keeps.
const MERGE_JOINS: [(&str, &str); 7] = [
    (
        "inner",
        "SELECT {hint} t.title_id, t.kind, count(*), sum(v.watched_minutes)
         FROM netflix.tiny.viewing_events v
         JOIN (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
           ON v.title_id = t.title_id
         GROUP BY t.title_id, t.kind",
    ),
    (
        "inner on two keys",
        "SELECT {hint} e.season, count(*), sum(v.watched_minutes)
         FROM netflix.tiny.viewing_events v
         JOIN netflix.tiny.episodes e ON v.title_id = e.title_id AND v.episode_id = e.episode_id
         JOIN (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
           ON e.title_id = t.title_id
         GROUP BY e.season",
    ),
    (
        "left",
        "SELECT {hint} t.title_id, count(v.user_id), sum(v.watched_minutes)
         FROM (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
         LEFT JOIN netflix.tiny.viewing_events v
           ON v.title_id = t.title_id AND v.device = 'tv'
         GROUP BY t.title_id",
    ),
    (
        "right",
        "SELECT {hint} v.title_id, t.kind, count(*), sum(v.watched_minutes)
         FROM (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
         RIGHT JOIN netflix.tiny.viewing_events v
           ON v.title_id = t.title_id AND v.watched_minutes > t.release_year % 100
         GROUP BY v.title_id, t.kind",
    ),
    (
        "full",
        "SELECT {hint} t.title_id, v.title_id, count(*), sum(v.watched_minutes)
         FROM (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
         FULL JOIN (SELECT * FROM netflix.tiny.viewing_events WHERE device = 'tv') v
           ON v.title_id = t.title_id AND v.watched_minutes > t.release_year % 100
         GROUP BY t.title_id, v.title_id",
    ),
    (
        "left semi",
        "SELECT {hint} t.title_id, t.kind
         FROM (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
         LEFT SEMI JOIN (SELECT * FROM netflix.tiny.viewing_events WHERE user_id % 20 = 0) v
           ON v.title_id = t.title_id AND v.watched_minutes > t.release_year % 100",
    ),
    (
        "left anti",
        "SELECT {hint} t.title_id, t.kind
         FROM (SELECT * FROM netflix.tiny.titles WHERE release_year >= 2010) t
         LEFT ANTI JOIN (SELECT * FROM netflix.tiny.viewing_events WHERE user_id % 20 = 0) v
           ON v.title_id = t.title_id AND v.watched_minutes > t.release_year % 100",
    ),
];

const MERGE_HINTS: [&str; 4] = [
    "/*+ MERGE(t) */",
    "/*+ SHUFFLE_MERGE(v) */",
    "/*+ MERGEJOIN(t, v) */",
    // A merge hint wins over a broadcast hint on the other side.
    "/*+ BROADCAST(t) MERGE(v) */",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_hint_sort_merge_joins_give_the_same_answer() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    for (name, template) in MERGE_JOINS {
        let plain = template.replace("{hint}", "");
        let expected = oracle_sql(&oracle, &plain).await;
        assert!(expected.num_rows() > 0, "{name}");
        // DataFusion plans the hash join partitioned (-1) or collected
        // (the default threshold): either becomes a sort-merge join.
        for threshold in ["10485760", "-1"] {
            let s = session(
                &cluster,
                &[
                    ("minispark.shuffle.partitions", "3"),
                    ("minispark.sql.autoBroadcastJoinThreshold", threshold),
                ],
            );
            for hint in MERGE_HINTS {
                let sql = template.replace("{hint}", hint);
                let plan = timed("explain", explain(&s, &sql)).await;
                let got = timed(name, run_sql(&s, &sql))
                    .await
                    .unwrap_or_else(|e| panic!("{name} {hint}: {e}"));
                assert_result(
                    &got,
                    &expected,
                    format!("{name} join, hint '{hint}', threshold {threshold}\n{plan}"),
                );
                assert!(plan.contains("SortMergeJoinExec"), "{name} {hint}: {plan}");
                // A sort-merge join shuffles both sides: only the joins
                // EXPLAIN says are broadcast (one not hinted) broadcast a
                // stage, and none is switched to broadcast.
                let counters = s.last_job_counters().expect("the job's counters");
                let broadcast_joins = plan
                    .lines()
                    .filter(|l| l.starts_with("join ") && l.contains("broadcast of"))
                    .count() as u64;
                assert_eq!(
                    counters.broadcast_stages, broadcast_joins,
                    "{name} {hint}: {counters}\n{plan}"
                );
                assert_eq!(counters.broadcast_switches, 0, "{name} {hint}: {counters}");
                let merge_lines = plan
                    .lines()
                    .filter(|l| l.starts_with("join ") && l.contains("sort-merge join"))
                    .count();
                assert!(merge_lines >= 1, "{name} {hint}: {plan}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_sort_merge_join_and_its_shuffles() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &[("minispark.shuffle.partitions", "3")]);
    let sql = "SELECT /*+ MERGE(t) */ t.kind, count(*) FROM netflix.tiny.viewing_events v
               JOIN netflix.tiny.titles t ON v.title_id = t.title_id GROUP BY t.kind";
    let plan = explain(&s, sql).await;
    let join_line = plan
        .lines()
        .find(|l| l.starts_with("join 1:"))
        .unwrap_or("");
    assert!(
        join_line.contains("INNER sort-merge join on [")
            && join_line.contains("shuffled and sorted by the keys (MERGE hint)"),
        "{plan}"
    );
    assert!(plan.contains("SortMergeJoinExec"), "{plan}");
    assert!(!plan.contains("HashJoinExec"), "{plan}");
    assert!(!plan.contains("broadcast"), "{plan}");
    // Each side shuffled once, by its join key, into 3 partitions.
    let side_shuffles = plan
        .lines()
        .filter(|l| {
            l.starts_with("Stage")
                && l.contains("hash shuffle on [title_id@")
                && l.contains("into 3")
        })
        .count();
    assert_eq!(side_shuffles, 2, "{plan}");
    // Without the hint, the small titles table is broadcast.
    let plain = explain(&s, &sql.replace("/*+ MERGE(t) */", "")).await;
    assert!(!plain.contains("SortMergeJoinExec"), "{plain}");
}

/// `NOT IN` is a null-aware anti join: one NULL in the subquery empties the
/// answer. Every probe row must meet that NULL, so the probe side runs as
/// one task, whatever the partitions and broadcast threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_in_sees_a_null_anywhere_in_the_subquery() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    let queries = [
        // A NULL in the subquery: no row at all.
        "SELECT title_id FROM netflix.tiny.titles WHERE title_id NOT IN
         (SELECT CASE WHEN title_id = 7 THEN NULL ELSE title_id + 1 END FROM netflix.tiny.titles)",
        // No NULL: the titles whose id minus one is not a title.
        "SELECT title_id FROM netflix.tiny.titles WHERE title_id NOT IN
         (SELECT title_id + 1 FROM netflix.tiny.titles)",
        // An empty subquery: every row.
        "SELECT title_id FROM netflix.tiny.titles WHERE title_id NOT IN
         (SELECT title_id FROM netflix.tiny.titles WHERE title_id < 0)",
    ];
    for threshold in ["-1", "10485760"] {
        let s = session(
            &cluster,
            &[
                ("minispark.shuffle.partitions", "4"),
                ("minispark.sql.autoBroadcastJoinThreshold", threshold),
            ],
        );
        for sql in queries {
            let expected = oracle_sql(&oracle, sql).await;
            let got = timed("not in", run_sql(&s, sql)).await.unwrap();
            assert_result(&got, &expected, format!("threshold {threshold}: {sql}"));
        }
    }
}
