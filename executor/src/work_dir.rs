//! The executor's work dir: the one place where ids from the wire become
//! paths.
//!
//! ```text
//! <work-dir>/<job-id>/stage-<s>/map-<m>/{data,index}        committed output of map task m
//! <work-dir>/<job-id>/stage-<s>/map-<m>.attempt-<a>-*.tmp/  an attempt still writing
//! <work-dir>/fetched-*.tmp                                   a remote block fetched to disk
//! ```
//!
//! (see [`crate::shuffle_index`] and [`crate::map_output_commit`]).
//!
//! Every id is checked against its format (see `minispark_proto::limits`)
//! before a path is made from it, so no request can name a file outside the
//! work dir. A job's directory is removed only when this executor created
//! it: `RemoveJobData` for any other job removes nothing.
//!
//! A process killed mid-job leaves its job directories behind. When an
//! executor starts it claims its work dir ([`WorkDirLock`]: a shared OS
//! lock on the directory, held while it runs) and, when no other live
//! executor holds one, first removes the job directories there: only
//! directories named like job ids (`job-` and 12 hex digits), and the
//! files of remote blocks fetched to disk
//! (`crate::shuffle_block_fetcher::FETCHED_FILE_PREFIX`). Two executors
//! sharing the default work dir leave each other's jobs alone.

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

/// A live executor's claim on its work dir: a shared OS lock (`flock`) on
/// the directory itself, held for as long as this value lives and released
/// by the OS when the process dies, however it dies. No file is added to
/// the work dir.
#[derive(Debug)]
pub struct WorkDirLock {
    _dir: Option<std::fs::File>,
}

/// What [`WorkDirLock::acquire`] found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StaleCleanup {
    /// Job directories (and files of blocks fetched to disk) removed.
    pub removed: usize,
    /// Bytes they held.
    pub bytes: u64,
    /// Whether another live executor uses the work dir (then nothing is
    /// removed).
    pub shared: bool,
}

impl WorkDirLock {
    /// Claims `root` for this executor. When no other live executor holds
    /// it, the job directories a previous process left there are removed
    /// first (see the module docs). Problems are logged, never fatal: a
    /// stale directory only costs disk space.
    pub fn acquire(root: &Path, executor_id: &str) -> (Self, StaleCleanup) {
        let mut cleanup = StaleCleanup::default();
        let dir = match std::fs::File::open(root) {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!(
                    executor_id,
                    work_dir = %root.display(),
                    error = %e,
                    "cannot lock the work dir: stale job directories are left alone"
                );
                return (Self { _dir: None }, cleanup);
            }
        };
        // Exclusive only while no live executor holds its shared lock.
        match dir.try_lock() {
            Ok(()) => {
                cleanup = remove_stale_job_dirs(root, executor_id);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                cleanup.shared = true;
                tracing::info!(
                    executor_id,
                    work_dir = %root.display(),
                    "the work dir is shared with live executors: its job directories are left alone"
                );
            }
            Err(std::fs::TryLockError::Error(e)) => tracing::warn!(
                executor_id,
                work_dir = %root.display(),
                error = %e,
                "cannot lock the work dir: stale job directories are left alone"
            ),
        }
        // From now on shared: other executors may start on the same dir.
        if let Err(e) = dir.lock_shared() {
            tracing::warn!(
                executor_id,
                work_dir = %root.display(),
                error = %e,
                "cannot hold a shared lock on the work dir"
            );
        }
        (Self { _dir: Some(dir) }, cleanup)
    }
}

/// Removes the directories named like job ids in `root` (and nothing else).
fn remove_stale_job_dirs(root: &Path, executor_id: &str) -> StaleCleanup {
    let mut cleanup = StaleCleanup::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        return cleanup;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file
            && name.starts_with(crate::shuffle_block_fetcher::FETCHED_FILE_PREFIX)
            && name.ends_with(".tmp")
        {
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(entry.path()).is_ok() {
                cleanup.removed += 1;
                cleanup.bytes += bytes;
            }
            continue;
        }
        if !is_dir || check_job_id(&name).is_err() {
            continue;
        }
        let dir = entry.path();
        let bytes = dir_size(&dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                cleanup.removed += 1;
                cleanup.bytes += bytes;
            }
            Err(e) => tracing::warn!(
                executor_id,
                dir = %dir.display(),
                error = %e,
                "cannot remove a stale job directory"
            ),
        }
    }
    if cleanup.removed > 0 {
        tracing::info!(
            executor_id,
            work_dir = %root.display(),
            removed = cleanup.removed,
            bytes = cleanup.bytes,
            "removed job directories left by a previous executor"
        );
    }
    cleanup
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

    #[test]
    fn stale_job_dirs_go_unless_a_live_executor_shares_the_work_dir() {
        let base = std::env::temp_dir().join(format!("minispark-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let root = base.as_path();
        let stale = root.join("job-0123456789ab");
        std::fs::create_dir_all(stale.join("stage-0")).unwrap();
        std::fs::write(stale.join("stage-0/map-0-reduce-0.arrow"), b"1234").unwrap();
        // Not job directories: kept.
        for keep in ["job-XYZ", "job-0123456789abc", "notes"] {
            std::fs::create_dir_all(root.join(keep)).unwrap();
        }
        std::fs::write(root.join("job-00000000000f"), b"a file").unwrap();

        // Another live executor uses the dir: nothing is removed (flock
        // locks of two open files conflict within one process too).
        let (other, cleanup) = WorkDirLock::acquire(root, "exec-other");
        assert_eq!(cleanup.removed, 1, "the first executor cleans up");
        std::fs::create_dir_all(stale.join("stage-0")).unwrap();
        let (me, cleanup) = WorkDirLock::acquire(root, "exec-me");
        assert_eq!(
            cleanup,
            StaleCleanup {
                removed: 0,
                bytes: 0,
                shared: true
            }
        );
        assert!(stale.exists());
        drop(me);

        // Alone: the stale job directory goes, the rest stays.
        drop(other);
        std::fs::write(stale.join("stage-0/map-0-reduce-0.arrow"), b"12345").unwrap();
        // A block a dead executor was fetching to disk goes too; a file
        // named otherwise stays.
        std::fs::write(root.join("fetched-a1b2c3.tmp"), b"123").unwrap();
        std::fs::write(root.join("fetched-notes"), b"keep").unwrap();
        let (me, cleanup) = WorkDirLock::acquire(root, "exec-me");
        assert_eq!(
            cleanup,
            StaleCleanup {
                removed: 2,
                bytes: 8,
                shared: false
            }
        );
        assert!(!stale.exists());
        assert!(!root.join("fetched-a1b2c3.tmp").exists());
        std::fs::remove_file(root.join("fetched-notes")).unwrap();
        for keep in ["job-XYZ", "job-0123456789abc", "notes", "job-00000000000f"] {
            assert!(root.join(keep).exists(), "{keep}");
        }
        // Nothing of the lock is in the work dir.
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 4);
        drop(me);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
