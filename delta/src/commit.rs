//! A Delta write's commit: one new version of the log, written once by the
//! driver after every task wrote its data files.
//!
//! ```text
//!  planned:   DeltaWrite { location, mode, read version V (or a new table) }
//!  executors: Parquet files (the planner's FileWriteExec), no log access
//!  driver:    files moved into the table folder, then
//!             _delta_log/<V+1, 20 digits>.json written with put-if-absent:
//!               commitInfo
//!               protocol + metaData             (a new table: version 0)
//!               remove  for every file of V     (overwrite)
//!               add     for every written file  (path, partitionValues,
//!                                                size, stats.numRecords)
//! ```
//!
//! The log entry is the commit: until it exists no reader sees the new
//! files. It is written with `PutMode::Create` (put-if-absent: an atomic
//! no-clobber link on a local file system, a conditional PUT on object
//! stores), so of two writers that read version V, exactly one commits V+1;
//! the other fails with [`concurrent_commit`]'s error and commits nothing
//! (Delta's optimistic concurrency without the retry: minispark does not
//! re-check and re-try a conflicting append).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result, plan_datafusion_err, plan_err};
use datafusion::object_store::path::Path;
use datafusion::object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::log::{Snapshot, TimeTravel, load_snapshot, log_prefix};
use crate::schema::uses_timestamp_ntz;

/// How a write treats the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteMode {
    /// Add the rows (`INSERT INTO`).
    Append,
    /// Replace every row of the table (`INSERT OVERWRITE`): every live
    /// file of the version read is removed in the same commit.
    Overwrite,
}

impl WriteMode {
    fn operation_mode(self) -> &'static str {
        match self {
            WriteMode::Append => "Append",
            WriteMode::Overwrite => "Overwrite",
        }
    }
}

/// A table the write creates (its version 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTable {
    /// The Delta schema (see [`crate::schema::delta_schema_string`]).
    pub schema_string: String,
}

/// What the driver commits for one Delta write job: planned on the driver
/// with the table's version, carried by the write operator to its
/// committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaWrite {
    /// The table's location, as the user gave it.
    pub location: String,
    pub mode: WriteMode,
    /// The version the write was planned against (its commit is the next
    /// one); `None` for a new table (its commit is version 0).
    pub read_version: Option<u64>,
    /// For a new table: its metadata.
    pub new_table: Option<NewTable>,
    /// The table's partition columns, outermost first.
    pub partition_columns: Vec<String>,
}

impl DeltaWrite {
    /// The version this write commits.
    pub fn commit_version(&self) -> u64 {
        self.read_version.map_or(0, |v| v + 1)
    }

    /// As text (JSON), for the plan codec.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a DeltaWrite is plain data")
    }

    /// The inverse of [`Self::encode`].
    pub fn decode(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| plan_datafusion_err!("a malformed Delta write in a plan: {e}"))
    }
}

/// One data file a write job wrote and moved into the table folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The file's object-store path relative to the table root (object
    /// store encoding, as `Path` renders it): `day=2026-01-01/part-....parquet`.
    pub path: String,
    /// Every partition column and its value as the Delta log spells it
    /// (`None`: null).
    pub partition_values: Vec<(String, Option<String>)>,
    pub size: u64,
    /// Rows in the file (from its Parquet footer), when known.
    pub rows: Option<u64>,
}

/// Characters a log `path` (a URI path, relative to the table) escapes.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A file's relative object-store path as the log's URI-encoded `path`:
/// a reader URI-decodes it back to the object path (see
/// [`crate::table`]'s `file_path`).
pub fn log_path(object_path: &str) -> String {
    utf8_percent_encode(object_path, PATH_ESCAPES).to_string()
}

/// A partition value as written in a folder name by the object store's
/// path encoding (`a%2Fb`), back as the value (`a/b`).
pub fn folder_value(encoded: &str) -> String {
    percent_decode_str(encoded).decode_utf8_lossy().into_owned()
}

/// The error of a commit that lost the race for its version.
pub fn concurrent_commit(location: &str, version: u64) -> DataFusionError {
    plan_datafusion_err!(
        "concurrent commit: version {version} of Delta table '{location}' was committed by \
         another writer while this write ran; nothing was committed (the written files were \
         removed): run the write again"
    )
}

/// Refuses a write to a table whose writer protocol minispark does not
/// honour, and an overwrite of an append-only table.
pub fn check_writable(snapshot: &Snapshot, mode: WriteMode, location: &str) -> Result<()> {
    /// Writer features minispark honours (protocol version 7).
    const WRITER_FEATURES: &[&str] = &["appendOnly", "timestampNtz"];
    let version = snapshot.protocol.min_writer_version;
    match version {
        0..=2 => {}
        7 => {
            for feature in snapshot.protocol.writer_features.iter().flatten() {
                if !WRITER_FEATURES.contains(&feature.as_str()) {
                    return plan_err!(
                        "Delta table '{location}' uses the writer feature '{feature}', which \
                         minispark's writer does not support (it supports {})",
                        WRITER_FEATURES.join(", ")
                    );
                }
            }
        }
        _ => {
            return plan_err!(
                "Delta table '{location}' needs writer protocol version {version}; minispark \
                 writes tables of writer versions 1 and 2 (and 7 with the features appendOnly \
                 and timestampNtz)"
            );
        }
    }
    if snapshot.metadata.schema_string.contains("delta.invariants") {
        return plan_err!(
            "Delta table '{location}' has column invariants, which minispark's writer does \
             not check: it does not write to it"
        );
    }
    let append_only = snapshot
        .metadata
        .configuration
        .get("delta.appendOnly")
        .cloned()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if append_only && mode == WriteMode::Overwrite {
        return plan_err!(
            "Delta table '{location}' is append-only (delta.appendOnly = true): it cannot be \
             overwritten"
        );
    }
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The lines of the log entry committing `files` for `write` (`removed`:
/// the live files of the version read, for an overwrite).
pub fn commit_actions(
    write: &DeltaWrite,
    files: &[DataFile],
    removed: &[crate::log::Add],
    now: i64,
) -> Result<Vec<String>> {
    let mut lines = vec![];
    let rows: u64 = files.iter().filter_map(|f| f.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    lines.push(json!({"commitInfo": {
        "timestamp": now,
        "operation": "WRITE",
        "operationParameters": {
            "mode": write.mode.operation_mode(),
            "partitionBy": serde_json::to_string(&write.partition_columns)
                .expect("strings are JSON"),
        },
        "readVersion": write.read_version,
        "isBlindAppend": write.mode == WriteMode::Append,
        "operationMetrics": {
            "numFiles": files.len().to_string(),
            "numOutputRows": rows.to_string(),
            "numOutputBytes": bytes.to_string(),
            "numRemovedFiles": removed.len().to_string(),
        },
        "engineInfo": format!("minispark/{}", env!("CARGO_PKG_VERSION")),
    }}));
    if let Some(new) = &write.new_table {
        lines.push(if uses_timestamp_ntz(&new.schema_string) {
            json!({"protocol": {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": ["timestampNtz"],
                "writerFeatures": ["timestampNtz"],
            }})
        } else {
            json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}})
        });
        lines.push(json!({"metaData": {
            "id": uuid::Uuid::new_v4().to_string(),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": new.schema_string,
            "partitionColumns": write.partition_columns,
            "configuration": {},
            "createdTime": now,
        }}));
    }
    for file in removed {
        lines.push(json!({"remove": {
            "path": file.path,
            "deletionTimestamp": now,
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": file.partition_values,
            "size": file.size,
        }}));
    }
    for file in files {
        let values: BTreeMap<&str, Option<&str>> = file
            .partition_values
            .iter()
            .map(|(c, v)| (c.as_str(), v.as_deref()))
            .collect();
        for column in &write.partition_columns {
            if !values.contains_key(column.as_str()) {
                return plan_err!(
                    "Delta table '{}': the written file {} has no value of partition column \
                     {column}",
                    write.location,
                    file.path
                );
            }
        }
        let mut add = json!({
            "path": log_path(&file.path),
            "partitionValues": values,
            "size": file.size,
            "modificationTime": now,
            "dataChange": true,
        });
        if let Some(rows) = file.rows {
            add["stats"] = Value::String(json!({"numRecords": rows}).to_string());
        }
        lines.push(json!({ "add": add }));
    }
    Ok(lines.into_iter().map(|l| l.to_string()).collect())
}

/// Commits `files` as the next version of the table at `root` of `store`:
/// reads the version the write was planned against (an overwrite removes
/// its files), then writes the log entry with put-if-absent. Returns the
/// committed version; fails with [`concurrent_commit`]'s error when another
/// writer committed that version first.
pub async fn commit_write(
    store: Arc<dyn ObjectStore>,
    root: &Path,
    write: &DeltaWrite,
    files: &[DataFile],
) -> Result<u64> {
    let removed = match (write.mode, write.read_version) {
        (WriteMode::Overwrite, Some(v)) => {
            let snapshot = load_snapshot(
                Arc::clone(&store),
                root,
                &write.location,
                TimeTravel::Version(v),
            )
            .await?;
            snapshot.files
        }
        _ => vec![],
    };
    let version = write.commit_version();
    let lines = commit_actions(write, files, &removed, now_millis())?;
    let path = log_prefix(root).join(format!("{version:020}.json"));
    let payload = PutPayload::from(lines.join("\n") + "\n");
    match store
        .put_opts(&path, payload, PutOptions::from(PutMode::Create))
        .await
    {
        Ok(_) => Ok(version),
        Err(
            datafusion::object_store::Error::AlreadyExists { .. }
            | datafusion::object_store::Error::Precondition { .. },
        ) => Err(concurrent_commit(&write.location, version)),
        Err(e) => Err(DataFusionError::ObjectStore(Box::new(e)).context(format!(
            "cannot commit version {version} of Delta table '{}': writing {path} failed",
            write.location
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::ObjectStoreExt;
    use datafusion::object_store::memory::InMemory;

    const SCHEMA: &str = r#"{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},{"name":"day","type":"date","nullable":true,"metadata":{}}]}"#;

    fn file(path: &str, day: &str) -> DataFile {
        DataFile {
            path: path.to_string(),
            partition_values: vec![("day".to_string(), Some(day.to_string()))],
            size: 100,
            rows: Some(3),
        }
    }

    fn write(mode: WriteMode, read_version: Option<u64>) -> DeltaWrite {
        DeltaWrite {
            location: "t".to_string(),
            mode,
            read_version,
            new_table: read_version.is_none().then(|| NewTable {
                schema_string: SCHEMA.to_string(),
            }),
            partition_columns: vec!["day".to_string()],
        }
    }

    #[tokio::test]
    async fn create_append_overwrite_and_a_lost_race() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let root = Path::from("t");
        let v = commit_write(
            Arc::clone(&store),
            &root,
            &write(WriteMode::Append, None),
            &[file("day=2026-01-01/a.parquet", "2026-01-01")],
        )
        .await
        .unwrap();
        assert_eq!(v, 0);
        let v = commit_write(
            Arc::clone(&store),
            &root,
            &write(WriteMode::Append, Some(0)),
            &[file("day=2026-01-02/b c.parquet", "2026-01-02")],
        )
        .await
        .unwrap();
        assert_eq!(v, 1);
        let latest = load_snapshot(Arc::clone(&store), &root, "t", TimeTravel::Latest)
            .await
            .unwrap();
        let paths: Vec<&str> = latest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["day=2026-01-01/a.parquet", "day=2026-01-02/b%20c.parquet"]
        );
        assert_eq!(latest.metadata.partition_columns, ["day"]);
        assert_eq!(
            latest.files[0].partition_values["day"].as_deref(),
            Some("2026-01-01")
        );
        assert!(
            latest.files[0]
                .stats
                .as_deref()
                .unwrap()
                .contains("\"numRecords\":3")
        );

        // Another writer committed version 2 after this write read version 1.
        store
            .put(
                &Path::from("t/_delta_log/00000000000000000002.json"),
                PutPayload::from(r#"{"commitInfo":{"timestamp":1}}"#),
            )
            .await
            .unwrap();
        let err = commit_write(
            Arc::clone(&store),
            &root,
            &write(WriteMode::Overwrite, Some(1)),
            &[file("day=2026-01-03/c.parquet", "2026-01-03")],
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("concurrent commit: version 2"),
            "{err}"
        );

        let v = commit_write(
            Arc::clone(&store),
            &root,
            &write(WriteMode::Overwrite, Some(2)),
            &[file("day=2026-01-03/c.parquet", "2026-01-03")],
        )
        .await
        .unwrap();
        assert_eq!(v, 3);
        let latest = load_snapshot(Arc::clone(&store), &root, "t", TimeTravel::Latest)
            .await
            .unwrap();
        let paths: Vec<&str> = latest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["day=2026-01-03/c.parquet"]);
        let v1 = load_snapshot(store, &root, "t", TimeTravel::Version(1))
            .await
            .unwrap();
        assert_eq!(v1.files.len(), 2);
    }

    #[test]
    fn paths_and_folder_values() {
        assert_eq!(log_path("k=a%2Fb/x y.parquet"), "k=a%252Fb/x%20y.parquet");
        assert_eq!(folder_value("a%2Fb"), "a/b");
        assert_eq!(folder_value("2026-01-01"), "2026-01-01");
        let w = write(WriteMode::Append, Some(4));
        assert_eq!(DeltaWrite::decode(&w.encode()).unwrap(), w);
        assert_eq!(w.commit_version(), 5);
        let missing = DataFile {
            partition_values: vec![],
            ..file("a.parquet", "x")
        };
        let err = commit_actions(&w, &[missing], &[], 0).unwrap_err();
        assert!(err.to_string().contains("no value of partition column day"));
    }
}
