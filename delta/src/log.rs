//! The Delta transaction log: a table's state at one version, replayed
//! from the JSON commits (and the newest usable Parquet checkpoint) in its
//! `_delta_log/` folder.
//!
//! A version's data files are the `add` actions of commits `0..=version`
//! that no later `remove` of the same path cancelled; its schema, partition
//! columns and protocol are the last `metaData` and `protocol` actions. A
//! checkpoint `N.checkpoint.parquet` holds the replayed state at version N,
//! so replay starts there when the commits before it were cleaned up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result, plan_datafusion_err};
use datafusion::object_store::path::Path;
use datafusion::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use futures::TryStreamExt;
use serde::Deserialize;

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeTravel {
    /// The newest version, read again at every scan.
    #[default]
    Latest,
    /// Exactly this version (`VERSION AS OF n`).
    Version(u64),
    /// The newest version committed at or before this instant, in
    /// milliseconds since the epoch (`TIMESTAMP AS OF '...'`).
    TimestampMillis(i64),
}

/// One line of a commit file: one action.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Action {
    add: Option<Add>,
    remove: Option<Remove>,
    meta_data: Option<Metadata>,
    protocol: Option<Protocol>,
}

/// A data file added to the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// URI-encoded, relative to the table's root (or an absolute URI).
    pub path: String,
    #[serde(default)]
    pub partition_values: HashMap<String, Option<String>>,
    pub size: i64,
    /// The file's statistics as JSON: `numRecords`, `minValues`,
    /// `maxValues`, `nullCount`.
    #[serde(default)]
    pub stats: Option<String>,
    #[serde(default)]
    pub deletion_vector: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Remove {
    path: String,
}

/// The table's schema and layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub schema_string: String,
    #[serde(default)]
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub configuration: HashMap<String, Option<String>>,
}

/// What a reader must understand to read the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: i32,
    #[serde(default)]
    pub reader_features: Option<Vec<String>>,
    /// What a writer must honour (checked before minispark writes).
    #[serde(default)]
    pub min_writer_version: i32,
    #[serde(default)]
    pub writer_features: Option<Vec<String>>,
}

/// A table at one version: its metadata and live data files.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub metadata: Metadata,
    pub protocol: Protocol,
    /// Live files by path, in path order.
    pub files: Vec<Add>,
}

/// The commit and checkpoint files of a `_delta_log/` folder.
struct LogListing {
    /// Commit version -> its file.
    commits: BTreeMap<u64, ObjectMeta>,
    /// Checkpoint version -> its part files (one, or `n` of a multi-part
    /// checkpoint), complete checkpoints only.
    checkpoints: BTreeMap<u64, Vec<ObjectMeta>>,
}

/// The `_delta_log/` folder of the table at `root`.
pub fn log_prefix(root: &Path) -> Path {
    root.clone().join("_delta_log")
}

/// `00000000000000000003.json` -> 3.
fn commit_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `N.checkpoint.parquet` -> (N, 1, 1); `N.checkpoint.P.T.parquet` ->
/// (N, P, T). V2 checkpoints (`N.checkpoint.<uuid>.json`) are not read.
fn checkpoint_part(name: &str) -> Option<(u64, u32, u32)> {
    let rest = name.strip_suffix(".parquet")?;
    let (digits, rest) = rest.split_once(".checkpoint")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = digits.parse().ok()?;
    if rest.is_empty() {
        return Some((version, 1, 1));
    }
    let mut parts = rest.strip_prefix('.')?.split('.');
    let (part, total) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((version, part.parse().ok()?, total.parse().ok()?))
}

async fn list_log(store: &dyn ObjectStore, root: &Path, location: &str) -> Result<LogListing> {
    let prefix = log_prefix(root);
    let objects: Vec<ObjectMeta> = store.list(Some(&prefix)).try_collect().await.map_err(|e| {
        DataFusionError::External(Box::new(e))
            .context(format!("cannot list the Delta log of '{location}'"))
    })?;
    let mut commits = BTreeMap::new();
    let mut parts: BTreeMap<u64, Vec<(u32, u32, ObjectMeta)>> = BTreeMap::new();
    for meta in objects {
        // Only files directly in _delta_log/ (not _delta_log/_commits/...).
        if meta.location.prefix_match(&prefix).map(|p| p.count()) != Some(1) {
            continue;
        }
        let Some(name) = meta.location.filename().map(str::to_string) else {
            continue;
        };
        if let Some(v) = commit_version(&name) {
            commits.insert(v, meta);
        } else if let Some((v, part, total)) = checkpoint_part(&name) {
            parts.entry(v).or_default().push((part, total, meta));
        }
    }
    let checkpoints = parts
        .into_iter()
        .filter_map(|(v, mut files)| {
            files.sort_by_key(|(part, _, _)| *part);
            let total = files.first()?.1;
            let complete = files.len() == total as usize
                && files
                    .iter()
                    .enumerate()
                    .all(|(i, (part, t, _))| *part as usize == i + 1 && *t == total);
            complete.then(|| (v, files.into_iter().map(|(_, _, m)| m).collect()))
        })
        .collect();
    Ok(LogListing {
        commits,
        checkpoints,
    })
}

impl LogListing {
    fn latest(&self) -> Option<u64> {
        let commit = self.commits.keys().next_back().copied();
        let checkpoint = self.checkpoints.keys().next_back().copied();
        commit.max(checkpoint)
    }

    fn earliest(&self) -> Option<u64> {
        if self.commits.contains_key(&0) {
            return Some(0);
        }
        self.checkpoints.keys().next().copied()
    }

    /// The version a time travel asks for, checked against the log.
    fn resolve(&self, travel: TimeTravel, location: &str) -> Result<u64> {
        let (Some(earliest), Some(latest)) = (self.earliest(), self.latest()) else {
            return Err(not_a_table(location));
        };
        match travel {
            TimeTravel::Latest => Ok(latest),
            TimeTravel::Version(v) if (earliest..=latest).contains(&v) => Ok(v),
            TimeTravel::Version(v) => Err(plan_datafusion_err!(
                "Delta table '{location}' has no version {v}: its log holds versions \
                 {earliest} to {latest}"
            )),
            TimeTravel::TimestampMillis(ts) => {
                // A commit's time is its file's modification time.
                let found = self
                    .commits
                    .range(earliest..)
                    .filter(|(_, meta)| meta.last_modified.timestamp_millis() <= ts)
                    .map(|(v, _)| *v)
                    .next_back();
                found.ok_or_else(|| {
                    let first = self
                        .commits
                        .range(earliest..)
                        .next()
                        .map(|(_, m)| m.last_modified.to_rfc3339())
                        .unwrap_or_default();
                    plan_datafusion_err!(
                        "Delta table '{location}' has no version at {}: its first \
                         version {earliest} was committed at {first}",
                        arrow::array::temporal_conversions::timestamp_ms_to_datetime(ts)
                            .map(|t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S%.3f")))
                            .unwrap_or_else(|| format!("{ts} ms since 1970"))
                    )
                })
            }
        }
    }
}

fn not_a_table(location: &str) -> DataFusionError {
    plan_datafusion_err!(
        "'{location}' is not a Delta table: it has no _delta_log folder with commits \
         (does the location exist, and was the table written there?)"
    )
}

/// Whether `root` holds a Delta table: a `_delta_log/` with a commit or a
/// checkpoint.
pub async fn table_exists(store: &dyn ObjectStore, root: &Path, location: &str) -> Result<bool> {
    Ok(list_log(store, root, location).await?.latest().is_some())
}

/// Reads the table at `root` of `store` at the version `travel` names.
pub async fn load_snapshot(
    store: Arc<dyn ObjectStore>,
    root: &Path,
    location: &str,
    travel: TimeTravel,
) -> Result<Snapshot> {
    let listing = list_log(store.as_ref(), root, location).await?;
    let version = listing.resolve(travel, location)?;
    // Replay from the newest checkpoint at or before `version` whose later
    // commits are all present; from version 0 when every commit is there.
    let all_commits = (0..=version).all(|v| listing.commits.contains_key(&v));
    let checkpoint = listing
        .checkpoints
        .range(..=version)
        .rev()
        .find(|(c, _)| (**c + 1..=version).all(|v| listing.commits.contains_key(&v)));
    let mut state = Replay::default();
    let first_commit = match checkpoint {
        Some((c, files)) => {
            for meta in files {
                state.apply_checkpoint(&store, meta).await?;
            }
            c + 1
        }
        None if all_commits => 0,
        None => {
            return Err(plan_datafusion_err!(
                "Delta table '{location}': version {version} cannot be rebuilt: commits before \
                 it were removed from the log and no checkpoint covers them"
            ));
        }
    };
    for v in first_commit..=version {
        let meta = &listing.commits[&v];
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .bytes()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| plan_datafusion_err!("Delta log file {} is not UTF-8", meta.location))?;
        state.apply_json(text, meta.location.as_ref())?;
    }
    state.finish(version, location)
}

#[derive(Default)]
struct Replay {
    files: BTreeMap<String, Add>,
    metadata: Option<Metadata>,
    protocol: Option<Protocol>,
}

impl Replay {
    fn apply(&mut self, action: Action) {
        if let Some(add) = action.add {
            self.files.insert(add.path.clone(), add);
        }
        if let Some(remove) = action.remove {
            self.files.remove(&remove.path);
        }
        if let Some(metadata) = action.meta_data {
            self.metadata = Some(metadata);
        }
        if let Some(protocol) = action.protocol {
            self.protocol = Some(protocol);
        }
    }

    /// The actions of newline-delimited JSON (a commit file, or a
    /// checkpoint's rows written out as JSON).
    fn apply_json(&mut self, text: &str, file: &str) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let action: Action = serde_json::from_str(line)
                .map_err(|e| plan_datafusion_err!("Delta log file {file}, line {}: {e}", i + 1))?;
            self.apply(action);
        }
        Ok(())
    }

    /// A Parquet checkpoint part: its rows are actions, read as Arrow and
    /// written out as JSON lines, the commits' own form.
    async fn apply_checkpoint(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        meta: &ObjectMeta,
    ) -> Result<()> {
        use datafusion::arrow::json::LineDelimitedWriter;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let file = meta.location.to_string();
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .bytes()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batches = ParquetRecordBatchReaderBuilder::try_new(bytes)?
            .build()?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut writer = LineDelimitedWriter::new(Vec::new());
        for batch in &batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        let text = String::from_utf8(writer.into_inner())
            .map_err(|_| plan_datafusion_err!("Delta checkpoint {file} is not UTF-8"))?;
        self.apply_json(&text, &file)
    }

    fn finish(self, version: u64, location: &str) -> Result<Snapshot> {
        let metadata = self.metadata.ok_or_else(|| {
            plan_datafusion_err!("Delta table '{location}': its log has no metaData action")
        })?;
        let protocol = self.protocol.ok_or_else(|| {
            plan_datafusion_err!("Delta table '{location}': its log has no protocol action")
        })?;
        Ok(Snapshot {
            version,
            metadata,
            protocol,
            files: self.files.into_values().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::{ObjectStoreExt, PutPayload};

    const META: &str = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}}"#;

    fn add(path: &str) -> String {
        format!(
            r#"{{"add":{{"path":"{path}","partitionValues":{{}},"size":10,"modificationTime":0,"dataChange":true}}}}"#
        )
    }

    async fn put(store: &InMemory, version: u64, lines: &[String]) {
        let path = Path::from(format!("t/_delta_log/{version:020}.json"));
        store
            .put(&path, PutPayload::from(lines.join("\n")))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn replay_adds_and_removes() {
        let store = InMemory::new();
        put(
            &store,
            0,
            &[META.to_string(), add("a.parquet"), add("b.parquet")],
        )
        .await;
        put(
            &store,
            1,
            &[
                r#"{"commitInfo":{"timestamp":1}}"#.to_string(),
                r#"{"remove":{"path":"a.parquet","dataChange":true}}"#.to_string(),
                add("c.parquet"),
            ],
        )
        .await;
        // Neither a commit nor a checkpoint.
        store
            .put(
                &Path::from("t/_delta_log/_last_checkpoint"),
                PutPayload::from("{}"),
            )
            .await
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        let root = Path::from("t");
        let paths = |s: &Snapshot| s.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        let latest = load_snapshot(Arc::clone(&store), &root, "t", TimeTravel::Latest)
            .await
            .unwrap();
        assert_eq!(latest.version, 1);
        assert_eq!(paths(&latest), ["b.parquet", "c.parquet"]);
        let v0 = load_snapshot(Arc::clone(&store), &root, "t", TimeTravel::Version(0))
            .await
            .unwrap();
        assert_eq!(paths(&v0), ["a.parquet", "b.parquet"]);
        let err = load_snapshot(Arc::clone(&store), &root, "t", TimeTravel::Version(2))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("has no version 2: its log holds versions 0 to 1"),
            "{err}"
        );
        let err = load_snapshot(store, &Path::from("u"), "u", TimeTravel::Latest)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("'u' is not a Delta table"),
            "{err}"
        );
    }

    #[test]
    fn log_file_names() {
        assert_eq!(commit_version("00000000000000000012.json"), Some(12));
        assert_eq!(commit_version("12.json"), None);
        assert_eq!(commit_version("00000000000000000012.crc"), None);
        assert_eq!(
            checkpoint_part("00000000000000000010.checkpoint.parquet"),
            Some((10, 1, 1))
        );
        assert_eq!(
            checkpoint_part("00000000000000000010.checkpoint.0000000002.0000000003.parquet"),
            Some((10, 2, 3))
        );
        assert_eq!(
            checkpoint_part(
                "00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet"
            ),
            None
        );
    }
}
