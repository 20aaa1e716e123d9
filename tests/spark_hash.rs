//! `hash(...)` on a real cluster gives Apache Spark's values: an explicit
//! `BIGINT` cast hashes as Spark's `hashLong`, an integer literal that fits
//! as `hashInt`, also inside multi-argument `hash` evaluated by executors.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use minispark_functions::hash::spark_murmur3::{SPARK_HASH_SEED, hash_int, hash_long};

use crate::common::{cluster, run_sql, session, timed};

fn column<T: arrow::datatypes::ArrowPrimitiveType>(
    batches: &[RecordBatch],
    name: &str,
    as_type: &DataType,
) -> Vec<T::Native> {
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column_by_name(name).unwrap(), as_type).unwrap();
            c.as_primitive::<T>().values().to_vec()
        })
        .collect()
}

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
