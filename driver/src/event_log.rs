//! Event logs: a job's [`StatusEvent`]s as JSON lines, one file per job in
//! `minispark.eventLog.dir` (off by default, as Spark's
//! `spark.eventLog.enabled`), for the history server
//! (`minispark history --dir DIR`) to show after the driver is gone.
//!
//! A file is `<job id>.jsonl`: the executors known when the job started,
//! then the job's events in the order they happened, executors added and
//! lost while it ran included. Writing is buffered and never fails a job: a
//! write error is logged once and the rest of that log dropped.
//!
//! Reading ([`read_dir`]) never fails on a file's content: a line that does
//! not parse (a truncated file, a corrupt line) is reported as a problem
//! with its file and line number, and every line that parses is used.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::status_store::StatusEvent;

/// The file extension of event logs.
pub const EXTENSION: &str = "jsonl";

/// One job's event log being written.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl EventLog {
    /// Creates `dir/<job_id>.jsonl` (and `dir`).
    pub fn create(dir: &Path, job_id: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{job_id}.{EXTENSION}"));
        let file = File::create(&path)?;
        Ok(Self {
            path,
            out: Some(BufWriter::with_capacity(64 * 1024, file)),
        })
    }

    /// Appends one event as a line.
    pub fn write(&mut self, event: &StatusEvent) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let written = serde_json::to_writer(&mut *out, event)
            .map_err(std::io::Error::other)
            .and_then(|_| out.write_all(b"\n"));
        if let Err(e) = written {
            warn!(path = %self.path.display(), error = %e, "event log write failed: the rest of this job's log is dropped");
            self.out = None;
        }
    }

    /// Flushes the file (at the job's end).
    pub fn close(mut self) {
        if let Some(mut out) = self.out.take()
            && let Err(e) = out.flush()
        {
            warn!(path = %self.path.display(), error = %e, "event log flush failed");
        }
    }
}

/// What could be read from a directory of event logs.
#[derive(Debug, Default)]
pub struct ReadLogs {
    pub events: Vec<StatusEvent>,
    /// What could not be read, one sentence each, naming file and line.
    pub problems: Vec<String>,
    pub files: usize,
}

/// Reads every `*.jsonl` file of `dir`, oldest first (by name within the
/// same time), skipping and reporting what does not parse.
pub fn read_dir(dir: &Path) -> std::io::Result<ReadLogs> {
    let mut paths: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION) && p.is_file())
        .map(|p| {
            let t = p
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    paths.sort();
    let mut read = ReadLogs::default();
    for (_, path) in paths {
        read.files += 1;
        read_file(&path, &mut read);
    }
    Ok(read)
}

/// Reads one event log into `read`.
pub fn read_file(path: &Path, read: &mut ReadLogs) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            read.problems
                .push(format!("{}: cannot open: {e}", path.display()));
            return;
        }
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                read.problems.push(format!(
                    "{}: read error after line {number}: {e}",
                    path.display()
                ));
                break;
            }
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<StatusEvent>(text) {
            Ok(event) => read.events.push(event),
            Err(e) if !complete => read.problems.push(format!(
                "{}: line {number} is truncated (the file ends inside it): {e}",
                path.display()
            )),
            Err(e) => read.problems.push(format!(
                "{}: line {number} is not an event: {e}",
                path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_truncated_lines_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::create(dir.path(), "job-1").unwrap();
        let event = StatusEvent::ExecutorLost {
            executor_id: "e".into(),
            reason: "gone".into(),
            time_ms: 3,
        };
        log.write(&event);
        log.close();
        let path = dir.path().join("job-1.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not json\n{\"event\":\"JobEnd\",\"job_");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read.events, [event]);
        assert_eq!(read.files, 1);
        assert_eq!(read.problems.len(), 2, "{:?}", read.problems);
        assert!(read.problems[0].contains("line 2 is not an event"));
        assert!(read.problems[1].contains("line 3 is truncated"));
    }
}
