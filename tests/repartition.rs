//! Spark's repartitioning on a real cluster: `DISTRIBUTE BY`, `SORT BY`,
//! `CLUSTER BY`, the `REPARTITION` / `REBALANCE` hints and the DataFrame
//! calls. Contents are checked against single-node DataFusion; what only
//! Spark defines is checked directly with `spark_partition_id()`: a key
//! lands in `pmod(hash(key), n)`, `SORT BY` sorts inside each partition,
//! `REPARTITION(n)` spreads rows evenly over `n` partitions.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use minispark::client::run_script_in_session;
use minispark::driver::job::JobSession;
use minispark_planner::session::session_context;

use crate::common::{assert_result, cluster, column, oracle_sql, run_sql, session, timed};

/// `minispark.shuffle.partitions` in these tests; adaptive execution off, so
/// that no reduce partitions are coalesced and a task's partition is the
/// shuffle's.
const N: i32 = 5;

fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("minispark.shuffle.partitions", "5"),
        ("minispark.adaptive.enabled", "false"),
    ]
}

async fn explain(s: &JobSession, sql: &str) -> String {
    let mut text = String::new();
    run_script_in_session(s, &format!("EXPLAIN {sql}"), &mut |out| {
        text = out.plan_text().join("\n");
        Ok(())
    })
    .await
    .unwrap();
    text
}

/// `batches` without their last column (the partition id), to compare with
/// the oracle.
fn without_last_column(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|b| {
            let keep: Vec<usize> = (0..b.num_columns() - 1).collect();
            b.project(&keep).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribute_by_sends_each_key_to_pmod_of_its_spark_hash() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let oracle = session_context(&Default::default()).unwrap();
    // An INT-typed BIGINT key, a string key, and two keys at once; the
    // partition each row is in comes from spark_partition_id(), evaluated
    // by the task after the shuffle; the partition Spark would pick from
    // pmod(hash(keys), n), with Spark's Murmur3.
    for keys in ["o_custkey", "o_orderpriority", "o_orderpriority, o_custkey"] {
        let sql = format!(
            "SELECT o_orderkey, o_custkey, o_orderpriority, pmod(hash({keys}), {N}) AS spark, \
                    spark_partition_id() AS p \
             FROM (SELECT * FROM tpch.sf0_01.orders DISTRIBUTE BY {keys}) x"
        );
        let got = timed("DISTRIBUTE BY", run_sql(&s, &sql)).await.unwrap();
        let int32 = DataType::Int32;
        let p = column::<Int32Type>(&got, "p", &int32);
        let spark = column::<Int32Type>(&got, "spark", &int32);
        assert_eq!(p.len(), 15_000, "{keys}");
        assert_eq!(
            p, spark,
            "DISTRIBUTE BY {keys}: partition != pmod(hash(keys), {N})"
        );
        let used: BTreeSet<i32> = p.iter().copied().collect();
        assert!(
            used.len() > 1 && used.iter().all(|p| (0..N).contains(p)),
            "{used:?}"
        );
        // The rows themselves: the orders, each once.
        let expected = oracle_sql(
            &oracle,
            &format!(
                "SELECT o_orderkey, o_custkey, o_orderpriority, pmod(hash({keys}), {N}) AS spark \
                 FROM tpch.sf0_01.orders"
            ),
        )
        .await;
        assert_result(
            &without_last_column(&got),
            &expected,
            format!("DISTRIBUTE BY {keys}"),
        );
    }
    // EXPLAIN shows the shuffle as a stage of its own, named after what
    // asked for it.
    let plan = explain(
        &s,
        "SELECT o_orderkey, o_custkey FROM tpch.sf0_01.orders DISTRIBUTE BY o_custkey",
    )
    .await;
    assert!(
        plan.contains("hash shuffle on [o_custkey") && plan.contains("asked for by DISTRIBUTE BY"),
        "{plan}"
    );
}

/// Rows of `got` in order: (partition, key) pairs; checks that partitions
/// come one after the other, each sorted by its key as `cmp` says.
fn assert_sorted_within_partitions<K: PartialOrd + std::fmt::Debug>(
    partitions: &[i32],
    keys: &[K],
    descending: bool,
    what: &str,
) {
    assert_eq!(partitions.len(), keys.len());
    for i in 1..keys.len() {
        assert!(
            partitions[i - 1] <= partitions[i],
            "{what}: partitions interleave at row {i}"
        );
        if partitions[i - 1] == partitions[i] {
            let ordered = if descending {
                keys[i - 1] >= keys[i]
            } else {
                keys[i - 1] <= keys[i]
            };
            assert!(
                ordered,
                "{what}: partition {} not sorted at row {i}: {:?} then {:?}",
                partitions[i],
                keys[i - 1],
                keys[i]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_by_and_cluster_by_sort_inside_each_partition() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let oracle = session_context(&Default::default()).unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT o_custkey AS k, o_totalprice AS v FROM tpch.sf0_01.orders",
    )
    .await;
    let int32 = DataType::Int32;
    let int64 = DataType::Int64;
    let float64 = DataType::Float64;

    // DISTRIBUTE BY + SORT BY: partitioned by k, each partition by v, descending.
    let got = timed(
        "DISTRIBUTE BY .. SORT BY",
        run_sql(
            &s,
            "SELECT k, v, spark_partition_id() AS p FROM \
               (SELECT o_custkey AS k, o_totalprice AS v FROM tpch.sf0_01.orders DISTRIBUTE BY k) x \
             SORT BY v DESC",
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let v = column::<Float64Type>(&got, "v", &float64);
    assert!(
        p.iter().collect::<BTreeSet<_>>().len() > 1,
        "one partition only"
    );
    assert_sorted_within_partitions(&p, &v, true, "SORT BY v DESC");
    assert_result(
        &without_last_column(&got),
        &expected,
        "DISTRIBUTE BY .. SORT BY",
    );

    // CLUSTER BY k: partitioned by k as DISTRIBUTE BY, each partition by k.
    let got = timed(
        "CLUSTER BY",
        run_sql(
            &s,
            &format!(
                "SELECT k, v, spark_partition_id() AS p, pmod(hash(k), {N}) AS spark FROM \
                   (SELECT o_custkey AS k, o_totalprice AS v FROM tpch.sf0_01.orders CLUSTER BY k) x"
            ),
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let k = column::<Int64Type>(&got, "k", &int64);
    assert_eq!(
        p,
        column::<Int32Type>(&got, "spark", &int32),
        "CLUSTER BY partitions"
    );
    assert_sorted_within_partitions(&p, &k, false, "CLUSTER BY k");
    let contents: Vec<RecordBatch> = got.iter().map(|b| b.project(&[0, 1]).unwrap()).collect();
    assert_result(&contents, &expected, "CLUSTER BY");
    let plan = explain(
        &s,
        "SELECT o_custkey FROM tpch.sf0_01.orders CLUSTER BY o_custkey",
    )
    .await;
    assert!(plan.contains("asked for by CLUSTER BY"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartition_hints_and_their_mistakes() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let int32 = DataType::Int32;

    // REPARTITION(4): round robin, row by row: 4 partitions of (nearly)
    // equal size, whatever the scan's partitions were.
    let got = timed(
        "REPARTITION(4)",
        run_sql(
            &s,
            "SELECT p, count(*) AS c FROM \
               (SELECT spark_partition_id() AS p FROM \
                  (SELECT /*+ REPARTITION(4) */ * FROM tpch.sf0_01.orders) x) y \
             GROUP BY p",
        ),
    )
    .await
    .unwrap();
    let sizes: BTreeMap<i32, i64> = column::<Int32Type>(&got, "p", &int32)
        .into_iter()
        .zip(column::<Int64Type>(&got, "c", &DataType::Int64))
        .collect();
    assert_eq!(
        sizes.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "{sizes:?}"
    );
    assert_eq!(sizes.values().sum::<i64>(), 15_000);
    let (min, max) = (sizes.values().min().unwrap(), sizes.values().max().unwrap());
    assert!(max - min <= 16, "uneven round robin: {sizes:?}");

    // REPARTITION(3, key) and REPARTITION(key): hash, into 3 or
    // minispark.shuffle.partitions; REBALANCE(key) like the latter.
    for (hint, n) in [
        ("REPARTITION(3, o_orderpriority)", 3),
        ("REPARTITION(o_orderpriority)", N),
        ("REBALANCE(o_orderpriority)", N),
    ] {
        let sql = format!(
            "SELECT o_orderpriority, pmod(hash(o_orderpriority), {n}) AS spark, spark_partition_id() AS p \
             FROM (SELECT /*+ {hint} */ o_orderpriority FROM tpch.sf0_01.orders) x"
        );
        let got = timed(hint, run_sql(&s, &sql)).await.unwrap();
        let p = column::<Int32Type>(&got, "p", &int32);
        assert_eq!(p.len(), 15_000, "{hint}");
        assert_eq!(p, column::<Int32Type>(&got, "spark", &int32), "{hint}");
        let name = hint.split('(').next().unwrap();
        let plan = explain(
            &s,
            &format!("SELECT /*+ {hint} */ o_orderpriority FROM tpch.sf0_01.orders"),
        )
        .await;
        assert!(
            plan.contains(&format!("into {n} partitions, asked for by {name} hint")),
            "{plan}"
        );
    }

    // Arguments of the wrong kind name the hint.
    for (sql, message) in [
        (
            "SELECT /*+ REPARTITION(4, 5) */ * FROM tpch.sf0_01.nation",
            "REPARTITION hint: '5' is not a column",
        ),
        (
            "SELECT /*+ COALESCE(n_name) */ * FROM tpch.sf0_01.nation",
            "COALESCE hint takes one partition count",
        ),
        (
            "SELECT /*+ REPARTITION(0) */ * FROM tpch.sf0_01.nation",
            "REPARTITION hint: the partition count must be positive",
        ),
        (
            "SELECT /*+ REPARTITION(2, no_such_column) */ * FROM tpch.sf0_01.nation",
            "no_such_column",
        ),
    ] {
        let err = run_sql(&s, sql).await.unwrap_err().to_string();
        assert!(err.contains(message), "{sql}: {err}");
    }
}

/// `COPY` of a `DISTRIBUTE BY` query writes every row. (Spark writes one
/// file per non-empty partition; minispark's COPY still writes from one
/// task, so the file count is DataFusion's: not checked here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_with_distribute_by_writes_every_row() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by_priority");
    let sql = format!(
        "COPY (SELECT * FROM tpch.sf0_01.orders DISTRIBUTE BY o_orderpriority) \
         TO '{}/' STORED AS PARQUET",
        out.display()
    );
    timed("COPY .. DISTRIBUTE BY", run_sql(&s, &sql))
        .await
        .unwrap();
    let got = timed(
        "reading the files back",
        run_sql(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE g STORED AS PARQUET LOCATION '{}/'; \
                 SELECT o_orderpriority, count(*) AS c FROM g GROUP BY o_orderpriority",
                out.display()
            ),
        ),
    )
    .await
    .unwrap();
    let oracle = session_context(&Default::default()).unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderpriority, count(*) AS c FROM tpch.sf0_01.orders GROUP BY o_orderpriority",
    )
    .await;
    assert_result(&got, &expected, "COPY .. DISTRIBUTE BY, read back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesce_merges_partitions_without_a_shuffle() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let int32 = DataType::Int32;
    // Six round-robin partitions, coalesced into 2 by the SELECT above:
    // partitions 0..2 and 3..5 each read by one task, no second shuffle.
    let sql = "SELECT p, count(*) AS c FROM \
                 (SELECT /*+ COALESCE(2) */ spark_partition_id() AS p FROM \
                    (SELECT /*+ REPARTITION(6) */ o_orderkey FROM tpch.sf0_01.orders) x) y \
               GROUP BY p";
    let got = timed("COALESCE(2)", run_sql(&s, sql)).await.unwrap();
    let sizes: BTreeMap<i32, i64> = column::<Int32Type>(&got, "p", &int32)
        .into_iter()
        .zip(column::<Int64Type>(&got, "c", &DataType::Int64))
        .collect();
    assert_eq!(
        sizes.keys().copied().collect::<Vec<_>>(),
        [0, 1],
        "{sizes:?}"
    );
    assert_eq!(sizes.values().sum::<i64>(), 15_000);
    // Each holds three of the six even round-robin partitions.
    for c in sizes.values() {
        assert!((7_400..=7_600).contains(c), "{sizes:?}");
    }
    let plan = explain(
        &s,
        "SELECT /*+ COALESCE(2) */ * FROM (SELECT /*+ REPARTITION(6) */ o_orderkey FROM tpch.sf0_01.orders) x",
    )
    .await;
    // One shuffle (the REPARTITION's), and the coalesce inside the result stage.
    assert_eq!(
        plan.matches("shuffle on").count() + plan.matches("shuffle into").count(),
        1,
        "{plan}"
    );
    assert!(plan.contains("CoalesceExec: 6 partitions -> 2"), "{plan}");
    assert!(plan.contains("Stage 1 (2 tasks"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_repartition_calls() {
    use minispark::prelude::*;
    let session = timed(
        "starting a session",
        Session::builder()
            .master("local[2]")
            .executor_binary(env!("CARGO_BIN_EXE_minispark"))
            .config("minispark.adaptive.enabled", "false")
            .build(),
    )
    .await
    .unwrap();
    let int32 = DataType::Int32;
    let orders = session.table("tpch.sf0_01.orders").await.unwrap();
    // repartition_by(3, [o_custkey]) + sort_within_partitions(o_totalprice).
    let df = orders
        .clone()
        .select(vec![col("o_custkey"), col("o_totalprice")])
        .unwrap()
        .repartition_by(3, vec![col("o_custkey")])
        .unwrap()
        .sort_within_partitions(vec![col("o_totalprice").sort(true, false)])
        .unwrap()
        .select(vec![
            col("o_custkey"),
            col("o_totalprice"),
            Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                std::sync::Arc::new(
                    minispark::functions::spark_partition_id::spark_partition_id_udf(),
                ),
                vec![],
            ))
            .alias("p"),
        ])
        .unwrap();
    let plan = df.explain().await.unwrap();
    assert!(
        plan.contains("asked for by repartition_by(n, exprs)"),
        "{plan}"
    );
    let got = timed("repartition_by", df.collect()).await.unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let v = column::<Float64Type>(&got, "o_totalprice", &DataType::Float64);
    assert_eq!(p.len(), 15_000);
    assert_sorted_within_partitions(&p, &v, false, "sort_within_partitions");
    let keys = column::<Int64Type>(&got, "o_custkey", &DataType::Int64);
    let spark: Vec<i32> = keys
        .iter()
        .map(|k| {
            let h = minispark::functions::hash::spark_murmur3::hash_long(
                *k,
                minispark::functions::hash::spark_murmur3::SPARK_HASH_SEED,
            ) as i32;
            ((h % 3) + 3) % 3
        })
        .collect();
    assert_eq!(p, spark, "repartition_by(3, o_custkey)");

    // coalesce(1) of a repartition(3): one task reads all three.
    let one = orders.clone().repartition(3).unwrap().coalesce(1).unwrap();
    let plan = one.explain().await.unwrap();
    assert!(plan.contains("CoalesceExec: 3 partitions -> 1"), "{plan}");
    assert_eq!(timed("coalesce(1)", one.count()).await.unwrap(), 15_000);

    // repartition(4): 4 non-empty partitions, all rows.
    let counts = orders
        .repartition(4)
        .unwrap()
        .select(vec![
            Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                std::sync::Arc::new(
                    minispark::functions::spark_partition_id::spark_partition_id_udf(),
                ),
                vec![],
            ))
            .alias("p"),
        ])
        .unwrap()
        .aggregate(vec![col("p")], vec![count(lit(1)).alias("c")])
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ps: BTreeSet<i32> = column::<Int32Type>(&counts, "p", &int32)
        .into_iter()
        .collect();
    assert_eq!(ps.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(
        column::<Int64Type>(&counts, "c", &DataType::Int64)
            .iter()
            .sum::<i64>(),
        15_000
    );
}
