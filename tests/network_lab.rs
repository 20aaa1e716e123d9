//! A lab of "hosts" on one machine: Linux network namespaces joined by a
//! bridge, each with its own interfaces, addresses and ports, and the
//! minispark processes started in them. Used by the tests whose processes
//! must live on different hosts (`hosts`, `object_store`).
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
//! iproute2's `ip`; without them a lab fails to build and says so.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minispark::Session;

use crate::common::timed;
use crate::processes::{collect_lines, output_bounded};

pub const BIN: &str = env!("CARGO_BIN_EXE_minispark");
/// The cluster secret every process of these tests is given (a driver or
/// executor listening on 0.0.0.0 refuses to start without one), through
/// `MINISPARK_SECRET` as the README's commands do.
pub const SECRET: &str = "hosts-test-secret-6b1f0c0e2d9a4e57";

/// Prefix of every namespace these tests create (stale ones, of a test
/// process that died, are removed by the next run).
const PREFIX: &str = "mshosts-";

/// Bound for one `ip` command and for each wait on a process.
const IP_TIMEOUT: Duration = Duration::from_secs(30);
pub const WAIT: Duration = Duration::from_secs(90);

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
pub struct Host {
    pub name: &'static str,
    pub namespace: String,
    pub address: Ipv4Addr,
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
pub struct Lab {
    subnet: u8,
    switch: Option<String>,
    root_link: Option<String>,
    hosts: Vec<Host>,
    processes: Vec<Process>,
    /// Namespaces created, deleted at the end.
    namespaces: Vec<String>,
    pub work: tempfile::TempDir,
}

static LABS: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    /// `names[i]` gets address 10.77.N.(10 + i); this process gets 10.77.N.1.
    pub fn new(names: &[&'static str]) -> Lab {
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

    /// This process's address on the bridge (10.77.N.1): a server this
    /// process starts there is reachable from every host.
    pub fn root_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 1)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    pub fn work_dir(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Starts `minispark args...` in host `name` (`ip netns exec`, which
    /// execs: the child is the minispark process itself). Returns its index.
    pub fn spawn(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) -> usize {
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
        let log = collect_lines(child.stderr.take().unwrap());
        self.processes.push(Process {
            what: format!("{name}: minispark {}", args.join(" ")),
            child,
            log,
        });
        self.processes.len() - 1
    }

    /// Runs `minispark args...` in host `name` to completion (bounded).
    pub fn run(&self, name: &str, args: &[&str]) -> std::process::Output {
        let ns = &self.host(name).namespace;
        output_bounded(
            Command::new("ip")
                .args(["netns", "exec", ns, BIN])
                .args(args)
                .env("NO_COLOR", "1")
                .env("MINISPARK_SECRET", SECRET)
                .stdin(Stdio::null()),
            WAIT,
            &format!("`minispark {}` in {name}", args.join(" ")),
        )
    }

    /// The lines process `i` has written to stderr so far.
    pub fn log(&self, i: usize) -> Vec<String> {
        self.processes[i].log.lock().unwrap().clone()
    }

    /// Waits (bounded) for a line of process `i` that `pred` accepts, at
    /// index `from` or later; returns it and its index.
    pub async fn wait_for_line(
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
    pub async fn start_driver(&mut self, host: &str, extra: &[&str]) -> (usize, String) {
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
    pub async fn start_executor(
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
    pub fn kill(&mut self, i: usize) {
        let p = &mut self.processes[i];
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }

    /// A DataFrame session of this process on the driver at `url` (over the
    /// bridge), with `settings`.
    pub async fn session(&self, url: &str, settings: &[(&str, &str)]) -> Session {
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
