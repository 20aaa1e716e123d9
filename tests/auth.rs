//! Authentication and TLS, end to end, on real driver and executor
//! processes: every RPC of every service refuses a request without the
//! cluster secret or with a wrong one and accepts the right one; an embedded
//! `local[N]` cluster has a secret of its own, passed to its executors
//! through the environment; a TLS cluster (mutual TLS and a secret) runs
//! TPC-H queries with DataFusion's answers; a plaintext client of a TLS
//! driver gets a clear error; a non-loopback listen without a secret is
//! refused with the reason.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use minispark::proto::auth::{SECRET_ENV, Secret};
use minispark::proto::tls::TlsOptions;
use minispark::proto::{self as pb, Security};
use tonic::Code;

use crate::common::{TPCH_TABLES, assert_result, oracle_sql, timed, tpch_ddl, tpch_dir};
use crate::processes::Processes;

const BIN: &str = env!("CARGO_BIN_EXE_minispark");
const SECRET: &str = "auth-test-secret-0123456789abcdef";
const WRONG_SECRET: &str = "auth-test-secret-not-the-right-one";
/// How long a process may take to start, register or exit.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A process of the `minispark` binary with its stderr collected.
struct Spawned {
    child: Child,
    log: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

/// Starts `minispark args...` with a clean secret environment plus `env`.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove(SECRET_ENV)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start minispark");
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, lines) = mpsc::channel();
    let sink = Arc::clone(&log);
    // Drains the log for the whole life of the process, so it never writes
    // to a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    Spawned { child, log, lines }
}

impl Spawned {
    /// The first log line containing `needle`, waiting at most
    /// [`START_TIMEOUT`]; panics with the log so far otherwise.
    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no log line with '{needle}' within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                ),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the process to exit, at most [`START_TIMEOUT`].
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The log is complete once the thread draining it has read
                // to the end of the pipe (it drops its sender then).
                let until = Instant::now() + Duration::from_secs(10);
                while let Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) = self
                    .lines
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    if Instant::now() >= until {
                        break;
                    }
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("process did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A driver and executors as processes of the binary, on loopback.
struct Cluster {
    url: String,
    executor_addresses: Vec<String>,
    logs: Vec<Arc<Mutex<String>>>,
    _procs: Processes,
    _work: tempfile::TempDir,
}

impl Cluster {
    /// Starts a driver with `driver_args` and `executors` executors with
    /// `executor_args` (plus `env` each), and waits until all registered.
    fn start(
        driver_args: &[&str],
        executors: usize,
        executor_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let work = tempfile::tempdir().unwrap();
        let mut args = vec!["driver", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(driver_args);
        let driver = spawn(&args, env);
        let line = driver.wait_for_line("minispark driver listening on ");
        let url = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .to_string();
        let mut logs = vec![Arc::clone(&driver.log)];
        let mut procs = Processes::of("driver", driver.child);
        let mut executor_addresses = vec![];
        for i in 0..executors {
            let dir = work.path().join(format!("e{i}"));
            let dir = dir.to_str().unwrap();
            let mut args = vec![
                "executor",
                "--driver",
                &url,
                "--listen",
                "127.0.0.1:0",
                "--slots",
                "2",
                "--work-dir",
                dir,
            ];
            args.extend_from_slice(executor_args);
            let mut env = env.to_vec();
            env.push(("RUST_LOG", "minispark_executor=info"));
            let executor = spawn(&args, &env);
            let line = executor.wait_for_line("executor listening");
            let address = line
                .split("address=")
                .nth(1)
                .and_then(|a| a.split_whitespace().next())
                .unwrap_or_else(|| panic!("no address in '{line}'"))
                .to_string();
            executor.wait_for_line("registered with driver");
            executor_addresses.push(address);
            logs.push(Arc::clone(&executor.log));
            procs.push("executor", executor.child);
        }
        Self {
            url,
            executor_addresses,
            logs,
            _procs: procs,
            _work: work,
        }
    }

    fn all_logs(&self) -> String {
        self.logs
            .iter()
            .map(|l| l.lock().unwrap().clone())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn secret(text: &str) -> Security {
    Security::with_secret(Secret::new(text.as_bytes(), "a test").unwrap())
}

/// The RPCs of every service of `proto/minispark.proto`.
fn rpcs_in_proto() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/proto/minispark.proto");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .map(|l| l.split('(').next().unwrap().trim().to_string())
        .collect()
}

/// Calls every RPC of the driver at `driver` and the executor at
/// `executor` with `security`; the status code of each (`Ok` when the call
/// was served, whatever its answer).
async fn call_every_rpc(
    driver: &str,
    executor: &str,
    security: &Security,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let mut d = pb::driver_client(driver, security).unwrap();
    let mut e = pb::executor_client(executor, security).unwrap();
    let job = pb::JobRef {
        job_id: "job-auth-test".into(),
    };
    let mut calls = vec![];
    // No executor info: the driver refuses it, once authenticated, without
    // changing its registry.
    let r = d
        .register_executor(pb::RegisterExecutorRequest { executor: None })
        .await;
    calls.push(("RegisterExecutor", r.map(|_| ())));
    let r = d
        .heartbeat(pb::HeartbeatRequest {
            executor_id: "nobody".into(),
            running_tasks: 0,
        })
        .await;
    calls.push(("Heartbeat", r.map(|_| ())));
    let r = d
        .submit_job(pb::SubmitJobRequest {
            script: "SELECT 1".into(),
            ..Default::default()
        })
        .await;
    let r = match r {
        // Served: the whole job's events must arrive.
        Ok(stream) => {
            let events: Vec<_> = stream.into_inner().collect().await;
            events.into_iter().try_for_each(|e| e.map(|_| ()))
        }
        Err(s) => Err(s),
    };
    calls.push(("SubmitJob", r));
    let r = e.launch_task(pb::TaskDefinition::default()).await;
    calls.push(("LaunchTask", r.map(|_| ())));
    let r = e.cancel_job(job.clone()).await;
    calls.push(("CancelJob", r.map(|_| ())));
    let r = e.remove_job_data(job).await;
    calls.push(("RemoveJobData", r.map(|_| ())));
    let r = e
        .fetch_partition(pb::ShuffleBlock {
            job_id: "job-auth-test".into(),
            ..Default::default()
        })
        .await;
    calls.push(("FetchPartition", r.map(|_| ())));
    calls
}

/// Every RPC is refused without the secret and with a wrong one, with
/// `Unauthenticated` and a reason; with the secret every RPC is served.
async fn check_every_rpc(driver: &str, executor: &str, right: &Security) {
    let called = call_every_rpc(driver, executor, right).await;
    let names: BTreeSet<String> = called.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names,
        rpcs_in_proto(),
        "this test must call every RPC of proto/minispark.proto"
    );
    for (name, result) in called {
        if let Err(status) = &result {
            assert_ne!(
                status.code(),
                Code::Unauthenticated,
                "{name} with the secret: {status}"
            );
        }
        // The job of a served SubmitJob runs to its end.
        if name == "SubmitJob" || name == "Heartbeat" {
            result.unwrap_or_else(|s| panic!("{name} with the secret: {s}"));
        }
    }
    for (security, why) in [
        (Security::default(), "no proof of the cluster secret"),
        (secret(WRONG_SECRET), "wrong proof of the cluster secret"),
    ] {
        for (name, result) in call_every_rpc(driver, executor, &security).await {
            let status = result.expect_err(name);
            assert_eq!(status.code(), Code::Unauthenticated, "{name}: {status}");
            assert!(status.message().contains(why), "{name}: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_needs_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(dir.path(), "secret", &format!("{SECRET}\n"));
    // The driver reads the secret from a file (the flag wins over the
    // environment), the executor from its environment.
    let cluster = Cluster::start(
        &["--secret-file", &secret_file],
        1,
        &[],
        &[(SECRET_ENV, SECRET)],
    );
    timed(
        "every RPC",
        check_every_rpc(
            &cluster.url,
            &cluster.executor_addresses[0],
            &secret(SECRET),
        ),
    )
    .await;
    // Refusals are logged with their reason, never with the secret.
    let logs = cluster.all_logs();
    assert!(logs.contains("request refused"), "{logs}");
    assert!(logs.contains("wrong proof"), "{logs}");
    assert!(
        !logs.contains(SECRET) && !logs.contains(WRONG_SECRET),
        "{logs}"
    );
}

/// An executor without the secret cannot join a cluster that has one.
#[test]
fn an_executor_without_the_secret_cannot_register() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(dir.path(), "secret", SECRET);
    let driver = spawn(
        &[
            "driver",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &secret_file,
        ],
        &[],
    );
    let line = driver.wait_for_line("minispark driver listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let _procs = Processes::of("driver", driver.child);
    let work = dir.path().join("e");
    let mut executor = spawn(
        &[
            "executor",
            "--driver",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--work-dir",
            work.to_str().unwrap(),
        ],
        &[(SECRET_ENV, WRONG_SECRET)],
    );
    let status = executor.wait_exit();
    assert!(!status.success());
    let log = executor.log();
    assert!(
        log.contains("refused this executor") && log.contains("wrong proof of the cluster secret"),
        "{log}"
    );
}

/// `local[N]` makes a secret of its own: even on loopback, its driver and
/// executors refuse requests without it. Child executors get it through
/// their environment, not their command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_cluster_has_a_secret_of_its_own() {
    let cluster = crate::common::cluster(1).await;
    let executor = cluster.driver.cluster.executors()[0].address.clone();
    timed(
        "every RPC",
        check_every_rpc(&cluster.driver.url(), &executor, cluster.security()),
    )
    .await;
    // The executor process: found by its work dir on its command line.
    let work_dir = cluster.work_dir().to_str().unwrap().to_string();
    let mut found = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(&work_dir) || !cmdline.contains(" executor ") {
            continue;
        }
        found += 1;
        assert!(!cmdline.contains(cluster.secret()), "{cmdline}");
        let environ = std::fs::read(entry.path().join("environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            environ
                .split('\0')
                .any(|kv| kv == format!("{SECRET_ENV}={}", cluster.secret())),
            "the executor's environment has the cluster's secret"
        );
    }
    assert_eq!(found, 1, "one executor process of {work_dir}");
}

/// A certificate authority and one certificate for every process of a
/// loopback cluster (`localhost` and 127.0.0.1), usable as a server and as
/// a client certificate; PEM files in `dir`.
struct Certificates {
    ca: String,
    cert: String,
    key: String,
    /// A CA that signed nothing here.
    other_ca: String,
}

fn certificates(dir: &Path) -> Certificates {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    };
    let (ca_pem, issuer) = ca("minispark test CA");
    let (other_pem, _) = ca("another CA");
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "minispark node");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &issuer).unwrap();
    Certificates {
        ca: write(dir, "ca.pem", &ca_pem),
        cert: write(dir, "node.pem", &cert.pem()),
        key: write(dir, "node.key", &key.serialize_pem()),
        other_ca: write(dir, "other-ca.pem", &other_pem),
    }
}

/// Runs `script` on the driver at `url`; the batches of its last query.
async fn remote(
    url: &str,
    security: &Security,
    script: &str,
) -> datafusion::common::Result<Vec<arrow::array::RecordBatch>> {
    let mut last = vec![];
    minispark::client::run_script_remote(url, security, script, Default::default(), &mut |o| {
        last = o.batches;
        Ok(())
    })
    .await?;
    Ok(last)
}

fn tpch_query(n: usize) -> String {
    let path = format!("{}/tests/tpch/queries/q{n}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A driver and two executors with mutual TLS and a secret run TPC-H
/// queries (shuffles between the executors over TLS) with DataFusion's
/// answers, from the Rust client and from `minispark submit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_runs_tpch() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path());
    let secret_file = write(dir.path(), "secret", SECRET);
    let tls: Vec<&str> = vec![
        "--secret-file",
        &secret_file,
        "--tls-cert",
        &certs.cert,
        "--tls-key",
        &certs.key,
        "--tls-ca",
        &certs.ca,
        "--tls-client-ca",
        &certs.ca,
    ];
    let cluster = Cluster::start(&tls, 2, &tls, &[]);
    assert!(cluster.url.starts_with("https://"), "{}", cluster.url);

    let client = Security::resolve(
        Some(Path::new(&secret_file)),
        &TlsOptions {
            cert: Some(PathBuf::from(&certs.cert)),
            key: Some(PathBuf::from(&certs.key)),
            ca: Some(PathBuf::from(&certs.ca)),
            client_ca: None,
        },
    )
    .unwrap();
    let oracle = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    for t in TPCH_TABLES {
        oracle
            .register_parquet(t, tpch_dir().join(t).to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    for q in [1, 3, 5, 10] {
        let sql = tpch_query(q);
        let script = format!("{}SET minispark.shuffle.partitions = 4;\n{sql}", tpch_ddl());
        let got = timed(
            &format!("q{q} over TLS"),
            remote(&cluster.url, &client, &script),
        )
        .await
        .unwrap_or_else(|e| panic!("q{q} over TLS: {e}"));
        assert_result(
            &got,
            &oracle_sql(&oracle, &sql).await,
            format!("q{q} on a TLS cluster differs from DataFusion"),
        );
    }

    // `minispark submit` with the same flags as the README's.
    let script = write(
        dir.path(),
        "q.sql",
        "SELECT c_mktsegment, count(*) AS n FROM tpch.sf0_01.customer GROUP BY 1 ORDER BY 1;",
    );
    let mut submit = spawn(
        &[
            "submit",
            &script,
            "--master",
            &cluster.url,
            "--format",
            "csv",
            "--secret-file",
            &secret_file,
            "--tls-ca",
            &certs.ca,
            "--tls-cert",
            &certs.cert,
            "--tls-key",
            &certs.key,
        ],
        &[],
    );
    assert!(submit.wait_exit().success(), "{}", submit.log());

    // TLS does not replace the secret, and mutual TLS the client certificate.
    let no_secret = Security {
        secret: None,
        ..client.clone()
    };
    let err = timed("no secret", remote(&cluster.url, &no_secret, "SELECT 1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no proof of the cluster secret"), "{err}");
    let no_client_cert = Security::resolve(
        Some(Path::new(&secret_file)),
        &TlsOptions {
            ca: Some(PathBuf::from(&certs.ca)),
            ..Default::default()
        },
    )
    .unwrap();
    timed(
        "no client certificate",
        remote(&cluster.url, &no_client_cert, "SELECT 1"),
    )
    .await
    .expect_err("a mutual-TLS driver refuses a client without a certificate");
    // A client that trusts another CA does not trust this driver.
    let other_ca = Security::resolve(
        Some(Path::new(&secret_file)),
        &TlsOptions {
            ca: Some(PathBuf::from(&certs.other_ca)),
            ..Default::default()
        },
    )
    .unwrap();
    timed("another CA", remote(&cluster.url, &other_ca, "SELECT 1"))
        .await
        .expect_err("a client verifies the driver's certificate");
    // A DataFrame session on the https:// master.
    let session = timed(
        "a DataFrame session over TLS",
        minispark::Session::builder()
            .master(cluster.url.clone())
            .security(client.clone())
            .build(),
    )
    .await
    .unwrap();
    let df = session
        .sql("SELECT count(*) FROM tpch.sf0_01.nation")
        .await
        .unwrap();
    let got = timed("collect over TLS", df.collect()).await.unwrap();
    assert_eq!(crate::common::single_value(&got).to_string(), "25");
    // The cluster still serves.
    let got = timed(
        "after refusals",
        remote(&cluster.url, &client, "SELECT 41 + 1"),
    )
    .await
    .unwrap();
    assert_eq!(crate::common::single_value(&got).to_string(), "42");
}

/// A plaintext client of a TLS driver is told to use TLS; an `https://`
/// master without a CA is refused before connecting.
#[test]
fn a_plaintext_client_of_a_tls_driver_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path());
    let secret_file = write(dir.path(), "secret", SECRET);
    let driver = spawn(
        &[
            "driver",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &secret_file,
            "--tls-cert",
            &certs.cert,
            "--tls-key",
            &certs.key,
            "--tls-ca",
            &certs.ca,
        ],
        &[],
    );
    let line = driver.wait_for_line("minispark driver listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let _procs = Processes::of("driver", driver.child);
    let plain = url.replace("https://", "http://");
    assert_ne!(plain, url);
    let script = write(dir.path(), "q.sql", "SELECT 1");
    let mut submit = spawn(
        &[
            "submit",
            &script,
            "--master",
            &plain,
            "--secret-file",
            &secret_file,
        ],
        &[],
    );
    assert!(!submit.wait_exit().success());
    let err = submit.log();
    assert!(
        err.contains(&plain)
            && err.contains("accepts only TLS connections")
            && err.contains("https://"),
        "{err}"
    );
    let mut submit = spawn(
        &[
            "submit",
            &script,
            "--master",
            &url,
            "--secret-file",
            &secret_file,
        ],
        &[],
    );
    assert!(!submit.wait_exit().success());
    let err = submit.log();
    assert!(err.contains("--tls-ca"), "{err}");
}

/// A TLS client of a plaintext driver is told that the driver does not
/// speak TLS.
#[test]
fn a_tls_client_of_a_plaintext_driver_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path());
    let driver = spawn(&["driver", "--listen", "127.0.0.1:0"], &[]);
    let line = driver.wait_for_line("minispark driver listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let _procs = Processes::of("driver", driver.child);
    let tls_url = url.replace("http://", "https://");
    assert_ne!(tls_url, url);
    let script = write(dir.path(), "q.sql", "SELECT 1");
    let mut submit = spawn(
        &[
            "submit", &script, "--master", &tls_url, "--tls-ca", &certs.ca,
        ],
        &[],
    );
    assert!(!submit.wait_exit().success());
    let err = submit.log();
    assert!(
        err.contains(&tls_url) && err.contains("the peer does not speak TLS"),
        "{err}"
    );
}

/// A driver or executor on a non-loopback address needs a secret or
/// `--insecure`, and says why.
#[test]
fn a_non_loopback_listen_needs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("e");
    let work = work.to_str().unwrap();
    for args in [
        vec!["driver", "--listen", "0.0.0.0:0"],
        vec![
            "executor",
            "--driver",
            "http://127.0.0.1:1",
            "--listen",
            "0.0.0.0:0",
            "--work-dir",
            work,
        ],
    ] {
        let mut p = spawn(&args, &[]);
        let status = p.wait_exit();
        let log = p.log();
        assert!(!status.success(), "{args:?}: {log}");
        assert!(
            log.contains("refusing to listen on 0.0.0.0:")
                && log.contains("without a cluster secret")
                && log.contains("--secret-file")
                && log.contains("--insecure"),
            "{args:?}: {log}"
        );
    }
    // With a secret, or with --insecure, it listens.
    let secret_file = write(dir.path(), "secret", SECRET);
    for extra in [
        vec!["--secret-file", secret_file.as_str()],
        vec!["--insecure"],
    ] {
        let mut args = vec!["driver", "--listen", "0.0.0.0:0"];
        args.extend(extra);
        let driver = spawn(&args, &[]);
        driver.wait_for_line("minispark driver listening on ");
        drop(Processes::of("driver", driver.child));
    }
    // The secret from the environment counts too.
    let driver = spawn(
        &["driver", "--listen", "0.0.0.0:0"],
        &[(SECRET_ENV, SECRET)],
    );
    driver.wait_for_line("minispark driver listening on ");
    drop(Processes::of("driver", driver.child));
}
