//! DataFusion's runtime settings (`datafusion.runtime.*`) in a cluster.
//!
//! DataFusion keeps these apart from its other settings: they configure a
//! process's runtime environment (its memory pool, spill files and caches),
//! not a query's plan, and `SET datafusion.runtime.memory_limit = '2G'`
//! rebuilds the session's runtime. In minispark a job's tasks run in other
//! processes, so a session's runtime settings travel with its other changed
//! settings ([`crate::session::changed_settings`]) and every task applies
//! them to the runtime it runs in:
//!
//! | setting | on the driver (planning, results) | in a task |
//! |---|---|---|
//! | `memory_limit` | the session's memory pool | a cap on the task's share of its executor's pool |
//! | `max_temp_directory_size`, `max_spill_merge_fan_in` | the session's spill files | the task's spill files (in its executor's work dir) |
//! | `metadata_cache_limit`, `list_files_cache_limit`, `list_files_cache_ttl`, `file_statistics_cache_limit` | the session's caches | the task's caches |
//! | `temp_directory` | where the session spills | not sent: executors spill into their own work dir |
//!
//! Sizes are written as DataFusion and Spark write them: a number with an
//! optional `K`, `M`, `G` or `T` (and `B`, any case); durations as DataFusion
//! writes them (`1m30s`, `45s`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

/// The prefix of DataFusion's runtime settings.
pub const PREFIX: &str = "datafusion.runtime.";

/// The runtime settings a task applies (all but `temp_directory`).
const SENT: &[&str] = &[
    "memory_limit",
    "max_temp_directory_size",
    "max_spill_merge_fan_in",
    "metadata_cache_limit",
    "list_files_cache_limit",
    "list_files_cache_ttl",
    "file_statistics_cache_limit",
];

/// Every runtime setting DataFusion 55 knows.
const KNOWN: &[&str] = &[
    "memory_limit",
    "max_temp_directory_size",
    "max_spill_merge_fan_in",
    "metadata_cache_limit",
    "list_files_cache_limit",
    "list_files_cache_ttl",
    "file_statistics_cache_limit",
    "temp_directory",
];

/// Whether `key` is one of DataFusion's runtime settings' namespace.
pub fn is_runtime_setting(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with(PREFIX)
}

/// A size in bytes ([`crate::config::parse_size`]: `512m`, `4g`, `1G`,
/// `1048576`), or an error saying how to write one.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    crate::config::parse_size(text).ok_or_else(|| {
        format!(
            "'{}' is not a size: write it like 512m, 4g or 1048576",
            text.trim()
        )
    })
}

/// A duration as DataFusion writes them: `1m30s`, `45s`, `2m`.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: write it like 45s, 2m or 1m30s");
    let mut seconds = 0u64;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        seconds += match c {
            's' => n,
            'm' => n * 60,
            _ => return Err(bad()),
        };
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

/// The runtime settings of a task, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeSettings {
    pub memory_limit: Option<usize>,
    pub max_temp_directory_size: Option<u64>,
    pub max_spill_merge_fan_in: Option<usize>,
    pub metadata_cache_limit: Option<usize>,
    pub list_files_cache_limit: Option<usize>,
    pub list_files_cache_ttl: Option<Duration>,
    pub file_statistics_cache_limit: Option<usize>,
    pub temp_directory: Option<String>,
}

impl RuntimeSettings {
    /// Parses the `datafusion.runtime.*` entries of `settings`; other keys
    /// are ignored. An unknown runtime setting or a bad value is an error
    /// naming it.
    pub fn from_settings(settings: &HashMap<String, String>) -> Result<Self> {
        let mut out = Self::default();
        let mut keys: Vec<&String> = settings.keys().filter(|k| is_runtime_setting(k)).collect();
        keys.sort();
        for key in keys {
            out.set(key, &settings[key])?;
        }
        Ok(out)
    }

    /// Sets one runtime setting (`key` with its prefix).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let name = key.to_ascii_lowercase();
        let name = name.strip_prefix(PREFIX).unwrap_or(&name).to_string();
        let err = |e: String| DataFusionError::Configuration(format!("{PREFIX}{name}: {e}"));
        let size = |v: &str| parse_size(v).map_err(err);
        let count = |v: &str| -> Result<usize> {
            usize::try_from(size(v)?).map_err(|_| err(format!("'{v}' is too large")))
        };
        match name.as_str() {
            "memory_limit" => self.memory_limit = Some(count(value)?),
            "max_temp_directory_size" => self.max_temp_directory_size = Some(size(value)?),
            "max_spill_merge_fan_in" => {
                self.max_spill_merge_fan_in =
                    Some(value.trim().parse().map_err(|_| {
                        err(format!("'{value}' is not a non-negative whole number"))
                    })?)
            }
            "metadata_cache_limit" => self.metadata_cache_limit = Some(count(value)?),
            "list_files_cache_limit" => self.list_files_cache_limit = Some(count(value)?),
            "list_files_cache_ttl" => {
                self.list_files_cache_ttl = Some(parse_duration(value).map_err(err)?)
            }
            "file_statistics_cache_limit" => self.file_statistics_cache_limit = Some(count(value)?),
            "temp_directory" => self.temp_directory = Some(value.to_string()),
            _ => {
                return Err(DataFusionError::Configuration(format!(
                    "unknown runtime setting '{key}'; the runtime settings are {}",
                    KNOWN
                        .iter()
                        .map(|k| format!("{PREFIX}{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    /// `builder` with these settings, as DataFusion's `SET` applies them;
    /// a memory limit becomes DataFusion's own pool of that size.
    pub fn apply(&self, mut builder: RuntimeEnvBuilder) -> RuntimeEnvBuilder {
        if let Some(limit) = self.memory_limit {
            builder = builder.with_memory_limit(limit, 1.0);
        }
        self.apply_except_memory(builder)
    }

    /// `builder` with every setting but the memory limit and the temp
    /// directory: what a task applies on its executor, whose memory pool and
    /// spill directory are the executor's.
    pub fn apply_except_memory(&self, mut builder: RuntimeEnvBuilder) -> RuntimeEnvBuilder {
        if let Some(size) = self.max_temp_directory_size {
            builder = builder.with_max_temp_directory_size(size);
        }
        if let Some(fan_in) = self.max_spill_merge_fan_in {
            builder = builder.with_max_spill_merge_fan_in(fan_in);
        }
        if let Some(limit) = self.metadata_cache_limit {
            builder = builder.with_metadata_cache_limit(limit);
        }
        if let Some(limit) = self.list_files_cache_limit {
            builder = builder.with_object_list_cache_limit(limit);
        }
        if let Some(ttl) = self.list_files_cache_ttl {
            builder = builder.with_object_list_cache_ttl(Some(ttl));
        }
        if let Some(limit) = self.file_statistics_cache_limit {
            builder = builder.with_file_statistics_cache_limit(limit);
        }
        builder
    }

    /// Whether a task needs spill files of its own (settings of its own
    /// for them) rather than its executor's shared ones.
    pub fn has_disk_settings(&self) -> bool {
        self.max_temp_directory_size.is_some() || self.max_spill_merge_fan_in.is_some()
    }
}

/// The runtime settings of `runtime` that differ from a fresh runtime's,
/// as `datafusion.runtime.*` entries, without `temp_directory`: what a
/// session's tasks are sent.
pub fn changed_runtime_settings(runtime: &RuntimeEnv) -> BTreeMap<String, String> {
    let fresh: HashMap<String, Option<String>> = RuntimeEnv::default()
        .config_entries()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    runtime
        .config_entries()
        .into_iter()
        .filter(|e| SENT.iter().any(|k| e.key == format!("{PREFIX}{k}")))
        .filter(|e| fresh.get(&e.key) != Some(&e.value))
        .filter_map(|e| e.value.map(|v| (e.key, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_datafusion_writes_them() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64 << 10));
        let err = parse_size("1.5g").unwrap_err();
        assert!(err.contains("write it like 512m"), "{err}");
    }

    #[test]
    fn runtime_settings_parse_and_name_what_is_wrong() {
        let settings: HashMap<String, String> = [
            ("datafusion.runtime.memory_limit", "64M"),
            ("datafusion.runtime.list_files_cache_ttl", "1m30s"),
            ("datafusion.runtime.max_spill_merge_fan_in", "8"),
            ("datafusion.execution.batch_size", "100"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let parsed = RuntimeSettings::from_settings(&settings).unwrap();
        assert_eq!(parsed.memory_limit, Some(64 << 20));
        assert_eq!(parsed.list_files_cache_ttl, Some(Duration::from_secs(90)));
        assert_eq!(parsed.max_spill_merge_fan_in, Some(8));
        assert!(parsed.has_disk_settings());

        let mut s = RuntimeSettings::default();
        let err = s.set("datafusion.runtime.memory_limt", "1G").unwrap_err();
        assert!(err.to_string().contains("unknown runtime setting"), "{err}");
        assert!(
            err.to_string().contains("datafusion.runtime.memory_limit"),
            "{err}"
        );
        let err = s
            .set("datafusion.runtime.memory_limit", "lots")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("memory_limit: 'lots' is not a size"),
            "{err}"
        );
    }

    #[test]
    fn changed_runtime_settings_are_what_a_set_changed() {
        let fresh = RuntimeEnv::default();
        assert!(changed_runtime_settings(&fresh).is_empty());
        let mut s = RuntimeSettings::default();
        s.set("datafusion.runtime.memory_limit", "2G").unwrap();
        s.set("datafusion.runtime.max_spill_merge_fan_in", "4")
            .unwrap();
        let runtime = s.apply(RuntimeEnvBuilder::new()).build().unwrap();
        let changed = changed_runtime_settings(&runtime);
        assert_eq!(
            changed
                .get("datafusion.runtime.memory_limit")
                .map(String::as_str),
            Some("2G")
        );
        assert_eq!(
            changed
                .get("datafusion.runtime.max_spill_merge_fan_in")
                .map(String::as_str),
            Some("4")
        );
        assert_eq!(changed.len(), 2, "{changed:?}");
        // And they parse back to the same.
        let back: HashMap<String, String> = changed.into_iter().collect();
        let parsed = RuntimeSettings::from_settings(&back).unwrap();
        assert_eq!(parsed.memory_limit, Some(2 << 30));
        assert_eq!(parsed.max_spill_merge_fan_in, Some(4));
    }
}
