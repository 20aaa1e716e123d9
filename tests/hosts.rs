//! A cluster across hosts: the driver and each executor in a Linux network
//! namespace of its own (a "host" with its own interfaces, addresses and
//! ports), joined by a bridge, started with the README's commands and
//! `0.0.0.0` listen addresses. Jobs submitted from this process cross the
//! bridge, and so does every shuffle: an executor that advertised
//! `0.0.0.0` would make every job fail.
//!
//! ```text
//!   this process (10.77.N.1) ──┐
//!   driver-host  (10.77.N.10) ─┤
//!   host-a       (10.77.N.11) ─┼── br0 (in a "switch" namespace)
//!   host-b       (10.77.N.12) ─┤
//!   host-c       (10.77.N.13) ─┘
//! ```
//!
//! Host names resolve inside the namespaces through `/etc/netns/<ns>/hosts`
//! (which `ip netns exec` mounts over `/etc/hosts`). Needs root and
//! iproute2's `ip`; without them the tests fail and say so. A last test,
//! without namespaces, uses `localhost` for every address on one host.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::prelude::{SessionConfig, SessionContext};
use minispark::Session;
use minispark_planner::session::session_context;

use crate::common::{
    Expected, TPCH_TABLES, assert_result, oracle_sql, skewed_joins, timed, tpch_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_minispark");
/// The cluster secret every process of these tests is given (a driver or
/// executor listening on 0.0.0.0 refuses to start without one), through
/// `MINISPARK_SECRET` as the README's commands do.
const SECRET: &str = "hosts-test-secret-6b1f0c0e2d9a4e57";

/// Prefix of every namespace these tests create (stale ones, of a test
/// process that died, are removed by the next run).
const PREFIX: &str = "mshosts-";

/// Bound for one `ip` command and for each wait on a process.
const IP_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(90);

/// Runs `ip args...` (bounded); Err with its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    let deadline = Instant::now() + IP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`ip {}` did not finish in {IP_TIMEOUT:?}",
                    args.join(" ")
                ));
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip` output (bounded).
fn ip_output(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg(IP_TIMEOUT.as_secs().to_string())
        .arg("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip {}`: {e}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Removes the namespaces of test processes that are gone (killed before
/// their guard ran).
fn remove_stale_namespaces() {
    for line in ip_output(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
    }
}

/// A free /24 of 10.77.0.0/16 in this namespace (no address or route of
/// this host in it), so parallel tests and runs do not collide.
fn free_subnet(k: usize) -> u8 {
    let used =
        ip_output(&["-4", "-o", "route", "show"]) + &ip_output(&["-4", "-o", "addr", "show"]);
    let start = (std::process::id() as usize * 7 + k * 31) % 250;
    (0..250)
        .map(|i| ((start + i) % 250 + 1) as u8)
        .find(|n| !used.contains(&format!("10.77.{n}.")))
        .expect("a free 10.77.x.0/24 subnet")
}

/// One host: a network namespace with one interface on the bridge.
struct Host {
    name: &'static str,
    namespace: String,
    address: Ipv4Addr,
}

/// A process in a host, its stderr collected line by line.
struct Process {
    what: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

/// Hosts joined by a bridge, and the processes started in them. Dropping
/// it (also on a panic) kills the processes and deletes every namespace,
/// interface and hosts file it created.
struct Lab {
    subnet: u8,
    switch: Option<String>,
    root_link: Option<String>,
    hosts: Vec<Host>,
    processes: Vec<Process>,
    /// Namespaces created, deleted at the end.
    namespaces: Vec<String>,
    work: tempfile::TempDir,
}

static LABS: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    /// `names[i]` gets address 10.77.N.(10 + i); this process gets 10.77.N.1.
    fn new(names: &[&'static str]) -> Lab {
        let k = LABS.fetch_add(1, Ordering::SeqCst);
        remove_stale_namespaces();
        let tag = format!("{PREFIX}{}-{k}", std::process::id());
        let mut lab = Lab {
            subnet: free_subnet(k),
            switch: None,
            root_link: None,
            hosts: vec![],
            processes: vec![],
            namespaces: vec![],
            work: tempfile::Builder::new()
                .prefix("minispark-hosts-")
                .tempdir()
                .unwrap(),
        };
        if let Err(e) = lab.build(&tag, k, names) {
            panic!(
                "cannot create the network namespaces of this test (it needs root and iproute2's \
                 `ip`, with network namespaces, veth and bridge support): {e}"
            );
        }
        lab
    }

    fn build(&mut self, tag: &str, k: usize, names: &[&'static str]) -> Result<(), String> {
        let n = self.subnet;
        let switch = format!("{tag}-sw");
        ip(&["netns", "add", &switch])?;
        self.namespaces.push(switch.clone());
        self.switch = Some(switch.clone());
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        // This process's side: a veth from this namespace to the bridge.
        let root_link = format!("msh{}x{k}", std::process::id());
        ip(&[
            "link", "add", &root_link, "type", "veth", "peer", "name", "up0", "netns", &switch,
        ])?;
        self.root_link = Some(root_link.clone());
        ip(&["-n", &switch, "link", "set", "up0", "master", "br0", "up"])?;
        ip(&["addr", "add", &format!("10.77.{n}.1/24"), "dev", &root_link])?;
        ip(&["link", "set", &root_link, "up"])?;
        let mut hosts_file = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (i, name) in names.iter().enumerate() {
            hosts_file.push_str(&format!("10.77.{n}.{} {name}\n", 10 + i));
        }
        for (i, name) in names.iter().enumerate() {
            let ns = format!("{tag}-{name}");
            ip(&["netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            let port = format!("p{i}");
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"])?;
            let address = Ipv4Addr::new(10, 77, n, 10 + i as u8);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let etc = Path::new("/etc/netns").join(&ns);
            std::fs::create_dir_all(&etc)
                .and_then(|_| std::fs::write(etc.join("hosts"), &hosts_file))
                .map_err(|e| format!("cannot write {}: {e}", etc.display()))?;
            self.hosts.push(Host {
                name,
                namespace: ns,
                address,
            });
        }
        Ok(())
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    fn work_dir(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Starts `minispark args...` in host `name` (`ip netns exec`, which
    /// execs: the child is the minispark process itself). Returns its index.
    fn spawn(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) -> usize {
        let ns = self.host(name).namespace.clone();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns, BIN])
            .args(args)
            .env("NO_COLOR", "1")
            .env("MINISPARK_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start minispark in {ns}: {e}"));
        let log = Arc::new(Mutex::new(vec![]));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        self.processes.push(Process {
            what: format!("{name}: minispark {}", args.join(" ")),
            child,
            log,
        });
        self.processes.len() - 1
    }

    /// Runs `minispark args...` in host `name` to completion (bounded).
    fn run(&self, name: &str, args: &[&str]) -> std::process::Output {
        let ns = &self.host(name).namespace;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, BIN])
            .args(args)
            .env("NO_COLOR", "1")
            .env("MINISPARK_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start minispark in {ns}: {e}"));
        // Drain both pipes while waiting, so a large output never blocks it.
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
        });
        let err = std::thread::spawn(move || {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
        });
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`minispark {}` in {name} took over {WAIT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::process::Output {
            status,
            stdout: out.join().unwrap().unwrap_or_default(),
            stderr: err.join().unwrap().unwrap_or_default(),
        }
    }

    /// The lines process `i` has written to stderr so far.
    fn log(&self, i: usize) -> Vec<String> {
        self.processes[i].log.lock().unwrap().clone()
    }

    /// Waits (bounded) for a line of process `i` that `pred` accepts, at
    /// index `from` or later; returns it and its index.
    async fn wait_for_line(
        &mut self,
        i: usize,
        from: usize,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.log(i);
            if let Some(found) = lines.iter().skip(from).position(|l| pred(l)) {
                return (from + found, lines[from + found].clone());
            }
            let exited = self.processes[i].child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{what}: not seen in the log of `{}` ({}); its log:\n{}",
                    self.processes[i].what,
                    match exited {
                        Some(status) => format!("exited with {status}"),
                        None => format!("still running after {WAIT:?}"),
                    },
                    lines.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the driver in `host` as the README says and returns its URL
    /// as it prints it (checked to be the host's bridge address: bound to
    /// 0.0.0.0, it advertises an interface other hosts reach).
    async fn start_driver(&mut self, host: &str, extra: &[&str]) -> (usize, String) {
        let mut args = vec!["driver", "--listen", "0.0.0.0:7077"];
        args.extend_from_slice(extra);
        let d = self.spawn(host, &args, &[]);
        let prefix = "minispark driver listening on ";
        let (_, line) = self
            .wait_for_line(d, 0, "the driver's URL", |l| l.starts_with(prefix))
            .await;
        let url = line[prefix.len()..].trim().to_string();
        assert_eq!(
            url,
            format!("http://{}:7077", self.host(host).address),
            "the driver bound to 0.0.0.0 advertises its host's address"
        );
        (d, url)
    }

    /// Starts an executor in `host` as the README says, with `driver_url`
    /// and `extra` flags (its own `--listen` replaces 0.0.0.0:0), and waits until the driver (process `driver`)
    /// logs its registration at an address containing `expect_address`.
    async fn start_executor(
        &mut self,
        driver: usize,
        host: &str,
        driver_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        expect_address: &str,
    ) -> usize {
        let work = self.work_dir(host);
        let work = work.to_str().unwrap().to_string();
        let mut args = vec!["executor", "--driver", driver_url];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "0.0.0.0:0"]);
        }
        args.extend(["--slots", "2", "--work-dir", &work]);
        args.extend_from_slice(extra);
        let e = self.spawn(host, &args, env);
        let wanted = format!("address={expect_address}");
        let quoted = format!("address=\"{expect_address}");
        let (_, line) = self
            .wait_for_line(driver, 0, &format!("{host}'s registration"), |l| {
                l.contains("executor registered") && (l.contains(&wanted) || l.contains(&quoted))
            })
            .await;
        assert!(!line.contains("0.0.0.0"), "{line}");
        if let Some(status) = self.processes[e].child.try_wait().ok().flatten() {
            panic!("executor in {host} exited with {status}: {:?}", self.log(e));
        }
        e
    }

    /// Kills process `i` (SIGKILL) and reaps it.
    fn kill(&mut self, i: usize) {
        let p = &mut self.processes[i];
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }

    /// A DataFrame session of this process on the driver at `url` (over the
    /// bridge), with `settings`.
    async fn session(&self, url: &str, settings: &[(&str, &str)]) -> Session {
        let secret = minispark_proto::auth::Secret::new(SECRET.as_bytes(), "the test").unwrap();
        let mut builder = Session::builder()
            .master(url)
            .security(minispark_proto::Security::with_secret(secret));
        for (k, v) in settings {
            builder = builder.config(*k, *v);
        }
        timed("connecting a session across the bridge", builder.build())
            .await
            .expect("a session on the driver in its namespace")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.child.kill();
        }
        for p in &mut self.processes {
            let _ = p.child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
        // Gone with its peer in the switch namespace; make sure.
        if let Some(link) = &self.root_link
            && ip_output(&["-o", "link", "show"]).contains(&format!(" {link}@"))
        {
            let _ = ip(&["link", "del", link]);
        }
    }
}

fn tpch_query(n: usize) -> String {
    let path = format!("{}/tests/tpch/queries/q{n}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Single-node DataFusion over the same TPC-H Parquet files.
async fn tpch_oracle(sql: &str) -> Expected {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    for t in TPCH_TABLES {
        ctx.register_parquet(t, tpch_dir().join(t).to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    Expected::from_dataframe(ctx.sql(sql).await.unwrap())
        .await
        .unwrap()
}

/// Bytes that crossed between executors, summed over the stages of an
/// EXPLAIN ANALYZE.
fn network_bytes(plan: &str) -> u64 {
    plan.split("shuffled over network=")
        .skip(1)
        .map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("unreadable network bytes in {plan}"))
        })
        .sum()
}

const SHUFFLED: [(&str, &str); 3] = [
    ("minispark.shuffle.partitions", "4"),
    // Every join shuffled: nothing small enough to broadcast.
    ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
    // Skewed partitions split by adaptive execution at any size.
    ("minispark.skew.skewedPartitionThresholdInBytes", "0"),
];

/// Driver and two executors on three hosts, all bound to 0.0.0.0, started
/// with the README's commands (one executor given the driver by IP, the
/// other by name): TPC-H joins and every skewed join type, their shuffles
/// crossing hosts, answer as single-node DataFusion does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_run_tpch_and_skewed_joins() {
    let mut lab = Lab::new(&["driver-host", "host-a", "host-b"]);
    let (driver, url) = lab.start_driver("driver-host", &[]).await;
    let a = lab.host("host-a").address.to_string();
    let b = lab.host("host-b").address.to_string();
    lab.start_executor(driver, "host-a", &url, &[], &[], &format!("{a}:"))
        .await;
    lab.start_executor(
        driver,
        "host-b",
        "http://driver-host:7077",
        &[],
        &[],
        &format!("{b}:"),
    )
    .await;

    let session = lab.session(&url, &SHUFFLED).await;
    for t in TPCH_TABLES {
        session
            .register_parquet(t, tpch_dir().join(t).to_str().unwrap())
            .await
            .unwrap();
    }
    for q in [3, 5] {
        let sql = tpch_query(q);
        let df = session.sql(&sql).await.unwrap();
        let (got, counters) = timed(&format!("q{q} across hosts"), df.collect_with_counters())
            .await
            .unwrap_or_else(|e| panic!("q{q} across hosts: {e}"));
        assert_result(
            &got,
            &tpch_oracle(&sql).await,
            format!("TPC-H q{q} on three hosts differs from DataFusion"),
        );
        assert!(!counters.had_failures(), "q{q}: {counters}");
    }
    // The shuffles really crossed hosts.
    let plan = timed(
        "EXPLAIN ANALYZE q5",
        session.sql(&tpch_query(5)).await.unwrap().explain_analyze(),
    )
    .await
    .unwrap();
    assert!(network_bytes(&plan) > 0, "no bytes crossed hosts:\n{plan}");

    let oracle = session_context(&Default::default()).unwrap();
    for join in skewed_joins() {
        // Salted by the hint for one join type, split by adaptive
        // execution for the others.
        let hint = if join.name == "INNER" {
            "/*+ SKEW('v', 'title_id') */"
        } else {
            ""
        };
        let sql = join.sql(hint);
        let df = session.sql(&sql).await.unwrap();
        let (got, counters) = timed(&format!("{} join across hosts", join.name), async {
            df.collect_with_counters().await
        })
        .await
        .unwrap_or_else(|e| panic!("{} join across hosts: {e}", join.name));
        assert_result(
            &got,
            &oracle_sql(&oracle, &join.sql("")).await,
            format!("the skewed {} join on three hosts", join.name),
        );
        assert!(!counters.had_failures(), "{}: {counters}", join.name);
        if join.name == "INNER" {
            assert!(counters.salted_sites >= 1, "{counters}");
        }
    }
    // The README's submit, from another host, with the driver by name:
    // the same rows as the DataFrame session's (itself checked above
    // against DataFusion).
    let sql = "SELECT c_mktsegment, count(*) AS n, sum(o_totalprice) AS total \
               FROM customer JOIN orders ON c_custkey = o_custkey GROUP BY 1 ORDER BY 1";
    let script = lab.work.path().join("job.sql");
    let ddl: String = ["customer", "orders"]
        .iter()
        .map(|t| {
            format!(
                "CREATE EXTERNAL TABLE {t} STORED AS PARQUET LOCATION '{}/';\n",
                tpch_dir().join(t).display()
            )
        })
        .collect();
    std::fs::write(
        &script,
        format!("SET minispark.sql.autoBroadcastJoinThreshold = -1;\n{ddl}{sql};\n"),
    )
    .unwrap();
    let out = lab.run(
        "host-a",
        &[
            "submit",
            script.to_str().unwrap(),
            "--master",
            "http://driver-host:7077",
            "--format",
            "csv",
        ],
    );
    assert!(
        out.status.success(),
        "submit across hosts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batches = timed("the same job by the session", async {
        session.sql(sql).await?.collect().await
    })
    .await
    .unwrap();
    let mut expected = vec![];
    minispark::output::write_result(
        &mut expected,
        &batches[0].schema(),
        &batches,
        minispark::output::Format::Csv,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);

    // No executor advertised an unspecified address.
    let registered: Vec<String> = lab
        .log(driver)
        .into_iter()
        .filter(|l| l.contains("executor registered"))
        .collect();
    assert_eq!(registered.len(), 2, "{registered:?}");
    assert!(
        registered.iter().all(|l| !l.contains("0.0.0.0")),
        "{registered:?}"
    );
}

/// A long job across hosts while a third executor joins (advertising itself
/// by host name) and another is killed: the answer stays right, the kill
/// landed (an executor lost, failed attempts), and the newcomer ran tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_joins_and_one_dies_mid_job_across_hosts() {
    let mut lab = Lab::new(&["driver-host", "host-a", "host-b", "host-c"]);
    let (driver, url) = lab
        .start_driver("driver-host", &["--heartbeat-timeout", "3"])
        .await;
    let a = lab.host("host-a").address.to_string();
    let b = lab.host("host-b").address.to_string();
    lab.start_executor(driver, "host-a", &url, &[], &[], &format!("{a}:"))
        .await;
    let exec_b = lab
        .start_executor(
            driver,
            "host-b",
            "http://driver-host:7077",
            &[],
            &[("RUST_LOG", "info")],
            &format!("{b}:"),
        )
        .await;

    let session = lab
        .session(
            &url,
            &[
                // Many short map tasks: host-b finishes some while most
                // are still to run.
                ("minispark.shuffle.partitions", "16"),
                ("minispark.sql.autoBroadcastJoinThreshold", "-1"),
            ],
        )
        .await;
    let sql = "SELECT o_orderpriority, l_returnflag, count(*), sum(l_quantity), avg(l_extendedprice) \
               FROM tpch.sf0_1.lineitem JOIN tpch.sf0_1.orders ON l_orderkey = o_orderkey \
               GROUP BY 1, 2";
    let started_before = lab
        .log(driver)
        .iter()
        .filter(|l| l.contains("job started"))
        .count();
    // The job runs in this task, next to what happens to the cluster (a
    // remote session's futures stay on their task).
    let done = std::sync::atomic::AtomicBool::new(false);
    let df = session.sql(sql).await.unwrap();
    let job = async {
        let r = timed(
            "a job surviving a killed executor across hosts",
            df.collect_with_counters(),
        )
        .await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let chaos = async {
        let mut seen = 0;
        for _ in 0..=started_before {
            let (at, _) = lab
                .wait_for_line(driver, seen, "the job's start", |l| {
                    l.contains("job started")
                })
                .await;
            seen = at + 1;
        }
        // A newcomer on a fourth host, bound and advertised by name: the
        // driver and the other executor resolve host-c to reach it.
        let exec_c = lab
            .start_executor(
                driver,
                "host-c",
                "http://driver-host:7077",
                &["--listen", "host-c:0", "--advertise", "host-c"],
                &[("RUST_LOG", "info")],
                "host-c:",
            )
            .await;
        // host-b dies once it holds shuffle output of the job, which the
        // job then recomputes elsewhere.
        lab.wait_for_line(exec_b, 0, "a task finished on host-b", |l| {
            l.contains("task finished")
        })
        .await;
        assert!(
            !done.load(Ordering::SeqCst),
            "the job ended before host-c joined and host-b was killed: make it longer"
        );
        lab.kill(exec_b);
        exec_c
    };
    let (result, exec_c) = tokio::join!(job, chaos);
    let (got, counters) = result.unwrap_or_else(|e| panic!("the job across hosts failed: {e}"));
    let oracle = session_context(&Default::default()).unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, sql).await,
        "a job across hosts with an executor joining and one killed",
    );
    // The kill landed while the job ran: the job saw it and recovered.
    assert!(
        counters.had_failures(),
        "the kill missed the job: {counters}"
    );
    assert!(counters.executors_lost >= 1, "{counters}");
    // Whether host-b's map outputs are recomputed or its running tasks only
    // retried depends on which stage it held work of when the kill landed
    // (both seen); either shows in the counters.
    assert!(
        counters.recomputed_map_outputs + counters.failed_attempts >= 1,
        "{counters}"
    );
    assert!(
        counters.task_attempts > counters.failed_attempts,
        "{counters}"
    );
    let ran = lab
        .log(exec_c)
        .iter()
        .filter(|l| l.contains("task finished"))
        .count();
    assert!(
        ran >= 1,
        "host-c joined but ran no task: {:?}",
        lab.log(exec_c)
    );
    let lost = lab.log(driver).join("\n");
    assert!(lost.contains("executor lost"), "{lost}");
    // The timeline, shown with --nocapture.
    for line in lab.log(driver) {
        if ["registered", "job started", "lost", "job complete"]
            .iter()
            .any(|w| line.contains(w))
        {
            println!("{line}");
        }
    }
    println!("{counters}; host-c ran {ran} tasks");

    // The cluster of host-a and host-c (by name) serves the next job.
    let skewed = &skewed_joins()[0];
    let df = session.sql(&skewed.sql("")).await.unwrap();
    let (got, counters) = timed("a skewed join after the kill", df.collect_with_counters())
        .await
        .unwrap();
    assert_result(
        &got,
        &oracle_sql(&oracle, &skewed.sql("")).await,
        "a skewed join on host-a and host-c",
    );
    assert_eq!(counters.executors_lost, 0, "{counters}");
}

/// Host names on one host, no namespaces: a driver bound to 0.0.0.0 never
/// prints 0.0.0.0, and `localhost` works for `--listen`, `--driver` and
/// `--master`.
#[test]
fn localhost_by_name_and_a_driver_on_every_interface() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Processes(vec![]);
    // Bound to every interface, port 0: the URL names a real address.
    let (url, _) = procs.driver(&["--listen", "0.0.0.0:0"]);
    let host = url
        .strip_prefix("http://")
        .and_then(|a| a.rsplit_once(':'))
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let ip: std::net::IpAddr = host.parse().unwrap_or_else(|_| panic!("{url}"));
    assert!(!ip.is_unspecified(), "{url}");
    assert!(!url.ends_with(":0"), "{url}");

    let (url, log) = procs.driver(&["--listen", "localhost:0"]);
    let port = url.rsplit(':').next().unwrap().to_string();
    let by_name = format!("http://localhost:{port}");
    let work = dir.path().join("e");
    procs.0.push(
        Command::new(BIN)
            .env("MINISPARK_SECRET", SECRET)
            .args(["executor", "--driver", &by_name, "--listen", "localhost:0"])
            .args(["--slots", "2", "--work-dir"])
            .arg(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + WAIT;
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("executor registered"))
    {
        assert!(Instant::now() < deadline, "no executor registered: {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = dir.path().join("q.sql");
    std::fs::write(
        &script,
        "SELECT n_regionkey, count(*) FROM tpch.sf0_01.nation GROUP BY 1 ORDER BY 1",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .env("MINISPARK_SECRET", SECRET)
        .args(["submit", script.to_str().unwrap(), "--master", &by_name])
        .args(["--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("submit to {by_name} took over {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Five regions of five nations each.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n_regionkey,count(*)\n0,5\n1,5\n2,5\n3,5\n4,5\n"
    );
}

/// Processes on this host, killed when dropped.
struct Processes(Vec<Child>);

impl Processes {
    /// Starts a driver; returns the URL it prints and its log so far and to come.
    fn driver(&mut self, args: &[&str]) -> (String, Arc<Mutex<Vec<String>>>) {
        let mut child = Command::new(BIN)
            .env("MINISPARK_SECRET", SECRET)
            .arg("driver")
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        self.0.push(child);
        let log = Arc::new(Mutex::new(vec![]));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let prefix = "minispark driver listening on ";
        let deadline = Instant::now() + WAIT;
        loop {
            let url = log
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(|u| u.trim().to_string()));
            if let Some(url) = url {
                return (url, log);
            }
            assert!(Instant::now() < deadline, "no URL printed: {log:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}
