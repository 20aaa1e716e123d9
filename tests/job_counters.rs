//! Job counters reach the user: through a remote driver to a DataFrame
//! action, and in `EXPLAIN ANALYZE`.

use minispark::prelude::*;

use crate::common::{cluster, remote_session, row_count, timed};

/// A broadcast join collected through a remote driver: the counters come
/// back with the rows, and the session keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_reach_a_remote_client() {
    let cluster = cluster(2).await;
    let session = remote_session(&cluster, &[("minispark.shuffle.partitions", "3")]).await;
    assert_eq!(session.last_job_counters(), None);
    let events = session.table("netflix.tiny.viewing_events").await.unwrap();
    let titles = session.table("netflix.tiny.titles").await.unwrap();
    let joined = events
        .join_with(
            titles,
            JoinType::Inner,
            &["title_id"],
            &["title_id"],
            None,
            JoinStrategy::Broadcast,
        )
        .unwrap()
        .aggregate(vec![col("kind")], vec![count(lit(1)).alias("views")])
        .unwrap();
    let (batches, counters) = timed(
        "collect with counters",
        joined.clone().collect_with_counters(),
    )
    .await
    .unwrap();
    assert!(row_count(&batches) > 0);
    // One attempt per task, none failed: no executor died.
    assert!(counters.task_attempts >= 3, "{counters}");
    assert_eq!(counters.failed_attempts, 0, "{counters}");
    assert_eq!(counters.executors_lost, 0, "{counters}");
    assert_eq!(counters.recomputed_map_outputs, 0, "{counters}");
    // The titles were broadcast by a stage of their own.
    assert!(counters.broadcast_stages >= 1, "{counters}");
    assert_eq!(session.last_job_counters(), Some(counters));

    // EXPLAIN ANALYZE ends with the same counters as a `job:` line.
    let plan = timed("explain analyze", joined.explain_analyze())
        .await
        .unwrap();
    let job_line = plan
        .lines()
        .find(|l| l.starts_with("job: "))
        .unwrap_or_else(|| panic!("no job line in {plan}"));
    assert!(
        job_line.contains(&format!(
            "{} task attempts, 0 failed,",
            counters.task_attempts
        )),
        "{job_line} vs {counters}"
    );
}
