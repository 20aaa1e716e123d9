//! minispark's settings.
//!
//! Every setting is declared once, in [`SETTINGS`], with its default and what
//! it does; `SET minispark.<key> = value` in a job script, `--conf` on the
//! command line and `Session::builder().config(..)` all land here.
//! DataFusion's own settings (`datafusion.*`) are set the same way.

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{Result, plan_err};

/// One documented setting.
pub struct Setting {
    /// Key without the `minispark.` prefix.
    pub key: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every minispark setting, with its default.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "shuffle.partitions",
        default: "0",
        description: "Partitions of every shuffle (Spark's spark.sql.shuffle.partitions). \
                      0 means the total task slots of the cluster's executors.",
    },
    Setting {
        key: "task.maxFailures",
        default: "4",
        description: "How many times a task may fail before its job fails \
                      (Spark's spark.task.maxFailures). Retries go to another executor when there is one.",
    },
    Setting {
        key: "shuffle.compression",
        default: "lz4",
        description: "Codec of shuffle files and of data sent between processes: lz4, zstd or none. \
                      An embedded local[N] cluster starts its sessions with none: its blocks never leave the machine.",
    },
    Setting {
        key: "netflix.skew",
        default: "1.2",
        description: "Zipf exponent of title popularity in the built-in netflix.* tables (0 = uniform). \
                      At 1.2 the most watched title holds about a fifth of all viewing events: a hot key.",
    },
    Setting {
        key: "netflix.seed",
        default: "42",
        description: "Seed of the built-in netflix.* tables: the same seed, scale and skew give the same rows.",
    },
    Setting {
        key: "sql.autoBroadcastJoinThreshold",
        default: "10485760",
        description: "A join side estimated below this many bytes is broadcast: computed once and \
                      sent whole to every task of the other side, which then never moves (Spark's \
                      spark.sql.autoBroadcastJoinThreshold, 10 MB). -1 turns automatic broadcasts off; \
                      BROADCAST hints still work. Replaces datafusion.optimizer.hash_join_single_partition_threshold.",
    },
    Setting {
        key: "adaptive.enabled",
        default: "true",
        description: "Adaptive execution: once a stage's hash-shuffle inputs are written, choose its tasks \
                      from their real sizes: coalesce small partitions, split skewed join partitions \
                      by map ranges, and run a shuffled join as a broadcast join when one side measured \
                      below sql.autoBroadcastJoinThreshold (its other side then read map output by map \
                      output). Spark's spark.sql.adaptive.enabled.",
    },
    Setting {
        key: "adaptive.advisoryPartitionSizeInBytes",
        default: "67108864",
        description: "Adaptive execution coalesces small shuffle partitions up to about this many bytes \
                      per task, never into fewer tasks than the cluster has slots; split pieces of a \
                      skewed partition aim at it too (Spark's default, 64 MB).",
    },
    Setting {
        key: "skew.skewedPartitionFactor",
        default: "5",
        description: "A shuffle partition is skewed when it is larger than this many times the median \
                      partition (and larger than skew.skewedPartitionThresholdInBytes). Spark's default.",
    },
    Setting {
        key: "skew.skewedPartitionThresholdInBytes",
        default: "268435456",
        description: "A shuffle partition is skewed only when it is larger than this many bytes \
                      (and skew.skewedPartitionFactor times the median). Spark's default: 256 MB.",
    },
    Setting {
        key: "skew.salting",
        default: "off",
        description: "Key salting of skewed joins and GROUP BYs: off, or auto. With auto, before a shuffled \
                      equi-join or a GROUP BY with a COUNT(DISTINCT) (whose input has no join or aggregate \
                      to run whole), a sampling pass finds the hot keys; their rows on the big side get a salt in [0, S) and the other \
                      side's rows for them are replicated S times, so one hot key spreads over S partitions. \
                      The hint /*+ SKEW('t', 'col') */ asks for it on one relation whatever this setting says.",
    },
    Setting {
        key: "skew.saltBuckets",
        default: "0",
        description: "Salt buckets S for salted keys. 0 chooses S per hot key from its measured share s: \
                      enough that each piece is about half a typical partition, 2sN/(1-s) for N partitions, \
                      between 2 and N.",
    },
];

/// Shuffle compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShuffleCompression {
    Lz4,
    Zstd,
    None,
}

/// The typed values of [`SETTINGS`], stored as a DataFusion config extension.
#[derive(Debug, Clone)]
pub struct MinisparkConfig {
    pub shuffle_partitions: usize,
    pub task_max_failures: usize,
    pub shuffle_compression: ShuffleCompression,
    pub netflix_skew: f64,
    pub netflix_seed: u64,
    pub auto_broadcast_join_threshold: i64,
    pub adaptive_enabled: bool,
    pub advisory_partition_bytes: u64,
    pub skewed_partition_factor: f64,
    pub skewed_partition_threshold_bytes: u64,
    pub salting_auto: bool,
    pub salt_buckets: usize,
}

impl Default for MinisparkConfig {
    fn default() -> Self {
        let mut config = Self {
            shuffle_partitions: 0,
            task_max_failures: 0,
            shuffle_compression: ShuffleCompression::Lz4,
            netflix_skew: 0.0,
            netflix_seed: 0,
            auto_broadcast_join_threshold: 0,
            adaptive_enabled: false,
            advisory_partition_bytes: 0,
            skewed_partition_factor: 0.0,
            skewed_partition_threshold_bytes: 0,
            salting_auto: false,
            salt_buckets: 0,
        };
        for s in SETTINGS {
            config
                .set(s.key, s.default)
                .expect("defaults of SETTINGS are valid");
        }
        config
    }
}

fn parse_usize(key: &str, value: &str) -> Result<usize> {
    value.trim().parse().or_else(|_| {
        plan_err!("setting minispark.{key} expects a non-negative integer, got '{value}'")
    })
}

impl ExtensionOptions for MinisparkConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key.to_ascii_lowercase().as_str() {
            "shuffle.partitions" => self.shuffle_partitions = parse_usize(key, value)?,
            "task.maxfailures" => {
                let v = parse_usize(key, value)?;
                if v == 0 {
                    return plan_err!("setting minispark.task.maxFailures must be at least 1");
                }
                self.task_max_failures = v;
            }
            "shuffle.compression" => {
                self.shuffle_compression = match value.trim().to_ascii_lowercase().as_str() {
                    "lz4" => ShuffleCompression::Lz4,
                    "zstd" => ShuffleCompression::Zstd,
                    "none" => ShuffleCompression::None,
                    _ => {
                        return plan_err!(
                            "setting minispark.shuffle.compression expects lz4, zstd or none, got '{value}'"
                        );
                    }
                }
            }
            "netflix.skew" => {
                self.netflix_skew = match value.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    _ => {
                        return plan_err!(
                            "setting minispark.netflix.skew expects a finite number >= 0, got '{value}'"
                        );
                    }
                }
            }
            "netflix.seed" => self.netflix_seed = value.trim().parse().or_else(|_| {
                plan_err!(
                    "setting minispark.netflix.seed expects a non-negative integer, got '{value}'"
                )
            })?,
            "sql.autobroadcastjointhreshold" => {
                self.auto_broadcast_join_threshold = match value.trim().parse::<i64>() {
                    Ok(v) if v >= -1 => v,
                    _ => {
                        return plan_err!(
                            "setting minispark.sql.autoBroadcastJoinThreshold expects a number of bytes or -1, got '{value}'"
                        );
                    }
                }
            }
            "adaptive.enabled" => {
                self.adaptive_enabled = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return plan_err!(
                            "setting minispark.adaptive.enabled expects true or false, got '{value}'"
                        );
                    }
                }
            }
            "adaptive.advisorypartitionsizeinbytes" => {
                self.advisory_partition_bytes = match value.trim().parse::<u64>() {
                    Ok(v) if v > 0 => v,
                    _ => {
                        return plan_err!(
                            "setting minispark.adaptive.advisoryPartitionSizeInBytes expects a positive number of bytes, got '{value}'"
                        );
                    }
                }
            }
            "skew.skewedpartitionfactor" => {
                self.skewed_partition_factor = match value.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 1.0 => v,
                    _ => {
                        return plan_err!(
                            "setting minispark.skew.skewedPartitionFactor expects a number >= 1, got '{value}'"
                        );
                    }
                }
            }
            "skew.skewedpartitionthresholdinbytes" => {
                self.skewed_partition_threshold_bytes = value.trim().parse().or_else(|_| {
                    plan_err!(
                        "setting minispark.skew.skewedPartitionThresholdInBytes expects a non-negative integer, got '{value}'"
                    )
                })?
            }
            "skew.salting" => {
                self.salting_auto = match value.trim().to_ascii_lowercase().as_str() {
                    "auto" => true,
                    "off" => false,
                    _ => {
                        return plan_err!(
                            "setting minispark.skew.salting expects off or auto, got '{value}'"
                        );
                    }
                }
            }
            "skew.saltbuckets" => {
                let v = parse_usize(key, value)?;
                if v == 1 || v > 4096 {
                    return plan_err!(
                        "setting minispark.skew.saltBuckets expects 0 (automatic) or 2 to 4096 buckets, got '{value}'"
                    );
                }
                self.salt_buckets = v;
            }
            _ => {
                let known: Vec<String> = SETTINGS
                    .iter()
                    .map(|s| format!("minispark.{}", s.key))
                    .collect();
                return plan_err!(
                    "unknown setting minispark.{key}; known settings: {}",
                    known.join(", ")
                );
            }
        }
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let value = |key: &str| -> String {
            match key {
                "shuffle.partitions" => self.shuffle_partitions.to_string(),
                "task.maxFailures" => self.task_max_failures.to_string(),
                "shuffle.compression" => format!("{:?}", self.shuffle_compression).to_lowercase(),
                "netflix.skew" => self.netflix_skew.to_string(),
                "netflix.seed" => self.netflix_seed.to_string(),
                "sql.autoBroadcastJoinThreshold" => self.auto_broadcast_join_threshold.to_string(),
                "adaptive.enabled" => self.adaptive_enabled.to_string(),
                "adaptive.advisoryPartitionSizeInBytes" => {
                    self.advisory_partition_bytes.to_string()
                }
                "skew.skewedPartitionFactor" => self.skewed_partition_factor.to_string(),
                "skew.skewedPartitionThresholdInBytes" => {
                    self.skewed_partition_threshold_bytes.to_string()
                }
                "skew.salting" => if self.salting_auto { "auto" } else { "off" }.to_string(),
                "skew.saltBuckets" => self.salt_buckets.to_string(),
                _ => String::new(),
            }
        };
        SETTINGS
            .iter()
            .map(|s| ConfigEntry {
                key: format!("minispark.{}", s.key),
                value: Some(value(s.key)),
                description: s.description,
            })
            .collect()
    }
}

impl ConfigExtension for MinisparkConfig {
    const PREFIX: &'static str = "minispark";
}

/// Reads the minispark settings of a session config (defaults when unset).
pub fn minispark_config(options: &datafusion::common::config::ConfigOptions) -> MinisparkConfig {
    options
        .extensions
        .get::<MinisparkConfig>()
        .cloned()
        .unwrap_or_default()
}
