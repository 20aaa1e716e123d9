//! The executor's work dir: the one place where ids from the wire become
//! paths.
//!
//! ```text
//! <work-dir>/<job-id>/stage-<s>/map-<m>-reduce-<r>.arrow
//! ```
//!
//! Every id is checked against its format (see `minispark_proto::limits`)
//! before a path is made from it, so no request can name a file outside the
//! work dir. A job's directory is removed only when this executor created
//! it: `RemoveJobData` for any other job removes nothing.
//!
//! A process killed mid-job leaves its job directories behind. When an
//! executor starts it takes a lock in its work dir
//! (`.executor-<instance>.lock`, an OS file lock held while it runs, see
//! [`WorkDirLock`]) and then removes the job directories there
//! ([`remove_stale_job_dirs`]): only directories named like job ids
//! (`job-` and 12 hex digits), and only when no other live executor holds a
//! lock in the same work dir (two executors sharing the default work dir
//! leave each other's jobs alone). Locks of dead processes are not held any
//! more and are removed with their jobs.

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

    /// The file of one block, once every id of it is checked.
    pub fn block_path(&self, block: &ShuffleBlock) -> Result<PathBuf> {
        block_path(&self.root, block)
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

/// Marks a work dir as used by a live executor: a lock file holding an OS
/// lock (`flock`) for as long as this value lives. The OS releases it when
/// the process dies, however it dies.
#[derive(Debug)]
pub struct WorkDirLock {
    path: PathBuf,
    _file: std::fs::File,
}

/// Lock files are `.executor-<instance>.lock`: never a job id.
const LOCK_PREFIX: &str = ".executor-";
const LOCK_SUFFIX: &str = ".lock";

impl WorkDirLock {
    /// Creates and locks this process's lock file in `root`.
    pub fn acquire(root: &Path, instance: &str) -> Result<Self> {
        let path = root.join(format!("{LOCK_PREFIX}{instance}{LOCK_SUFFIX}"));
        let file = std::fs::File::create(&path)
            .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::from))
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "cannot lock the work dir {}: {e}",
                    path.display()
                ))
            })?;
        Ok(Self { path, _file: file })
    }
}

impl Drop for WorkDirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What [`remove_stale_job_dirs`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StaleCleanup {
    /// Job directories removed.
    pub removed: usize,
    /// Bytes they held.
    pub bytes: u64,
    /// Other live executors found using the work dir (then nothing is
    /// removed).
    pub live_executors: usize,
}

/// Removes the job directories a previous executor process left in `root`,
/// unless another live executor uses it too (see the module docs). Call it
/// after taking this process's [`WorkDirLock`]. Problems are logged, never
/// fatal: a stale directory only costs disk space.
pub fn remove_stale_job_dirs(root: &Path, executor_id: &str) -> StaleCleanup {
    let mut cleanup = StaleCleanup::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        return cleanup;
    };
    let mut jobs = vec![];
    let mut dead_locks = vec![];
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && check_job_id(&name).is_ok() {
            jobs.push(entry.path());
        } else if kind.is_file() && name.starts_with(LOCK_PREFIX) && name.ends_with(LOCK_SUFFIX)
        {
            // Locked by a live process (this one included: a second open
            // file conflicts with its own lock).
            let held = std::fs::File::open(entry.path()).map(|f| f.try_lock().is_err());
            match held {
                Ok(false) => dead_locks.push(entry.path()),
                Ok(true) => cleanup.live_executors += 1,
                Err(_) => {}
            }
        }
    }
    // This process holds one of the locks.
    cleanup.live_executors = cleanup.live_executors.saturating_sub(1);
    if cleanup.live_executors > 0 {
        if !jobs.is_empty() {
            tracing::info!(
                executor_id,
                work_dir = %root.display(),
                job_dirs = jobs.len(),
                other_executors = cleanup.live_executors,
                "the work dir is shared with live executors: its job directories are left alone"
            );
        }
        return cleanup;
    }
    for lock in dead_locks {
        let _ = std::fs::remove_file(lock);
    }
    for dir in jobs {
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

/// The file of one block under `root`, once every id of it is checked.
pub fn block_path(root: &Path, block: &ShuffleBlock) -> Result<PathBuf> {
    let map = check_partition("map partition", block.map_partition as u64).map_err(invalid)?;
    let reduce =
        check_partition("reduce partition", block.reduce_partition as u64).map_err(invalid)?;
    Ok(stage_dir(root, &block.job_id, block.stage_id as u64)?
        .join(format!("map-{map}-reduce-{reduce}.arrow")))
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
            assert!(work.block_path(&block).is_err());
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
        let err = work.block_path(&block).unwrap_err().to_string();
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
        // The lock file of a dead process: unlocked.
        std::fs::write(root.join(".executor-dead.lock"), b"").unwrap();

        // Another live executor uses the dir: nothing is removed.
        let other = WorkDirLock::acquire(root, "other").unwrap();
        let me = WorkDirLock::acquire(root, "me").unwrap();
        let cleanup = remove_stale_job_dirs(root, "exec-test");
        assert_eq!(cleanup.live_executors, 1);
        assert_eq!(cleanup.removed, 0);
        assert!(stale.exists());

        // Alone: the stale job directory and the dead lock go, the rest stays.
        drop(other);
        assert!(!root.join(".executor-other.lock").exists());
        let cleanup = remove_stale_job_dirs(root, "exec-test");
        assert_eq!(
            cleanup,
            StaleCleanup {
                removed: 1,
                bytes: 4,
                live_executors: 0
            }
        );
        assert!(!stale.exists());
        assert!(!root.join(".executor-dead.lock").exists());
        assert!(root.join(".executor-me.lock").exists());
        for keep in ["job-XYZ", "job-0123456789abc", "notes", "job-00000000000f"] {
            assert!(root.join(keep).exists(), "{keep}");
        }
        drop(me);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
