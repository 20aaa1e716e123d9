//! An embedded cluster: the driver in this process, executors as child
//! processes of the same binary, all on loopback.
//!
//! The cluster makes a random secret of its own (`proto::auth`): every
//! request between its processes proves it, so even its loopback ports are
//! closed to other users of the machine. Child executors get it through
//! their environment (`MINISPARK_SECRET`, readable only by the same user),
//! never on their command line, which `ps` shows to everyone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use minispark_driver::{Driver, DriverOptions};
use minispark_executor::ExecutorOptions;
use minispark_proto::Security;
use minispark_proto::auth::{SECRET_ENV, Secret};

/// How long an embedded cluster's executors wait for their silent driver
/// before they exit: it lives in this process and never restarts, so
/// executors left by a killed process go soon.
const EXECUTOR_DRIVER_TIMEOUT: Duration = Duration::from_secs(15);

/// How to start a [`LocalCluster`].
#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    pub executors: usize,
    /// Task slots per executor.
    pub slots: usize,
    /// The `minispark` binary to run executors with.
    pub binary: PathBuf,
    pub heartbeat_timeout: Duration,
    /// Run executors inside this process (each with its own gRPC server,
    /// task runtime and work dir) instead of as child processes of `binary`.
    /// For programs that use the DataFrame API and are not the `minispark`
    /// binary, as in Spark's local mode.
    pub in_process: bool,
    /// Bytes each executor's tasks may hold at once (`--memory`);
    /// unbounded when `None`.
    pub memory: Option<u64>,
    /// Where the driver's web UI listens, `HOST:PORT` (`--ui`); `None`: no
    /// UI. See `minispark_driver::ui`.
    pub ui: Option<String>,
}

impl LocalClusterOptions {
    /// `executors` executors of the current binary, slots from the CPU count.
    pub fn new(executors: usize) -> Result<Self> {
        let binary = std::env::current_exe().map_err(|e| {
            DataFusionError::Execution(format!("cannot find the minispark binary: {e}"))
        })?;
        Ok(Self {
            executors,
            slots: default_slots(executors),
            binary,
            heartbeat_timeout: Duration::from_secs(10),
            in_process: false,
            memory: None,
            ui: None,
        })
    }

    /// These options with what `settings` say about the cluster's
    /// processes: `minispark.executor.memory`. Every setting is checked.
    pub fn with_settings(mut self, settings: &HashMap<String, String>) -> Result<Self> {
        let config = minispark_planner::session::session_config(settings)?;
        let memory = minispark_planner::config::minispark_config(config.options()).executor_memory;
        self.memory = (memory > 0).then_some(memory);
        Ok(self)
    }
}

/// Slots per executor so that all executors together have one per core (at
/// least 2 each, so a task waiting on the network does not idle a core).
pub fn default_slots(executors: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    cores.div_ceil(executors.max(1)).max(2)
}

/// A driver plus executor processes; dropping it stops the executors and
/// removes their work dirs.
pub struct LocalCluster {
    pub driver: Driver,
    children: Vec<Child>,
    /// The cluster's own secret, as text (what child executors get).
    secret: String,
    /// Executors running inside this process (`in_process`).
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
    work_dir: tempfile::TempDir,
}

impl LocalCluster {
    pub async fn start(options: LocalClusterOptions) -> Result<Self> {
        if options.executors == 0 {
            return Err(DataFusionError::Configuration(
                "a local cluster needs at least one executor: use local[N] with N >= 1".into(),
            ));
        }
        minispark_proto::limits::check_slots(options.slots.max(1) as u64)
            .map_err(DataFusionError::Configuration)?;
        let (secret, secret_text) = Secret::random()?;
        let security = Security::with_secret(secret);
        let driver = Driver::start(DriverOptions {
            listen: "127.0.0.1:0".into(),
            heartbeat_timeout: options.heartbeat_timeout,
            security: security.clone(),
            ui_listen: options.ui.clone(),
            ..Default::default()
        })
        .await?;
        let work_dir = tempfile::Builder::new()
            .prefix("minispark-")
            .tempdir()
            .map_err(|e| DataFusionError::Execution(format!("cannot create a work dir: {e}")))?;
        let mut driver = driver;
        // Every process of an embedded cluster is on this machine: shuffle
        // blocks never cross a real network, so compressing them only costs
        // CPU (TPC-H q5 at SF1: 0.80 s with lz4, 0.51 s without).
        driver
            .default_settings
            .insert("minispark.shuffle.compression".into(), "none".into());
        let mut cluster = Self {
            driver,
            children: vec![],
            secret: secret_text,
            tasks: vec![],
            work_dir,
        };
        for i in 0..options.executors {
            let dir = cluster.work_dir.path().join(format!("executor-{i}"));
            if options.in_process {
                let executor = minispark_executor::run_executor(ExecutorOptions {
                    driver_url: cluster.driver.url(),
                    listen: "127.0.0.1:0".into(),
                    advertise: None,
                    slots: options.slots,
                    work_dir: dir,
                    id: Some(format!("exec-{i}")),
                    security: security.clone(),
                    insecure: false,
                    driver_timeout: EXECUTOR_DRIVER_TIMEOUT,
                    memory: options.memory,
                });
                cluster.tasks.push(tokio::spawn(executor));
                continue;
            }
            let child = Command::new(&options.binary)
                .arg("executor")
                .arg("--driver")
                .arg(cluster.driver.url())
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--slots")
                .arg(options.slots.to_string())
                .arg("--work-dir")
                .arg(&dir)
                .arg("--id")
                .arg(format!("exec-{i}"))
                .arg("--driver-timeout")
                .arg(EXECUTOR_DRIVER_TIMEOUT.as_secs().to_string())
                .args(
                    options
                        .memory
                        .iter()
                        .flat_map(|m| ["--memory".to_string(), m.to_string()]),
                )
                // The secret through the environment: `ps` shows arguments.
                .env(SECRET_ENV, &cluster.secret)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| {
                    DataFusionError::Execution(format!(
                        "cannot start executor process {}: {e}",
                        options.binary.display()
                    ))
                })?;
            cluster.children.push(child);
        }
        if !cluster
            .driver
            .cluster
            .wait_for_executors(options.executors, Duration::from_secs(60))
            .await
        {
            let (n, _) = cluster.driver.cluster.size();
            return Err(DataFusionError::Execution(format!(
                "only {n} of {} executors registered within 60s",
                options.executors
            )));
        }
        Ok(cluster)
    }

    /// The cluster's secret, for clients of its driver in other processes
    /// (`MINISPARK_SECRET`); never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The secret and TLS settings of a client of this cluster's driver.
    pub fn security(&self) -> &Security {
        &self.driver.security
    }

    /// The folder holding every executor's work dir (`executor-<i>/`).
    pub fn work_dir(&self) -> &std::path::Path {
        self.work_dir.path()
    }

    /// The process ids of the executor processes (none when they run in
    /// this process): for benchmarks that read their peak memory.
    pub fn executor_pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Kills executor `i` (for failure tests and demos).
    pub fn kill_executor(&mut self, i: usize) -> Result<()> {
        if let Some(task) = self.tasks.get(i) {
            task.abort();
            return Ok(());
        }
        let child = self
            .children
            .get_mut(i)
            .ok_or_else(|| DataFusionError::Execution(format!("no executor {i}")))?;
        child
            .kill()
            .map_err(|e| DataFusionError::Execution(format!("cannot kill executor {i}: {e}")))?;
        let _ = child.wait();
        Ok(())
    }
}

// Not derived: the secret must not reach a log.
impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("driver", &self.driver)
            .field("children", &self.children)
            .field("tasks", &self.tasks)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}
