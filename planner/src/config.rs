//! minispark's settings.
//!
//! Every setting is declared once, in the `settings!` list below: its key,
//! default, accepted values, meaning, and the typed field it fills. That
//! one list makes the [`SETTINGS`] table, the [`MinisparkConfig`] struct and
//! its defaults, `SET` and `SHOW`, the `minispark settings` listing and the
//! README's settings table ([`settings_markdown`], checked by a test).
//! `SET minispark.<key> = value` in a job script, `--conf` on the command
//! line and `Session::builder().config(..)` all land here. DataFusion's own
//! settings (`datafusion.*`) are set the same way.

use std::any::Any;
use std::str::FromStr;
use std::time::Duration;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{Result, plan_err};

/// One setting, as the `settings!` list declares it.
pub struct Setting {
    /// Key without the `minispark.` prefix.
    pub key: &'static str,
    pub default: &'static str,
    /// The values it accepts, as an error message names them.
    pub accepts: &'static str,
    pub description: &'static str,
    /// Stores a value's text in its [`MinisparkConfig`] field; `None` when
    /// the text is not one of the accepted values.
    set: fn(&mut MinisparkConfig, &str) -> Option<()>,
    /// The field's value as text, as `SHOW` prints it (`********` for a
    /// set secret).
    get: fn(&MinisparkConfig) -> String,
    /// For a secret (a password, a key): its value, which only
    /// [`secret_settings`] reads, to send it to the tasks that need it.
    raw: Option<fn(&MinisparkConfig) -> String>,
}

impl Setting {
    /// The full key, `minispark.<key>`.
    pub fn name(&self) -> String {
        format!("minispark.{}", self.key)
    }

    /// Whether the value is a secret: `SHOW`, `information_schema`, EXPLAIN
    /// and `Debug` print `********` for it.
    pub fn is_secret(&self) -> bool {
        self.raw.is_some()
    }
}

/// Declares every setting once: the fields of [`MinisparkConfig`] and the
/// rows of [`SETTINGS`], from one entry per setting:
///
/// ```text
/// field: Type {
///     key: "section.name",          // minispark.section.name
///     default: "text",              // parsed like a user's value
///     accepts: "what error messages say it accepts",
///     parse: |text| -> Option<Type>,
///     show: |&Type| -> String,      // optional; to_string() otherwise
///     secret: true,                 // optional: a [`Secret`] field, never shown
///     description: "for docs, SHOW and the README",
/// }
/// ```
macro_rules! settings {
    (@show $value:expr, $ty:ty) => {
        $value.to_string()
    };
    (@show $value:expr, $ty:ty, $show:expr) => {{
        let show: fn(&$ty) -> String = $show;
        show(&$value)
    }};
    (@raw $field:ident) => {
        None
    };
    (@raw $field:ident, $secret:literal) => {
        Some(|config: &MinisparkConfig| config.$field.expose().to_string())
    };
    ($(
        $field:ident: $ty:ty {
            key: $key:literal,
            default: $default:literal,
            accepts: $accepts:literal,
            parse: $parse:expr,
            $(show: $show:expr,)?
            $(secret: $secret:literal,)?
            description: $description:literal,
        }
    )*) => {
        /// The typed values of [`SETTINGS`], stored as a DataFusion config
        /// extension. Each field's doc is its setting's description.
        #[derive(Debug, Clone)]
        pub struct MinisparkConfig {
            $(
                #[doc = concat!("`minispark.", $key, "` (default `", $default, "`): ", $description)]
                pub $field: $ty,
            )*
        }

        /// Every minispark setting, with its default.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                key: $key,
                default: $default,
                accepts: $accepts,
                description: $description,
                set: |config: &mut MinisparkConfig, text: &str| {
                    let parse: fn(&str) -> Option<$ty> = $parse;
                    config.$field = parse(text.trim())?;
                    Some(())
                },
                get: |config: &MinisparkConfig| settings!(@show config.$field, $ty $(, $show)?),
                raw: settings!(@raw $field $(, $secret)?),
            },
        )*];

        impl Default for MinisparkConfig {
            /// The defaults of [`SETTINGS`].
            fn default() -> Self {
                Self {
                    $(
                        $field: {
                            let parse: fn(&str) -> Option<$ty> = $parse;
                            parse($default).expect(concat!("the default of minispark.", $key, " is valid"))
                        },
                    )*
                }
            }
        }
    };
}

/// A number of the field's type (`FromStr`), or `None`.
fn number<T: FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

/// Size suffixes as Spark spells them (`512m`, `1g`, `10kb`), in bytes.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
    ("p", 1 << 50),
];

/// A size as Spark spells it: a number of bytes, or a number with a
/// suffix k, m, g, t or p (optionally followed by b), case-insensitively.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let value: u64 = digits.parse().ok()?;
    let suffix = suffix.trim();
    let unit = match suffix {
        "" | "b" => 1,
        _ => {
            let letter = suffix.strip_suffix('b').unwrap_or(suffix);
            SIZE_UNITS.iter().find(|(u, _)| *u == letter)?.1
        }
    };
    value.checked_mul(unit)
}

/// A size in the largest unit that divides it: `1g`, `512m`, `1000`.
pub fn show_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .rev()
        .find(|(_, unit)| bytes > 0 && bytes.is_multiple_of(*unit))
        .map_or_else(
            || bytes.to_string(),
            |(suffix, unit)| format!("{}{suffix}", bytes / unit),
        )
}

/// Duration suffixes as Spark spells them (`500ms`, `30s`, `5m`/`5min`,
/// `1h`, `1d`), in milliseconds.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("min", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// A duration as Spark spells one: a number with a suffix ms, s, m (or
/// min), h or d, case-insensitively; a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    parse_duration_in(text, 1_000)
}

/// [`parse_duration`], with a bare number counted in `bare_unit_ms`.
fn parse_duration_in(text: &str, bare_unit_ms: u64) -> Option<Duration> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let value: u64 = digits.parse().ok()?;
    let unit = match suffix.trim() {
        "" => bare_unit_ms,
        suffix => DURATION_UNITS.iter().find(|(u, _)| *u == suffix)?.1,
    };
    value.checked_mul(unit).map(Duration::from_millis)
}

/// A duration in the largest unit that divides it: `5m`, `30s`, `1500ms`, `0`.
pub fn show_duration(duration: Duration) -> String {
    let ms = duration.as_millis() as u64;
    if ms == 0 {
        return "0".into();
    }
    let (suffix, unit) = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ]
    .into_iter()
    .find(|(_, unit)| ms.is_multiple_of(*unit))
    .unwrap_or(("ms", 1));
    format!("{}{suffix}", ms / unit)
}

/// A duration as Spark spells it (`5s`, `500ms`, `1m`; milliseconds
/// without a suffix), in milliseconds, at most an hour.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let ms = parse_duration_in(text, 1)?.as_millis();
    u64::try_from(ms).ok().filter(|ms| *ms <= 3_600_000)
}

/// A duration in milliseconds as [`parse_duration_ms`] reads it: `5s`, `500ms`.
pub fn show_duration_ms(ms: u64) -> String {
    if ms > 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The value named `text` (case-insensitively) in `names`.
fn keyword<T: Copy>(names: &[(&str, T)], text: &str) -> Option<T> {
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| *value)
}

/// The name of `value` in `names`.
fn keyword_name<T: PartialEq>(names: &[(&'static str, T)], value: &T) -> String {
    names
        .iter()
        .find(|(_, v)| v == value)
        .map_or("?", |(name, _)| name)
        .to_string()
}

/// Shuffle compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShuffleCompression {
    Lz4,
    Zstd,
    None,
}

/// `minispark.shuffle.compression`'s values.
const COMPRESSIONS: &[(&str, ShuffleCompression)] = &[
    ("lz4", ShuffleCompression::Lz4),
    ("zstd", ShuffleCompression::Zstd),
    ("none", ShuffleCompression::None),
];
/// `minispark.skew.salting`'s values: is it `auto`?
const SALTING: &[(&str, bool)] = &[("off", false), ("auto", true)];
const BOOLEAN: &[(&str, bool)] = &[("true", true), ("false", false)];

/// Any text; empty means "not set".
fn text(text: &str) -> Option<String> {
    Some(text.to_string())
}

/// `true`, `false`, or empty: not set (the environment decides).
fn optional_bool(text: &str) -> Option<Option<bool>> {
    if text.is_empty() {
        return Some(None);
    }
    keyword(BOOLEAN, text).map(Some)
}

/// An optional boolean as `SHOW` prints it: empty when not set.
fn show_optional_bool(value: &Option<bool>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A secret setting's value (a key, a password): empty when not set.
/// `Debug`, `Display` and `SHOW` print `********` for a set secret, so the
/// value cannot reach a log, an error message or a query result by accident;
/// [`Secret::expose`] reads it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the code that authenticates with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            f.write_str(REDACTED)
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({self})")
    }
}

/// What a set secret shows as.
pub const REDACTED: &str = "********";

/// A secret setting's value.
fn secret(text: &str) -> Option<Secret> {
    Some(Secret::new(text))
}

/// Most attempts `minispark.task.maxFailures` may allow a task.
pub const MAX_TASK_FAILURES: usize = 100;

/// Largest `datafusion.execution.batch_size`: operators size buffers by it.
pub const MAX_BATCH_SIZE: usize = 1 << 20;

/// Bounds minispark puts on DataFusion settings that size allocations:
/// `datafusion.execution.batch_size` must be from 1 to [`MAX_BATCH_SIZE`].
/// Other keys pass (DataFusion checks their type).
pub fn check_datafusion_bound(key: &str, value: &str) -> datafusion::common::Result<()> {
    if key.eq_ignore_ascii_case("datafusion.execution.batch_size") {
        let ok = value
            .trim()
            .parse::<usize>()
            .is_ok_and(|v| (1..=MAX_BATCH_SIZE).contains(&v));
        if !ok {
            return Err(datafusion::common::DataFusionError::Configuration(format!(
                "setting datafusion.execution.batch_size expects an integer from 1 to \
                 {MAX_BATCH_SIZE}, got '{value}'"
            )));
        }
    }
    Ok(())
}

settings! {
    shuffle_partitions: usize {
        key: "shuffle.partitions",
        default: "0",
        accepts: "a non-negative integer up to 100000",
        parse: |t| number(t).filter(|v| *v <= minispark_proto::limits::MAX_SHUFFLE_PARTITIONS),
        description: "Partitions of every shuffle (Spark's spark.sql.shuffle.partitions). \
                      0 means the total task slots of the cluster's executors.",
    }
    task_max_failures: usize {
        key: "task.maxFailures",
        default: "4",
        accepts: "an integer from 1 to 100",
        parse: |t| number(t).filter(|v| (1..=MAX_TASK_FAILURES).contains(v)),
        description: "How many times a task may fail before its job fails \
                      (Spark's spark.task.maxFailures). Retries go to another executor when there is one. \
                      An error that depends only on the data and the plan (a division by zero, a bad \
                      cast, an overflow) fails the job at once: only transport, I/O and lost-executor \
                      failures are retried.",
    }
    speculation: bool {
        key: "speculation",
        default: "false",
        accepts: "true or false",
        parse: |t| keyword(BOOLEAN, t),
        description: "Speculative execution (Spark's spark.speculation, off by default): once \
                      speculation.quantile of a stage's tasks are done, a task running longer than \
                      speculation.multiplier times their median (and at least 100 ms) gets a second \
                      attempt on another executor; the first to finish wins, the other is cancelled \
                      and its output never recorded.",
    }
    speculation_multiplier: f64 {
        key: "speculation.multiplier",
        default: "1.5",
        accepts: "a number >= 1",
        parse: |t| number(t).filter(|v: &f64| v.is_finite() && *v >= 1.0),
        description: "How many times slower than the median of its stage's finished tasks a task must be \
                      to be speculated (Spark's spark.speculation.multiplier, 1.5).",
    }
    speculation_quantile: f64 {
        key: "speculation.quantile",
        default: "0.75",
        accepts: "a number from 0 to 1",
        parse: |t| number(t).filter(|v: &f64| (0.0..=1.0).contains(v)),
        description: "Fraction of a stage's tasks that must be done before its tasks are speculated \
                      (Spark's spark.speculation.quantile, 0.75; at least one task).",
    }
    task_timeout: Duration {
        key: "task.timeout",
        default: "0",
        accepts: "a duration such as 30s, 5m or 500ms (a bare number is seconds), or 0 for none",
        parse: parse_duration,
        show: |v| show_duration(*v),
        description: "A task attempt that has not finished within this time is cancelled and counted as \
                      a failure, then retried on another executor (up to task.maxFailures). 0: no timeout. \
                      Spark has no such setting (a hung task waits for speculation or a cancel).",
    }
    shuffle_compression: ShuffleCompression {
        key: "shuffle.compression",
        default: "lz4",
        accepts: "lz4, zstd or none",
        parse: |t| keyword(COMPRESSIONS, t),
        show: |v| keyword_name(COMPRESSIONS, v),
        description: "Codec of shuffle files and of data sent between processes: lz4, zstd or none. \
                      An embedded local[N] cluster starts its sessions with none: its blocks never leave the machine.",
    }
    reducer_max_size_in_flight: u64 {
        key: "reducer.maxSizeInFlight",
        default: "48m",
        accepts: "a positive size such as 48m (k, m, g, t; bytes without a suffix)",
        parse: |t| parse_size(t).filter(|v| *v > 0),
        show: |v| show_size(*v),
        description: "Most bytes of other executors' shuffle blocks one task fetches at once; blocks are \
                      fetched concurrently up to it and read in map order (Spark's \
                      spark.reducer.maxSizeInFlight, 48m). A larger block is fetched alone.",
    }
    network_max_remote_block_size_fetch_to_mem: u64 {
        key: "network.maxRemoteBlockSizeFetchToMem",
        default: "200m",
        accepts: "a positive size such as 200m (k, m, g, t; bytes without a suffix)",
        parse: |t| parse_size(t).filter(|v| *v > 0),
        show: |v| show_size(*v),
        description: "A shuffle block of another executor larger than this is fetched to a file in the \
                      executor's work dir and read from there, never held in memory; so is a block \
                      the task's memory cannot hold (Spark's \
                      spark.network.maxRemoteBlockSizeFetchToMem, 200m).",
    }
    shuffle_io_max_retries: u32 {
        key: "shuffle.io.maxRetries",
        default: "3",
        accepts: "a non-negative integer up to 100",
        parse: |t| number(t).filter(|v| *v <= 100),
        description: "How many times a shuffle fetch that failed for a passing reason (the executor \
                      unreachable or busy) is tried again before the task fails (Spark's \
                      spark.shuffle.io.maxRetries). A block its executor says it does not have is not \
                      retried: its map output is computed again.",
    }
    shuffle_io_retry_wait_ms: u64 {
        key: "shuffle.io.retryWait",
        default: "5s",
        accepts: "a duration such as 5s or 500ms (ms, s, m)",
        parse: parse_duration_ms,
        show: |v| show_duration_ms(*v),
        description: "Wait before the first retry of a failed shuffle fetch; each further retry waits \
                      twice as long as the one before (Spark's spark.shuffle.io.retryWait, 5s).",
    }
    shuffle_io_connection_timeout_ms: u64 {
        key: "shuffle.io.connectionTimeout",
        default: "120s",
        accepts: "a positive duration such as 120s or 500ms (ms, s, m)",
        parse: |t| parse_duration_ms(t).filter(|v| *v > 0),
        show: |v| show_duration_ms(*v),
        description: "How long a shuffle fetch may wait for its executor's next answer (the block's \
                      first bytes, then each further chunk); a fetch that hangs longer fails and is \
                      retried like any passing error (Spark's spark.shuffle.io.connectionTimeout, 120s).",
    }
    netflix_skew: f64 {
        key: "netflix.skew",
        default: "1.2",
        accepts: "a finite number >= 0",
        parse: |t| number(t).filter(|v: &f64| v.is_finite() && *v >= 0.0),
        description: "Zipf exponent of title popularity in the built-in netflix.* tables (0 = uniform). \
                      At 1.2 the most watched title holds about a fifth of all viewing events: a hot key.",
    }
    netflix_seed: u64 {
        key: "netflix.seed",
        default: "42",
        accepts: "a non-negative integer",
        parse: number,
        description: "Seed of the built-in netflix.* tables: the same seed, scale and skew give the same rows.",
    }
    auto_broadcast_join_threshold: i64 {
        key: "sql.autoBroadcastJoinThreshold",
        default: "10485760",
        accepts: "a number of bytes or -1",
        parse: |t| number(t).filter(|v| *v >= -1),
        description: "A join side estimated below this many bytes is broadcast: computed once and \
                      sent whole to every task of the other side, which then never moves (Spark's \
                      spark.sql.autoBroadcastJoinThreshold, 10 MB). -1 turns automatic broadcasts off; \
                      BROADCAST hints still work. Replaces datafusion.optimizer.hash_join_single_partition_threshold.",
    }
    runtime_filter_creation_side_threshold: i64 {
        key: "sql.runtimeFilter.creationSideThreshold",
        default: "10485760",
        accepts: "a number of bytes or -1",
        parse: |t| number(t).filter(|v| *v >= -1),
        description: "Runtime filters: when one side of a shuffled join filters its rows and is estimated \
                      below this many bytes (or a stage under it holding all its keys is), the other \
                      side's scan stage waits for it and shuffles only the rows whose join keys it holds; \
                      dropped when that side measures more. A broadcast join's build side filters the \
                      same way the scan stages under its probe side that carry its key. Matters most for LEFT, SEMI and ANTI \
                      joins (EXISTS), whose small side cannot be broadcast (Spark's \
                      spark.sql.optimizer.runtime.bloomFilter.creationSideThreshold, 10 MB; minispark's \
                      filter is exact). -1 plants no runtime filter.",
    }
    adaptive_enabled: bool {
        key: "adaptive.enabled",
        default: "true",
        accepts: "true or false",
        parse: |t| keyword(BOOLEAN, t),
        description: "Adaptive execution: once a stage's hash-shuffle inputs are written, choose its tasks \
                      from their real sizes: coalesce small partitions, split skewed join partitions \
                      by map ranges, and run a shuffled join as a broadcast join when one side measured \
                      below sql.autoBroadcastJoinThreshold (its other side then read map output by map \
                      output). Spark's spark.sql.adaptive.enabled.",
    }
    advisory_partition_bytes: u64 {
        key: "adaptive.advisoryPartitionSizeInBytes",
        default: "67108864",
        accepts: "a positive number of bytes",
        parse: |t| number(t).filter(|v| *v > 0),
        description: "Adaptive execution coalesces small shuffle partitions up to about this many bytes \
                      per task, never into fewer tasks than the cluster has slots; split pieces of a \
                      skewed partition aim at it too (Spark's default, 64 MB).",
    }
    skewed_partition_factor: f64 {
        key: "skew.skewedPartitionFactor",
        default: "5",
        accepts: "a number >= 1",
        parse: |t| number(t).filter(|v: &f64| v.is_finite() && *v >= 1.0),
        description: "A shuffle partition is skewed when it is larger than this many times the median \
                      partition (and larger than skew.skewedPartitionThresholdInBytes). Spark's default.",
    }
    skewed_partition_threshold_bytes: u64 {
        key: "skew.skewedPartitionThresholdInBytes",
        default: "268435456",
        accepts: "a non-negative number of bytes",
        parse: number,
        description: "A shuffle partition is skewed only when it is larger than this many bytes \
                      (and skew.skewedPartitionFactor times the median). Spark's default: 256 MB.",
    }
    salting_auto: bool {
        key: "skew.salting",
        default: "off",
        accepts: "off or auto",
        parse: |t| keyword(SALTING, t),
        show: |v| keyword_name(SALTING, v),
        description: "Key salting of skewed joins and GROUP BYs: off, or auto. With auto, before a shuffled \
                      equi-join or a GROUP BY with a COUNT(DISTINCT) (whose input has no join or aggregate \
                      to run whole), a sampling pass finds the hot keys; their rows on the big side get a salt in [0, S) and the other \
                      side's rows for them are replicated S times, so one hot key spreads over S partitions. \
                      The hint /*+ SKEW('t', 'col') */ asks for it on one relation whatever this setting says.",
    }
    max_result_size: u64 {
        key: "driver.maxResultSize",
        default: "1g",
        accepts: "a size such as 512m or 1g (k, m, g, t; bytes without a suffix), or 0 for no limit",
        parse: parse_size,
        show: |v| show_size(*v),
        description: "Most bytes of a query's result (its result blocks, as the executors wrote them) \
                      the driver returns to a client; a larger result fails the job with an error \
                      naming this setting (Spark's spark.driver.maxResultSize, 1g). 0 means no limit.",
    }
    event_log_dir: String {
        key: "eventLog.dir",
        default: "",
        accepts: "a directory path, or empty for none",
        parse: text,
        description: "Directory on the driver where each job writes its events (job, stage and task start and end \
                      with their metrics, adaptive decisions, executors added and lost) as JSON lines, one \
                      <job id>.jsonl file per job, for `minispark history --dir DIR`. Empty: no event log (Spark's \
                      spark.eventLog.enabled = false and spark.eventLog.dir).",
    }
    executor_memory: u64 {
        key: "executor.memory",
        default: "0",
        accepts: "a size such as 512m or 4g (k, m, g, t; bytes without a suffix), or 0 for no limit",
        parse: parse_size,
        show: |v| show_size(*v),
        description: "Memory each executor of an embedded cluster (local[N]) gives its running tasks, \
                      shared fairly among them: sorts, aggregations and sort-merge joins spill into the \
                      executor's work dir beyond their share (Spark's spark.executor.memory). 0: unbounded. \
                      Read when the cluster starts; a standalone executor takes --memory.",
    }
    salt_buckets: usize {
        key: "skew.saltBuckets",
        default: "0",
        accepts: "0 (automatic) or 2 to 4096 buckets",
        parse: |t| number(t).filter(|v| *v == 0 || (2..=4096).contains(v)),
        description: "Salt buckets S for salted keys. 0 chooses S per hot key from its measured share s: \
                      enough that each piece is about half a typical partition, 2sN/(1-s) for N partitions, \
                      between 2 and N.",
    }
    ansi_enabled: bool {
        key: "sql.ansi.enabled",
        default: "true",
        accepts: "true or false",
        parse: |t| keyword(BOOLEAN, t),
        description: "ANSI mode, as Spark 4's default (spark.sql.ansi.enabled): integer +, - and * \
                      that overflow their type fail the query with an error naming this setting. \
                      false: they wrap around (two's complement), as Spark 3 did by default.",
    }
    s3_endpoint: String {
        key: "s3.endpoint",
        default: "",
        accepts: "a URL, or empty",
        parse: text,
        description: "Endpoint of s3:// locations, for S3-compatible servers (MinIO, moto, ...), e.g. \
                      http://host:9000. Empty: AWS_ENDPOINT_URL, else AWS itself. Like every object store \
                      setting, it travels with the job: the driver and every executor build the same store.",
    }
    s3_region: String {
        key: "s3.region",
        default: "",
        accepts: "a region name, or empty",
        parse: text,
        description: "Region of s3:// buckets. Empty: AWS_REGION (or AWS_DEFAULT_REGION), else us-east-1.",
    }
    s3_access_key_id: String {
        key: "s3.accessKeyId",
        default: "",
        accepts: "an access key id, or empty",
        parse: text,
        description: "Access key id for s3:// locations. Empty: AWS_ACCESS_KEY_ID of each process \
                      (or the instance's credentials).",
    }
    s3_secret_access_key: Secret {
        key: "s3.secretAccessKey",
        default: "",
        accepts: "a secret access key, or empty",
        parse: secret,
        secret: true,
        description: "Secret access key for s3:// locations (shown as ********). Empty: \
                      AWS_SECRET_ACCESS_KEY of each process.",
    }
    s3_session_token: Secret {
        key: "s3.sessionToken",
        default: "",
        accepts: "a session token, or empty",
        parse: secret,
        secret: true,
        description: "Session token of temporary s3:// credentials (shown as ********). Empty: AWS_SESSION_TOKEN.",
    }
    s3_allow_http: Option<bool> {
        key: "s3.allowHttp",
        default: "",
        accepts: "true, false or empty",
        parse: optional_bool,
        show: show_optional_bool,
        description: "Whether an http:// (unencrypted) s3.endpoint is allowed. Empty: AWS_ALLOW_HTTP, else false.",
    }
    gcs_service_account_path: String {
        key: "gcs.serviceAccountPath",
        default: "",
        accepts: "a file path, or empty",
        parse: text,
        description: "Service account JSON file for gs:// locations, on every process's file system. \
                      Empty: GOOGLE_SERVICE_ACCOUNT (or GOOGLE_APPLICATION_CREDENTIALS).",
    }
    gcs_service_account_key: Secret {
        key: "gcs.serviceAccountKey",
        default: "",
        accepts: "a service account JSON, or empty",
        parse: secret,
        secret: true,
        description: "Service account JSON itself for gs:// locations (shown as ********). Empty: \
                      GOOGLE_SERVICE_ACCOUNT_KEY.",
    }
    azure_account_name: String {
        key: "azure.accountName",
        default: "",
        accepts: "a storage account name, or empty",
        parse: text,
        description: "Storage account of az://, azure://, abfs(s):// and adl:// locations. Empty: AZURE_STORAGE_ACCOUNT_NAME.",
    }
    azure_access_key: Secret {
        key: "azure.accessKey",
        default: "",
        accepts: "a storage account key, or empty",
        parse: secret,
        secret: true,
        description: "Storage account key for Azure locations (shown as ********). Empty: AZURE_STORAGE_ACCOUNT_KEY.",
    }
    azure_sas_token: Secret {
        key: "azure.sasToken",
        default: "",
        accepts: "a SAS token, or empty",
        parse: secret,
        secret: true,
        description: "Shared access signature for Azure locations (shown as ********). Empty: AZURE_STORAGE_SAS_TOKEN.",
    }
    azure_endpoint: String {
        key: "azure.endpoint",
        default: "",
        accepts: "a URL, or empty",
        parse: text,
        description: "Endpoint of Azure locations (e.g. an Azurite emulator). Empty: AZURE_STORAGE_ENDPOINT, \
                      else Azure itself.",
    }
    azure_allow_http: Option<bool> {
        key: "azure.allowHttp",
        default: "",
        accepts: "true, false or empty",
        parse: optional_bool,
        show: show_optional_bool,
        description: "Whether an http:// azure.endpoint is allowed. Empty: AZURE_ALLOW_HTTP, else false.",
    }
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
        let Some(setting) = SETTINGS.iter().find(|s| s.key.eq_ignore_ascii_case(key)) else {
            let known: Vec<String> = SETTINGS.iter().map(Setting::name).collect();
            return plan_err!(
                "unknown setting minispark.{key}; known settings: {}",
                known.join(", ")
            );
        };
        match (setting.set)(self, value) {
            Some(()) => Ok(()),
            None => plan_err!(
                "setting {} expects {}, got '{}'",
                setting.name(),
                setting.accepts,
                if setting.is_secret() { REDACTED } else { value }
            ),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        SETTINGS
            .iter()
            .map(|s| ConfigEntry {
                key: s.name(),
                value: Some((s.get)(self)),
                description: s.description,
            })
            .collect()
    }
}

impl ConfigExtension for MinisparkConfig {
    const PREFIX: &'static str = "minispark";
}

/// The secret settings that are set, with their values: what a task needs
/// besides the shown settings (whose secrets read `********`).
pub fn secret_settings(config: &MinisparkConfig) -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .filter_map(|s| Some((s.name(), (s.raw?)(config))))
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// Reads the minispark settings of a session config (defaults when unset).
pub fn minispark_config(options: &datafusion::common::config::ConfigOptions) -> MinisparkConfig {
    options
        .extensions
        .get::<MinisparkConfig>()
        .cloned()
        .unwrap_or_default()
}

/// The README's settings table (section "Settings"), one row per setting:
/// `minispark settings --markdown` prints it, and a test checks the README
/// against it.
pub fn settings_markdown() -> String {
    let mut table = String::from("| setting | default | meaning |\n|---|---|---|\n");
    for s in SETTINGS {
        // An empty default (not set) is an empty cell.
        let default = match s.default {
            "" => String::new(),
            d => format!("`{d}`"),
        };
        table.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            s.name(),
            s.description.replace('|', "\\|")
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_is_bounded_and_the_bound_named() {
        for bad in ["0", "4000000000", "many"] {
            let err = check_datafusion_bound("datafusion.execution.batch_size", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("from 1 to 1048576") && err.contains(bad),
                "{err}"
            );
        }
        check_datafusion_bound("datafusion.execution.batch_size", "8192").unwrap();
        check_datafusion_bound("datafusion.execution.target_partitions", "0").unwrap();
    }

    #[test]
    fn every_default_parses_and_shows_as_declared() {
        let config = MinisparkConfig::default();
        for (s, entry) in SETTINGS.iter().zip(config.entries()) {
            assert_eq!(entry.key, s.name());
            assert_eq!(entry.value.as_deref(), Some(s.default), "{}", s.key);
        }
        assert_eq!(config.shuffle_compression, ShuffleCompression::Lz4);
        assert_eq!(config.task_max_failures, 4);
        assert!(config.adaptive_enabled && !config.salting_auto);
    }

    #[test]
    fn durations_read_and_print_as_spark_spells_them() {
        for (text, ms) in [("5s", 5000), ("500ms", 500), ("1m", 60_000), ("250", 250)] {
            assert_eq!(parse_duration_ms(text), Some(ms), "{text}");
        }
        for bad in ["", "s", "5h", "-1s", "2x"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(show_duration_ms(5000), "5s");
        assert_eq!(show_duration_ms(1500), "1500ms");
        let mut config = MinisparkConfig::default();
        assert_eq!(config.shuffle_io_retry_wait_ms, 5000);
        assert_eq!(config.reducer_max_size_in_flight, 48 << 20);
        config.set("shuffle.io.retryWait", "100ms").unwrap();
        assert_eq!(config.shuffle_io_retry_wait_ms, 100);
        assert_eq!(config.shuffle_io_connection_timeout_ms, 120_000);
        config.set("shuffle.io.connectionTimeout", "2s").unwrap();
        assert_eq!(config.shuffle_io_connection_timeout_ms, 2000);
        assert!(config.set("shuffle.io.connectionTimeout", "0s").is_err());
        assert!(config.set("reducer.maxSizeInFlight", "0").is_err());
    }

    #[test]
    fn values_are_checked_and_errors_name_the_setting_and_its_values() {
        let mut config = MinisparkConfig::default();
        config.set("SKEW.SALTING", " Auto ").unwrap();
        assert!(config.salting_auto);
        config.set("shuffle.compression", "ZSTD").unwrap();
        assert_eq!(config.shuffle_compression, ShuffleCompression::Zstd);
        for (key, bad, accepts) in [
            ("task.maxFailures", "0", "an integer from 1 to 100"),
            ("task.maxFailures", "4000000000", "an integer from 1 to 100"),
            ("sql.ansi.enabled", "strict", "true or false"),
            ("shuffle.compression", "gzip", "lz4, zstd or none"),
            ("netflix.skew", "NaN", "a finite number >= 0"),
            (
                "sql.autoBroadcastJoinThreshold",
                "-2",
                "a number of bytes or -1",
            ),
            ("adaptive.enabled", "yes", "true or false"),
            (
                "adaptive.advisoryPartitionSizeInBytes",
                "0",
                "a positive number",
            ),
            ("skew.skewedPartitionFactor", "0.5", "a number >= 1"),
            ("skew.salting", "on", "off or auto"),
            ("skew.saltBuckets", "1", "0 (automatic) or 2 to 4096"),
            ("skew.saltBuckets", "4097", "0 (automatic) or 2 to 4096"),
            ("shuffle.partitions", "-1", "a non-negative integer"),
        ] {
            let err = config.set(key, bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("setting minispark.{key} expects {accepts}"))
                    && err.contains(&format!("got '{bad}'")),
                "{err}"
            );
        }
        // A refused value leaves the setting as it was.
        assert_eq!(config.shuffle_compression, ShuffleCompression::Zstd);
        let err = config.set("no.such", "1").unwrap_err().to_string();
        assert!(
            err.contains("unknown setting minispark.no.such")
                && err.contains("minispark.skew.saltBuckets"),
            "{err}"
        );
    }

    #[test]
    fn sizes_are_spelled_as_in_spark() {
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("10kb"), Some(10 << 10));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("0"), Some(0));
        for bad in ["", "g", "1x", "-1g", "1.5g", "99999999999p"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(show_size(1 << 30), "1g");
        assert_eq!(show_size(1536 << 20), "1536m");
        assert_eq!(show_size(1000), "1000");
        assert_eq!(show_size(0), "0");
        let mut config = MinisparkConfig::default();
        assert_eq!(config.max_result_size, 1 << 30);
        config.set("driver.maxResultSize", "2m").unwrap();
        assert_eq!(config.max_result_size, 2 << 20);
        let err = config.set("driver.maxResultSize", "lots").unwrap_err();
        assert!(
            err.to_string()
                .contains("minispark.driver.maxResultSize expects a size")
        );
        // shuffle.partitions is bounded.
        config.set("shuffle.partitions", "100000").unwrap();
        let err = config.set("shuffle.partitions", "100001").unwrap_err();
        assert!(err.to_string().contains("up to 100000"), "{err}");
    }

    #[test]
    fn durations_are_spelled_as_in_spark() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("30"), Some(ms(30_000)));
        assert_eq!(parse_duration("500ms"), Some(ms(500)));
        assert_eq!(parse_duration("2S"), Some(ms(2_000)));
        assert_eq!(parse_duration("5min"), Some(ms(300_000)));
        assert_eq!(parse_duration("5m"), Some(ms(300_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "1x", "-1s", "1.5s", "99999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for (d, shown) in [(0, "0"), (1500, "1500ms"), (30_000, "30s"), (300_000, "5m")] {
            assert_eq!(show_duration(ms(d)), shown);
            assert_eq!(parse_duration(shown), Some(ms(d)));
        }
        let mut config = MinisparkConfig::default();
        assert_eq!(config.task_timeout, Duration::ZERO);
        assert!(!config.speculation);
        config.set("task.timeout", "90s").unwrap();
        assert_eq!(config.task_timeout, ms(90_000));
        let err = config.set("task.timeout", "soon").unwrap_err().to_string();
        assert!(
            err.contains("minispark.task.timeout expects a duration"),
            "{err}"
        );
        for (key, bad) in [
            ("speculation.multiplier", "0.5"),
            ("speculation.quantile", "1.5"),
            ("speculation", "yes"),
        ] {
            let err = config.set(key, bad).unwrap_err().to_string();
            assert!(err.contains(&format!("minispark.{key} expects")), "{err}");
        }
    }

    #[test]
    fn secrets_show_as_stars_and_optional_booleans_as_empty() {
        let mut config = MinisparkConfig::default();
        config.set("s3.secretAccessKey", "abc123").unwrap();
        config.set("s3.allowHttp", "TRUE").unwrap();
        assert_eq!(config.s3_secret_access_key.expose(), "abc123");
        assert_eq!(config.s3_allow_http, Some(true));
        let shown: Vec<_> = config.entries();
        let value = |key: &str| {
            shown
                .iter()
                .find(|e| e.key == key)
                .and_then(|e| e.value.clone())
                .unwrap()
        };
        assert_eq!(value("minispark.s3.secretAccessKey"), REDACTED);
        assert_eq!(value("minispark.s3.sessionToken"), "");
        assert_eq!(value("minispark.s3.allowHttp"), "true");
        assert_eq!(value("minispark.azure.allowHttp"), "");
        assert!(!format!("{config:?}").contains("abc123"));
        assert_eq!(
            secret_settings(&config),
            vec![(
                "minispark.s3.secretAccessKey".to_string(),
                "abc123".to_string()
            )]
        );
        let err = config.set("s3.allowHttp", "yes").unwrap_err().to_string();
        assert!(err.contains("true, false or empty"), "{err}");
        let secrets: Vec<_> = SETTINGS
            .iter()
            .filter(|s| s.is_secret())
            .map(|s| s.key)
            .collect();
        assert_eq!(
            secrets,
            [
                "s3.secretAccessKey",
                "s3.sessionToken",
                "gcs.serviceAccountKey",
                "azure.accessKey",
                "azure.sasToken"
            ]
        );
    }

    #[test]
    fn the_markdown_table_has_one_row_per_setting() {
        let table = settings_markdown();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), SETTINGS.len());
        assert_eq!(
            rows[0],
            "| `minispark.shuffle.partitions` | `0` | Partitions of every shuffle (Spark's \
             spark.sql.shuffle.partitions). 0 means the total task slots of the cluster's executors. |"
        );
    }
}
