//! Who commits a distributed write's files on the driver: the plain-files
//! commit (files renamed into the destination) or a table format's log.
//!
//! The planner learns it from the sink DataFusion planned: a
//! `minispark_delta::DeltaSink` (a Delta table's `insert_into`) carries
//! the [`DeltaWrite`] to commit; every other file sink is plain files. The
//! target travels with the write operator (the plan codec's
//! `FileWriteNode.commit_target`), so a plan decoded anywhere still names
//! it; executors only write files and never read it.

use datafusion::common::{Result, plan_err};
use minispark_delta::DeltaWrite;

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CommitTarget {
    /// Plain files (`COPY ... TO`, `INSERT INTO` a listing table).
    #[default]
    Files,
    /// A Delta table's next log version.
    Delta(DeltaWrite),
}

const DELTA: &str = "delta:";

impl CommitTarget {
    /// As text for the plan codec: empty for plain files.
    pub fn encode(&self) -> String {
        match self {
            CommitTarget::Files => String::new(),
            CommitTarget::Delta(write) => format!("{DELTA}{}", write.encode()),
        }
    }

    /// The inverse of [`Self::encode`].
    pub fn decode(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(CommitTarget::Files);
        }
        match text.strip_prefix(DELTA) {
            Some(json) => Ok(CommitTarget::Delta(DeltaWrite::decode(json)?)),
            None => plan_err!("unknown write commit target '{text}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minispark_delta::WriteMode;

    #[test]
    fn targets_survive_the_codec() {
        let delta = CommitTarget::Delta(DeltaWrite {
            location: "s3://b/t".into(),
            mode: WriteMode::Overwrite,
            read_version: Some(3),
            new_table: None,
            partition_columns: vec!["day".into()],
        });
        for target in [CommitTarget::Files, delta] {
            assert_eq!(CommitTarget::decode(&target.encode()).unwrap(), target);
        }
        assert!(CommitTarget::decode("iceberg:{}").is_err());
    }
}
