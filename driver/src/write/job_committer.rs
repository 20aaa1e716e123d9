//! The job commit, as an extension point: [`JobCommitter`] is what the
//! driver does with the files a write job's tasks wrote, once every task
//! succeeded (commit) or once the job failed or was cancelled (abort).
//!
//! ```text
//!  JobSession (driver/src/job.rs)
//!    plan_stages: DataSinkExec ─▶ FileWriteExec (one task per partition)
//!    run_write(job, committer, run the stage graph)
//!      ├─ tasks write <dest>/_minispark_staging/<write id>/task-<p>-<token>/...
//!      ├─ result rows: WrittenFile of exactly one attempt per partition
//!      ├─ ok:  committer.commit_job(&job, files)   (once)
//!      └─ err / cancelled / commit failed: committer.abort_job(&job)
//! ```
//!
//! [`committer_for`] picks the committer of a write from its operator's
//! commit target: the plain-files [`FileOutputCommitter`], or Delta Lake's
//! [`DeltaLogCommitter`], which records the same [`WrittenFile`]s as one
//! log entry (a table format such as Iceberg's `fast_append` adds its own
//! implementation the same way).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::common::{Result, internal_err};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::prelude::SessionContext;
use minispark_planner::stages::StageGraph;
use minispark_planner::write::staging::job_staging;
use minispark_planner::write::{CommitTarget, FileWriteExec, WrittenFile, rows_written};
use object_store::ObjectStore;
use object_store::path::Path;
use tracing::{info, warn};

use super::{DeltaLogCommitter, FileOutputCommitter};

/// One write job, as its committer sees it.
#[derive(Debug, Clone)]
pub struct WriteJob {
    /// The job's id: its staging folder and its files' names.
    pub write_id: String,
    /// The destination folder (`COPY ... TO`, the table's location).
    pub destination: ListingTableUrl,
    /// The store holding the destination, built from the session's
    /// settings (the same store the tasks wrote through).
    pub store: Arc<dyn ObjectStore>,
    /// The `PARTITIONED BY` columns, outermost first.
    pub partition_columns: Vec<String>,
    /// `parquet`, `csv` or `json`: the files' extension.
    pub file_extension: String,
}

impl WriteJob {
    /// The job of a write operator, with the destination's store from the
    /// driver's session.
    pub fn of(write: &FileWriteExec, ctx: &SessionContext) -> Result<Self> {
        let config = write.config();
        Ok(Self {
            write_id: write.write_id().to_string(),
            destination: write.destination().clone(),
            store: ctx.runtime_env().object_store(&config.object_store_url)?,
            partition_columns: config
                .table_partition_cols
                .iter()
                .map(|(c, _)| c.clone())
                .collect(),
            file_extension: config.file_extension.clone(),
        })
    }

    /// The job's staging folder (every task attempt's files are under it).
    pub fn staging(&self) -> Path {
        job_staging(self.destination.prefix(), &self.write_id)
    }

    /// The final location of a file at `relative` under the destination.
    pub fn final_location(&self, relative: &str) -> Result<Path> {
        let prefix = self.destination.prefix().as_ref().trim_end_matches('/');
        let full = if prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{prefix}/{relative}")
        };
        Ok(Path::parse(full)?)
    }
}

/// What a job commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitSummary {
    /// Files made visible.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What the driver does with a write job's files. See the module docs.
#[async_trait]
pub trait JobCommitter: std::fmt::Debug + Send + Sync {
    /// Called once, after every task of the job succeeded, with the files
    /// of exactly one attempt of every partition that wrote any (files of
    /// other attempts stay in the staging folder and are never passed).
    /// On an error the driver calls [`Self::abort_job`] next.
    async fn commit_job(&self, job: &WriteJob, files: Vec<WrittenFile>) -> Result<CommitSummary>;

    /// Called once when the job failed or was cancelled, or its commit
    /// failed: removes what the tasks wrote. Best effort: problems are
    /// logged, never returned (the job's own error is what the user sees).
    async fn abort_job(&self, job: &WriteJob);
}

/// The write operator at the top of `graph`'s result stage, when the
/// graph is a distributed write.
pub fn write_of(graph: &StageGraph) -> Option<&FileWriteExec> {
    graph
        .final_stage()
        .writer()
        .input()
        .downcast_ref::<FileWriteExec>()
}

/// The committer of a write: a Delta table's log
/// ([`DeltaLogCommitter`]), an Iceberg append committed as a new snapshot
/// ([`super::IcebergCommitter`]), or plain files renamed into place (no
/// `_SUCCESS` marker: see [`FileOutputCommitter`]).
pub fn committer_for(write: &FileWriteExec) -> Arc<dyn JobCommitter> {
    match write.commit_target() {
        CommitTarget::Delta(delta) => Arc::new(DeltaLogCommitter {
            write: delta.clone(),
        }),
        CommitTarget::Iceberg(append) => Arc::new(super::IcebergCommitter {
            append: Arc::clone(append),
        }),
        CommitTarget::IcebergDecoded => Arc::new(Uncommittable),
        CommitTarget::Files => Arc::new(FileOutputCommitter {
            success_marker: false,
        }),
    }
}

/// The committer of a write whose commit cannot be made here (an Iceberg
/// append whose plan was decoded from bytes, without the table's
/// metadata): every commit fails, and the tasks' files are removed.
#[derive(Debug)]
struct Uncommittable;

#[async_trait]
impl JobCommitter for Uncommittable {
    async fn commit_job(&self, job: &WriteJob, _files: Vec<WrittenFile>) -> Result<CommitSummary> {
        internal_err!(
            "the Iceberg append to '{}' came as a serialized plan, without the table's \
             metadata to commit with: only the driver that planned it can commit it",
            job.destination
        )
    }

    async fn abort_job(&self, job: &WriteJob) {
        FileOutputCommitter {
            success_marker: false,
        }
        .abort_job(job)
        .await
    }
}

/// Runs a write job: `run` runs the job's stage graph and returns its
/// result rows (what the tasks wrote); then the job is committed once.
/// Returns the rows written and what the commit did. Whatever fails (the
/// job, reading its result, the commit), or when this future is dropped
/// before it ends (the job cancelled), the job is aborted.
pub async fn run_write<F>(
    job: WriteJob,
    committer: Arc<dyn JobCommitter>,
    run: F,
) -> Result<(u64, CommitSummary)>
where
    F: Future<Output = Result<Vec<RecordBatch>>>,
{
    let mut guard = AbortOnDrop {
        pending: Some((Arc::clone(&committer), job.clone())),
    };
    let committed = async {
        let batches = run.await?;
        let mut files = vec![];
        for batch in &batches {
            files.extend(WrittenFile::from_batch(batch)?);
        }
        check_one_attempt_per_partition(&job, &files)?;
        let rows = rows_written(&batches)?;
        let summary = committer.commit_job(&job, files).await?;
        Ok((rows, summary))
    }
    .await;
    match committed {
        Ok((rows, summary)) => {
            guard.pending = None;
            info!(
                write_id = job.write_id,
                destination = %job.destination,
                files = summary.files,
                bytes = summary.bytes,
                rows,
                "write job committed"
            );
            Ok((rows, summary))
        }
        Err(e) => {
            if let Some((committer, job)) = guard.pending.take() {
                warn!(
                    write_id = job.write_id,
                    destination = %job.destination,
                    error = %e,
                    "write job failed: nothing committed, removing its staging files"
                );
                committer.abort_job(&job).await;
            }
            Err(e)
        }
    }
}

/// The files of one partition must all come from one task attempt's
/// staging folder: the commit never mixes two attempts.
fn check_one_attempt_per_partition(job: &WriteJob, files: &[WrittenFile]) -> Result<()> {
    let staging = format!("{}/", job.staging().as_ref());
    let mut folders: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    for f in files {
        let Some(inside) = f.staged_path.strip_prefix(&staging) else {
            return internal_err!(
                "a write task reported {} outside the job's staging folder {staging}",
                f.staged_path
            );
        };
        let attempt = inside.split('/').next().unwrap_or_default();
        folders.entry(f.partition).or_default().insert(attempt);
    }
    if let Some((partition, attempts)) = folders.iter().find(|(_, a)| a.len() > 1) {
        return internal_err!(
            "partition {partition} of write {} has files of {} attempts: {attempts:?}",
            job.write_id,
            attempts.len()
        );
    }
    Ok(())
}

/// Aborts the write when dropped before it ended (its job cancelled: the
/// client went away, the statement was dropped).
struct AbortOnDrop {
    pending: Option<(Arc<dyn JobCommitter>, WriteJob)>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some((committer, job)) = self.pending.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            warn!(
                write_id = job.write_id,
                "write job dropped outside a runtime: its staging files stay"
            );
            return;
        };
        handle.spawn(async move {
            warn!(
                write_id = job.write_id,
                destination = %job.destination,
                "write job cancelled: nothing committed, removing its staging files"
            );
            committer.abort_job(&job).await;
        });
    }
}
