//! Executors with bounded memory: TPC-H at scale factor 0.1 on two executor
//! processes of 32 MiB each (`minispark.executor.memory`), where a sort, an
//! aggregation and a join must spill to give DataFusion's answers; a query
//! that cannot fit fails naming the limit, and the executors live on; a
//! job's `datafusion.runtime.*` settings reach its tasks.

use std::path::PathBuf;
use std::time::Duration;

use datafusion::prelude::{SessionConfig, SessionContext};
use minispark::local::{LocalCluster, LocalClusterOptions};

use crate::common::{
    TPCH_TABLES, assert_result, oracle_sql, run_sql, session, timed, tpch_sf0_1_dir,
};

/// Two executor processes of `memory` bytes and 2 slots each.
async fn bounded_cluster(memory: Option<u64>) -> LocalCluster {
    let options = LocalClusterOptions {
        executors: 2,
        slots: 2,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_minispark")),
        heartbeat_timeout: Duration::from_secs(3),
        in_process: false,
        memory,
        ui: None,
    };
    timed("starting a bounded cluster", LocalCluster::start(options))
        .await
        .expect("cluster starts")
}

fn ddl() -> String {
    crate::common::tpch_ddl_in(tpch_sf0_1_dir())
}

async fn oracle() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    for t in TPCH_TABLES {
        ctx.register_parquet(
            t,
            tpch_sf0_1_dir().join(t).to_str().unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
    }
    ctx
}

/// A sort of all of lineitem by comment (a window over 3 partitions of
/// 200 000 rows each, about 20 MB of comments per partition).
const SORT: &str = "SELECT l_orderkey, l_linenumber, l_comment, rn FROM (\
    SELECT l_orderkey, l_linenumber, l_comment, row_number() OVER \
    (PARTITION BY l_returnflag ORDER BY l_comment, l_orderkey, l_linenumber) AS rn \
    FROM lineitem) WHERE rn % 5000 = 1 ORDER BY l_comment, l_orderkey, l_linenumber";

/// About 450 000 groups keyed by comment, aggregated in one partition
/// (`minispark.shuffle.partitions = 1` for it).
const AGGREGATE: &str = "SELECT count(*) AS groups, sum(n) AS rows, sum(q) AS quantity \
    FROM (SELECT l_comment, count(*) AS n, sum(l_quantity) AS q FROM lineitem GROUP BY l_comment)";

/// lineitem with itself: each task's build side is half of lineitem.
const JOIN: &str = "SELECT count(*) AS n, sum(length(a.l_comment) + length(b.l_comment)) AS len \
    FROM lineitem a JOIN lineitem b \
    ON a.l_orderkey = b.l_orderkey AND a.l_linenumber = b.l_linenumber";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorts_aggregations_and_joins_spill_within_executor_memory() {
    let cluster = bounded_cluster(Some(32 << 20)).await;
    let job = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "2"),
            ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
        ],
    );
    timed("registering the tables", run_sql(&job, &ddl()))
        .await
        .unwrap();
    let oracle = oracle().await;
    for (what, partitions, sql) in [("sort", 2, SORT), ("aggregation", 1, AGGREGATE)] {
        let script = format!("SET minispark.shuffle.partitions = {partitions};\n{sql}");
        let got = timed(what, run_sql(&job, &script))
            .await
            .unwrap_or_else(|e| panic!("the {what} in 32 MiB executors: {e}"));
        assert_result(
            &got,
            &oracle_sql(&oracle, sql).await,
            format!("the {what} under a memory limit"),
        );
        let counters = job.last_job_counters().unwrap();
        assert!(
            counters.spilled_bytes > 0 && counters.spill_count > 0,
            "the {what} did not spill: {counters}"
        );
        assert!(!counters.had_failures(), "{what}: {counters}");
    }
    // EXPLAIN ANALYZE says which stage spilled, and how much.
    let plan = timed(
        "EXPLAIN ANALYZE",
        run_sql(
            &job,
            &format!("SET minispark.shuffle.partitions = 1;\nEXPLAIN ANALYZE {AGGREGATE}"),
        ),
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(text.contains("spilled to disk: "), "{text}");
    assert!(text.contains("bytes spilled in"), "{text}");

    // The join's build side (half of lineitem per task) does not fit a
    // task's 16 MiB: adaptive execution runs it as a sort-merge join from
    // the start, and nothing fails.
    let join = |partitions: usize, explain: &str| {
        format!("SET minispark.shuffle.partitions = {partitions};\n{explain}{JOIN}")
    };
    let expected = oracle_sql(&oracle, JOIN).await;
    let got = timed("join", run_sql(&job, &join(2, ""))).await.unwrap();
    assert_result(&got, &expected, "the join under a memory limit");
    let counters = job.last_job_counters().unwrap();
    assert!(
        counters.spilled_bytes > 0,
        "the join did not spill: {counters}"
    );
    assert!(!counters.had_failures(), "join: {counters}");
    let plan = timed(
        "EXPLAIN ANALYZE of the join",
        run_sql(&job, &join(2, "EXPLAIN ANALYZE ")),
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(
        text.contains("switched to sort-merge: largest build partition"),
        "{text}"
    );
}

/// A row larger than the executors' memory cannot be spilled: the job
/// fails naming the operator, the limit and the setting, and the executors
/// run the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_fit_fails_by_name_and_the_executors_live_on() {
    let cluster = bounded_cluster(Some(16 << 20)).await;
    let job = session(&cluster, &[("minispark.shuffle.partitions", "2")]);
    timed("registering the tables", run_sql(&job, &ddl()))
        .await
        .unwrap();
    let err = timed(
        "one row larger than the memory",
        run_sql(
            &job,
            "SELECT n_name, repeat(n_comment, 400000) AS huge FROM nation \
             WHERE n_nationkey = 7 ORDER BY huge",
        ),
    )
    .await
    .expect_err("a sort of a 30 MB row in 16 MiB executors")
    .to_string();
    assert!(err.contains("Resources exhausted"), "{err}");
    assert!(err.contains("Sort"), "names the operator: {err}");
    assert!(err.contains("16 MiB"), "{err}");
    assert!(err.contains("minispark.executor.memory"), "{err}");
    let next = "SELECT o_orderpriority, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1";
    let got = timed("the next job", run_sql(&job, next)).await.unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle().await, next).await,
        "the next job",
    );
}

/// `datafusion.runtime.memory_limit`, as a session setting or with `SET`,
/// caps each task inside an unbounded executor: the sort spills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_settings_reach_the_tasks() {
    let cluster = bounded_cluster(None).await;
    let oracle = oracle().await;
    let expected = oracle_sql(&oracle, SORT).await;

    let unbounded = session(&cluster, &[("minispark.shuffle.partitions", "2")]);
    timed("registering the tables", run_sql(&unbounded, &ddl()))
        .await
        .unwrap();
    let got = timed("the sort, unbounded", run_sql(&unbounded, SORT))
        .await
        .unwrap();
    assert_result(&got, &expected, "the sort without a limit");
    let counters = unbounded.last_job_counters().unwrap();
    assert_eq!(counters.spilled_bytes, 0, "{counters}");

    let capped = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "2"),
            ("datafusion.runtime.memory_limit", "8M"),
        ],
    );
    run_sql(&capped, &ddl()).await.unwrap();
    let got = timed("the sort, capped by a setting", run_sql(&capped, SORT))
        .await
        .unwrap();
    assert_result(&got, &expected, "the sort capped by a session setting");
    let counters = capped.last_job_counters().unwrap();
    assert!(counters.spilled_bytes > 0, "{counters}");

    let set = format!("SET datafusion.runtime.memory_limit = '8M';\n{SORT}");
    let got = timed("the sort, capped by SET", run_sql(&unbounded, &set))
        .await
        .unwrap();
    assert_result(&got, &expected, "the sort capped by SET");
    let counters = unbounded.last_job_counters().unwrap();
    assert!(counters.spilled_bytes > 0, "{counters}");

    // A misspelt runtime setting is refused, naming the ones there are.
    let err = run_sql(&unbounded, "SET datafusion.runtime.memory_limt = '8M'")
        .await
        .expect_err("an unknown runtime setting")
        .to_string();
    assert!(
        err.contains("Unknown runtime configuration") && err.contains("memory_limt"),
        "{err}"
    );
}

/// minispark's own buffers are in the executors' pool: a broadcast build
/// side larger than the executors' 16 MiB fails naming it (not by the
/// kernel's hand, nor past the limit), and the executors run the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_larger_than_the_memory_fails_by_name() {
    let cluster = bounded_cluster(Some(16 << 20)).await;
    let job = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "2"),
            ("minispark.task.maxFailures", "1"),
        ],
    );
    timed("registering the tables", run_sql(&job, &ddl()))
        .await
        .unwrap();
    let err = timed(
        "a broadcast of lineitem's comments",
        run_sql(
            &job,
            "SELECT /*+ BROADCAST(l) */ count(*) AS n, max(l.l_comment) AS c \
             FROM lineitem l JOIN orders o ON l.l_orderkey = o.o_orderkey",
        ),
    )
    .await
    .expect_err("a broadcast of about 25 MB in 16 MiB executors")
    .to_string();
    assert!(err.contains("Resources exhausted"), "{err}");
    assert!(err.contains("BroadcastBuildSide[job="), "names it: {err}");
    assert!(err.contains("16 MiB"), "{err}");
    assert!(err.contains("minispark.executor.memory"), "{err}");
    let next = "SELECT o_orderpriority, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1";
    let got = timed("the next job", run_sql(&job, next)).await.unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle().await, next).await,
        "the next job",
    );
}
