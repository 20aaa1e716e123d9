//! The DataFrame API on real clusters: the same operations built with
//! minispark and with single-node DataFusion give the same rows, through an
//! embedded cluster and through a remote driver.

use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use minispark::prelude::*;
use minispark_planner::session::session_context;

use crate::common::{Expected, assert_result, cluster, remote_session, row_count, timed};
use crate::compare::Order;

/// Revenue per nation for one region: scans, two joins, a filter, an
/// aggregate and a sort: shuffles, a broadcast and a merge.
fn revenue_query<F, D>(table: F) -> Result<D>
where
    F: Fn(&str) -> Result<D>,
    D: Frame,
{
    let lineitem = table("lineitem")?;
    let orders = table("orders")?;
    let customer = table("customer")?;
    let nation = table("nation")?;
    lineitem
        .join(
            orders,
            JoinType::Inner,
            &["l_orderkey"],
            &["o_orderkey"],
            None,
        )?
        .join(
            customer,
            JoinType::Inner,
            &["o_custkey"],
            &["c_custkey"],
            None,
        )?
        .join(
            nation,
            JoinType::Inner,
            &["c_nationkey"],
            &["n_nationkey"],
            None,
        )?
        .filter(col("l_shipdate").gt_eq(cast(lit("1995-01-01"), DataType::Date32)))?
        .aggregate(
            vec![col("n_name")],
            vec![
                sum(col("l_extendedprice") * (lit(1) - col("l_discount"))).alias("revenue"),
                count(lit(1)).alias("lines"),
            ],
        )?
        .sort(vec![col("revenue").sort(false, true)])
}

/// What both DataFrame types offer, so one query function builds both.
trait Frame: Sized {
    fn join(self, r: Self, t: JoinType, l: &[&str], rc: &[&str], f: Option<Expr>) -> Result<Self>;
    fn filter(self, e: Expr) -> Result<Self>;
    fn aggregate(self, g: Vec<Expr>, a: Vec<Expr>) -> Result<Self>;
    fn sort(self, s: Vec<SortExpr>) -> Result<Self>;
}

macro_rules! frame {
    ($t:ty) => {
        impl Frame for $t {
            fn join(
                self,
                r: Self,
                t: JoinType,
                l: &[&str],
                rc: &[&str],
                f: Option<Expr>,
            ) -> Result<Self> {
                <$t>::join(self, r, t, l, rc, f)
            }
            fn filter(self, e: Expr) -> Result<Self> {
                <$t>::filter(self, e)
            }
            fn aggregate(self, g: Vec<Expr>, a: Vec<Expr>) -> Result<Self> {
                <$t>::aggregate(self, g, a)
            }
            fn sort(self, s: Vec<SortExpr>) -> Result<Self> {
                <$t>::sort(self, s)
            }
        }
    };
}
frame!(minispark::DataFrame);
frame!(datafusion::dataframe::DataFrame);

async fn tables(session: &Session) -> std::collections::HashMap<String, minispark::DataFrame> {
    let mut out = std::collections::HashMap::new();
    for t in ["lineitem", "orders", "customer", "nation"] {
        let df = session.table(format!("tpch.sf0_01.{t}")).await.unwrap();
        out.insert(t.to_string(), df);
    }
    out
}

async fn oracle_tables(
    ctx: &SessionContext,
) -> std::collections::HashMap<String, datafusion::dataframe::DataFrame> {
    let mut out = std::collections::HashMap::new();
    for t in ["lineitem", "orders", "customer", "nation"] {
        let df = ctx.table(format!("tpch.sf0_01.{t}")).await.unwrap();
        out.insert(t.to_string(), df);
    }
    out
}

async fn expected_revenue() -> Expected {
    let ctx = session_context(&Default::default()).unwrap();
    let t = oracle_tables(&ctx).await;
    let df = revenue_query(|name| Ok(t[name].clone())).unwrap();
    Expected::from_dataframe(df).await.unwrap()
}

async fn check_session(session: &Session) {
    let t = tables(session).await;
    let df = revenue_query(|name| Ok(t[name].clone())).unwrap();
    let plan = timed("explain", df.explain()).await.unwrap();
    assert!(plan.contains("Stage"), "{plan}");
    assert!(plan.contains("Hash(["), "a shuffle by key is shown: {plan}");
    let got = timed("collect", df.clone().collect()).await.unwrap();
    let expected = expected_revenue().await;
    // Sorted by revenue: compared in order.
    assert!(
        matches!(&expected.order, Order::Sorted { keys, .. } if keys == &[1]),
        "{:?}",
        expected.order
    );
    assert_result(&got, &expected, "revenue per nation");
    assert_eq!(
        timed("count", df.count()).await.unwrap(),
        expected.num_rows()
    );
}

/// Through a remote driver: the plan travels as datafusion-proto bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_on_a_remote_driver() {
    let cluster = cluster(2).await;
    let session = remote_session(&cluster, &[("minispark.shuffle.partitions", "3")]).await;
    check_session(&session).await;

    // Files registered on the client travel as file scans; COPY runs on
    // the executors.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by_flag");
    let lineitem = session.table("tpch.sf0_01.lineitem").await.unwrap();
    let written = lineitem
        .select(vec![col("l_returnflag"), col("l_quantity")])
        .unwrap()
        .write_parquet(out.to_str().unwrap(), &["l_returnflag"])
        .await
        .unwrap();
    assert_eq!(written, 60175);
    let flags: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(flags.len(), 3, "{flags:?}");
    let back = session.read_parquet(out.to_str().unwrap()).await.unwrap();
    let per_flag = back
        .aggregate(vec![col("l_returnflag")], vec![count(lit(1))])
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(row_count(&per_flag), 3, "{per_flag:?}");

    // Correlated subqueries (EXISTS, IN, scalar): their outer references
    // cannot travel as datafusion-proto, so such plans travel decorrelated.
    let oracle = minispark_planner::session::session_context(&Default::default()).unwrap();
    for sql in [
        "SELECT o_orderpriority, count(*) AS n FROM tpch.sf0_01.orders WHERE EXISTS \
         (SELECT 1 FROM tpch.sf0_01.lineitem WHERE l_orderkey = o_orderkey \
         AND l_commitdate < l_receiptdate) GROUP BY 1 ORDER BY 1",
        "SELECT p_brand, sum(l_extendedprice) AS total FROM tpch.sf0_01.lineitem \
         JOIN tpch.sf0_01.part ON p_partkey = l_partkey WHERE l_quantity < \
         (SELECT 0.5 * avg(l2.l_quantity) FROM tpch.sf0_01.lineitem l2 \
         WHERE l2.l_partkey = p_partkey) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        "SELECT count(*) AS n FROM tpch.sf0_01.customer WHERE c_custkey NOT IN \
         (SELECT o_custkey FROM tpch.sf0_01.orders WHERE o_totalprice > 300000)",
    ] {
        let df = session.sql(sql).await.unwrap();
        let got = timed("a correlated subquery", df.collect())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_result(
            &got,
            &crate::common::oracle_sql(&oracle, sql).await,
            format!("remote DataFrame: {sql}"),
        );
    }

    // Bad input fails where it is written, with a clear message, and the
    // session keeps working.
    let err = session
        .table("tpch.sf0_01.lineitem")
        .await
        .unwrap()
        .select(vec![col("no_such_column")])
        .unwrap_err();
    assert!(err.to_string().contains("no_such_column"), "{err}");
    let err = session.table("no_such_table").await.unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");
    let err = session
        .sql("CREATE TABLE n AS SELECT * FROM tpch.sf0_01.nation")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
    let err = session.set("minispark.no_such_setting", "1").unwrap_err();
    assert!(err.to_string().contains("no_such_setting"), "{err}");
    let failing = session
        .sql("SELECT CAST('x' || CAST(l_orderkey AS VARCHAR) AS INT) FROM tpch.sf0_01.lineitem")
        .await
        .unwrap();
    let err = timed("failing job", failing.collect()).await.unwrap_err();
    assert!(err.to_string().contains("Cannot cast"), "{err}");
    let n = timed(
        "next job",
        session.table("tpch.sf0_01.nation").await.unwrap().count(),
    )
    .await
    .unwrap();
    assert_eq!(n, 25);
}

/// `local[N]` with executor processes of the minispark binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_on_an_embedded_cluster() {
    let session = timed(
        "starting a session",
        Session::builder()
            .master("local[2]")
            .executor_binary(env!("CARGO_BIN_EXE_minispark"))
            .build(),
    )
    .await
    .unwrap();
    check_session(&session).await;
    let err = Session::builder()
        .master("http://127.0.0.1:1")
        .build()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reach the driver at http://127.0.0.1:1"),
        "{err}"
    );
    let err = Session::builder().master("yarn").build().await.unwrap_err();
    assert!(err.to_string().contains("invalid master 'yarn'"), "{err}");
    let err = Session::builder()
        .master("local[1]")
        .config("minispark.shuffle.partitons", "2")
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shuffle.partitons"), "{err}");
}

/// `local[N]` from a program that is not the minispark binary (this test
/// binary): executors run inside the process, each its own gRPC server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_with_in_process_executors() {
    let session = timed(
        "starting a session",
        Session::builder().master("local[2]").build(),
    )
    .await
    .unwrap();
    check_session(&session).await;
}

/// Join strategies chosen in the DataFrame API: the plan changes as asked,
/// the answer does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_join_strategies() {
    let cluster = cluster(2).await;
    let session = remote_session(&cluster, &[("minispark.shuffle.partitions", "4")]).await;
    let events = || async {
        session
            .table("netflix.tiny.viewing_events")
            .await
            .unwrap()
            .select(vec![col("title_id").alias("id"), col("watched_minutes")])
            .unwrap()
    };
    let titles = || async {
        session
            .table("netflix.tiny.titles")
            .await
            .unwrap()
            .select(vec![col("title_id"), col("kind")])
            .unwrap()
    };
    let per_kind = |df: minispark::DataFrame| {
        df.aggregate(
            vec![col("kind")],
            vec![count(lit(1)), sum(col("watched_minutes"))],
        )
        .unwrap()
    };
    let ctx = session_context(&Default::default()).unwrap();
    // Column names differ from the DataFrame's (qualified in SQL).
    let expected = crate::common::oracle_sql(
        &ctx,
        "SELECT kind, count(*), sum(watched_minutes) FROM netflix.tiny.titles t
         JOIN netflix.tiny.viewing_events v ON t.title_id = v.title_id GROUP BY kind",
    )
    .await
    .ignoring_names();

    for (strategy, join_type) in [
        (JoinStrategy::Auto, JoinType::Inner),
        (JoinStrategy::Broadcast, JoinType::Inner),
        (JoinStrategy::Shuffle, JoinType::Inner),
        (JoinStrategy::Merge, JoinType::Inner),
        // The preserved side of a LEFT join cannot be broadcast: a
        // broadcast of the other side is fine.
        (JoinStrategy::Broadcast, JoinType::Left),
    ] {
        // Broadcast the big side (the events): only a hint makes that happen.
        let joined = titles()
            .await
            .join_with(
                events().await,
                join_type,
                &["title_id"],
                &["id"],
                None,
                strategy,
            )
            .unwrap();
        let df = per_kind(joined);
        let plan = timed("explain", df.explain()).await.unwrap();
        // A stage whose output is a broadcast and that scans the events.
        let events_broadcast = plan.split("Stage ").any(|stage| {
            stage
                .lines()
                .next()
                .unwrap_or("")
                .contains("output: broadcast")
                && stage.contains("table=viewing_events")
        });
        match strategy {
            JoinStrategy::Broadcast => assert!(events_broadcast, "{strategy:?}: {plan}"),
            JoinStrategy::Shuffle => {
                assert!(!plan.contains("broadcast"), "{strategy:?}: {plan}")
            }
            JoinStrategy::Auto => assert!(!events_broadcast, "{strategy:?}: {plan}"),
            JoinStrategy::Merge => {
                assert!(!plan.contains("broadcast"), "{strategy:?}: {plan}");
                assert!(plan.contains("SortMergeJoinExec"), "{strategy:?}: {plan}");
            }
        }
        let got = timed("join", df.collect()).await.unwrap();
        assert_result(&got, &expected, format!("{strategy:?} {join_type}"));
    }
}

/// union, distinct, with_column, window, limit and read_csv / read_json
/// through the cluster, against the same operations in DataFusion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframe_set_operations_and_files() {
    let cluster = cluster(2).await;
    let session = remote_session(&cluster, &[("minispark.shuffle.partitions", "3")]).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("devices.csv");
    std::fs::write(
        &csv,
        "device,kind\ntv,big\nmobile,small\nweb,big\ntablet,small\n",
    )
    .unwrap();
    let json = dir.path().join("extra.json");
    std::fs::write(
        &json,
        "{\"device\":\"tv\",\"kind\":\"big\"}\n{\"device\":\"car\",\"kind\":\"odd\"}\n",
    )
    .unwrap();
    let oracle = session_context(&Default::default()).unwrap();
    oracle
        .register_csv("devices", csv.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    oracle
        .register_json("extra", json.to_str().unwrap(), Default::default())
        .await
        .unwrap();

    // Distinct devices of the events, their view counts ranked, joined to
    // both files' rows (UNION removes the duplicate tv row).
    let build = |events: minispark::DataFrame,
                 devices: minispark::DataFrame,
                 extra: minispark::DataFrame| {
        let kinds = devices.union_distinct(extra)?;
        let views = events
            .aggregate(vec![col("device")], vec![count(lit(1)).alias("views")])?
            .window(vec![
                rank()
                    .order_by(vec![col("views").sort(false, true)])
                    .build()?
                    .alias("rank"),
            ])?
            .with_column("big_views", col("views") * lit(2))?;
        views
            .alias("v")?
            .join_on(
                kinds.alias("k")?,
                JoinType::Full,
                [col("v.device").eq(col("k.device"))],
            )?
            .select(vec![col("v.rank"), col("k.kind"), col("v.big_views")])?
            .distinct()?
            .sort(vec![
                col("kind").sort(true, true),
                col("rank").sort(true, true),
            ])?
            .limit(0, Some(10))
    };
    let got = build(
        session.table("netflix.tiny.viewing_events").await.unwrap(),
        session.read_csv(csv.to_str().unwrap()).await.unwrap(),
        session.read_json(json.to_str().unwrap()).await.unwrap(),
    )
    .unwrap();
    let got = timed("set operations", got.collect()).await.unwrap();
    let expected = crate::common::oracle_sql(
        &oracle,
        "SELECT DISTINCT rank, kind, big_views FROM (
               SELECT device, RANK() OVER (ORDER BY views DESC) AS rank, views * 2 AS big_views
               FROM (SELECT device, count(1) AS views FROM netflix.tiny.viewing_events GROUP BY device) v
             ) v FULL JOIN (SELECT * FROM devices UNION SELECT * FROM extra) k ON v.device = k.device
             ORDER BY kind NULLS FIRST, rank NULLS FIRST LIMIT 10",
    )
    .await;
    assert!(
        matches!(&expected.order, Order::Sorted { keys, .. } if keys == &[1, 0]),
        "{:?}",
        expected.order
    );
    assert_result(&got, &expected, "set operations");
    assert_eq!(row_count(&got), 5, "{got:?}");
}
