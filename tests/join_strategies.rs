//! Join strategies chosen by size, by setting and by SQL hints: EXPLAIN says
//! which and why, and the answer never changes.

use crate::common::{cluster, normalized_rows, run_sql, session, timed};
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
        let expected = normalized_rows(&oracle.sql(&plain).await.unwrap().collect().await.unwrap());
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
                assert_eq!(
                    normalized_rows(&got),
                    expected,
                    "{name} join, hint '{hint}', threshold {threshold}\n{plan}"
                );
                let join_line = plan
                    .lines()
                    .find(|l| l.starts_with("join 1:"))
                    .unwrap_or("");
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
    assert_eq!(normalized_rows(&rows), vec!["200".to_string()]);
}
