//! Child processes of the tests: every wait bounded, and pipes drained
//! while waiting (a child blocked on a full pipe would otherwise look like
//! a hung one).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits at most `limit` for `child` to exit; after that it is killed and
/// the test fails, naming `what`.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` with stdout and stderr piped and drained while it runs,
/// waiting at most `limit` for it ([`wait_bounded`]).
pub fn output_bounded(command: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = vec![];
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child, limit, what);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Child processes, each with a name for messages; all killed and reaped
/// when this is dropped (also when a test panics).
#[derive(Default)]
pub struct Processes(pub Vec<(String, Child)>);

impl Processes {
    /// One process, `name`d.
    pub fn of(name: impl Into<String>, child: Child) -> Self {
        Self(vec![(name.into(), child)])
    }

    pub fn push(&mut self, name: impl Into<String>, child: Child) {
        self.0.push((name.into(), child));
    }

    /// Panics naming every process that has exited.
    pub fn assert_alive(&mut self) {
        let dead: Vec<String> = self
            .0
            .iter_mut()
            .filter_map(|(name, c)| match c.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(format!("{name} exited: {status}")),
                Err(e) => Some(format!("{name}: {e}")),
            })
            .collect();
        assert!(dead.is_empty(), "processes died: {dead:?}");
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
        }
        for (_, c) in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// The lines `pipe` (a child's stderr, say) writes, collected by a thread
/// as they come.
pub fn collect_lines(pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(vec![]));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Waits at most `limit` for a line of `lines` that `pred` accepts and
/// returns it; the test fails naming `what` and showing the lines if none
/// comes.
pub fn wait_for_line(
    lines: &Mutex<Vec<String>>,
    limit: Duration,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(line) = lines.lock().unwrap().iter().find(|l| pred(l)) {
            return line.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: no such line within {limit:?}; the lines:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
