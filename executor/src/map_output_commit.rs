//! Committing a map task attempt's output: write under a name of the
//! attempt's own, then rename into place, first commit wins.
//!
//! ```text
//! stage-<s>/map-<m>.attempt-<a>-<unique>.tmp/{data,index}   an attempt writing
//!        │ rename(2) of the whole directory, once both files are complete
//!        ▼
//! stage-<s>/map-<m>/{data,index}                            the committed output
//! ```
//!
//! Renaming a directory onto a directory that is not empty fails, and a
//! committed output always holds its index, so of two attempts of one map
//! partition (a retry racing a slow original, a speculative copy, two
//! executors sharing a work dir) exactly one commits; the other removes its
//! files and reports the committed output instead of its own (Spark's
//! `IndexShuffleBlockResolver.writeMetadataFileAndCommit` does the same
//! within one process; a rename of a directory does it across processes).
//! Readers only ever open committed outputs, so they never see a partial
//! block. An attempt that fails or is cancelled before its commit removes
//! its directory at once ([`AttemptDir`]). Only a committed output that is not whole (its data file shorter
//! than its index says) is replaced.

use std::path::{Path, PathBuf};

use datafusion::common::{Result, exec_datafusion_err};

use crate::shuffle_index::ShuffleIndex;

/// Whose output is committed for a map partition.
#[derive(Debug)]
pub enum Commit {
    /// This attempt's.
    Ours,
    /// Another attempt's, committed first: its index.
    Theirs(ShuffleIndex),
}

/// The directory map task `map`'s `attempt` writes into, unique to this
/// attempt in this process.
pub fn attempt_dir(stage_dir: &Path, map: usize, attempt: u32) -> PathBuf {
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..12];
    stage_dir.join(format!("map-{map}.attempt-{attempt}-{unique}.tmp"))
}

/// An attempt's directory while the attempt writes into it: removed when
/// dropped, unless committed. An attempt that fails, or is cancelled while
/// it writes (its task aborted: a job cancelled, a speculative loser, a
/// timed-out attempt), leaves no `.tmp` directory behind, rather than one
/// that waits for the end of its job.
#[derive(Debug)]
pub struct AttemptDir {
    path: PathBuf,
    done: bool,
}

impl AttemptDir {
    /// A new directory name for map task `map`'s `attempt` (see
    /// [`attempt_dir`]); nothing is created yet.
    pub fn new(stage_dir: &Path, map: usize, attempt: u32) -> Self {
        Self {
            path: attempt_dir(stage_dir, map, attempt),
            done: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`commit`]s the output written into it.
    pub fn commit(mut self, committed: &Path) -> Result<Commit> {
        self.done = true;
        commit(&self.path, committed)
    }
}

impl Drop for AttemptDir {
    fn drop(&mut self) {
        if !self.done {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => tracing::info!(
                    dir = %self.path.display(),
                    "uncommitted attempt's files removed"
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    dir = %self.path.display(),
                    error = %e,
                    "cannot remove an uncommitted attempt's files"
                ),
            }
        }
    }
}

/// The directory of map task `map`'s committed output.
pub fn committed_dir(stage_dir: &Path, map: usize) -> PathBuf {
    stage_dir.join(format!("map-{map}"))
}

/// Moves the complete output in `written` to `committed`, unless a whole
/// output is there already; `written` is gone afterwards either way.
pub fn commit(written: &Path, committed: &Path) -> Result<Commit> {
    let outcome = try_commit(written, committed);
    if !matches!(outcome, Ok(Commit::Ours)) {
        let _ = std::fs::remove_dir_all(written);
    }
    outcome
}

fn try_commit(written: &Path, committed: &Path) -> Result<Commit> {
    // Twice at most: once more after moving a damaged output aside.
    for _ in 0..2 {
        let err = match std::fs::rename(written, committed) {
            Ok(()) => return Ok(Commit::Ours),
            Err(e) => e,
        };
        if !committed.exists() {
            return Err(exec_datafusion_err!(
                "cannot commit map output {} as {}: {err}",
                written.display(),
                committed.display()
            ));
        }
        match ShuffleIndex::read_whole(committed) {
            Ok(index) => return Ok(Commit::Theirs(index)),
            Err(damaged) => {
                tracing::warn!(
                    dir = %committed.display(),
                    error = %damaged,
                    "a committed map output is not whole; replacing it"
                );
                let aside = committed.with_extension(format!(
                    "damaged-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ));
                if std::fs::rename(committed, &aside).is_ok() {
                    let _ = std::fs::remove_dir_all(&aside);
                }
            }
        }
    }
    Err(exec_datafusion_err!(
        "cannot commit map output {}: {} keeps changing",
        written.display(),
        committed.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shuffle_index::{DATA_FILE, INDEX_FILE, IndexedBlock};

    fn write_output(dir: &Path, attempt: u32, data: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        let index = ShuffleIndex {
            attempt,
            blocks: vec![IndexedBlock {
                rows: 1,
                segments: vec![(0, data.len() as u64)],
            }],
        };
        std::fs::write(dir.join(DATA_FILE), data).unwrap();
        std::fs::write(dir.join(INDEX_FILE), index.encode()).unwrap();
    }

    #[test]
    fn the_first_commit_wins_and_the_loser_leaves_nothing() {
        let stage = std::env::temp_dir().join(format!("minispark-commit-{}", std::process::id()));
        std::fs::create_dir_all(&stage).unwrap();
        let target = committed_dir(&stage, 0);
        let first = attempt_dir(&stage, 0, 0);
        let second = attempt_dir(&stage, 0, 1);
        assert_ne!(first, second);
        write_output(&first, 0, b"first");
        write_output(&second, 1, b"second!");
        assert!(matches!(commit(&second, &target).unwrap(), Commit::Ours));
        match commit(&first, &target).unwrap() {
            Commit::Theirs(index) => assert_eq!(index.attempt, 1),
            Commit::Ours => panic!("a second commit replaced the first"),
        }
        assert!(!first.exists() && !second.exists());
        assert_eq!(std::fs::read(target.join(DATA_FILE)).unwrap(), b"second!");
        let names: Vec<_> = std::fs::read_dir(&stage).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");

        // A committed output whose data file lost bytes is replaced.
        std::fs::write(target.join(DATA_FILE), b"sec").unwrap();
        let third = attempt_dir(&stage, 0, 2);
        write_output(&third, 2, b"third");
        assert!(matches!(commit(&third, &target).unwrap(), Commit::Ours));
        assert_eq!(ShuffleIndex::read_whole(&target).unwrap().attempt, 2);
        let names: Vec<_> = std::fs::read_dir(&stage).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");

        // The stage directory gone (the job's files removed): an error.
        std::fs::remove_dir_all(&stage).unwrap();
        assert!(
            commit(
                &stage.join("map-1.attempt-0-x.tmp"),
                &committed_dir(&stage, 1)
            )
            .is_err()
        );
    }
}
