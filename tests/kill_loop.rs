//! The kill loop: TPC-H jobs, one executor SIGKILLed at a random point of
//! each (a seeded RNG picks the query order, the victim and the moment), a
//! replacement executor started each time; every answer equals single-node
//! DataFusion's, and the job counters show the kills landed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::common::{Expected, assert_result, run_sql, timed, tpch_ddl};
use crate::process_cluster::ProcessCluster;
use crate::tpch::{oracle, query};

/// Jobs whose kill must have landed (the job saw an executor lost).
const LANDED: usize = 20;
/// At most this many jobs with a kill are run to get there.
const MAX_JOBS: usize = 44;
const EXECUTORS: usize = 3;
const PARTITIONS: usize = 4;
const SEED: u64 = 0x5eed_0011;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_sigkilled_at_random_points_of_tpch_jobs() {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(SEED);
    // A silent executor is lost after 2 s: a victim that ran nothing is
    // noticed before the next job.
    let mut cluster = ProcessCluster::start(Duration::from_secs(2)).await;
    let mut live: Vec<String> = (0..EXECUTORS)
        .map(|_| cluster.spawn_executor(2, &[]))
        .collect();
    cluster.wait_for_executors(&live).await;
    let partitions = PARTITIONS.to_string();
    let session = cluster.session(&[("minispark.shuffle.partitions", &partitions)]);
    timed("registering tables", run_sql(&session, &tpch_ddl()))
        .await
        .unwrap();

    // Each query twice without a kill: its answer is checked, and its
    // shorter run time bounds the moment of its kill. A kill must land
    // while the job's stages run: one after its result is ready would take
    // result blocks the driver has not read yet with it (the driver reads
    // the final stage's blocks from the executors that wrote them), a loss
    // the scheduler cannot see and this test is not about.
    let mut queries: Vec<usize> = (1..=22).collect();
    queries.shuffle(&mut rng);
    let mut expected: HashMap<usize, Expected> = HashMap::new();
    let mut clean_time: HashMap<usize, Duration> = HashMap::new();
    for pass in 0..2 {
        for &q in &queries {
            let sql = query(q);
            let statement = minispark::driver::job::parse_script(&sql)
                .unwrap()
                .remove(0);
            let begun = Instant::now();
            let result = timed(&format!("q{q}"), session.execute_statement(statement))
                .await
                .unwrap_or_else(|e| panic!("q{q} without a kill: {e}"));
            // Until the result is ready: the part of the job a kill can hit.
            let took = begun.elapsed();
            let shortest = clean_time.entry(q).or_insert(took);
            *shortest = took.min(*shortest);
            let got = read_all(result.stream, &format!("q{q} without a kill")).await;
            if pass == 0 {
                expected.insert(q, oracle(&sql, PARTITIONS).await);
            }
            assert_result(&got, &expected[&q], format!("q{q} without a kill"));
        }
    }

    let (mut jobs, mut landed, mut missed) = (0, 0, 0);
    while landed < LANDED {
        assert!(
            jobs < MAX_JOBS,
            "only {landed} of {jobs} kills landed in a job (missed: {missed})"
        );
        let q = queries[jobs % queries.len()];
        jobs += 1;
        let sql = query(q);
        let victim = live.remove(rng.random_range(0..live.len()));
        // Somewhere in the first 60% of the job's shortest clean run (until
        // its result is ready).
        let clean = clean_time[&q];
        let at = clean.mul_f64(rng.random_range(0.0..0.6));

        // The job runs until its result is ready (not read yet: the result
        // blocks are read below, once the kill is done).
        let statement = minispark::driver::job::parse_script(&sql)
            .unwrap()
            .remove(0);
        let s = session.clone();
        let job = tokio::spawn(async move { s.execute_statement(statement).await });
        tokio::time::sleep(at).await;
        let killed = !job.is_finished();
        if killed {
            cluster.kill(&victim);
            // The replacement starts while the job runs: it may get tasks.
            live.push(cluster.spawn_executor(2, &[]));
        } else {
            missed += 1;
            live.push(victim.clone());
        }
        let result = timed(&format!("q{q} (job {jobs})"), job)
            .await
            .unwrap()
            .unwrap_or_else(|e| {
                panic!("q{q} (job {jobs}) with {victim} killed at {at:?} of {clean:?}: {e}")
            });
        let batches = read_all(
            result.stream,
            &format!("q{q} (job {jobs}): reading the result after killing {victim}"),
        )
        .await;
        assert_result(
            &batches,
            &expected[&q],
            format!("q{q} (job {jobs}) with {victim} killed at {at:?}"),
        );
        let counters = session.last_job_counters().expect("the job's counters");
        if killed {
            if counters.executors_lost >= 1 {
                landed += 1;
                // The lost executor's work was redone, not skipped.
                assert!(
                    counters.task_attempts > counters.failed_attempts,
                    "q{q} (job {jobs}): {counters}"
                );
            } else {
                missed += 1;
            }
        } else {
            assert!(!counters.had_failures(), "q{q} (job {jobs}): {counters}");
        }
        eprintln!(
            "kill loop: job {jobs} q{q} {} {victim} at {at:?}: {counters}",
            if killed { "killed" } else { "did not kill" }
        );
        // Before the next job: the victim is gone from the driver's view,
        // and the replacement registered.
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.driver.cluster.live_ids().contains(&victim) && killed {
            assert!(
                Instant::now() < deadline,
                "{victim} was never declared lost"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.wait_for_executors(&live).await;
    }
    assert_eq!(cluster.running_executors(), EXECUTORS);
    eprintln!(
        "kill loop: {jobs} jobs, {landed} kills landed, {missed} missed, {:?}",
        start.elapsed()
    );
}

/// Every batch of a result stream.
async fn read_all(
    mut stream: futures::stream::BoxStream<'static, datafusion::common::Result<RecordBatch>>,
    what: &str,
) -> Vec<RecordBatch> {
    let mut batches = vec![];
    while let Some(b) = timed(what, futures::StreamExt::next(&mut stream)).await {
        batches.push(b.unwrap_or_else(|e| panic!("{what}: {e}")));
    }
    batches
}
