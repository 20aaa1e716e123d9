//! The history server: the web UI over jobs replayed from their event logs
//! (`minispark history --dir DIR`; Spark's history server).
//!
//! Whatever the files hold, it starts: lines that do not parse are skipped
//! and listed (on stderr and at the top of the Jobs page) with file and line
//! number, and a job whose log stops before its end is shown as far as it
//! got and named as incomplete.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use tokio::task::JoinHandle;

use super::UiSource;
use crate::event_log::read_dir;
use crate::status_store::StatusStore;

/// Jobs the history server keeps at most.
pub const HISTORY_RETAINED_JOBS: usize = 10_000;

/// A running history server.
#[derive(Debug)]
pub struct History {
    pub address: SocketAddr,
    pub server: JoinHandle<()>,
    /// What could not be read.
    pub problems: Vec<String>,
    pub jobs: usize,
    pub files: usize,
}

/// The store and problems of the event logs in `dir`.
pub fn load(dir: &Path) -> Result<(Arc<StatusStore>, Vec<String>, usize)> {
    let read = read_dir(dir).map_err(|e| {
        DataFusionError::Execution(format!(
            "cannot read the event log directory {}: {e}",
            dir.display()
        ))
    })?;
    let store = Arc::new(StatusStore::new(HISTORY_RETAINED_JOBS));
    store.replay(read.events);
    let mut problems = read.problems;
    for job in store.job_summaries() {
        if job.completed_ms.is_none() {
            problems.push(format!(
                "job {}: its event log ends before the job did (truncated, or its driver stopped): \
                 shown as far as it got",
                job.job_id
            ));
        }
    }
    Ok((store, problems, read.files))
}

/// Reads `dir` and serves its jobs' UI on `listen`.
pub async fn start(dir: &Path, listen: &str) -> Result<History> {
    let (store, problems, files) = load(dir)?;
    let jobs = store.job_summaries().len();
    let (address, server) =
        super::start(listen, UiSource::history(store, problems.clone())).await?;
    Ok(History {
        address,
        server,
        problems,
        jobs,
        files,
    })
}
