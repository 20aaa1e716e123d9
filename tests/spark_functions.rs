//! Spark SQL functions from `datafusion-spark` on a real cluster: `pmod`,
//! `date_add`, `last_day` and `soundex` travel to executors inside serialized
//! plans, run there on the map side of a shuffle, and give what single-node
//! DataFusion with the same registration gives, and the values worked out by
//! hand from Spark's definitions.

use arrow::datatypes::{DataType, Int64Type};
use minispark_planner::session::session_context;

use crate::common::{
    assert_result, cluster, column, column_strings, oracle_sql, run_sql, session, timed,
};

/// Per nation, evaluated where the scan runs (in the executors).
const PER_ROW: &str = "SELECT n_nationkey AS k,
       pmod(n_nationkey - 12, 5) AS pm,
       last_day(date_add(DATE '2024-01-31', CAST(n_nationkey AS INT))) AS ld,
       soundex(n_name) AS sx
FROM tpch.sf0_01.nation
ORDER BY k";

/// The same functions on the map side of a shuffle, grouped on the reduce side.
const GROUPED: &str = "SELECT pmod(n_regionkey * 7 - 20, 3) AS p, count(*) AS c,
       min(soundex(n_name)) AS first_sx,
       max(last_day(date_add(DATE '2023-12-31', CAST(n_nationkey AS INT)))) AS ld
FROM tpch.sf0_01.nation
GROUP BY 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_functions_on_a_cluster() {
    let cluster = cluster(2).await;
    let session = session(&cluster, &[("minispark.shuffle.partitions", "3")]);
    let oracle = session_context(&Default::default()).unwrap();

    let got = timed("per-row query", run_sql(&session, PER_ROW))
        .await
        .unwrap();
    assert_result(&got, &oracle_sql(&oracle, PER_ROW).await, PER_ROW);
    // By Spark's definitions, for every nation key 0..24.
    let k = column::<Int64Type>(&got, "k", &DataType::Int64);
    assert_eq!(k, (0..25).collect::<Vec<_>>());
    // pmod is never negative: pmod(-12, 5) = 3 where Java's -12 % 5 = -2.
    let pm = column::<Int64Type>(&got, "pm", &DataType::Int64);
    assert_eq!(pm[..3], [3, 4, 0]);
    for (k, pm) in k.iter().zip(&pm) {
        assert_eq!(*pm, (k - 12).rem_euclid(5), "nation {k}");
    }
    // 2024-01-31 plus 0 days is in January, plus 1 or 2 days in the February
    // of a leap year.
    assert_eq!(
        column_strings(&got, "ld")[..3],
        ["2024-01-31", "2024-02-29", "2024-02-29"]
    );
    // ALGERIA: A, L=4, G=2, R=6; ARGENTINA: A, R=6, G=2, N=5; BRAZIL: B, R=6, Z=2, L=4.
    assert_eq!(column_strings(&got, "sx")[..3], ["A426", "A625", "B624"]);

    let got = timed("grouped query", run_sql(&session, GROUPED))
        .await
        .unwrap();
    assert_result(&got, &oracle_sql(&oracle, GROUPED).await, GROUPED);
    assert_eq!(
        column::<Int64Type>(&got, "c", &DataType::Int64)
            .iter()
            .sum::<i64>(),
        25
    );
}
