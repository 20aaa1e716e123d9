//! Where a distributed write puts its files before the job commit, and
//! the names they get after it (Spark's `HadoopMapReduceCommitProtocol`
//! layout, with minispark's folder name).
//!
//! ```text
//! <dest>/_minispark_staging/<write id>/task-00003-<attempt token>/[col=v/]<DataFusion's name>
//!        │                  │          └ one folder per task attempt: attempts never share a file
//!        │                  └ one folder per write job
//!        └ `_`-prefixed, as Spark's `_temporary`; DataFusion's listing ignores its
//!          files (subfolders that are not `col=value`) once a table is created
//! <dest>/[col=v/]part-00003-<write id>.c000.<ext>   after the job commit
//! <dest>/_SUCCESS                                   Spark's marker (off: see the driver's
//!                                                   `write::file_output_committer`)
//! ```

use object_store::path::Path;

/// The staging folder's name inside the destination.
pub const STAGING_DIR: &str = "_minispark_staging";

/// The marker the job commit writes once every file is in place (Spark's
/// `mapreduce.fileoutputcommitter.marksuccessfuljobs`).
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// The staging folder of write job `write_id` under destination `dest`.
pub fn job_staging(dest: &Path, write_id: &str) -> Path {
    dest.clone().join(STAGING_DIR).join(write_id)
}

/// The staging folder of one task attempt: `attempt_token` is unique to
/// the attempt, so a retry or a speculative copy never writes over the
/// files of another attempt of the same partition.
pub fn task_staging(dest: &Path, write_id: &str, partition: usize, attempt_token: &str) -> Path {
    job_staging(dest, write_id).join(format!("task-{partition:05}-{attempt_token}"))
}

/// Spark's name for the `index`-th file of task `partition`:
/// `part-00003-<write id>.c000.<ext>`.
pub fn final_file_name(partition: usize, write_id: &str, index: usize, extension: &str) -> String {
    let extension = extension.trim_start_matches('.');
    if extension.is_empty() {
        format!("part-{partition:05}-{write_id}.c{index:03}")
    } else {
        format!("part-{partition:05}-{write_id}.c{index:03}.{extension}")
    }
}

/// A fresh id for a write job (the `<write id>` of the names above): a
/// UUID-shaped random hex string, as Spark's job UUID.
pub fn new_write_id() -> String {
    random_hex_uuid()
}

/// A fresh token for one task attempt's staging folder.
pub fn new_attempt_token() -> String {
    random_hex_uuid()[..8].to_string()
}

fn random_hex_uuid() -> String {
    let bits: u128 = rand::random();
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spark() {
        let dest = Path::from("bucket/out");
        assert_eq!(
            task_staging(&dest, "w", 3, "t").as_ref(),
            "bucket/out/_minispark_staging/w/task-00003-t"
        );
        assert_eq!(
            final_file_name(3, "w", 0, "parquet"),
            "part-00003-w.c000.parquet"
        );
        assert_eq!(final_file_name(12, "w", 2, ".csv"), "part-00012-w.c002.csv");
        let id = new_write_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, new_write_id());
    }
}
