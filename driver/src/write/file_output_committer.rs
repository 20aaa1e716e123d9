//! The plain-files job commit (Spark's `FileOutputCommitter` under
//! `HadoopMapReduceCommitProtocol`): every committed file is renamed from
//! its task attempt's staging folder to its final name
//! (`[col=v/]part-00003-<write id>.c000.<ext>`), and the job's staging
//! folder is removed.
//!
//! Spark also writes an empty `_SUCCESS` file (Hadoop's readers skip
//! `_`-prefixed names). [`FileOutputCommitter::success_marker`] is off:
//! DataFusion's `CREATE EXTERNAL TABLE` over a folder reads every file in
//! it (its extension filter is empty for a folder), so the marker would be
//! read as an empty data file, and a `PARTITIONED BY` table's partition
//! inference fails on a file outside the `col=value/` folders ("Found
//! mixed partition values on disk"). It can be turned on once readers skip
//! `_`-prefixed files.
//!
//! A rename is `rename(2)` on a local file system and the store's rename
//! elsewhere (S3 and GCS: a copy then a delete; Azure: a rename). If a
//! rename fails midway, the files already moved are deleted again (best
//! effort) and the job fails: as Spark's v1 commit, a commit is not
//! atomic across files on object stores, but it never leaves a partial
//! result on an error it sees.

use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result};
use futures::TryStreamExt;
use minispark_planner::write::WrittenFile;
use minispark_planner::write::staging::{STAGING_DIR, SUCCESS_MARKER};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tracing::warn;

use super::job_committer::{CommitSummary, JobCommitter, WriteJob};

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileOutputCommitter {
    /// Write `_SUCCESS` in the destination once every file is in place
    /// (Spark's `mapreduce.fileoutputcommitter.marksuccessfuljobs`): off,
    /// see the module docs.
    pub success_marker: bool,
}

#[async_trait]
impl JobCommitter for FileOutputCommitter {
    async fn commit_job(&self, job: &WriteJob, files: Vec<WrittenFile>) -> Result<CommitSummary> {
        let mut moved: Vec<Path> = Vec::with_capacity(files.len());
        let mut summary = CommitSummary::default();
        let result = async {
            for file in &files {
                let from = Path::parse(&file.staged_path)?;
                let to = job.final_location(&file.final_path)?;
                job.store.rename(&from, &to).await.map_err(|e| {
                    DataFusionError::ObjectStore(Box::new(e)).context(format!(
                        "cannot commit the write to '{}': moving {from} to {to} failed",
                        job.destination
                    ))
                })?;
                moved.push(to);
                summary.files += 1;
                summary.bytes += file.bytes;
            }
            if self.success_marker {
                let marker = job.final_location(SUCCESS_MARKER)?;
                job.store
                    .put(&marker, PutPayload::default())
                    .await
                    .map_err(|e| {
                        DataFusionError::ObjectStore(Box::new(e)).context(format!(
                            "cannot commit the write to '{}': writing {SUCCESS_MARKER} failed",
                            job.destination
                        ))
                    })?;
            }
            Ok::<_, DataFusionError>(())
        }
        .await;
        if let Err(e) = result {
            for path in &moved {
                if let Err(err) = job.store.delete(path).await {
                    warn!(%path, error = %err, "cannot remove a file of a failed commit");
                }
            }
            return Err(e);
        }
        remove_staging_now_and_later(job).await;
        Ok(summary)
    }

    async fn abort_job(&self, job: &WriteJob) {
        remove_staging_now_and_later(job).await;
    }
}

/// How long after the job ends its staging folder is removed a second
/// time: an attempt the scheduler cancelled (the job failed, a speculative
/// copy lost) may still be finishing a file when the first pass runs.
pub const STAGING_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// [`remove_staging`] now, and again after [`STAGING_GRACE`].
pub(crate) async fn remove_staging_now_and_later(job: &WriteJob) {
    remove_staging(job).await;
    let job = job.clone();
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            tokio::time::sleep(STAGING_GRACE).await;
            remove_staging(&job).await;
        });
    }
}

/// Removes the job's staging folder: every object under it, and on a
/// local file system the folders too (and `_minispark_staging` itself
/// when no other write uses it). Best effort: problems are logged.
pub async fn remove_staging(job: &WriteJob) {
    let staging = job.staging();
    let listed: Result<Vec<_>, _> = job.store.list(Some(&staging)).try_collect().await;
    match listed {
        Ok(objects) => {
            for object in objects {
                if let Err(e) = job.store.delete(&object.location).await {
                    warn!(path = %object.location, error = %e, "cannot remove a staged file");
                }
            }
        }
        Err(e) => warn!(%staging, error = %e, "cannot list the write's staging folder"),
    }
    if job.destination.scheme() == "file" {
        let url: &url::Url = job.destination.as_ref();
        if let Ok(dest) = url.to_file_path() {
            let all_staging = dest.join(STAGING_DIR);
            let dir = all_staging.join(&job.write_id);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(dir = %dir.display(), error = %e, "cannot remove the write's staging folder");
            }
            // Only when empty: another write may be using it.
            let _ = std::fs::remove_dir(&all_staging);
        }
    }
}
