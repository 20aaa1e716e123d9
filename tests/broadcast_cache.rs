//! The build side of a broadcast join is read once per executor and shared
//! by that executor's tasks (`minispark_executor::broadcast_cache`), and so
//! is its hash table (`minispark_executor::broadcast_hash_table`).

use std::collections::HashSet;

use futures::TryStreamExt;
use minispark_planner::exchange::ExchangeKind;
use minispark_planner::session::session_context;
use minispark_planner::stages::collect_readers;

use crate::common::{assert_result, cluster, oracle_sql, session, timed};

/// Titles broadcast to the 8 tasks of a stage that joins them with
/// aggregated views: each executor that runs tasks of that stage reads the
/// titles once (`broadcast_fetches` = the executors that ran the stage,
/// not its 8 tasks), builds one hash table of them that all its tasks
/// probe (`broadcast_hash_tables_built` = the executors too), and the
/// answer is DataFusion's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_executor_reads_a_broadcast_build_side_once() {
    let cluster = cluster(2).await;
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "8"),
            // Keep the 8 tasks: adaptive execution would coalesce them.
            ("minispark.adaptive.enabled", "false"),
        ],
    );
    let sql = "SELECT t.kind, count(*) AS titles, sum(v.minutes) AS minutes \
        FROM (SELECT title_id, sum(watched_minutes) AS minutes \
              FROM netflix.tiny.viewing_events GROUP BY title_id) v \
        JOIN netflix.tiny.titles t ON v.title_id = t.title_id GROUP BY t.kind";
    let plan = s.context().sql(sql).await.unwrap().into_unoptimized_plan();
    let graph = timed("planning", s.plan_stages(plan)).await.unwrap();
    let run = timed("running", s.run_graph(&graph)).await.unwrap();
    let got: Vec<_> = timed("collecting", run.stream.try_collect()).await.unwrap();
    let oracle = session_context(&Default::default()).unwrap();
    assert_result(&got, &oracle_sql(&oracle, sql).await, "broadcast join");

    let counters = run.counters;
    assert!(!counters.had_failures(), "{counters}");
    assert_eq!(counters.broadcast_stages, 1, "{counters}");
    // The stage reading the broadcast: its tasks and their executors.
    let mut readers = 0;
    let mut executors = HashSet::new();
    for (stage, metrics) in graph.stages.iter().zip(&run.metrics) {
        let mut broadcast = false;
        collect_readers(stage.writer().input(), &mut |r| {
            broadcast |= r.kind() == ExchangeKind::Broadcast;
        });
        if broadcast {
            readers += 1;
            assert_eq!(metrics.map_outputs.len(), 8, "the join stage's tasks");
            executors.extend(metrics.map_outputs.iter().map(|(_, e, _)| e.clone()));
        }
    }
    assert_eq!(readers, 1, "one stage reads the broadcast");
    assert!(!executors.is_empty());
    assert_eq!(
        counters.broadcast_fetches,
        executors.len() as u64,
        "one read of the titles per executor that ran the join's 8 tasks ({executors:?}): {counters}"
    );
    assert_eq!(
        counters.broadcast_hash_tables_built,
        executors.len() as u64,
        "one hash table of the titles per executor that ran the join's 8 tasks ({executors:?}): {counters}"
    );
}
