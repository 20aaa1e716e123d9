//! Requests that must not hurt a cluster: thousands of malformed and hostile
//! gRPC requests to a standalone driver process and to executor processes
//! (random bytes, truncated frames, huge declared lengths, undecodable
//! plans, path-like and unknown ids, absurd registrations, deep SQL and
//! plans), all to loopback, with a seeded RNG so a run can be repeated.
//! Afterwards every process is alive, no file outside the work dirs was
//! touched, and the next real job's answer equals single-node DataFusion's.
//!
//! `MINISPARK_HOSTILE_REQUESTS` sets the requests per service (default
//! 2 000); `MINISPARK_HOSTILE_SEED` the seed (default 10).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use minispark::client::run_script_remote;
use minispark::proto::{
    ExecutorInfo, HeartbeatRequest, JobRef, RegisterExecutorRequest, ShuffleBlock,
    SubmitJobRequest, TaskDefinition, task_status,
};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{assert_result, oracle_sql, tpch_ddl};
use crate::processes::{Processes, collect_lines, wait_for_line};

const BIN: &str = env!("CARGO_BIN_EXE_minispark");

/// Starts a process and waits (at most a minute) for a line of its stderr
/// containing `marker`; returns the rest of that line. Its stderr keeps
/// being drained.
fn spawn_and_wait(command: &mut Command, marker: &str) -> (Child, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minispark");
    let log = collect_lines(child.stderr.take().unwrap());
    let line = wait_for_line(&log, Duration::from_secs(60), marker, |l| {
        l.contains(marker)
    });
    let rest = line[line.find(marker).unwrap() + marker.len()..].to_string();
    (child, rest)
}

/// A standalone cluster started as the README says: a driver process and
/// executor processes with ids `exec-h<i>`.
struct Standalone {
    processes: Processes,
    url: String,
    /// "host:port" of each executor.
    executors: Vec<String>,
    dir: tempfile::TempDir,
}

fn standalone(executors: usize) -> Standalone {
    let dir = tempfile::tempdir().unwrap();
    let (driver, url) = spawn_and_wait(
        Command::new(BIN).args([
            "driver",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-timeout",
            "5",
        ]),
        "minispark driver listening on ",
    );
    let url = url.trim().to_string();
    let mut processes = Processes::default();
    processes.push("driver", driver);
    let mut addresses = vec![];
    for i in 0..executors {
        let (child, rest) = spawn_and_wait(
            Command::new(BIN)
                .env("RUST_LOG", "minispark_executor=info")
                .env("NO_COLOR", "1")
                .args([
                    "executor",
                    "--driver",
                    &url,
                    "--listen",
                    "127.0.0.1:0",
                    "--slots",
                    "2",
                    "--id",
                    &format!("exec-h{i}"),
                    "--work-dir",
                ])
                .arg(dir.path().join(format!("e{i}"))),
            "address=",
        );
        let address = rest.split_whitespace().next().unwrap().to_string();
        processes.push(format!("executor exec-h{i}"), child);
        addresses.push(address);
    }
    Standalone {
        processes,
        url,
        executors: addresses,
        dir,
    }
}

/// The job run after the hostile requests: a join and an aggregate over
/// TPC-H SF0.01 Parquet.
const CHECK_QUERY: &str = "SELECT n_name, count(*) AS customers, sum(c_acctbal) AS balance \
     FROM customer JOIN nation ON c_nationkey = n_nationkey GROUP BY n_name ORDER BY n_name";

/// Runs `script` on the driver at `url`; the batches of its last result.
async fn submit(
    url: &str,
    script: &str,
) -> datafusion::common::Result<Vec<arrow::array::RecordBatch>> {
    let mut last = vec![];
    let mut keep = |out: minispark::client::StatementOutput| {
        last = out.batches;
        Ok(())
    };
    // The cluster has no secret (loopback): the requests reach the services
    // themselves, as an authenticated but hostile peer's would.
    let open = minispark::proto::Security::default();
    let job = run_script_remote(url, &open, script, Default::default(), &mut keep);
    match tokio::time::timeout(Duration::from_secs(300), job).await {
        Ok(r) => r?,
        Err(_) => panic!("job on {url} did not finish within 300s"),
    }
    Ok(last)
}

/// Runs [`CHECK_QUERY`] on the cluster (retrying while executors register)
/// and compares it with single-node DataFusion.
async fn assert_next_job_right(url: &str) {
    let script = format!("{}{CHECK_QUERY};", tpch_ddl());
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        match submit(url, &script).await {
            Ok(batches) => break batches,
            Err(e) if Instant::now() < deadline && e.to_string().contains("no executors") => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("the job after the hostile requests failed: {e}"),
        }
    };
    let ctx = datafusion::prelude::SessionContext::new();
    for ddl in tpch_ddl().lines() {
        ctx.sql(ddl).await.unwrap().collect().await.unwrap();
    }
    let expected = oracle_sql(&ctx, CHECK_QUERY).await;
    assert_result(&got, &expected, CHECK_QUERY);
}

/// A gRPC frame: flag, declared length, payload.
fn frame(compressed: bool, declared: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn message_frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    frame(false, payload.len() as u32, &payload)
}

/// What a hostile request must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Any gRPC answer (the process answered and lives on).
    Answer,
    /// This gRPC status code.
    Code(u32),
    /// Any status but OK.
    Refused,
    /// No answer needed: raw bytes on a TCP connection.
    Nothing,
}

struct Hostile {
    kind: &'static str,
    path: String,
    body: Vec<u8>,
    expect: Expect,
}

const DRIVER_METHODS: [&str; 3] = [
    "/minispark.Driver/RegisterExecutor",
    "/minispark.Driver/Heartbeat",
    "/minispark.Driver/SubmitJob",
];
const EXECUTOR_METHODS: [&str; 4] = [
    "/minispark.Executor/LaunchTask",
    "/minispark.Executor/CancelJob",
    "/minispark.Executor/RemoveJobData",
    "/minispark.Executor/FetchPartition",
];

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max);
    (0..n).map(|_| rng.random()).collect()
}

fn random_job_id(rng: &mut StdRng) -> String {
    format!("job-{:012x}", rng.random::<u64>() & 0xFFFF_FFFF_FFFF)
}

/// Ids that name paths outside the work dirs (the canary dir above all).
fn path_like_ids(canary: &Path) -> Vec<String> {
    vec![
        "../canary".into(),
        "../../canary".into(),
        canary.display().to_string(),
        format!("{}/job-0123456789ab", canary.display()),
        "..".into(),
        ".".into(),
        "job-0123456789ab/../../canary".into(),
        "job-0123456789ab/../..".into(),
        "/".into(),
        "".into(),
        "job-\u{0}23456789ab".into(),
        "job-0123456789AB".into(),
    ]
}

/// One hostile request to a driver (`driver`) or an executor.
fn hostile(rng: &mut StdRng, driver: bool, canary: &Path, n: usize) -> Hostile {
    let methods: &[&str] = if driver {
        &DRIVER_METHODS
    } else {
        &EXECUTOR_METHODS
    };
    let method = methods[rng.random_range(0..methods.len())].to_string();
    let any = |kind, body| Hostile {
        kind,
        path: method.clone(),
        body,
        expect: Expect::Answer,
    };
    // Every 500th request is deep: SQL past the nesting limit to the
    // driver, a 100 000-deep stage plan to the executor.
    if n % 500 == 1 {
        return if driver {
            let request = SubmitJobRequest {
                script: format!("SELECT {}", vec!["1"; 20_000].join("+")),
                ..Default::default()
            };
            Hostile {
                kind: "deep SQL",
                path: DRIVER_METHODS[2].into(),
                body: message_frame(&request),
                expect: Expect::Code(3),
            }
        } else {
            Hostile {
                kind: "deep stage plan",
                path: EXECUTOR_METHODS[0].into(),
                body: message_frame(&TaskDefinition {
                    job_id: random_job_id(rng),
                    plan: deep_physical_plan(100_000),
                    ..Default::default()
                }),
                // Answered with a failed task naming the limit.
                expect: Expect::Code(0),
            }
        };
    }
    match rng.random_range(0..17) {
        0 => any("random bytes", random_bytes(rng, 300)),
        1 => {
            let payload = random_bytes(rng, 300);
            any(
                "undecodable message",
                frame(false, payload.len() as u32, &payload),
            )
        }
        2 => {
            let payload = random_bytes(rng, 200);
            let declared = payload.len() as u32 + rng.random_range(1..100_000);
            Hostile {
                kind: "truncated frame",
                path: method,
                body: frame(false, declared, &payload),
                expect: Expect::Refused,
            }
        }
        3 => {
            let declared =
                [u32::MAX, 0x8000_0000, (1 << 30) + 1, 0x7FFF_FFFF][rng.random_range(0..4)];
            Hostile {
                kind: "huge declared length",
                path: method,
                body: frame(false, declared, &random_bytes(rng, 64)),
                expect: Expect::Refused,
            }
        }
        4 => {
            let payload = random_bytes(rng, 200);
            Hostile {
                kind: "compressed without encoding",
                path: method,
                body: frame(true, payload.len() as u32, &payload),
                expect: Expect::Refused,
            }
        }
        // A message header declaring more than its RPC takes (but less than
        // a plan may be) to an RPC that carries no plan: refused from the
        // header with ResourceExhausted, before the message is buffered.
        7 => {
            let small: &[&str] = if driver {
                &DRIVER_METHODS[..2]
            } else {
                &EXECUTOR_METHODS[1..]
            };
            let limit = minispark::proto::limits::SMALL_MESSAGE_LIMIT as u32;
            Hostile {
                kind: "over its RPC's size limit",
                path: small[rng.random_range(0..small.len())].to_string(),
                body: frame(
                    false,
                    rng.random_range(limit + 1..1 << 30),
                    &random_bytes(rng, 64),
                ),
                expect: Expect::Code(8),
            }
        }
        5 => Hostile {
            kind: "unknown method",
            path: format!("{}Nope{}", &method[..method.rfind('/').unwrap() + 1], n),
            body: frame(false, 0, &[]),
            expect: Expect::Code(12),
        },
        6 => Hostile {
            kind: "raw TCP bytes",
            path: String::new(),
            body: random_bytes(rng, 200),
            expect: Expect::Nothing,
        },
        _ if driver => hostile_driver_message(rng, canary, n),
        _ => hostile_executor_message(rng, canary),
    }
}

fn hostile_driver_message(rng: &mut StdRng, canary: &Path, n: usize) -> Hostile {
    match rng.random_range(0..6) {
        0 | 1 => {
            // Never a valid registration: a bad id, a live executor's id
            // from another process, absurd slots or a bad address.
            let ids: Vec<String> = path_like_ids(canary)
                .into_iter()
                .filter(|id| minispark::proto::limits::check_executor_id(id).is_err())
                .collect();
            let id = match rng.random_range(0..3) {
                0 => "exec-h0".to_string(),
                1 => "exec-h1".to_string(),
                _ => ids[rng.random_range(0..ids.len())].clone(),
            };
            let slots = [0, 1025, u32::MAX, 2, 4][rng.random_range(0..5)];
            let address =
                ["127.0.0.1:1", "", "not a url ::", "127.0.0.1:9"][rng.random_range(0..4)];
            let info = ExecutorInfo {
                id,
                address: address.into(),
                slots,
                instance: format!("intruder-{}", rng.random::<u32>()),
                memory_bytes: [0, 1, 8 << 20, u64::MAX][rng.random_range(0..4)],
            };
            let executor = (rng.random_range(0..10) > 0).then_some(info);
            Hostile {
                kind: "bad registration",
                path: DRIVER_METHODS[0].into(),
                body: message_frame(&RegisterExecutorRequest { executor }),
                expect: Expect::Code(3),
            }
        }
        2 => Hostile {
            kind: "heartbeat",
            path: DRIVER_METHODS[1].into(),
            body: message_frame(&HeartbeatRequest {
                executor_id: ["exec-h0", "nobody", "../x", ""][rng.random_range(0..4)].into(),
                running_tasks: rng.random(),
            }),
            expect: Expect::Code(0),
        },
        _ => {
            let mut request = SubmitJobRequest::default();
            let expect = match rng.random_range(0..6) {
                0 => {
                    request.script = String::from_utf8_lossy(&random_bytes(rng, 100)).into();
                    Expect::Answer
                }
                1 => {
                    request.logical_plan = random_bytes(rng, 300);
                    request.logical_plan.push(1);
                    Expect::Refused
                }
                2 => {
                    request.script = "SELECT 1".into();
                    request.settings.insert(
                        "minispark.shuffle.partitions".into(),
                        ["1000000000", "-1", "100001"][rng.random_range(0..3)].into(),
                    );
                    Expect::Code(3)
                }
                3 => {
                    request.script = format!("SELECT * FROM no_such_table_{n}");
                    Expect::Refused
                }
                _ => {
                    request.script = "SELECT ((((((((((1))))))))))".repeat(3);
                    Expect::Refused
                }
            };
            Hostile {
                kind: "bad job",
                path: DRIVER_METHODS[2].into(),
                body: message_frame(&request),
                expect,
            }
        }
    }
}

fn hostile_executor_message(rng: &mut StdRng, canary: &Path) -> Hostile {
    let ids = path_like_ids(canary);
    let bad_id = ids[rng.random_range(0..ids.len())].clone();
    match rng.random_range(0..8) {
        0 | 1 => Hostile {
            kind: "task with a path-like job id",
            path: EXECUTOR_METHODS[0].into(),
            body: message_frame(&TaskDefinition {
                job_id: bad_id,
                stage_id: rng.random_range(0..3),
                partition: rng.random_range(0..3),
                attempt: 0,
                plan: random_bytes(rng, 200),
                settings: Default::default(),
            }),
            expect: Expect::Code(3),
        },
        2 => {
            // Valid ids, a plan that does not decode: the task fails.
            let huge = rng.random_range(0..4) == 0;
            Hostile {
                kind: "task with an undecodable plan",
                path: EXECUTOR_METHODS[0].into(),
                body: message_frame(&TaskDefinition {
                    job_id: random_job_id(rng),
                    stage_id: if huge { u32::MAX } else { 1 },
                    partition: if huge { u32::MAX } else { 0 },
                    attempt: 0,
                    plan: {
                        let mut p = random_bytes(rng, 300);
                        p.push(7);
                        p
                    },
                    settings: Default::default(),
                }),
                expect: if huge {
                    Expect::Code(3)
                } else {
                    Expect::Code(0)
                },
            }
        }
        3 => Hostile {
            kind: "cancel a path-like job",
            path: EXECUTOR_METHODS[1].into(),
            body: message_frame(&JobRef { job_id: bad_id }),
            expect: Expect::Code(3),
        },
        4 => Hostile {
            kind: "remove a path-like job",
            path: EXECUTOR_METHODS[2].into(),
            body: message_frame(&JobRef { job_id: bad_id }),
            expect: Expect::Code(3),
        },
        5 => Hostile {
            kind: "remove an unknown job",
            path: EXECUTOR_METHODS[2].into(),
            body: message_frame(&JobRef {
                job_id: random_job_id(rng),
            }),
            expect: Expect::Code(0),
        },
        6 => Hostile {
            kind: "fetch a path-like block",
            path: EXECUTOR_METHODS[3].into(),
            body: message_frame(&ShuffleBlock {
                job_id: bad_id,
                stage_id: rng.random(),
                map_partition: rng.random(),
                reduce_partition: rng.random(),
                map_attempt: rng.random(),
            }),
            expect: Expect::Code(3),
        },
        _ => Hostile {
            kind: "fetch an unknown block",
            path: EXECUTOR_METHODS[3].into(),
            body: message_frame(&ShuffleBlock {
                job_id: random_job_id(rng),
                stage_id: rng.random_range(0..100),
                map_partition: rng.random_range(0..100),
                reduce_partition: rng.random_range(0..100),
                map_attempt: 0,
            }),
            // Not found (5).
            expect: Expect::Code(5),
        },
    }
}

/// Sends one request over `h2` (or raw bytes over TCP); returns the gRPC
/// status code, `None` for raw bytes.
async fn send(
    address: &str,
    client: &mut Option<h2::client::SendRequest<Bytes>>,
    request: &Hostile,
) -> Result<Option<u32>, String> {
    if request.expect == Expect::Nothing {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.write_all(&request.body).await;
        let _ = tcp.shutdown().await;
        let mut sink = vec![0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut sink)).await;
        return Ok(None);
    }
    if client.is_none() {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (send_request, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        *client = Some(send_request);
    }
    let ready = client
        .clone()
        .unwrap()
        .ready()
        .await
        .map_err(|e| format!("connection lost: {e}"));
    let mut ready = match ready {
        Ok(r) => r,
        Err(e) => {
            *client = None;
            return Err(e);
        }
    };
    let http_request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{address}{}", request.path))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut stream) = ready
        .send_request(http_request, false)
        .map_err(|e| format!("send: {e}"))?;
    // The server may answer (and close the stream) before the body is
    // sent, e.g. for an unknown method: its answer is what counts.
    let _ = stream.send_data(Bytes::from(request.body.clone()), true);
    let response = response.await.map_err(|e| format!("response: {e}"))?;
    let (parts, mut body) = response.into_parts();
    let code = |headers: &http::HeaderMap| {
        headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    if let Some(c) = code(&parts.headers) {
        return Ok(Some(c));
    }
    // Read (and drop) what the answer streams, at most a few MB.
    let mut read = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("body: {e}"))?;
        read += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
        if read > 64 << 20 {
            return Err("an answer of over 64 MB".into());
        }
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?;
    trailers
        .as_ref()
        .and_then(code)
        .map(Some)
        .ok_or_else(|| "an answer without grpc-status".to_string())
}

/// What the hostile requests to one service got.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    by_kind: BTreeMap<&'static str, usize>,
    by_code: BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// Sends `count` hostile requests to `address`, 16 at a time over 4 HTTP/2
/// connections.
async fn barrage(address: &str, driver: bool, count: usize, seed: u64, canary: &Path) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let requests: Vec<Hostile> = (0..count)
        .map(|n| hostile(&mut rng, driver, canary, n))
        .collect();
    let mut tally = Tally::default();
    let clients = std::sync::Arc::new(
        (0..4)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect::<Vec<tokio::sync::Mutex<Option<h2::client::SendRequest<Bytes>>>>>(),
    );
    let results = futures::stream::iter(requests.into_iter().enumerate())
        .map(|(i, request)| {
            let clients = std::sync::Arc::clone(&clients);
            let address = address.to_string();
            async move {
                let mut client = clients[i % 4].lock().await.clone();
                let result = tokio::time::timeout(
                    Duration::from_secs(30),
                    send(&address, &mut client, &request),
                )
                .await
                .unwrap_or_else(|_| Err("no answer within 30s".into()));
                *clients[i % 4].lock().await = client;
                (request, result)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (request, result) in results {
        tally.sent += 1;
        *tally.by_kind.entry(request.kind).or_default() += 1;
        let outcome = match (&result, request.expect) {
            (Ok(None), Expect::Nothing) => Ok(()),
            (Ok(Some(_)), Expect::Answer) => Ok(()),
            (Ok(Some(c)), Expect::Code(e)) if *c == e => Ok(()),
            (Ok(Some(c)), Expect::Refused) if *c != 0 => Ok(()),
            (other, expect) => Err(format!(
                "{} to {}: expected {expect:?}, got {other:?}",
                request.kind, request.path
            )),
        };
        let code = match &result {
            Ok(Some(c)) => format!("grpc-status {c}"),
            Ok(None) => "raw bytes".into(),
            Err(e) => format!("error: {}", e.split(':').next().unwrap_or(e)),
        };
        *tally.by_code.entry(code).or_default() += 1;
        if let Err(e) = outcome {
            tally.failures.push(e);
        }
    }
    tally
}

fn requests_per_service() -> usize {
    std::env::var("MINISPARK_HOSTILE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
        .max(2_000)
}

/// Every file and directory under `dir`.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_leave_every_process_alive_and_jobs_right() {
    let started = Instant::now();
    let mut cluster = standalone(2);
    let canary = cluster.dir.path().join("canary");
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("keep"), b"keep").unwrap();
    // The cluster works before.
    assert_next_job_right(&cluster.url).await;
    let before = tree(cluster.dir.path());

    let count = requests_per_service();
    let seed = std::env::var("MINISPARK_HOSTILE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10u64);
    let driver_address = cluster.url.trim_start_matches("http://").to_string();
    let deadline = Duration::from_secs(900);
    let barrage_started = Instant::now();
    let (driver, executor) = tokio::time::timeout(deadline, async {
        futures::join!(
            barrage(&driver_address, true, count, seed, &canary),
            barrage(&cluster.executors[0], false, count, seed + 1, &canary),
        )
    })
    .await
    .expect("the hostile requests finish within 15 minutes");
    let barrage_time = barrage_started.elapsed();
    for (name, tally) in [("driver", &driver), ("executor", &executor)] {
        eprintln!(
            "hostile requests to the {name}: {} sent; kinds {:?}; outcomes {:?}",
            tally.sent, tally.by_kind, tally.by_code
        );
    }
    cluster.processes.assert_alive();
    for (name, tally) in [("driver", &driver), ("executor", &executor)] {
        assert_eq!(tally.sent, count);
        assert!(
            tally.failures.is_empty(),
            "{} unexpected answers from the {name}, e.g. {:?}",
            tally.failures.len(),
            &tally.failures[..tally.failures.len().min(5)]
        );
    }
    // Nothing appeared or vanished outside the executors' own job dirs.
    let after = tree(cluster.dir.path());
    let outside = |paths: &[PathBuf]| -> Vec<PathBuf> {
        paths
            .iter()
            .filter(|p| {
                let rel = p.strip_prefix(cluster.dir.path()).unwrap();
                let mut parts = rel.components();
                let top = parts
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().to_string());
                let second = parts
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().to_string());
                // e<i>/job-<hex>/... are the executors' own job files.
                !(top.as_deref().is_some_and(|t| t.starts_with('e'))
                    && second.as_deref().is_some_and(|s| s.starts_with("job-")))
            })
            .cloned()
            .collect()
    };
    assert_eq!(
        outside(&after),
        outside(&before),
        "files outside the job dirs changed"
    );
    assert_eq!(std::fs::read(canary.join("keep")).unwrap(), b"keep");

    // The next real job is right, and everything still runs.
    assert_next_job_right(&cluster.url).await;
    cluster.processes.assert_alive();
    eprintln!(
        "hostile inputs: {count} requests per service (driver, executor), seed {seed}; \
         processes alive: {} of {}; job after: correct; wall time {:.1}s (the requests {:.1}s)",
        cluster.processes.0.len(),
        cluster.processes.0.len(),
        started.elapsed().as_secs_f64(),
        barrage_time.as_secs_f64()
    );
}

/// A NOT(NOT(...)) expression node `depth` levels deep, as protobuf bytes,
/// built in linear time (prost's own encoder takes quadratic time on deep
/// messages). `not_tag` is the NOT variant's field number in the expression
/// node; the NOT message holds its operand in field 1.
fn not_chain(depth: usize, not_tag: u32) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    // node[k]: bytes of the expression node k levels deep; not[k]: of its NOT message.
    let mut node = vec![0usize];
    let mut not = vec![0usize];
    for k in 1..=depth {
        let inner = key_len(1) + encoded_len_varint(node[k - 1] as u64) + node[k - 1];
        not.push(inner);
        node.push(key_len(not_tag) + encoded_len_varint(inner as u64) + inner);
    }
    let mut out = Vec::with_capacity(node[depth]);
    for k in (1..=depth).rev() {
        encode_key(not_tag, WireType::LengthDelimited, &mut out);
        encode_varint(not[k] as u64, &mut out);
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(node[k - 1] as u64, &mut out);
    }
    assert_eq!(out.len(), node[depth]);
    out
}

/// `prefix`, then field `tag` holding `bytes` as a nested message.
fn with_field(mut prefix: Vec<u8>, tag: u32, bytes: &[u8]) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    encode_key(tag, WireType::LengthDelimited, &mut prefix);
    encode_varint(bytes.len() as u64, &mut prefix);
    prefix.extend_from_slice(bytes);
    prefix
}

/// A stage plan whose filter is NOT(NOT(...)) `depth` levels deep, as
/// datafusion-proto bytes: PhysicalPlanNode { filter (12): FilterExecNode
/// { input (1): EmptyExec, expr (2): the chain } }.
fn deep_physical_plan(depth: usize) -> Vec<u8> {
    use datafusion_proto::protobuf::physical_plan_node::PhysicalPlanType;
    use datafusion_proto::protobuf::{EmptyExecNode, PhysicalPlanNode};
    let empty = PhysicalPlanNode {
        physical_plan_type: Some(PhysicalPlanType::Empty(EmptyExecNode::default())),
    }
    .encode_to_vec();
    let filter = with_field(with_field(vec![], 1, &empty), 2, &not_chain(depth, 7));
    with_field(vec![], 12, &filter)
}

/// A DataFrame plan whose filter is NOT(NOT(...)) `depth` levels deep:
/// LogicalPlanNode { selection (4): SelectionNode { input (1): one empty
/// row, expr (2): the chain } }.
fn deep_logical_plan(depth: usize) -> Vec<u8> {
    use datafusion_proto::protobuf::logical_plan_node::LogicalPlanType;
    use datafusion_proto::protobuf::{EmptyRelationNode, LogicalPlanNode};
    let empty = LogicalPlanNode {
        logical_plan_type: Some(LogicalPlanType::EmptyRelation(EmptyRelationNode {
            produce_one_row: true,
        })),
    }
    .encode_to_vec();
    let selection = with_field(with_field(vec![], 1, &empty), 2, &not_chain(depth, 8));
    with_field(vec![], 4, &selection)
}

/// The chain decodes as what it claims to be (checked at a depth prost
/// accepts), so the deep ones are refused for their depth, not their bytes.
#[test]
fn deep_plan_bytes_decode_when_shallow() {
    use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
    let physical = PhysicalPlanNode::decode(deep_physical_plan(20).as_slice()).unwrap();
    assert_eq!(physical.encode_to_vec(), deep_physical_plan(20));
    let logical = LogicalPlanNode::decode(deep_logical_plan(20).as_slice()).unwrap();
    assert_eq!(logical.encode_to_vec(), deep_logical_plan(20));
    let err = PhysicalPlanNode::decode(deep_physical_plan(5_000).as_slice()).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

/// `SELECT 1+1+...+1` with 5 000 and 100 000 terms sent to a standalone
/// driver's SubmitJob, deep serialized plans to SubmitJob and to an
/// executor's LaunchTask: each runs or is refused by name, every process
/// lives on, and the next job is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_plans_over_grpc_run_or_are_refused_by_name() {
    let mut cluster = standalone(1);
    let url = cluster.url.clone();
    // Wait for the executor: a trivial job runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = submit(&url, "SELECT 1").await {
        assert!(
            Instant::now() < deadline,
            "the cluster never ran a job: {e}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 5 000 terms: planned and run (on the driver's deep-stack job thread).
    let sum = format!("SELECT {} AS total", vec!["1"; 5_000].join("+"));
    let batches = submit(&url, &sum).await.expect("5 000 terms run");
    assert_eq!(
        crate::common::single_value(&batches),
        datafusion::common::ScalarValue::Int64(Some(5_000))
    );
    // 100 000 terms: refused, naming the limit.
    let deep = format!("SELECT {}", vec!["1"; 100_000].join("+"));
    let err = submit(&url, &deep).await.unwrap_err().to_string();
    assert!(
        err.contains("nesting limit of 8000"),
        "the error names the limit: {err}"
    );
    cluster.processes.assert_alive();

    // Deep DataFrame plans: refused while decoding, naming the limit.
    for depth in [5_000, 100_000] {
        let request = SubmitJobRequest {
            script: "deep".into(),
            settings: Default::default(),
            logical_plan: deep_logical_plan(depth),
            progress: false,
        };
        let mut client = minispark::proto::driver_client(&url, &Default::default()).unwrap();
        let status = client.submit_job(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("100 protobuf messages deep"),
            "{status:?}"
        );
    }

    // Deep stage plans straight to an executor's LaunchTask.
    let mut executor =
        minispark::proto::executor_client(&cluster.executors[0], &Default::default()).unwrap();
    for depth in [5_000, 100_000] {
        let task = TaskDefinition {
            job_id: "job-00000000dee9".into(),
            stage_id: 0,
            partition: 0,
            attempt: 0,
            plan: deep_physical_plan(depth),
            settings: Default::default(),
        };
        let status = tokio::time::timeout(Duration::from_secs(120), executor.launch_task(task))
            .await
            .expect("LaunchTask answers")
            .expect("LaunchTask answers with a task status")
            .into_inner();
        match status.status {
            Some(task_status::Status::Failed(f)) => assert!(
                f.message.contains("100 protobuf messages deep"),
                "{}",
                f.message
            ),
            other => panic!("a {depth}-deep plan must fail by name, got {other:?}"),
        }
    }
    cluster.processes.assert_alive();
    assert_next_job_right(&url).await;
    cluster.processes.assert_alive();
}

/// A result over `minispark.driver.maxResultSize` fails its job with an
/// error naming the setting; under it, the same query runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_max_result_size_fail_by_name() {
    let cluster = crate::common::cluster(1).await;
    let sql = "SELECT * FROM tpch.sf0_01.customer";
    let small = crate::common::session(&cluster, &[("minispark.driver.maxResultSize", "1k")]);
    let err = crate::common::timed("a too large result", crate::common::run_sql(&small, sql))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is bigger than minispark.driver.maxResultSize (1k)"),
        "{err}"
    );
    let big = crate::common::session(&cluster, &[("minispark.driver.maxResultSize", "64m")]);
    let batches = crate::common::timed(
        "a result within the limit",
        crate::common::run_sql(&big, sql),
    )
    .await
    .unwrap();
    assert_eq!(crate::common::row_count(&batches), 1500);
    // The setting is checked where it is set.
    let err = crate::common::timed(
        "a bad size",
        crate::common::run_sql(&big, "SET minispark.driver.maxResultSize = 'lots'"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("minispark.driver.maxResultSize expects a size"),
        "{err}"
    );
}
