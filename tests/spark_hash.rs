//! `hash(...)` on a real cluster gives Apache Spark's values: an explicit
//! `BIGINT` cast hashes as Spark's `hashLong`, an integer literal that fits
//! as `hashInt`, also inside multi-argument `hash` evaluated by executors;
//! and `pmod(hash(x), n)` is the partition the shuffle sends `x` to, as in
//! Spark, for `INT`, `BIGINT` and `STRING` keys.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use minispark_functions::hash::spark_murmur3::{
    SPARK_HASH_SEED, hash_bytes, hash_int, hash_long, partition_ids,
};

use crate::common::{cluster, column, column_strings, run_sql, session, timed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_of_a_bigint_cast_matches_spark_on_a_cluster() {
    let cluster = cluster(1).await;
    let session = session(&cluster, &[]);
    // Spark 3.5: SELECT hash(42L) = 1316951768; hash(CAST(-7 AS BIGINT)) is
    // hashLong(-7); hash(42) is hashInt(42).
    let batches = timed(
        "constant hashes",
        run_sql(
            &session,
            "SELECT hash(CAST(42 AS BIGINT)) AS h42l, hash(CAST(-7 AS BIGINT)) AS hm7l, \
                    hash(42) AS h42, hash(1, CAST(2 AS BIGINT)) AS h12l",
        ),
    )
    .await
    .unwrap();
    let int32 = DataType::Int32;
    assert_eq!(column::<Int32Type>(&batches, "h42l", &int32), [1316951768]);
    assert_eq!(
        column::<Int32Type>(&batches, "hm7l", &int32),
        [hash_long(-7, SPARK_HASH_SEED) as i32]
    );
    assert_eq!(
        column::<Int32Type>(&batches, "h42", &int32),
        [hash_int(42, SPARK_HASH_SEED) as i32]
    );
    assert_eq!(
        column::<Int32Type>(&batches, "h12l", &int32),
        [hash_long(2, hash_int(1, SPARK_HASH_SEED)) as i32]
    );
    // Over columns, in the executors' tasks: an INT and a BIGINT cast.
    let batches = timed(
        "column hashes",
        run_sql(
            &session,
            "SELECT n_nationkey AS k, n_regionkey AS r, \
                    hash(CAST(n_nationkey AS INT), CAST(CAST(n_regionkey AS INT) AS BIGINT)) AS h \
             FROM tpch.sf0_01.nation",
        ),
    )
    .await
    .unwrap();
    let int64 = DataType::Int64;
    let k = column::<Int64Type>(&batches, "k", &int64);
    let r = column::<Int64Type>(&batches, "r", &int64);
    let h = column::<Int32Type>(&batches, "h", &int32);
    assert_eq!(k.len(), 25);
    for i in 0..25 {
        let expected = hash_long(r[i], hash_int(k[i] as i32, SPARK_HASH_SEED)) as i32;
        assert_eq!(h[i], expected, "nation {}", k[i]);
    }
}

/// The partition the shuffle's writer sends each row of `column` to among `n`.
fn shuffle_partitions(batches: &[RecordBatch], column: &str, n: usize) -> Vec<i32> {
    let arrays: Vec<ArrayRef> = batches
        .iter()
        .map(|b| b.column_by_name(column).unwrap().clone())
        .collect();
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    let keys = arrow::compute::concat(&refs).unwrap();
    let (mut hashes, mut ids) = (vec![], vec![]);
    partition_ids(&[Arc::clone(&keys)], keys.len(), n, &mut hashes, &mut ids).unwrap();
    ids.into_iter().map(|i| i as i32).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmod_of_hash_is_the_shuffle_partition_on_a_cluster() {
    let cluster = cluster(2).await;
    let session = session(&cluster, &[]);
    // 15,000 orders: an INT key, a BIGINT key and a STRING key, hashed in
    // the executors' tasks. 200 is Spark's default number of shuffle
    // partitions, 8 a power of two (the writer takes a mask there).
    let sql = "SELECT CAST(o_custkey AS INT) AS i, o_orderkey AS l, o_orderpriority AS s, \
                      pmod(hash(CAST(o_custkey AS INT)), 200) AS pi, \
                      pmod(hash(o_orderkey), 200) AS pl, \
                      pmod(hash(o_orderpriority), 200) AS ps, \
                      pmod(hash(o_orderkey), 8) AS pl8 \
               FROM tpch.sf0_01.orders";
    let batches = timed("pmod(hash(..)) of three key types", run_sql(&session, sql))
        .await
        .unwrap();
    let int32 = DataType::Int32;
    assert_eq!(column::<Int32Type>(&batches, "pi", &int32).len(), 15_000);
    for (key, part, n) in [
        ("i", "pi", 200),
        ("l", "pl", 200),
        ("s", "ps", 200),
        ("l", "pl8", 8),
    ] {
        let got = column::<Int32Type>(&batches, part, &int32);
        assert_eq!(got, shuffle_partitions(&batches, key, n), "{part}");
        assert!(got.iter().all(|&p| (0..n as i32).contains(&p)), "{part}");
    }
    // And by Spark's formula, from the hash alone: pmod(h, n) = ((h % n) + n) % n.
    let s = column_strings(&batches, "s");
    let ps = column::<Int32Type>(&batches, "ps", &int32);
    for (s, ps) in s.iter().zip(&ps).take(50) {
        let h = hash_bytes(s.as_bytes(), SPARK_HASH_SEED) as i32;
        assert_eq!(*ps, ((h % 200) + 200) % 200, "{s}");
    }
}
