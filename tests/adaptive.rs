//! Adaptive execution switching a shuffled join to a broadcast join once the
//! real sizes of its inputs are known.
//!
//! The small side is a GROUP BY of the viewing events: DataFusion estimates
//! it at about 2.7 MiB (it cannot know how few titles pass the filter), its
//! shuffle really holds about 70 KiB. With the broadcast threshold at 1 MiB
//! the planner shuffles both sides, and adaptive execution, seeing the
//! measured size, runs the join as a broadcast join. The events side
//! (about 3 MiB shuffled) is never small enough to broadcast.

use minispark::client::run_script_in_session;
use minispark::driver::job::JobSession;
use minispark_planner::session::session_context;

use crate::common::{assert_result, cluster, run_sql, session, timed};

/// Titles watched for more than 100 minutes at least once, with how often:
/// estimated far above the threshold, measured far below it.
const SMALL: &str = "(SELECT title_id, count(*) AS n FROM netflix.small.viewing_events
                      WHERE watched_minutes > 100 GROUP BY title_id)";

const SETTINGS: [(&str, &str); 2] = [
    ("minispark.shuffle.partitions", "8"),
    ("minispark.sql.autoBroadcastJoinThreshold", "1048576"),
];

/// EXPLAIN ANALYZE of `sql` in `session`.
pub(crate) async fn explain_analyze(session: &JobSession, sql: &str) -> String {
    let mut plan = String::new();
    timed(
        "explain analyze",
        run_script_in_session(session, &format!("EXPLAIN ANALYZE {sql}"), &mut |out| {
            plan = out.plan_text().join("\n");
            Ok(())
        }),
    )
    .await
    .unwrap();
    plan
}

/// Runs `sql` in `session`, checks the rows against single-node DataFusion
/// running `oracle_sql`, and returns the EXPLAIN ANALYZE text.
async fn check(session: &JobSession, name: &str, sql: &str, oracle_sql: &str) -> String {
    let oracle = session_context(&Default::default()).unwrap();
    let expected = crate::common::oracle_sql(&oracle, oracle_sql).await;
    let got = timed(name, run_sql(session, sql)).await.unwrap();
    assert!(expected.num_rows() > 0, "{name}: the oracle found no rows");
    assert_result(&got, &expected, name);
    explain_analyze(session, sql).await
}

/// The adaptive line of the stage that switched, if one did.
fn switch_line(plan: &str) -> Option<&str> {
    plan.lines()
        .map(str::trim)
        .find(|l| l.starts_with("adaptive: join") && l.contains("switched to broadcast"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_measured_small_is_switched_to_a_broadcast_join() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &SETTINGS);
    let cases = [
        (
            "INNER, small side right",
            format!(
                "SELECT v.device, count(*), sum(t.n) FROM netflix.small.viewing_events v
                 JOIN {SMALL} t ON v.title_id = t.title_id GROUP BY v.device"
            ),
        ),
        (
            "INNER, small side left",
            format!(
                "SELECT v.device, count(*), sum(t.n) FROM {SMALL} t
                 JOIN netflix.small.viewing_events v ON v.title_id = t.title_id GROUP BY v.device"
            ),
        ),
        (
            "RIGHT, small side left",
            format!(
                "SELECT v.device, count(*), count(t.n), sum(t.n) FROM {SMALL} t
                 RIGHT JOIN netflix.small.viewing_events v ON v.title_id = t.title_id
                 GROUP BY v.device"
            ),
        ),
        (
            "LEFT, small side right",
            format!(
                "SELECT v.device, count(*), count(t.n), sum(t.n) FROM netflix.small.viewing_events v
                 LEFT JOIN {SMALL} t ON v.title_id = t.title_id GROUP BY v.device"
            ),
        ),
        (
            "LEFT SEMI",
            format!(
                "SELECT v.device, count(*), sum(v.watched_minutes) FROM netflix.small.viewing_events v
                 WHERE EXISTS (SELECT 1 FROM {SMALL} t WHERE t.title_id = v.title_id AND t.n > 2)
                 GROUP BY v.device"
            ),
        ),
        (
            "LEFT ANTI",
            format!(
                "SELECT v.device, count(*), sum(v.watched_minutes) FROM netflix.small.viewing_events v
                 WHERE NOT EXISTS (SELECT 1 FROM {SMALL} t WHERE t.title_id = v.title_id AND t.n > 2)
                 GROUP BY v.device"
            ),
        ),
    ];
    for (name, sql) in &cases {
        let plan = check(&s, name, sql, sql).await;
        // Planned shuffled (the estimate is above the threshold)...
        assert!(plan.contains("mode=Partitioned"), "{name}: {plan}");
        let counters = s.last_job_counters().expect("counters");
        assert_eq!(counters.broadcast_switches, 1, "{name}: {counters}");
        assert_eq!(counters.broadcast_stages, 0, "{name}: {counters}");
        // ...and run as a broadcast join of the small side.
        let line = switch_line(&plan).unwrap_or_else(|| panic!("{name}: no switch in {plan}"));
        assert!(
            line.starts_with("adaptive: join 1 switched"),
            "{name}: {line}"
        );
        assert!(line.contains("< threshold 1.0 MiB"), "{name}: {line}");
        let measured: f64 = line
            .split("measured ")
            .nth(1)
            .and_then(|m| m.split(' ').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(
            line.contains(" KiB < threshold") && measured < 200.0,
            "{name}: the small side was broadcast: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_that_must_not_or_need_not_switch_stay_shuffled() {
    let cluster = cluster(2).await;
    // A LEFT join whose small side is its preserved (left) side: that side
    // cannot be broadcast, and the other is too big.
    let preserved = format!(
        "SELECT v.device, count(*), count(t.n) FROM {SMALL} t
         LEFT JOIN netflix.small.viewing_events v ON v.title_id = t.title_id GROUP BY v.device"
    );
    let inner = format!(
        "SELECT v.device, count(*), sum(t.n) FROM netflix.small.viewing_events v
         JOIN {SMALL} t ON v.title_id = t.title_id GROUP BY v.device"
    );
    let s = session(&cluster, &SETTINGS);
    let plan = check(&s, "LEFT, small side preserved", &preserved, &preserved).await;
    assert!(plan.contains("mode=Partitioned"), "{plan}");
    assert_eq!(switch_line(&plan), None, "{plan}");

    // A SHUFFLE_HASH hint keeps the join shuffled.
    let hinted = inner.replacen("SELECT", "SELECT /*+ SHUFFLE_HASH(t) */", 1);
    let plan = check(&s, "SHUFFLE_HASH hint", &hinted, &inner).await;
    assert!(plan.contains("shuffled (hint)"), "{plan}");
    assert_eq!(switch_line(&plan), None, "{plan}");

    // Adaptive execution off, or automatic broadcasts off: no switch.
    let off = [
        ("minispark.adaptive.enabled", "false"),
        ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
    ];
    for setting in off {
        let mut settings = SETTINGS.to_vec();
        settings.push(setting);
        let s = session(&cluster, &settings);
        let plan = check(&s, setting.0, &inner, &inner).await;
        assert!(plan.contains("mode=Partitioned"), "{}: {plan}", setting.0);
        assert_eq!(switch_line(&plan), None, "{}: {plan}", setting.0);
    }
}

/// An executor killed while a switched join runs (or just before): its
/// shuffle outputs are recomputed, the join stage is bound again with the
/// tasks and the switch it first chose, and the answer stays right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_join_survives_a_killed_executor() {
    let mut cluster = cluster(2).await;
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "16"),
            ("minispark.sql.autoBroadcastJoinThreshold", "4194304"),
        ],
    );
    let sql = "SELECT v.device, count(*), sum(t.n) FROM netflix.medium.viewing_events v
               JOIN (SELECT title_id, count(*) AS n FROM netflix.medium.viewing_events
                     WHERE watched_minutes > 100 GROUP BY title_id) t
               ON v.title_id = t.title_id GROUP BY v.device";
    let job = {
        let s = s.clone();
        tokio::spawn(async move { run_sql(&s, sql).await })
    };
    // Killed once it holds shuffle output the join still needs (not after
    // a fixed sleep, which a fast machine outruns).
    crate::common::wait_for_a_map_output_on(&cluster, 0).await;
    cluster.kill_executor(0).unwrap();
    let got = timed("switched join surviving a killed executor", job)
        .await
        .unwrap()
        .unwrap();
    let oracle = session_context(&Default::default()).unwrap();
    let expected = crate::common::oracle_sql(&oracle, sql).await;
    assert_result(
        &got,
        &expected,
        "a switched join surviving a killed executor",
    );
    // The kill landed while the job ran: the job saw it and recovered.
    let counters = s.last_job_counters().expect("the job's counters");
    assert!(
        counters.had_failures(),
        "the kill missed the job: {counters}"
    );
    assert!(counters.executors_lost >= 1, "{counters}");
    assert_eq!(counters.broadcast_switches, 1, "{counters}");
    // The join is switched on the surviving executor too.
    let plan = explain_analyze(&s, sql).await;
    assert!(switch_line(&plan).is_some(), "{plan}");
    let job_line = plan.lines().find(|l| l.starts_with("job: ")).unwrap_or("");
    assert!(
        job_line.contains(" 0 failed,") && job_line.contains(", 1 broadcast switches)"),
        "{plan}"
    );
}
