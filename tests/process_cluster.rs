//! A cluster whose executor processes the test starts, kills (SIGKILL) and
//! replaces one by one, each with an environment of its own (the test-only
//! straggler of `minispark_executor::straggler_faults`, say): the driver runs
//! in the test process, executors are processes of the freshly built
//! binary. Dropping it kills every executor.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use minispark::driver::job::JobSession;
use minispark::driver::{Driver, DriverOptions};
use minispark::proto::Security;
use minispark::proto::auth::{SECRET_ENV, Secret};

use crate::processes::Processes;

pub struct ProcessCluster {
    pub driver: Driver,
    secret: String,
    executors: Processes,
    work: tempfile::TempDir,
    started: usize,
}

impl ProcessCluster {
    /// A driver (executors silent for `heartbeat_timeout` are lost) with no
    /// executor yet.
    pub async fn start(heartbeat_timeout: Duration) -> Self {
        Self::start_with_ui(heartbeat_timeout, None).await
    }

    /// [`Self::start`], the driver serving its web UI at `ui` (HOST:PORT).
    pub async fn start_with_ui(heartbeat_timeout: Duration, ui: Option<&str>) -> Self {
        let (secret, text) = Secret::random().unwrap();
        let driver = Driver::start(DriverOptions {
            listen: "127.0.0.1:0".into(),
            heartbeat_timeout,
            heartbeat_interval: Duration::from_millis(250),
            security: Security::with_secret(secret),
            ui_listen: ui.map(str::to_string),
            ..Default::default()
        })
        .await
        .expect("driver starts");
        Self {
            driver,
            secret: text,
            executors: Processes::default(),
            work: tempfile::tempdir().unwrap(),
            started: 0,
        }
    }

    /// Starts an executor process with `slots` slots and `env`; returns its
    /// id. It registers on its own: see [`Self::wait_for_executors`].
    pub fn spawn_executor(&mut self, slots: usize, env: &[(&str, &str)]) -> String {
        self.spawn_executor_with(slots, env, &[], Stdio::null())
    }

    /// [`Self::spawn_executor`] with `args` added to its command line and
    /// its stderr going to `stderr`.
    pub fn spawn_executor_with(
        &mut self,
        slots: usize,
        env: &[(&str, &str)],
        args: &[&str],
        stderr: Stdio,
    ) -> String {
        let id = format!("exec-{}", self.started);
        self.started += 1;
        let dir: PathBuf = self.work.path().join(&id);
        let mut command = Command::new(env!("CARGO_BIN_EXE_minispark"));
        command
            .args(["executor", "--driver", &self.driver.url()])
            .args(["--listen", "127.0.0.1:0", "--slots", &slots.to_string()])
            .arg("--work-dir")
            .arg(&dir)
            .args(["--id", &id])
            .args(args)
            .env(SECRET_ENV, &self.secret)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start executor {id}: {e}"));
        self.executors.push(id.clone(), child);
        id
    }

    /// Executor `id`'s stderr pipe (when it was spawned with
    /// `Stdio::piped()`), for tests that read what it prints.
    pub fn take_stderr(&mut self, id: &str) -> Option<std::process::ChildStderr> {
        self.executors
            .0
            .iter_mut()
            .find(|(name, _)| name == id)
            .and_then(|(_, child)| child.stderr.take())
    }

    /// Waits (at most a minute) until exactly the executors of `ids` are
    /// registered and alive in the driver's view.
    pub async fn wait_for_executors(&self, ids: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let live = self.driver.cluster.live_ids();
            if ids.iter().all(|id| live.contains(id)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "executors {ids:?} did not register within a minute; live: {live:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs executor `id` and reaps it.
    pub fn kill(&mut self, id: &str) {
        let (_, child) = self
            .executors
            .0
            .iter_mut()
            .find(|(name, _)| name == id)
            .unwrap_or_else(|| panic!("no executor {id}"));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A session of the driver with `settings`.
    pub fn session(&self, settings: &[(&str, &str)]) -> JobSession {
        let settings: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.driver.session(&settings).expect("session")
    }

    /// The executor processes still running.
    pub fn running_executors(&mut self) -> usize {
        self.executors
            .0
            .iter_mut()
            .map(|(_, c)| c.try_wait())
            .filter(|status| matches!(status, Ok(None)))
            .count()
    }
}
