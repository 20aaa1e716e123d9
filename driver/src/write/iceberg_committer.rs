//! The Iceberg job commit: the files of a write job become one appended
//! snapshot of the table (`minispark_iceberg::fast_append`), committed
//! once, by the driver, through the table's folder catalog
//! (`minispark_iceberg::folder_catalog`: put-if-absent of the next
//! metadata version, so two writers never both win).
//!
//! The tasks wrote Iceberg data files (Parquet with the table's field
//! ids) into the job's staging folder under the table's `data/`; the
//! commit moves the files of one attempt per partition to
//! `data/<partition path>/` and appends them. A failed commit deletes the
//! files it moved; an aborted job's staging folder is removed as for
//! plain files ([`FileOutputCommitter`]), so a failed or cancelled job
//! leaves neither a snapshot nor a file.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use minispark_iceberg::IcebergAppend;
use minispark_iceberg::fast_append::{StagedDataFile, commit_append};
use minispark_planner::write::WrittenFile;
use object_store::path::Path;
use tracing::info;

use super::FileOutputCommitter;
use super::job_committer::{CommitSummary, JobCommitter, WriteJob};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct IcebergCommitter {
    pub append: Arc<IcebergAppend>,
}

#[async_trait]
impl JobCommitter for IcebergCommitter {
    async fn commit_job(&self, job: &WriteJob, files: Vec<WrittenFile>) -> Result<CommitSummary> {
        let staged = files
            .iter()
            .map(|f| -> Result<StagedDataFile> {
                Ok(StagedDataFile {
                    staged: Path::parse(&f.staged_path)?,
                    task: f.partition,
                    bytes: f.bytes,
                    rows: f.rows.ok_or_else(|| {
                        DataFusionError::Internal(format!(
                            "a write task did not report the rows of {}",
                            f.staged_path
                        ))
                    })?,
                    partition_values: f.partition_values.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The table's metadata is in the same store as its data files.
        let registry = DefaultObjectStoreRegistry::new();
        let store_url = job.destination.object_store();
        registry.register_store(store_url.as_ref(), Arc::clone(&job.store));
        let appended = commit_append(
            Arc::new(registry),
            Arc::clone(&job.store),
            job.destination.prefix(),
            &self.append,
            &job.write_id,
            staged,
        )
        .await?;
        info!(
            table = self.append.location,
            snapshot = appended.snapshot_id,
            metadata = appended.metadata_file,
            files = appended.files,
            "Iceberg append committed"
        );
        // Only other attempts' files are left in the staging folder.
        FileOutputCommitter::default().abort_job(job).await;
        Ok(CommitSummary {
            files: appended.files,
            bytes: appended.bytes,
        })
    }

    async fn abort_job(&self, job: &WriteJob) {
        FileOutputCommitter::default().abort_job(job).await;
    }
}
