//! Object stores: TPC-H in a bucket of a real S3-compatible server (moto's
//! server mode, from PyPI, installed by `.ci/install-test-deps`), read and
//! written by a cluster of executor processes.
//!
//! The server requires signed requests with a key it generates at setup, and
//! the test passes that key only as session settings: the executors cannot
//! have read it from any environment. The TPC-H test runs its driver and
//! executors on hosts of their own (network namespaces) and the server on
//! this process's bridge address; the others use loopback, or
//! `MINISPARK_TEST_S3_HOST` when set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{SessionConfig, SessionContext};
use minispark::driver::job::JobSession;

use crate::common::{
    TPCH_TABLES, assert_result, cluster, oracle_sql, remote_session, row_count, run_sql, session,
    single_value, timed, tpch_dir, tpch_sf0_1_dir,
};
use crate::network_lab::Lab;
use crate::processes::output_bounded;

/// Creates a user with an access key allowed everything, a bucket, and
/// uploads a folder into it (boto3: a client independent of minispark's);
/// then turns authentication on. Prints the key as JSON.
const SETUP_SCRIPT: &str = r#"
import json, os, sys, urllib.request
import boto3
endpoint, bucket, src, prefix, auth = sys.argv[1:6]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="minispark")
iam.put_user_policy(UserName="minispark", PolicyName="everything", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="minispark")["AccessKey"]
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket=bucket)
for root, _, files in os.walk(src):
    for name in files:
        path = os.path.join(root, name)
        # Without authentication, objects are for anyone to read (a web server).
        extra = {} if auth == "auth" else {"ACL": "public-read"}
        s3.upload_file(path, bucket, prefix + os.path.relpath(path, src).replace(os.sep, "/"),
                       ExtraArgs=extra)
# From now on every request must be signed with a key the server knows.
if auth == "auth":
    urllib.request.urlopen(urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "text/plain"})).read()
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;

/// Bound on starting the server and on the setup script.
const SERVER_TIMEOUT: Duration = Duration::from_secs(120);

/// Where `.ci/install-test-deps` puts moto's virtualenv.
fn moto_venv() -> PathBuf {
    let deps = std::env::var_os("MINISPARK_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/minispark-test-deps")
        });
    deps.join("moto")
}

/// The address the server listens on and clients use.
pub(crate) fn server_host() -> String {
    std::env::var("MINISPARK_TEST_S3_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// An access key the server generated.
pub(crate) struct Credentials {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// moto's S3 server on a port the OS picked; killed when dropped.
pub(crate) struct MotoServer {
    child: Child,
    endpoint: String,
    /// Holds the server's log (read while it starts).
    _log_dir: tempfile::TempDir,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    pub(crate) fn start(host: &str) -> MotoServer {
        let venv = moto_venv();
        let binary = venv.join("bin/moto_server");
        assert!(
            binary.exists(),
            "moto's S3 server is not installed ({} is missing): run .ci/install-test-deps, \
             which installs moto[server] from PyPI into {}",
            binary.display(),
            venv.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(&binary)
            .args(["-H", host, "-p", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = MotoServer {
            child,
            endpoint: String::new(),
            _log_dir: dir,
        };
        // werkzeug prints " * Running on http://HOST:PORT" once it listens.
        let deadline = Instant::now() + SERVER_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let port = text
                .lines()
                .filter_map(|l| l.split("Running on http://").nth(1))
                .filter_map(|rest| rest.trim().rsplit(':').next()?.parse::<u16>().ok())
                .next();
            if let Some(port) = port {
                server.endpoint = format!("http://{host}:{port}");
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited ({status}) before listening:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within {SERVER_TIMEOUT:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes `bucket` with the files of `src` under `prefix`, and an access
    /// key; from then on the server refuses unsigned or badly signed
    /// requests, unless `auth` is false.
    pub(crate) fn setup(&self, bucket: &str, src: &Path, prefix: &str, auth: bool) -> Credentials {
        let python = moto_venv().join("bin/python");
        let output = output_bounded(
            Command::new(&python)
                .args(["-c", SETUP_SCRIPT, &self.endpoint, bucket])
                .arg(src)
                .arg(prefix)
                .arg(if auth { "auth" } else { "open" })
                .stdin(Stdio::null()),
            SERVER_TIMEOUT,
            "the bucket setup",
        );
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the bucket setup failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |name: &str| {
            let start = out
                .find(&format!("\"{name}\": \""))
                .unwrap_or_else(|| panic!("no {name} in the setup's output: {out}"))
                + name.len()
                + 5;
            out[start..start + out[start..].find('"').unwrap()].to_string()
        };
        Credentials {
            id: field("id"),
            secret: field("secret"),
        }
    }

    /// The settings that reach this server with `secret`.
    pub(crate) fn settings(&self, id: &str, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("minispark.s3.endpoint", self.endpoint.clone()),
            ("minispark.s3.allowHttp", "true".into()),
            ("minispark.s3.region", "us-east-1".into()),
            ("minispark.s3.accessKeyId", id.into()),
            ("minispark.s3.secretAccessKey", secret.into()),
        ]
    }
}

fn as_pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn tpch_query(n: usize) -> String {
    let path = format!("{}/tests/tpch/queries/q{n}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// DDL registering the TPC-H tables of `prefix` (`s3://bucket/dir`).
fn s3_ddl(prefix: &str) -> String {
    TPCH_TABLES
        .iter()
        .map(|t| format!("CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{prefix}/{t}/';\n"))
        .collect()
}

/// Single-node DataFusion over the local files.
async fn oracle_context(dir: &Path, partitions: usize) -> SessionContext {
    let ctx =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    for t in TPCH_TABLES {
        ctx.register_parquet(t, dir.join(t).to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    ctx
}

/// The 22 TPC-H queries over s3:// on two executor processes on two other
/// hosts (network namespaces, see `network_lab.rs`; the driver on a third)
/// equal single-node DataFusion over the local files. The bucket's server
/// runs in this process's namespace, on its bridge address, and the store's
/// endpoint and key reach the driver and the executors only as session
/// settings. COPY, submitted from a host with `minispark submit`, writes
/// partitioned Parquet back to the bucket; the DataFrame API reads it
/// again, as does `write_parquet`'s output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_in_an_s3_bucket_read_by_executors_on_other_hosts() {
    let local = tpch_sf0_1_dir();
    let mut lab = Lab::new(&["driver-host", "host-a", "host-b"]);
    let server = MotoServer::start(&lab.root_address().to_string());
    let key = server.setup("warehouse", local, "tpch/sf0_1/", true);
    let settings = server.settings(&key.id, &key.secret);
    let (driver, url) = lab.start_driver("driver-host", &[]).await;
    for host in ["host-a", "host-b"] {
        let address = format!("{}:", lab.host(host).address);
        lab.start_executor(driver, host, &url, &[], &[], &address)
            .await;
    }
    let mut pairs = as_pairs(&settings);
    pairs.push(("minispark.shuffle.partitions", "4"));
    let session = lab.session(&url, &pairs).await;
    for t in TPCH_TABLES {
        timed(
            &format!("registering {t}"),
            session.register_parquet(t, &format!("s3://warehouse/tpch/sf0_1/{t}/")),
        )
        .await
        .unwrap_or_else(|e| panic!("registering s3://warehouse/tpch/sf0_1/{t}/: {e}"));
    }
    let oracle = oracle_context(local, 4).await;
    let mut attempts = 0;
    for q in 1..=22 {
        let sql = tpch_query(q);
        let df = session.sql(&sql).await.unwrap();
        let (got, counters) = timed(&format!("q{q}"), df.collect_with_counters())
            .await
            .unwrap_or_else(|e| panic!("q{q} over s3:// across hosts: {e}"));
        let expected = oracle_sql(&oracle, &sql).await;
        assert_result(
            &got,
            &expected,
            format!("q{q} over s3:// across hosts differs from DataFusion"),
        );
        assert!(!counters.had_failures(), "q{q}: {counters}");
        attempts += counters.task_attempts;
    }
    assert!(attempts > 22, "the queries ran as tasks: {attempts}");

    // COPY, partitioned, back into the bucket, by a job script submitted on
    // host-a: the driver (on its host) plans it and the executors write.
    let copy = "COPY (SELECT l_orderkey, l_linenumber, l_quantity, l_extendedprice, \
                l_returnflag, l_linestatus FROM lineitem WHERE l_orderkey < 100000) \
                TO 's3://warehouse/out/lineitem/' STORED AS PARQUET \
                PARTITIONED BY (l_returnflag, l_linestatus)";
    let script: String = settings
        .iter()
        .map(|(k, v)| format!("SET {k} = '{v}';\n"))
        .chain(std::iter::once(
            "CREATE EXTERNAL TABLE lineitem STORED AS PARQUET \
             LOCATION 's3://warehouse/tpch/sf0_1/lineitem/';\n"
                .to_string(),
        ))
        .chain(std::iter::once(format!("{copy};\n")))
        .collect();
    let script_path = lab.work.path().join("copy.sql");
    std::fs::write(&script_path, script).unwrap();
    let out = lab.run(
        "host-a",
        &[
            "submit",
            script_path.to_str().unwrap(),
            "--master",
            "http://driver-host:7077",
            "--format",
            "csv",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "COPY submitted on host-a: {stderr}");
    assert!(
        !stderr.contains(&key.secret),
        "submit logs the secret: {stderr}"
    );
    let expected_rows = oracle
        .sql("SELECT count(*) FROM lineitem WHERE l_orderkey < 100000")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        stdout.lines().last().unwrap_or_default().trim(),
        single_value(&expected_rows).to_string(),
        "rows COPY wrote: {stdout}"
    );

    // The DataFrame API reads the partitioned folders again.
    let copied = timed(
        "read_parquet",
        session.read_parquet("s3://warehouse/out/lineitem/"),
    )
    .await
    .unwrap();
    session.register_view("copied", &copied).unwrap();
    let summary = "SELECT CAST(l_returnflag AS VARCHAR) AS f, CAST(l_linestatus AS VARCHAR) AS s, \
                   count(*) AS n, sum(l_quantity) AS q, sum(l_extendedprice) AS p, \
                   sum(l_orderkey * 10 + l_linenumber) AS k FROM {t} {where} GROUP BY 1, 2 ORDER BY 1, 2";
    let got = timed("reading the copy", async {
        session
            .sql(&summary.replace("{t}", "copied").replace("{where}", ""))
            .await?
            .collect()
            .await
    })
    .await
    .unwrap();
    let expected = oracle_sql(
        &oracle,
        &summary
            .replace("{t}", "lineitem")
            .replace("{where}", "WHERE l_orderkey < 100000"),
    )
    .await;
    assert_result(&got, &expected, "the partitioned copy read back from s3://");
    assert_eq!(row_count(&got), 4, "four (returnflag, linestatus) folders");

    // write_parquet to the bucket, and back.
    let orders = session.table("orders").await.unwrap();
    let rows = timed(
        "write_parquet",
        orders.write_parquet("s3://warehouse/out/orders/", &[]),
    )
    .await
    .unwrap();
    assert_eq!(rows, 150_000);
    let again = session
        .read_parquet("s3://warehouse/out/orders/")
        .await
        .unwrap();
    assert_eq!(timed("count", again.count()).await.unwrap(), 150_000);
    for i in 0..3 {
        assert!(
            lab.log(i).iter().all(|l| !l.contains(&key.secret)),
            "a process of the cluster logged the secret"
        );
    }
}

/// Runs `sql` in `job` and returns its error, which must name `location`
/// and hold none of `secrets`; then the cluster runs a job from the bucket.
async fn assert_fails_naming(
    job: &JobSession,
    healthy: &JobSession,
    sql: &str,
    location: &str,
    secrets: &[&str],
) -> String {
    let err = match timed(sql, run_sql(job, sql)).await {
        Ok(batches) => panic!("{sql} succeeded: {batches:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(location),
        "the error of {sql} does not name {location}: {err}"
    );
    for secret in secrets {
        assert!(
            !err.contains(secret),
            "the error of {sql} shows a secret: {err}"
        );
    }
    let n = timed(
        "the next job",
        run_sql(healthy, "SELECT sum(n_nationkey) FROM nation"),
    )
    .await
    .unwrap_or_else(|e| panic!("the cluster failed the next job after {sql}: {e}"));
    assert_eq!(single_value(&n), 300i64.into(), "after {sql}");
    err
}

/// A wrong key, a missing bucket and a missing object fail with errors that
/// name the location and hide the secret, on the driver (listing) and on
/// executors (writing); the cluster serves the next job each time. `SHOW`,
/// `information_schema` and EXPLAIN show the secret as `********`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_errors_name_the_location_and_hide_the_secret() {
    let server = MotoServer::start(&server_host());
    let key = server.setup("warehouse", tpch_dir(), "tpch/", true);
    let settings = server.settings(&key.id, &key.secret);
    let cluster = cluster(2).await;
    let healthy = session(&cluster, &as_pairs(&settings));
    timed(
        "registering the tables",
        run_sql(&healthy, &s3_ddl("s3://warehouse/tpch")),
    )
    .await
    .unwrap();

    // The secret never shows: not in the driver session's settings (which
    // SHOW and information_schema read there), nor in EXPLAIN.
    for sql in [
        "SHOW ALL",
        "SELECT name, value FROM information_schema.df_settings WHERE name LIKE 'minispark.s3.%'",
    ] {
        let batches = healthy
            .context()
            .sql(sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        assert!(
            !text.contains(&key.secret),
            "{sql} shows the secret:\n{text}"
        );
        assert!(text.contains("********"), "{sql}:\n{text}");
    }
    for sql in [
        "EXPLAIN SELECT sum(n_nationkey) FROM nation",
        "EXPLAIN ANALYZE SELECT sum(n_nationkey) FROM nation",
    ] {
        let batches = timed(sql, run_sql(&healthy, sql)).await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("nation"), "{sql}:\n{text}");
        assert!(
            !text.contains(&key.secret),
            "{sql} shows the secret:\n{text}"
        );
    }

    let wrong_secret = format!("wrong-{}", &key.secret[..8]);
    let wrong = session(
        &cluster,
        &as_pairs(&server.settings(&key.id, &wrong_secret)),
    );
    let secrets = [key.secret.as_str(), wrong_secret.as_str()];

    // A wrong key: the driver lists the folder.
    let err = assert_fails_naming(
        &wrong,
        &healthy,
        "CREATE EXTERNAL TABLE n STORED AS PARQUET LOCATION 's3://warehouse/tpch/nation/'",
        "s3://warehouse/tpch/nation/",
        &secrets,
    )
    .await;
    assert!(err.contains("403") || err.contains("Signature"), "{err}");

    // A wrong key on the executors: the driver plans nothing from the
    // bucket, the tasks write to it.
    assert_fails_naming(
        &wrong,
        &healthy,
        "COPY (SELECT 1 AS x) TO 's3://warehouse/out/one.parquet' STORED AS PARQUET",
        "warehouse/out/one.parquet",
        &secrets,
    )
    .await;

    // A missing bucket, read on the driver and written by executors.
    assert_fails_naming(
        &healthy,
        &healthy,
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://no-such-bucket/t/'",
        "s3://no-such-bucket/t/",
        &secrets,
    )
    .await;
    assert_fails_naming(
        &healthy,
        &healthy,
        "COPY (SELECT 1 AS x) TO 's3://no-such-bucket/out/one.parquet' STORED AS PARQUET",
        "no-such-bucket/out/one.parquet",
        &secrets,
    )
    .await;

    // A missing object.
    assert_fails_naming(
        &healthy,
        &healthy,
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://warehouse/tpch/no-such-file.parquet'",
        "s3://warehouse/tpch/no-such-file.parquet",
        &secrets,
    )
    .await;
    let df_session = remote_session(&cluster, &as_pairs(&settings)).await;
    let err = df_session
        .read_parquet("s3://warehouse/tpch/no-such-file.parquet")
        .await
        .map(|_| ())
        .expect_err("reading a missing object fails")
        .to_string();
    assert!(
        err.contains("s3://warehouse/tpch/no-such-file.parquet") && !err.contains(&key.secret),
        "{err}"
    );

    // Changing the key with SET reaches the stores: the healthy session
    // breaks, and heals.
    run_sql(
        &healthy,
        &format!("SET minispark.s3.secretAccessKey = '{wrong_secret}'"),
    )
    .await
    .unwrap();
    let err = timed(
        "a query with a wrong key",
        run_sql(&healthy, "SELECT sum(r_regionkey) FROM region"),
    )
    .await
    .expect_err("a wrong key fails")
    .to_string();
    assert!(
        err.contains("warehouse") && !err.contains(&wrong_secret),
        "{err}"
    );
    run_sql(
        &healthy,
        &format!("SET minispark.s3.secretAccessKey = '{}'", key.secret),
    )
    .await
    .unwrap();
    let n = run_sql(&healthy, "SELECT sum(r_regionkey) FROM region")
        .await
        .unwrap();
    assert_eq!(single_value(&n), 10i64.into());
}

/// An http:// location: one Parquet file a web server serves (here the
/// same server without authentication, whose GETs honour ranges), read
/// by the executors and by a DataFrame session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_over_http() {
    let server = MotoServer::start(&server_host());
    server.setup("public", &tpch_dir().join("nation"), "nation/", false);
    let files: Vec<String> = std::fs::read_dir(tpch_dir().join("nation"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let url = format!("{}/public/nation/{}", server.endpoint, files[0]);
    let cluster = cluster(2).await;
    let job = session(&cluster, &[]);
    let got = timed(
        "reading over http://",
        run_sql(
            &job,
            &format!(
                "CREATE EXTERNAL TABLE nation STORED AS PARQUET LOCATION '{url}';\n\
                 SELECT sum(n_nationkey) FROM nation"
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(single_value(&got), 300i64.into());
    let df_session = remote_session(&cluster, &[]).await;
    let df = df_session.read_parquet(&url).await.unwrap();
    assert_eq!(timed("count", df.count()).await.unwrap(), 25);
    // A missing file names its URL.
    let missing = format!("{}/public/nation/missing.parquet", server.endpoint);
    let err = df_session
        .read_parquet(&missing)
        .await
        .map(|_| ())
        .expect_err("a missing file fails")
        .to_string();
    assert!(err.contains(&missing), "{err}");
}
