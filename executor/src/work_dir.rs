//! The executor's work dir: the one place where ids from the wire become
//! paths.
//!
//! ```text
//! <work-dir>/<job-id>/stage-<s>/map-<m>/{data,index}        committed output of map task m
//! <work-dir>/<job-id>/stage-<s>/map-<m>.attempt-<a>-*.tmp/  an attempt still writing
//! ```
//!
//! (see [`crate::shuffle_index`] and [`crate::map_output_commit`]).
//!
//! Every id is checked against its format (see `minispark_proto::limits`)
//! before a path is made from it, so no request can name a file outside the
//! work dir. A job's directory is removed only when this executor created
//! it: `RemoveJobData` for any other job removes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datafusion::common::{DataFusionError, Result};
use minispark_proto::ShuffleBlock;
use minispark_proto::limits::{check_job_id, check_partition, check_stage_id};

/// An executor's work dir and the job directories it created in it.
#[derive(Debug)]
pub struct WorkDir {
    root: PathBuf,
    /// Jobs whose directory this executor created (by a task of theirs).
    created: Mutex<HashSet<String>>,
}

fn invalid(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}

impl WorkDir {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            created: Mutex::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one stage's blocks, once the ids are checked.
    pub fn stage_dir(&self, job_id: &str, stage_id: u64) -> Result<PathBuf> {
        stage_dir(&self.root, job_id, stage_id)
    }

    /// Creates (if needed) the directory of one stage's blocks for a task
    /// of this executor, and remembers that this executor made it.
    pub fn create_stage_dir(&self, job_id: &str, stage_id: u64) -> Result<PathBuf> {
        let dir = self.stage_dir(job_id, stage_id)?;
        self.created
            .lock()
            .expect("work dir lock")
            .insert(job_id.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| {
            DataFusionError::Execution(format!("cannot create shuffle dir {}: {e}", dir.display()))
        })?;
        Ok(dir)
    }

    /// The committed output directory holding one block, once every id
    /// of it is checked.
    pub fn map_output_dir(&self, block: &ShuffleBlock) -> Result<PathBuf> {
        map_output_dir(&self.root, block)
    }

    /// Removes the directory of `job_id` if this executor created it;
    /// returns the bytes it held (0 for a job it never ran).
    pub async fn remove_job(&self, job_id: &str) -> Result<u64> {
        check_job_id(job_id).map_err(invalid)?;
        let ours = self.created.lock().expect("work dir lock").remove(job_id);
        if !ours {
            return Ok(0);
        }
        let dir = self.root.join(job_id);
        let size_dir = dir.clone();
        let bytes = tokio::task::spawn_blocking(move || dir_size(&size_dir))
            .await
            .unwrap_or(0);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(DataFusionError::Execution(format!(
                "cannot remove {}: {e}",
                dir.display()
            ))),
        }
    }
}

/// The directory of one stage's blocks under `root`, once the ids are checked.
pub fn stage_dir(root: &Path, job_id: &str, stage_id: u64) -> Result<PathBuf> {
    check_job_id(job_id).map_err(invalid)?;
    let stage = check_stage_id(stage_id).map_err(invalid)?;
    Ok(root.join(job_id).join(format!("stage-{stage}")))
}

/// The committed output directory holding one block under `root`, once
/// every id of it is checked.
pub fn map_output_dir(root: &Path, block: &ShuffleBlock) -> Result<PathBuf> {
    let map = check_partition("map partition", block.map_partition as u64).map_err(invalid)?;
    check_partition("reduce partition", block.reduce_partition as u64).map_err(invalid)?;
    Ok(crate::map_output_commit::committed_dir(
        &stage_dir(root, &block.job_id, block.stage_id as u64)?,
        map,
    ))
}

/// Bytes of the files under `dir` (symlinks are not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wire_ids_never_name_a_path_outside_the_work_dir() {
        let base = std::env::temp_dir().join(format!("minispark-workdir-{}", std::process::id()));
        let root = base.join("work");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let work = WorkDir::new(root.clone());
        for bad in [
            "../outside".to_string(),
            outside.display().to_string(),
            "..".into(),
            "job-0123456789ab/../../outside".into(),
            "".into(),
        ] {
            let err = work.create_stage_dir(&bad, 0).unwrap_err().to_string();
            assert!(err.contains("invalid job id"), "{err}");
            let err = work.remove_job(&bad).await.unwrap_err().to_string();
            assert!(err.contains("invalid job id"), "{err}");
            let block = ShuffleBlock {
                job_id: bad.clone(),
                ..Default::default()
            };
            assert!(work.map_output_dir(&block).is_err());
        }
        assert!(outside.join("keep").exists());
        // Huge stage and partition numbers are refused too.
        let err = work
            .stage_dir("job-0123456789ab", u32::MAX as u64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid stage id"), "{err}");
        let block = ShuffleBlock {
            job_id: "job-0123456789ab".into(),
            reduce_partition: u32::MAX,
            ..Default::default()
        };
        let err = work.map_output_dir(&block).unwrap_err().to_string();
        assert!(err.contains("invalid reduce partition"), "{err}");

        // Only directories this executor created are removed.
        let foreign = root.join("job-00000000000f");
        std::fs::create_dir_all(&foreign).unwrap();
        assert_eq!(work.remove_job("job-00000000000f").await.unwrap(), 0);
        assert!(foreign.exists());
        let dir = work.create_stage_dir("job-0000000000aa", 1).unwrap();
        assert!(dir.starts_with(&root));
        std::fs::write(dir.join("map-0-reduce-0.arrow"), b"12345").unwrap();
        assert_eq!(work.remove_job("job-0000000000aa").await.unwrap(), 5);
        assert!(!root.join("job-0000000000aa").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
