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

/// `COPY` of a `DISTRIBUTE BY` query writes every row, and `INSERT INTO`
/// a table over the folder with a `DISTRIBUTE BY` query appends one file
/// per non-empty partition, each holding whole keys. (That COPY writes one
/// file per non-empty partition, each holding only its partition's keys,
/// is checked by `distributed_writes`.)
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

    // INSERT INTO .. DISTRIBUTE BY: the same partitioning, so as many new
    // files as COPY wrote, and no key split between two of them.
    let parquet_files = || -> BTreeSet<std::path::PathBuf> {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    };
    let before = parquet_files();
    assert!(!before.is_empty());
    timed(
        "INSERT INTO .. DISTRIBUTE BY",
        run_sql(
            &s,
            "INSERT INTO g SELECT * FROM tpch.sf0_01.orders DISTRIBUTE BY o_orderpriority",
        ),
    )
    .await
    .unwrap();
    let after = parquet_files();
    let new: Vec<_> = after.difference(&before).collect();
    assert_eq!(new.len(), before.len(), "{after:?}");
    let mut owner: BTreeMap<String, &std::path::PathBuf> = BTreeMap::new();
    for file in &new {
        let keys = oracle
            .read_parquet(file.to_str().unwrap(), Default::default())
            .await
            .unwrap()
            .select_columns(&["o_orderpriority"])
            .unwrap()
            .distinct()
            .unwrap()
            .collect()
            .await
            .unwrap();
        for batch in &keys {
            for i in 0..batch.num_rows() {
                let key = arrow::util::display::array_value_to_string(batch.column(0), i).unwrap();
                if let Some(other) = owner.insert(key.clone(), file) {
                    panic!("{key} is in {other:?} and {file:?}");
                }
            }
        }
    }
    let got = run_sql(
        &s,
        "SELECT o_orderpriority, count(*) AS c FROM g GROUP BY o_orderpriority",
    )
    .await
    .unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderpriority, 2 * count(*) AS c FROM tpch.sf0_01.orders GROUP BY o_orderpriority",
    )
    .await;
    assert_result(&got, &expected, "after INSERT .. DISTRIBUTE BY");
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

/// Column `name` of `batches` as `Option<i64>` (NULLs kept).
fn nullable_i64(batches: &[RecordBatch], name: &str) -> Vec<Option<i64>> {
    use arrow::array::{Array, AsArray};
    batches
        .iter()
        .flat_map(|b| {
            let c =
                arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Int64).unwrap();
            let c = c.as_primitive::<Int64Type>();
            (0..c.len())
                .map(|i| c.is_valid(i).then(|| c.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks that the partitions' key ranges do not overlap and come in
/// partition order: every key of a lower partition sorts before every key
/// of a higher one (`before(a, b)`: `a` sorts strictly before `b`).
/// Returns the rows per partition.
fn assert_ranges_ordered<K: Clone + std::fmt::Debug>(
    partitions: &[i32],
    keys: &[K],
    before: impl Fn(&K, &K) -> bool,
    what: &str,
) -> BTreeMap<i32, usize> {
    assert_eq!(partitions.len(), keys.len(), "{what}");
    // (first, last) key of each partition in sort order, and its rows.
    let mut ranges: BTreeMap<i32, (K, K, usize)> = BTreeMap::new();
    for (p, k) in partitions.iter().zip(keys) {
        let entry = ranges
            .entry(*p)
            .or_insert_with(|| (k.clone(), k.clone(), 0));
        if before(k, &entry.0) {
            entry.0 = k.clone();
        }
        if before(&entry.1, k) {
            entry.1 = k.clone();
        }
        entry.2 += 1;
    }
    let ordered: Vec<_> = ranges.iter().collect();
    for pair in ordered.windows(2) {
        let ((p, (_, last, _)), (q, (first, _, _))) = (pair[0], pair[1]);
        assert!(
            before(last, first),
            "{what}: partition {p} ends at {last:?}, partition {q} starts at {first:?}: ranges overlap"
        );
    }
    ranges.into_iter().map(|(p, (_, _, n))| (p, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repartition_by_range_orders_the_partitions_by_sampled_bounds() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let oracle = session_context(&Default::default()).unwrap();
    let int32 = DataType::Int32;

    // One key: 4 partitions of about 3 750 orders each, in key order.
    let got = timed(
        "REPARTITION_BY_RANGE(4, o_custkey)",
        run_sql(
            &s,
            "SELECT o_orderkey, o_custkey, spark_partition_id() AS p FROM \
               (SELECT /*+ REPARTITION_BY_RANGE(4, o_custkey) */ o_orderkey, o_custkey \
                FROM tpch.sf0_01.orders) x",
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let k = column::<Int64Type>(&got, "o_custkey", &DataType::Int64);
    let sizes = assert_ranges_ordered(&p, &k, |a, b| a < b, "REPARTITION_BY_RANGE(4, o_custkey)");
    assert_eq!(
        sizes.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "{sizes:?}"
    );
    for n in sizes.values() {
        assert!((1_800..=5_600).contains(n), "unbalanced ranges: {sizes:?}");
    }
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderkey, o_custkey FROM tpch.sf0_01.orders",
    )
    .await;
    assert_result(
        &without_last_column(&got),
        &expected,
        "REPARTITION_BY_RANGE(4, o_custkey)",
    );

    // Two keys, compared column after column; no count: shuffle partitions.
    let got = timed(
        "REPARTITION_BY_RANGE(o_orderpriority, o_custkey)",
        run_sql(
            &s,
            "SELECT o_orderpriority, o_custkey, spark_partition_id() AS p FROM \
               (SELECT /*+ REPARTITION_BY_RANGE(o_orderpriority, o_custkey) */ \
                       o_orderpriority, o_custkey FROM tpch.sf0_01.orders) x",
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let keys: Vec<(String, i64)> = crate::common::column_strings(&got, "o_orderpriority")
        .into_iter()
        .zip(column::<Int64Type>(&got, "o_custkey", &DataType::Int64))
        .collect();
    let sizes = assert_ranges_ordered(&p, &keys, |a, b| a < b, "two range keys");
    assert!(
        sizes.len() > 1 && sizes.keys().all(|p| (0..N).contains(p)),
        "{sizes:?}"
    );
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderpriority, o_custkey FROM tpch.sf0_01.orders",
    )
    .await;
    assert_result(&without_last_column(&got), &expected, "two range keys");

    // NULL keys sort first (Spark's ASC NULLS FIRST): all in partition 0.
    let nulls = "SELECT CASE WHEN o_orderkey % 7 = 0 THEN NULL ELSE o_custkey END AS k, o_orderkey \
                 FROM tpch.sf0_01.orders";
    let got = timed(
        "REPARTITION_BY_RANGE with NULL keys",
        run_sql(
            &s,
            &format!(
                "SELECT k, o_orderkey, spark_partition_id() AS p FROM \
                   (SELECT /*+ REPARTITION_BY_RANGE(4, k) */ k, o_orderkey FROM ({nulls}) t) x"
            ),
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let k = nullable_i64(&got, "k");
    assert!(k.iter().any(Option::is_none));
    // Option orders None first, as NULLS FIRST.
    assert_ranges_ordered(&p, &k, |a, b| a < b, "NULL keys");
    for (p, k) in p.iter().zip(&k) {
        assert!(k.is_some() || *p == 0, "a NULL key in partition {p}");
    }
    let expected = oracle_sql(&oracle, &format!("SELECT k, o_orderkey FROM ({nulls}) t")).await;
    assert_result(&without_last_column(&got), &expected, "NULL keys");

    // A skewed key (90% of the rows): one partition holds all of it (the
    // bounds never repeat), the other keys share the rest, still in order.
    let skewed = "SELECT CASE WHEN o_orderkey % 10 < 9 THEN 42 ELSE o_custkey END AS k, o_orderkey \
                  FROM tpch.sf0_01.orders";
    let got = timed(
        "REPARTITION_BY_RANGE of a skewed key",
        run_sql(
            &s,
            &format!(
                "SELECT k, o_orderkey, spark_partition_id() AS p FROM \
                   (SELECT /*+ REPARTITION_BY_RANGE(8, k) */ k, o_orderkey FROM ({skewed}) t) x"
            ),
        ),
    )
    .await
    .unwrap();
    let p = column::<Int32Type>(&got, "p", &int32);
    let k = column::<Int64Type>(&got, "k", &DataType::Int64);
    let sizes = assert_ranges_ordered(&p, &k, |a, b| a < b, "a skewed key");
    assert!(
        sizes.len() > 1 && sizes.keys().all(|p| (0..8).contains(p)),
        "{sizes:?}"
    );
    let hot: BTreeSet<i32> = p
        .iter()
        .zip(&k)
        .filter(|(_, k)| **k == 42)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(hot.len(), 1, "key 42 in partitions {hot:?}");
    let expected = oracle_sql(&oracle, &format!("SELECT k, o_orderkey FROM ({skewed}) t")).await;
    assert_result(&without_last_column(&got), &expected, "a skewed key");

    // EXPLAIN names the range shuffle after the hint and shows the bounds.
    let plan = explain(
        &s,
        "SELECT /*+ REPARTITION_BY_RANGE(4, o_custkey) */ o_custkey FROM tpch.sf0_01.orders",
    )
    .await;
    assert!(
        plan.contains("range shuffle on [o_custkey@")
            && plan.contains("into 4 partitions, asked for by REPARTITION_BY_RANGE hint")
            && plan.contains("range bounds, from a sample of"),
        "{plan}"
    );

    // Arguments of the wrong kind name the hint.
    for (sql, message) in [
        (
            "SELECT /*+ REPARTITION_BY_RANGE(3) */ * FROM tpch.sf0_01.nation",
            "REPARTITION_BY_RANGE hint needs the columns",
        ),
        (
            "SELECT /*+ REPARTITION_BY_RANGE(n_name, 3) */ * FROM tpch.sf0_01.nation",
            "REPARTITION_BY_RANGE hint: '3' is not a column",
        ),
        (
            "SELECT /*+ REPARTITION_BY_RANGE(0, n_name) */ * FROM tpch.sf0_01.nation",
            "the partition count must be positive",
        ),
        (
            "SELECT /*+ REPARTITION_BY_RANGE(2, no_such_column) */ * FROM tpch.sf0_01.nation",
            "no_such_column",
        ),
    ] {
        let err = run_sql(&s, sql).await.unwrap_err().to_string();
        assert!(err.contains(message), "{sql}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_repartition_by_range_honours_descending_keys() {
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
    let orders = session.table("tpch.sf0_01.orders").await.unwrap();
    let df = orders
        .select(vec![col("o_orderkey"), col("o_totalprice")])
        .unwrap()
        .repartition_by_range(3, vec![col("o_totalprice").sort(false, false)])
        .unwrap()
        .select(vec![
            col("o_orderkey"),
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
        plan.contains("asked for by repartition_by_range(n, sort_exprs)")
            && plan.contains("DESC NULLS LAST"),
        "{plan}"
    );
    let got = timed("repartition_by_range", df.collect()).await.unwrap();
    let p = column::<Int32Type>(&got, "p", &DataType::Int32);
    let v = column::<Float64Type>(&got, "o_totalprice", &DataType::Float64);
    // Descending: partition 0 holds the highest prices.
    let sizes = assert_ranges_ordered(&p, &v, |a, b| a > b, "repartition_by_range DESC");
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert_eq!(sizes.values().sum::<usize>(), 15_000);
    let oracle = session_context(&Default::default()).unwrap();
    let expected = oracle_sql(
        &oracle,
        "SELECT o_orderkey, o_totalprice FROM tpch.sf0_01.orders",
    )
    .await;
    assert_result(
        &without_last_column(&got),
        &expected,
        "repartition_by_range",
    );
}

/// Rows per `spark_partition_id()` of `sql`'s column `p`.
async fn partition_sizes(s: &JobSession, sql: &str) -> BTreeMap<i32, i64> {
    let got = timed(sql, run_sql(s, sql)).await.unwrap();
    column::<Int32Type>(&got, "p", &DataType::Int32)
        .into_iter()
        .zip(column::<Int64Type>(&got, "c", &DataType::Int64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_execution_rebalances_rebalance_and_keeps_a_given_count() {
    let cluster = cluster(2).await;
    let oracle = session_context(&Default::default()).unwrap();
    // Adaptive execution on; 8 shuffle partitions over 4 slots.
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "8"),
            ("minispark.adaptive.enabled", "true"),
        ],
    );
    // REPARTITION(8, k): the user's 8 partitions stay (Spark's
    // REPARTITION_BY_NUM is never coalesced); REPARTITION(k) and
    // DISTRIBUTE BY k are coalesced toward the 4 slots.
    let count = |inner: &str| {
        format!(
            "SELECT p, count(*) AS c FROM (SELECT spark_partition_id() AS p FROM ({inner}) x) y GROUP BY p"
        )
    };
    let fixed = partition_sizes(
        &s,
        &count("SELECT /*+ REPARTITION(8, o_custkey) */ o_custkey FROM tpch.sf0_01.orders"),
    )
    .await;
    assert_eq!(fixed.len(), 8, "REPARTITION(8, k) coalesced: {fixed:?}");
    for inner in [
        "SELECT /*+ REPARTITION(o_custkey) */ o_custkey FROM tpch.sf0_01.orders",
        "SELECT o_custkey FROM tpch.sf0_01.orders DISTRIBUTE BY o_custkey",
    ] {
        let sizes = partition_sizes(&s, &count(inner)).await;
        assert!(sizes.len() < 8, "{inner}: not coalesced: {sizes:?}");
        assert_eq!(sizes.values().sum::<i64>(), 15_000, "{inner}");
    }

    // REBALANCE(k) of a skewed key (90% of the rows one value): the big
    // partition is split toward the advisory size, so no task holds most
    // of the rows, as DISTRIBUTE BY k's does; every row kept.
    let skewed = "SELECT CASE WHEN o_orderkey % 10 < 9 THEN 42 ELSE o_custkey END AS k, o_orderkey \
                  FROM tpch.sf0_01.orders";
    let s = session(
        &cluster,
        &[
            ("minispark.shuffle.partitions", "8"),
            ("minispark.adaptive.enabled", "true"),
            ("minispark.adaptive.advisoryPartitionSizeInBytes", "16384"),
        ],
    );
    let hashed = partition_sizes(
        &s,
        &count(&format!("SELECT k FROM ({skewed}) t DISTRIBUTE BY k")),
    )
    .await;
    let biggest = |sizes: &BTreeMap<i32, i64>| *sizes.values().max().unwrap();
    assert!(biggest(&hashed) > 13_000, "{hashed:?}");
    let rebalanced = partition_sizes(
        &s,
        &count(&format!("SELECT /*+ REBALANCE(k) */ k FROM ({skewed}) t")),
    )
    .await;
    assert!(
        rebalanced.len() > hashed.len() && biggest(&rebalanced) < 10_000,
        "REBALANCE did not split the skewed partition: {rebalanced:?} (DISTRIBUTE BY: {hashed:?})"
    );
    assert_eq!(rebalanced.values().sum::<i64>(), 15_000);
    let sql = format!("SELECT /*+ REBALANCE(k) */ k, o_orderkey FROM ({skewed}) t");
    let got = timed("REBALANCE rows", run_sql(&s, &sql)).await.unwrap();
    let expected = oracle_sql(&oracle, &format!("SELECT k, o_orderkey FROM ({skewed}) t")).await;
    assert_result(&got, &expected, "REBALANCE(k) of a skewed key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribute_by_and_sort_by_columns_the_select_drops() {
    let cluster = cluster(2).await;
    let s = session(&cluster, &settings());
    let oracle = session_context(&Default::default()).unwrap();
    let int32 = DataType::Int32;
    // DISTRIBUTE BY o_custkey, which the SELECT drops: the rows still land
    // in pmod(hash(o_custkey), N), checked through the order key.
    let got = timed(
        "DISTRIBUTE BY a dropped column",
        run_sql(
            &s,
            "SELECT o_orderkey, spark_partition_id() AS p FROM \
               (SELECT o_orderkey FROM tpch.sf0_01.orders DISTRIBUTE BY o_custkey) x",
        ),
    )
    .await
    .unwrap();
    assert_eq!(got[0].num_columns(), 2);
    let expected = oracle_sql(
        &oracle,
        &format!(
            "SELECT o_orderkey, CAST(pmod(hash(o_custkey), {N}) AS INT) AS p FROM tpch.sf0_01.orders"
        ),
    )
    .await;
    assert_result(&got, &expected, "DISTRIBUTE BY a dropped column");

    // ... and SORT BY another dropped column: sorted inside each partition.
    let got = timed(
        "DISTRIBUTE BY .. SORT BY dropped columns",
        run_sql(
            &s,
            "SELECT o_orderkey, spark_partition_id() AS p FROM \
               (SELECT o_orderkey FROM tpch.sf0_01.orders DISTRIBUTE BY o_custkey SORT BY o_totalprice) x",
        ),
    )
    .await
    .unwrap();
    assert_eq!(got[0].num_columns(), 2);
    assert_result(&got, &expected, "DISTRIBUTE BY .. SORT BY dropped columns");
    let p = column::<Int32Type>(&got, "p", &int32);
    let keys = column::<Int64Type>(&got, "o_orderkey", &DataType::Int64);
    // The order key's price, from the oracle, must rise inside each partition.
    let batches = oracle
        .sql("SELECT o_orderkey, o_totalprice FROM tpch.sf0_01.orders")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let price_of: std::collections::HashMap<i64, f64> =
        column::<Int64Type>(&batches, "o_orderkey", &DataType::Int64)
            .into_iter()
            .zip(column::<Float64Type>(
                &batches,
                "o_totalprice",
                &DataType::Float64,
            ))
            .collect();
    let v: Vec<f64> = keys.iter().map(|k| price_of[k]).collect();
    assert_sorted_within_partitions(&p, &v, false, "SORT BY a dropped column");
}
