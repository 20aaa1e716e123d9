//! Result blocks lost before the driver read them: the executor holding
//! them dies after the job's last task finished. The driver runs the lost
//! result tasks again (and whatever input they need) instead of failing.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use minispark_planner::session::session_context;

use crate::common::{assert_result, oracle_sql, timed};
use crate::process_cluster::ProcessCluster;

const SQL: &str = "SELECT o_custkey % 97 AS k, count(*) AS n, sum(o_totalprice) AS total \
                   FROM tpch.sf0_01.orders GROUP BY 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_lost_before_they_are_read_are_computed_again() {
    let mut cluster = ProcessCluster::start(Duration::from_secs(3)).await;
    let ids = [
        cluster.spawn_executor(2, &[]),
        cluster.spawn_executor(2, &[]),
    ];
    cluster.wait_for_executors(&ids).await;
    let s = cluster.session(&[
        ("minispark.shuffle.partitions", "4"),
        ("minispark.adaptive.enabled", "false"),
        ("minispark.shuffle.io.retryWait", "200ms"),
    ]);
    let plan = s.context().sql(SQL).await.unwrap().into_unoptimized_plan();
    let graph = timed("planning", s.plan_stages(plan)).await.unwrap();
    // The job runs to its end; the driver has not read a result block yet
    // (the stream is read below).
    let run = timed("running", s.run_graph(&graph)).await.unwrap();
    let holders: HashSet<String> = run
        .metrics
        .last()
        .unwrap()
        .map_outputs
        .iter()
        .filter(|(_, _, blocks)| blocks.iter().any(|b| b.rows > 0))
        .map(|(_, e, _)| e.clone())
        .collect();
    let victim = holders.iter().next().expect("result blocks").clone();
    cluster.kill(&victim);
    let got: Vec<_> = timed("reading the results", run.stream.try_collect())
        .await
        .unwrap_or_else(|e| panic!("results of a killed executor {victim}: {e}"));
    let oracle = session_context(&Default::default()).unwrap();
    assert_result(&got, &oracle_sql(&oracle, SQL).await, "lost results");
    let counters = s.last_job_counters().expect("the job's counters");
    assert!(counters.recomputed_map_outputs >= 1, "{counters}");
    assert_eq!(counters.executors_lost, 1, "{counters}");
    assert_eq!(cluster.driver.cluster.live_ids().len(), 1);
}
