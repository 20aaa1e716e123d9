//! The job commit of a write to a Delta table: the files every task wrote
//! are moved into the table folder under their final names, then ONE log
//! entry records them (`minispark_delta::commit`): `add` actions for the
//! new files, `remove` actions for every file of the version read when the
//! write overwrites, protocol and metaData when it creates the table.
//!
//! The log entry is written with put-if-absent: when another writer
//! committed that version first, the job fails with a "concurrent commit"
//! error, the moved files are deleted again and the staging folder is
//! removed, so nothing of the job stays (moved files no log entry names
//! would be invisible to readers anyway; they are removed to keep the
//! folder clean). A job that failed or was cancelled never reaches the
//! commit: its abort removes the staging folder, as for plain files.

use async_trait::async_trait;
use datafusion::common::{DataFusionError, Result};
use minispark_delta::DeltaWrite;
use minispark_delta::commit::{DataFile, commit_write, folder_value};
use minispark_planner::write::WrittenFile;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use tracing::{info, warn};

use super::file_output_committer::remove_staging_now_and_later;
use super::job_committer::{CommitSummary, JobCommitter, WriteJob};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct DeltaLogCommitter {
    /// The table, mode and version the write was planned against.
    pub write: DeltaWrite,
}

/// What the log records of one written file (its path relative to the
/// table root, its partition values as the folder names spell them,
/// decoded).
fn data_file(file: &WrittenFile) -> DataFile {
    DataFile {
        path: file.final_path.clone(),
        partition_values: file
            .partition_values
            .iter()
            .map(|(c, v)| (c.clone(), Some(folder_value(v))))
            .collect(),
        size: file.bytes,
        rows: file.rows,
    }
}

#[async_trait]
impl JobCommitter for DeltaLogCommitter {
    async fn commit_job(&self, job: &WriteJob, files: Vec<WrittenFile>) -> Result<CommitSummary> {
        let mut moved: Vec<Path> = Vec::with_capacity(files.len());
        let mut summary = CommitSummary::default();
        let result = async {
            for file in &files {
                let from = Path::parse(&file.staged_path)?;
                let to = job.final_location(&file.final_path)?;
                job.store.rename(&from, &to).await.map_err(|e| {
                    DataFusionError::ObjectStore(Box::new(e)).context(format!(
                        "cannot commit the write to Delta table '{}': moving {from} to {to} failed",
                        self.write.location
                    ))
                })?;
                moved.push(to);
                summary.files += 1;
                summary.bytes += file.bytes;
            }
            let data_files: Vec<DataFile> = files.iter().map(data_file).collect();
            commit_write(
                std::sync::Arc::clone(&job.store),
                job.destination.prefix(),
                &self.write,
                &data_files,
            )
            .await
        }
        .await;
        match result {
            Ok(version) => {
                info!(
                    write_id = job.write_id,
                    table = self.write.location,
                    version,
                    files = summary.files,
                    "Delta write committed"
                );
                remove_staging_now_and_later(job).await;
                Ok(summary)
            }
            Err(e) => {
                for path in &moved {
                    if let Err(err) = job.store.delete(path).await {
                        warn!(%path, error = %err, "cannot remove a file of a failed Delta commit");
                    }
                }
                Err(e)
            }
        }
    }

    async fn abort_job(&self, job: &WriteJob) {
        remove_staging_now_and_later(job).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::RecordBatch;
    use datafusion::datasource::listing::ListingTableUrl;
    use minispark_delta::WriteMode;
    use minispark_delta::commit::NewTable;
    use minispark_planner::write::staging::task_staging;
    use object_store::local::LocalFileSystem;
    use object_store::{ObjectStore, PutPayload};

    use super::*;
    use crate::write::job_committer::run_write;

    const SCHEMA: &str =
        r#"{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}}]}"#;

    /// A job whose one task staged a file, and the table folder.
    async fn staged_job(dir: &std::path::Path) -> (WriteJob, Vec<RecordBatch>) {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let destination = ListingTableUrl::parse(dir.to_str().unwrap()).unwrap();
        let job = WriteJob {
            write_id: "w".into(),
            destination: destination.clone(),
            store: Arc::clone(&store),
            partition_columns: vec![],
            file_extension: "parquet".into(),
        };
        let staged = task_staging(destination.prefix(), "w", 0, "t").join("f.parquet");
        store
            .put(&staged, PutPayload::from_static(b"PAR1"))
            .await
            .unwrap();
        let file = WrittenFile {
            partition: 0,
            staged_path: staged.to_string(),
            final_path: "part-00000-w.c000.parquet".into(),
            bytes: 4,
            rows: Some(1),
            partition_values: vec![],
        };
        let mut batch = WrittenFile::to_batch(&[file]).unwrap();
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrow::array::UInt64Array::from(vec![1u64])));
        batch = RecordBatch::try_new(
            minispark_planner::write::file_write_exec::output_schema(),
            columns,
        )
        .unwrap();
        (job, vec![batch])
    }

    fn new_table(dir: &std::path::Path) -> DeltaWrite {
        DeltaWrite {
            location: dir.display().to_string(),
            mode: WriteMode::Append,
            read_version: None,
            new_table: Some(NewTable {
                schema_string: SCHEMA.into(),
            }),
            partition_columns: vec![],
        }
    }

    #[tokio::test]
    async fn a_write_commits_one_log_version() {
        let dir = tempfile::tempdir().unwrap();
        let (job, batches) = staged_job(dir.path()).await;
        let committer = Arc::new(DeltaLogCommitter {
            write: new_table(dir.path()),
        });
        let (rows, summary) = run_write(job, committer, async { Ok(batches) })
            .await
            .unwrap();
        assert_eq!((rows, summary.files), (1, 1));
        let log = std::fs::read_to_string(dir.path().join("_delta_log/00000000000000000000.json"))
            .unwrap();
        assert!(
            log.contains(r#""path":"part-00000-w.c000.parquet""#),
            "{log}"
        );
        assert!(log.contains(r#""metaData""#), "{log}");
        assert!(dir.path().join("part-00000-w.c000.parquet").exists());
        assert!(!dir.path().join("_minispark_staging").exists());
    }

    /// Another writer commits the version this write was going to: the
    /// job fails naming the race, and leaves neither a log entry nor a
    /// data file nor its staging folder.
    #[tokio::test]
    async fn a_lost_race_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (job, batches) = staged_job(dir.path()).await;
        let committer = Arc::new(DeltaLogCommitter {
            write: new_table(dir.path()),
        });
        let other = dir.path().join("_delta_log/00000000000000000000.json");
        let run = async {
            // The other writer commits while this job's tasks run.
            std::fs::create_dir_all(other.parent().unwrap()).unwrap();
            std::fs::write(&other, "{\"commitInfo\":{\"timestamp\":1}}\n").unwrap();
            Ok(batches)
        };
        let err = run_write(job, committer, run).await.unwrap_err();
        assert!(
            err.to_string().contains("concurrent commit: version 0"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            "{\"commitInfo\":{\"timestamp\":1}}\n"
        );
        assert!(!dir.path().join("part-00000-w.c000.parquet").exists());
        assert!(!dir.path().join("_minispark_staging").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["_delta_log"]);
    }
}
