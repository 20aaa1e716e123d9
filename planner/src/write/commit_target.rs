//! Who commits a distributed write's files on the driver: the plain-files
//! commit (files renamed into the destination) or a table format's log.
//!
//! The planner learns it from the sink DataFusion planned: a
//! `minispark_delta::DeltaSink` (a Delta table's `insert_into`) carries
//! the [`DeltaWrite`] to commit; every other file sink is plain files. The
//! target travels with the write operator (the plan codec's
//! `FileWriteNode.commit_target`), so a plan decoded anywhere still names
//! it; executors only write files and never read it.

use std::sync::Arc;

use datafusion::common::{Result, plan_err};
use datafusion::datasource::sink::DataSink;
use minispark_delta::DeltaWrite;

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub enum CommitTarget {
    /// Plain files (`COPY ... TO`, `INSERT INTO` a listing table).
    #[default]
    Files,
    /// A Delta table's next log version.
    Delta(DeltaWrite),
    /// A new snapshot of an Iceberg table (`minispark_iceberg::fast_append`).
    /// Known on the driver that planned it only: the table's metadata does
    /// not travel with the plan (tasks only write files).
    Iceberg(Arc<minispark_iceberg::IcebergAppend>),
    /// An Iceberg append's write decoded from a plan: its tasks write as
    /// any other, but nothing can commit it (never plain files: that
    /// would put files in the table's folder that no snapshot lists).
    IcebergDecoded,
}

const DELTA: &str = "delta:";
const ICEBERG: &str = "iceberg:";

impl CommitTarget {
    /// The target of the writes `sink` marks, other than Delta's (whose
    /// sink wraps the Parquet sink that writes: see `distribute_write`).
    pub fn of(sink: &dyn DataSink) -> Self {
        match sink.downcast_ref::<minispark_iceberg::IcebergSink>() {
            Some(s) => CommitTarget::Iceberg(Arc::clone(s.append())),
            None => CommitTarget::Files,
        }
    }

    /// As text for the plan codec: empty for plain files, a marker for
    /// Iceberg appends (see [`Self::Iceberg`]).
    pub fn encode(&self) -> String {
        match self {
            CommitTarget::Files => String::new(),
            CommitTarget::Iceberg(_) | CommitTarget::IcebergDecoded => ICEBERG.to_string(),
            CommitTarget::Delta(write) => format!("{DELTA}{}", write.encode()),
        }
    }

    /// The inverse of [`Self::encode`].
    pub fn decode(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(CommitTarget::Files);
        }
        if text == ICEBERG {
            return Ok(CommitTarget::IcebergDecoded);
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
        for target in [CommitTarget::Files, delta, CommitTarget::IcebergDecoded] {
            let text = target.encode();
            assert_eq!(CommitTarget::decode(&text).unwrap().encode(), text);
        }
        assert!(matches!(
            CommitTarget::decode("iceberg:").unwrap(),
            CommitTarget::IcebergDecoded
        ));
        assert!(CommitTarget::decode("iceberg:{}").is_err());
    }
}
