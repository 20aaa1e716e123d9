//! A built-in streaming-service ("netflix") data set, generated on the fly.
//!
//! `SELECT count(*) FROM netflix.small.viewing_events` works on any minispark
//! session with zero setup, like [`tpch`](crate::tpch): a scan is a tiny leaf
//! node, [`NetflixScanExec`], that records *what* to generate
//! (table, scale, skew, seed, partitions, projection) and each task generates
//! its own partition. [`write_netflix_parquet`] (`minispark gen netflix`)
//! writes the same rows as Parquet files.
//!
//! The data exists to practise the jobs of `docs/WORKLOADS.md` (season
//! completion, engagement drop, A/B readouts, skewed joins, playback
//! quality, catalog availability...) on data whose shape makes them
//! interesting: a hot key, heavy users, fading users, a degraded ISP.
//!
//! # Naming
//!
//! Catalog `netflix`; schemas are scales: `tiny` (0.001), `small` (0.01),
//! `medium` (0.1), `large` (1), or `sf<scale>` with `_` for the decimal
//! point (`sf0_05`, `sf2`), as in the `tpch` catalog. Two settings shape the
//! data: `minispark.netflix.skew` (the Zipf exponent of title popularity,
//! default 1.2) and `minispark.netflix.seed` (default 42). The table
//! provider reads them from the session when it plans a scan and writes them
//! into the scan node, so every executor generates what the driver planned.
//!
//! # Tables (scale `s`; U = max(1000, 10⁶·s) users, T = clamp(10⁵·s, 200, 10 000) titles)
//!
//! | table | columns | rows |
//! |---|---|---|
//! | `users` | user_id Int64, country Utf8, signup_date Date32 | U |
//! | `titles` | title_id Int64, title Utf8, kind Utf8, release_year Int32, genres List<Utf8>, cast List<Utf8> | T |
//! | `episodes` | episode_id Int64, title_id Int64, season Int32, episode_number Int32, runtime_minutes Int32 | ≈ 10·T |
//! | `viewing_events` | user_id, title_id, episode_id Int64, event_ts Timestamp(µs), watched_minutes Int32, device Utf8 | 2·10⁷·s |
//! | `licensing_windows` | title_id Int64, region Utf8, start_date Date32, end_date Date32 | ≈ 2.3·T |
//! | `experiment_assignments` | experiment_id Int32, user_id Int64, variant Utf8, assigned_at Timestamp(µs) | ≈ 2·U |
//! | `experiment_metrics` | experiment_id Int32, user_id Int64, watch_minutes Float64, sessions Int64, churned Boolean | ≈ 2·U |
//! | `playback_telemetry` | session_id, user_id Int64, isp, device, cdn Utf8, event_ts Timestamp(µs), bitrate_kbps Int32, rebuffer_ms, play_ms Int64 | 10⁷·s |
//!
//! Timestamps are `Timestamp(Microsecond, None)` (UTC wall-clock), dates
//! `Date32`, list items are named `item` and nullable (Arrow's default, and
//! what Spark writes). No column has nulls.
//!
//! ## The shape of each table, and why
//!
//! * **users**: ids `1..=U`. `country` is one of 15 ISO-2 codes with skewed
//!   weights (US 30%, IN 12%, BR 10%, GB 8%, DE 7%, ...) so that grouping by
//!   country gives groups of very different sizes. `signup_date` is uniform
//!   over 2019-01-01..2024-12-31 for 85% of users and inside the event
//!   period (2025-01-01..2025-06-30) for 15%: those *new users* only have
//!   events after they signed up, so an "engagement drop" job meets users
//!   with no previous month (a NULL `LAG`).
//! * **titles**: a catalog with nested attributes: ~40% series, 60% films;
//!   names built from word lists ("The Crown of Ashes"), made unique with a
//!   sequel number; release years skewed to recent ones; 1-3 `genres` out of
//!   15 and 2-6 `cast` members out of 500 synthetic names, as `List<Utf8>`,
//!   to practise `unnest`/`explode` and array functions.
//! * **episodes**: a film is one row (season 1, episode 1, 80-150 minutes);
//!   a series has 1-6 seasons (fewer more likely) of 6-13 episodes of 20-60
//!   minutes. A "season completion" job divides by episodes per season.
//! * **viewing_events** (the big fact table): the title follows a **Zipf
//!   law** over popularity ranks with exponent `skew`: at 1.2 with 10 000
//!   titles the top title holds ~21% of all rows, the hot key of every skewed
//!   join or aggregation. Ranks map to title ids through a fixed seeded
//!   permutation, so the hot title is not simply id 1. The user follows a
//!   power law of exponent 0.5 (continuous inverse CDF): a few heavy viewers,
//!   a long tail of light ones. `event_ts` is spread over 2025-01-01 ..
//!   2025-06-30 (from the signup day for new users); 30% of users *fade*: a
//!   per-user exponential decay thins their later months (by 15% to 75% per
//!   month), so "hours fell below half of the previous month" finds a real
//!   set. The episode is uniform within the title half the time and biased
//!   to early episodes the other half (people start series and drop them).
//!   `watched_minutes` is in `1..=runtime`; 55% of views watch at least 80%
//!   of the episode (complete), the rest stop earlier. `device` is tv 45%,
//!   mobile 30%, web 15%, tablet 10%.
//! * **licensing_windows**: 1-4 windows per title in distinct regions (the
//!   user countries, weighted to big markets); start uniform over
//!   2023-01-01..2026-06-30, length 3-36 months, `end_date` inclusive. 8% of
//!   windows start inside July 2025 and 8% end inside it, so "what is
//!   available in Germany next month" (a date-range overlap) meets the edge
//!   cases: windows that only partly cover the month.
//! * **experiment_assignments**: 4 experiments; each enrolls a deterministic
//!   ~50% of users and splits them 50/50 into `control` / `treatment`, both
//!   decided by hashing (seed, experiment, user): a user never sees two
//!   variants of one experiment (bucketing), and experiments are independent
//!   of each other. `assigned_at` falls in the 14 days after the
//!   experiment's start (Feb 1, Mar 1, Apr 1, May 1 2025), never before
//!   the user's signup.
//! * **experiment_metrics**: one row per assignment. `watch_minutes` is
//!   log-normal (mean ~300, sd ~250: noisy, long-tailed, like real watch
//!   time) times a true treatment effect: exp 1 +3%, exp 2 0% (a null
//!   effect, to see false positives), exp 3 -2%, exp 4 +8%. `sessions` is
//!   watch time over a random session length. `churned` is 5%, but 6% in
//!   exp 4's treatment: its guardrail metric trips although its primary
//!   metric wins.
//! * **playback_telemetry**: one row per playback session, spread over
//!   2025-06-01..2025-06-07 (7 days × 24 hours = 168 date/hour partitions
//!   for a table-layout job). Each user has one of 8 ISPs; `rebuffer_ms /
//!   play_ms` is ~0.6-0.95% per ISP but ~5x higher on `RuralWave` (the
//!   degraded ISP a z-score job must flag), and a little higher on mobile
//!   over `cdn-c`. Most sessions do not rebuffer at all. `bitrate_kbps` comes
//!   from a bitrate ladder capped by device (lower on RuralWave).
//!
//! # Determinism and partitions
//!
//! The row-shaped tables are generated in blocks of [`BLOCK_ROWS`] rows
//! (users and the experiment tables: blocks of [`BLOCK_ROWS`] users), each
//! with its own RNG seeded from (seed, table, block index); partition `i` of
//! `n` generates a contiguous range of blocks. So the concatenation of the
//! partitions, in order, is byte for byte the same whatever `n`, and a
//! retried task regenerates exactly its rows. The small dimension tables
//! (titles, episodes, licensing windows) are generated whole by partition
//! 0 (the other partitions are empty). The facts need a few dimension
//! facts (episodes and runtimes of each title, the popularity order): they
//! are rebuilt from the seed, cheaply, and cached per (seed, titles, skew).
//! Per-user traits (country, signup, fading, ISP) are a hash of (seed,
//! user), so any table can look them up without a join.
//!
//! The RNG is `rand_xoshiro`'s Xoshiro256++ (a fixed, portable algorithm,
//! unlike `rand`'s `SmallRng`), the Zipf draw an alias table from
//! `rand_distr` (O(1) per row), the log-normal `rand_distr`'s.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder,
    RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err, plan_datafusion_err, plan_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream, StatisticsArgs,
};
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use rand::{RngCore, SeedableRng};
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::generated::{ExportTable, GeneratedScan, export_parquet};

/// Name under which [`register_netflix_catalog`] registers the catalog.
pub const NETFLIX_CATALOG_NAME: &str = "netflix";

/// The named scales, listed by [`NetflixCatalog::schema_names`].
pub const NAMED_SCALES: [(&str, f64); 4] = [
    ("tiny", 0.001),
    ("small", 0.01),
    ("medium", 0.1),
    ("large", 1.0),
];

/// Rows per generation block (users per block for `users` and the
/// experiment tables). Part of the data's definition: changing it changes
/// the generated rows.
pub const BLOCK_ROWS: usize = 8192;

/// Rows per Parquet file written by [`write_netflix_parquet`] (about).
const ROWS_PER_FILE: u64 = 1_000_000;

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// What defines a generated data set: the same parameters give the same rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetflixParams {
    /// Multiplies the row counts (1 = 20 million viewing events).
    pub scale: f64,
    /// Zipf exponent of title popularity (0 = uniform).
    pub skew: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl NetflixParams {
    /// The default Zipf exponent (`minispark.netflix.skew`): the top
    /// title holds about a fifth of all viewing events.
    pub const DEFAULT_SKEW: f64 = 1.2;
    /// The default seed (`minispark.netflix.seed`).
    pub const DEFAULT_SEED: u64 = 42;

    /// Parameters at `scale` with the default skew and seed.
    pub fn with_scale(scale: f64) -> Self {
        Self {
            scale,
            skew: Self::DEFAULT_SKEW,
            seed: Self::DEFAULT_SEED,
        }
    }

    /// Checked parameters.
    pub fn try_new(scale: f64, skew: f64, seed: u64) -> Result<Self> {
        let params = Self { scale, skew, seed };
        params.validate()?;
        Ok(params)
    }

    /// Errors unless the scale is positive and finite and the skew finite
    /// and non-negative.
    pub fn validate(&self) -> Result<()> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return plan_err!(
                "invalid netflix scale {}: must be positive and finite",
                self.scale
            );
        }
        if !(self.skew.is_finite() && self.skew >= 0.0) {
            return plan_err!(
                "invalid netflix skew {}: the Zipf exponent must be finite and >= 0",
                self.skew
            );
        }
        Ok(())
    }

    /// Number of users, U = max(1000, round(1 000 000 × scale)).
    pub fn users(&self) -> u64 {
        round_rows(1e6 * self.scale).max(1000)
    }

    /// Number of titles, T = clamp(round(100 000 × scale), 200, 10 000).
    pub fn titles(&self) -> u64 {
        round_rows(1e5 * self.scale).clamp(200, 10_000)
    }

    /// Rows of `viewing_events`, round(20 000 000 × scale).
    pub fn viewing_events(&self) -> u64 {
        round_rows(2e7 * self.scale)
    }

    /// Rows of `playback_telemetry`, round(10 000 000 × scale).
    pub fn playback_sessions(&self) -> u64 {
        round_rows(1e7 * self.scale)
    }
}

fn round_rows(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// The eight tables of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetflixTable {
    Users,
    Titles,
    Episodes,
    ViewingEvents,
    LicensingWindows,
    ExperimentAssignments,
    ExperimentMetrics,
    PlaybackTelemetry,
}

impl NetflixTable {
    /// All tables.
    pub const ALL: [NetflixTable; 8] = [
        NetflixTable::Users,
        NetflixTable::Titles,
        NetflixTable::Episodes,
        NetflixTable::ViewingEvents,
        NetflixTable::LicensingWindows,
        NetflixTable::ExperimentAssignments,
        NetflixTable::ExperimentMetrics,
        NetflixTable::PlaybackTelemetry,
    ];

    /// The SQL name of the table.
    pub fn name(&self) -> &'static str {
        match self {
            NetflixTable::Users => "users",
            NetflixTable::Titles => "titles",
            NetflixTable::Episodes => "episodes",
            NetflixTable::ViewingEvents => "viewing_events",
            NetflixTable::LicensingWindows => "licensing_windows",
            NetflixTable::ExperimentAssignments => "experiment_assignments",
            NetflixTable::ExperimentMetrics => "experiment_metrics",
            NetflixTable::PlaybackTelemetry => "playback_telemetry",
        }
    }

    /// Look a table up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// A stable tag of the table, mixed into its RNG seeds.
    fn tag(&self) -> u64 {
        match self {
            NetflixTable::Users => 1,
            NetflixTable::Titles => 2,
            NetflixTable::Episodes => 3,
            NetflixTable::ViewingEvents => 4,
            NetflixTable::LicensingWindows => 5,
            NetflixTable::ExperimentAssignments => 6,
            NetflixTable::ExperimentMetrics => 7,
            NetflixTable::PlaybackTelemetry => 8,
        }
    }

    /// The Arrow schema of the table.
    pub fn schema(&self) -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
        let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let f = |name: &str, data_type: DataType| Field::new(name, data_type, false);
        let fields = match self {
            NetflixTable::Users => vec![
                f("user_id", DataType::Int64),
                f("country", DataType::Utf8),
                f("signup_date", DataType::Date32),
            ],
            NetflixTable::Titles => vec![
                f("title_id", DataType::Int64),
                f("title", DataType::Utf8),
                f("kind", DataType::Utf8),
                f("release_year", DataType::Int32),
                f("genres", list()),
                f("cast", list()),
            ],
            NetflixTable::Episodes => vec![
                f("episode_id", DataType::Int64),
                f("title_id", DataType::Int64),
                f("season", DataType::Int32),
                f("episode_number", DataType::Int32),
                f("runtime_minutes", DataType::Int32),
            ],
            NetflixTable::ViewingEvents => vec![
                f("user_id", DataType::Int64),
                f("title_id", DataType::Int64),
                f("episode_id", DataType::Int64),
                f("event_ts", ts()),
                f("watched_minutes", DataType::Int32),
                f("device", DataType::Utf8),
            ],
            NetflixTable::LicensingWindows => vec![
                f("title_id", DataType::Int64),
                f("region", DataType::Utf8),
                f("start_date", DataType::Date32),
                f("end_date", DataType::Date32),
            ],
            NetflixTable::ExperimentAssignments => vec![
                f("experiment_id", DataType::Int32),
                f("user_id", DataType::Int64),
                f("variant", DataType::Utf8),
                f("assigned_at", ts()),
            ],
            NetflixTable::ExperimentMetrics => vec![
                f("experiment_id", DataType::Int32),
                f("user_id", DataType::Int64),
                f("watch_minutes", DataType::Float64),
                f("sessions", DataType::Int64),
                f("churned", DataType::Boolean),
            ],
            NetflixTable::PlaybackTelemetry => vec![
                f("session_id", DataType::Int64),
                f("user_id", DataType::Int64),
                f("isp", DataType::Utf8),
                f("device", DataType::Utf8),
                f("cdn", DataType::Utf8),
                f("event_ts", ts()),
                f("bitrate_kbps", DataType::Int32),
                f("rebuffer_ms", DataType::Int64),
                f("play_ms", DataType::Int64),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// Whether the table is a small dimension generated whole by partition 0.
    pub fn is_dimension(&self) -> bool {
        matches!(
            self,
            NetflixTable::Titles | NetflixTable::Episodes | NetflixTable::LicensingWindows
        )
    }

    /// What a block counts: rows, or users for the per-user tables.
    fn block_units(&self, params: &NetflixParams) -> u64 {
        match self {
            NetflixTable::Users
            | NetflixTable::ExperimentAssignments
            | NetflixTable::ExperimentMetrics => params.users(),
            NetflixTable::ViewingEvents => params.viewing_events(),
            NetflixTable::PlaybackTelemetry => params.playback_sessions(),
            NetflixTable::Titles | NetflixTable::Episodes | NetflixTable::LicensingWindows => 1,
        }
    }

    /// Number of generation blocks of the table.
    pub fn num_blocks(&self, params: &NetflixParams) -> u64 {
        if self.is_dimension() {
            1
        } else {
            self.block_units(params).div_ceil(BLOCK_ROWS as u64)
        }
    }

    /// The blocks partition `partition` of `num_partitions` generates.
    pub fn partition_blocks(
        &self,
        params: &NetflixParams,
        partition: usize,
        num_partitions: usize,
    ) -> std::ops::Range<u64> {
        let blocks = self.num_blocks(params) as u128;
        let n = num_partitions.max(1) as u128;
        let p = partition as u128;
        // Rounded up, so that partition 0 is the one with the only block of
        // a dimension table.
        let start = (blocks * p).div_ceil(n).min(blocks) as u64;
        let end = (blocks * (p + 1)).div_ceil(n).min(blocks) as u64;
        start..end
    }

    /// Row count of the whole table: exact for all but the experiment
    /// tables and licensing windows (expected values there).
    pub fn estimated_rows(&self, params: &NetflixParams) -> u64 {
        match self {
            NetflixTable::Users => params.users(),
            NetflixTable::ViewingEvents => params.viewing_events(),
            NetflixTable::PlaybackTelemetry => params.playback_sessions(),
            NetflixTable::Titles => params.titles(),
            NetflixTable::Episodes => dims(params).episode_runtime.len() as u64,
            NetflixTable::LicensingWindows => params.titles() * 23 / 10,
            NetflixTable::ExperimentAssignments | NetflixTable::ExperimentMetrics => {
                params.users() * 2
            }
        }
    }

    /// Expected rows of a range of blocks.
    fn estimated_block_rows(&self, params: &NetflixParams, blocks: std::ops::Range<u64>) -> u64 {
        if self.is_dimension() {
            return if blocks.contains(&0) {
                self.estimated_rows(params)
            } else {
                0
            };
        }
        let units = self.block_units(params);
        let lo = (blocks.start * BLOCK_ROWS as u64).min(units);
        let hi = (blocks.end * BLOCK_ROWS as u64).min(units);
        match self {
            NetflixTable::ExperimentAssignments | NetflixTable::ExperimentMetrics => (hi - lo) * 2,
            _ => hi - lo,
        }
    }

    /// Rough in-memory bytes of a row (estimates only).
    fn avg_row_bytes(&self) -> usize {
        match self {
            NetflixTable::Users => 22,
            NetflixTable::Titles => 140,
            NetflixTable::Episodes => 28,
            NetflixTable::ViewingEvents => 42,
            NetflixTable::LicensingWindows => 22,
            NetflixTable::ExperimentAssignments => 33,
            NetflixTable::ExperimentMetrics => 29,
            NetflixTable::PlaybackTelemetry => 67,
        }
    }

    /// Generate one block (all columns). For a dimension table, block 0 is
    /// the whole table.
    pub fn generate_block(&self, params: &NetflixParams, block: u64) -> Result<RecordBatch> {
        params.validate()?;
        if block >= self.num_blocks(params) {
            return internal_err!(
                "netflix {}: block {block} out of range ({} blocks)",
                self.name(),
                self.num_blocks(params)
            );
        }
        let columns = match self {
            NetflixTable::Users => gen_users(params, block),
            NetflixTable::Titles => gen_titles(params),
            NetflixTable::Episodes => gen_episodes(params),
            NetflixTable::ViewingEvents => gen_viewing_events(params, block),
            NetflixTable::LicensingWindows => gen_licensing_windows(params),
            NetflixTable::ExperimentAssignments => gen_assignments(params, block),
            NetflixTable::ExperimentMetrics => gen_metrics(params, block),
            NetflixTable::PlaybackTelemetry => gen_telemetry(params, block),
        };
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }

    /// Lazily generate partition `partition` of `num_partitions`, one batch
    /// per block (full schema). Concatenated in partition order, the
    /// partitions are the same rows whatever `num_partitions`.
    pub fn generate_partition(
        &self,
        params: &NetflixParams,
        partition: usize,
        num_partitions: usize,
    ) -> impl Iterator<Item = Result<RecordBatch>> + Send + 'static {
        let table = *self;
        let params = *params;
        table
            .partition_blocks(&params, partition, num_partitions)
            .map(move |block| table.generate_block(&params, block))
    }

    /// The whole table in one thread, one batch per block.
    pub fn generate_all(&self, params: &NetflixParams) -> Result<Vec<RecordBatch>> {
        self.generate_partition(params, 0, 1).collect()
    }
}

impl fmt::Display for NetflixTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

/// Countries (ISO-2) with weights in percent: a few big markets, a long tail.
const COUNTRIES: [(&str, u32); 15] = [
    ("US", 300),
    ("IN", 120),
    ("BR", 100),
    ("GB", 80),
    ("DE", 70),
    ("FR", 60),
    ("JP", 50),
    ("MX", 50),
    ("CA", 40),
    ("ES", 30),
    ("IT", 30),
    ("KR", 25),
    ("AU", 20),
    ("NL", 15),
    ("SE", 10),
];

/// Devices with weights in percent (viewing events and telemetry).
const DEVICES: [(&str, u32); 4] = [("tv", 45), ("mobile", 30), ("web", 15), ("tablet", 10)];
const DEVICE_MOBILE: u8 = 1;

/// ISPs with weights (per user) and rebuffering multipliers: RuralWave is
/// the degraded one.
const ISPS: [(&str, u32, f64); 8] = [
    ("FiberOne", 22, 0.80),
    ("CableCo", 20, 1.05),
    ("MetroNet", 15, 0.95),
    ("SkyLink", 12, 1.20),
    ("RuralWave", 5, 5.00),
    ("TelcoPlus", 12, 1.00),
    ("AirFast", 8, 1.25),
    ("NetNorth", 6, 0.90),
];
const ISP_RURALWAVE: u8 = 4;

/// CDNs with weights in percent.
const CDNS: [(&str, u32); 3] = [("cdn-a", 50), ("cdn-b", 35), ("cdn-c", 15)];
const CDN_C: u8 = 2;

const GENRES: [&str; 15] = [
    "Drama",
    "Comedy",
    "Thriller",
    "Action",
    "Documentary",
    "Romance",
    "Crime",
    "Sci-Fi",
    "Fantasy",
    "Horror",
    "Animation",
    "Family",
    "Mystery",
    "Reality",
    "Anime",
];

const ADJECTIVES: [&str; 40] = [
    "Silent",
    "Crimson",
    "Broken",
    "Hidden",
    "Golden",
    "Last",
    "Lost",
    "Burning",
    "Frozen",
    "Midnight",
    "Hollow",
    "Velvet",
    "Iron",
    "Savage",
    "Quiet",
    "Wild",
    "Bitter",
    "Electric",
    "Fallen",
    "Distant",
    "Scarlet",
    "Wicked",
    "Gentle",
    "Endless",
    "Secret",
    "Shattered",
    "Northern",
    "Restless",
    "Dark",
    "Bright",
    "Forgotten",
    "Sacred",
    "Stolen",
    "Final",
    "Paper",
    "Glass",
    "Neon",
    "Rising",
    "Wandering",
    "Emerald",
];

const NOUNS: [&str; 50] = [
    "Crown",
    "Ashes",
    "River",
    "Empire",
    "Garden",
    "Kingdom",
    "Mirror",
    "Shadow",
    "Harbor",
    "Storm",
    "Witness",
    "Orchard",
    "Signal",
    "Frontier",
    "Lantern",
    "Tide",
    "Promise",
    "Island",
    "Bridge",
    "Circuit",
    "Dynasty",
    "Winter",
    "Summer",
    "Empress",
    "Detective",
    "Heist",
    "Voyage",
    "Code",
    "Horizon",
    "Ember",
    "Citadel",
    "Forest",
    "Canyon",
    "Letter",
    "Station",
    "Orbit",
    "Archive",
    "Hunter",
    "Legacy",
    "Stranger",
    "Village",
    "Ocean",
    "Desert",
    "Comet",
    "Machine",
    "Republic",
    "Lighthouse",
    "Verdict",
    "Oath",
    "Requiem",
];

const FIRST_NAMES: [&str; 25] = [
    "Ava", "Liam", "Noah", "Emma", "Mia", "Lucas", "Sofia", "Mateo", "Aria", "Kenji", "Yuki",
    "Priya", "Arjun", "Chloe", "Hugo", "Lena", "Omar", "Zara", "Felix", "Ines", "Diego", "Nora",
    "Ravi", "Elif", "Jonas",
];

const LAST_NAMES: [&str; 20] = [
    "Hart",
    "Moreno",
    "Tanaka",
    "Novak",
    "Okafor",
    "Lindqvist",
    "Rossi",
    "Kim",
    "Dubois",
    "Silva",
    "Patel",
    "Weber",
    "Kowalski",
    "Haddad",
    "Nakamura",
    "Brennan",
    "Costa",
    "Fischer",
    "Mendes",
    "Ortega",
];

const VARIANTS: [&str; 2] = ["control", "treatment"];

/// True relative effect of each experiment's treatment on watch minutes.
const EXPERIMENT_EFFECTS: [f64; 4] = [0.03, 0.0, -0.02, 0.08];
/// Churn probability: control / treatment per experiment (exp 4's guardrail trips).
const CHURN_RATES: [(f64, f64); 4] = [(0.05, 0.05), (0.05, 0.05), (0.05, 0.05), (0.05, 0.06)];

/// Bitrate ladder (kbps) and the top rung each device reaches.
const BITRATES: [i32; 12] = [
    235, 375, 560, 750, 1050, 1750, 2350, 3000, 4300, 5800, 8000, 16000,
];
const DEVICE_TOP_RUNG: [u8; 4] = [11, 7, 9, 8];

// ---------------------------------------------------------------------------
// Dates and time
// ---------------------------------------------------------------------------

const DAY_US: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// The civil date (year, month, day) of days since 1970-01-01.
fn civil_from_days(days: i32) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `days` plus `months` calendar months (day clamped to the month's end).
fn add_months(days: i32, months: i64) -> i32 {
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let month_len =
        days_from_civil(ny + (nm == 12) as i64, nm % 12 + 1, 1) - days_from_civil(ny, nm, 1);
    days_from_civil(ny, nm, d.min(month_len as i64))
}

const SIGNUP_FIRST_DAY: i32 = days_from_civil(2019, 1, 1);
const EVENTS_FIRST_DAY: i32 = days_from_civil(2025, 1, 1);
/// First day after the event period (2025-01-01 .. 2025-06-30).
const EVENTS_END_DAY: i32 = days_from_civil(2025, 7, 1);
const EVENTS_START_US: i64 = EVENTS_FIRST_DAY as i64 * DAY_US;
const EVENTS_END_US: i64 = EVENTS_END_DAY as i64 * DAY_US;
const TELEMETRY_START_US: i64 = days_from_civil(2025, 6, 1) as i64 * DAY_US;
const TELEMETRY_SPAN_US: u64 = 7 * DAY_US as u64;
const LICENSE_FIRST_DAY: i32 = days_from_civil(2023, 1, 1);
const LICENSE_LAST_START: i32 = days_from_civil(2026, 6, 30);
const JULY_2025: i32 = days_from_civil(2025, 7, 1);
/// Start of experiment 1..=4: Feb 1, Mar 1, Apr 1, May 1 2025.
const EXPERIMENT_STARTS: [i32; 4] = [
    days_from_civil(2025, 2, 1),
    days_from_civil(2025, 3, 1),
    days_from_civil(2025, 4, 1),
    days_from_civil(2025, 5, 1),
];

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// SplitMix64's finalizer: a fast, well-mixing 64-bit hash.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A key of (seed, stream tag), to hash entities (users, experiments) with.
#[inline]
fn key(seed: u64, tag: u64) -> u64 {
    mix64(mix64(seed) ^ tag.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// The RNG of one block of one table.
fn block_rng(seed: u64, table: NetflixTable, block: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(mix64(key(seed, table.tag()) ^ block))
}

/// A uniform float in [0, 1) from 53 random bits.
#[inline]
fn unit(r: u64) -> f64 {
    (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in [0, n) from 64 random bits (Lemire's multiply-shift;
/// the bias, below n / 2^64, is irrelevant here).
#[inline]
fn below(r: u64, n: u64) -> u64 {
    ((r as u128 * n as u128) >> 64) as u64
}

/// A uniform integer in [0, n) from the low 32 bits of `r` (`n` < 2^32),
/// independent enough of [`below`], which reads the high bits.
#[inline]
fn below32(r: u64, n: u64) -> u64 {
    ((r & 0xFFFF_FFFF) * n) >> 32
}

/// Cumulative weights of a weighted vocabulary.
struct Weighted<const N: usize> {
    cumulative: [u32; N],
}

impl<const N: usize> Weighted<N> {
    const fn new(weights: [u32; N]) -> Self {
        let mut cumulative = [0u32; N];
        let mut total = 0;
        let mut i = 0;
        while i < N {
            total += weights[i];
            cumulative[i] = total;
            i += 1;
        }
        Self { cumulative }
    }

    /// The index picked by 64 random bits.
    #[inline]
    fn pick(&self, r: u64) -> u8 {
        let x = below(r, self.cumulative[N - 1] as u64) as u32;
        let mut i = 0;
        while i + 1 < N && x >= self.cumulative[i] {
            i += 1;
        }
        i as u8
    }
}

const fn weights<const N: usize>(table: [(&str, u32); N]) -> [u32; N] {
    let mut w = [0u32; N];
    let mut i = 0;
    while i < N {
        w[i] = table[i].1;
        i += 1;
    }
    w
}

const fn isp_weights() -> [u32; 8] {
    let mut w = [0u32; 8];
    let mut i = 0;
    while i < 8 {
        w[i] = ISPS[i].1;
        i += 1;
    }
    w
}

static COUNTRY_PICK: Weighted<15> = Weighted::new(weights(COUNTRIES));
static DEVICE_PICK: Weighted<4> = Weighted::new(weights(DEVICES));
static CDN_PICK: Weighted<3> = Weighted::new(weights(CDNS));
static ISP_PICK: Weighted<8> = Weighted::new(isp_weights());

// ---------------------------------------------------------------------------
// Users: traits by hash, a power-law sampler
// ---------------------------------------------------------------------------

const USER_TAG: u64 = 0x5553_4552; // "USER"

/// Fading users: decay rates λ of their activity over the six months
/// (density ∝ e^{-λ t}, t in [0, 1)); month over month their activity falls
/// to e^{-λ/6}: 0.85, 0.72, 0.61, 0.47, 0.37, 0.26.
const FADE_LAMBDAS: [f64; 6] = [1.0, 2.0, 3.0, 4.5, 6.0, 8.0];

/// Per-user traits, each a pure function of (seed, user_id): one hash of
/// the user with a key per trait, so a table computes only the traits it
/// needs (viewing events: signup and fading; telemetry: the ISP).
#[derive(Debug, Clone, Copy)]
struct UserTraits {
    country: u64,
    signup: u64,
    fade: u64,
    isp: u64,
}

impl UserTraits {
    fn new(seed: u64) -> Self {
        Self {
            country: key(seed, USER_TAG + 1),
            signup: key(seed, USER_TAG + 2),
            fade: key(seed, USER_TAG + 3),
            isp: key(seed, USER_TAG + 4),
        }
    }

    #[inline]
    fn country(&self, user_id: u64) -> u8 {
        COUNTRY_PICK.pick(mix64(self.country ^ user_id))
    }

    /// 15% sign up during the event period (the "new users"), the others
    /// uniformly over 2019-2024.
    #[inline]
    fn signup_day(&self, user_id: u64) -> i32 {
        let h = mix64(self.signup ^ user_id);
        if below(h, 100) < 15 {
            EVENTS_FIRST_DAY + below32(h, (EVENTS_END_DAY - EVENTS_FIRST_DAY) as u64) as i32
        } else {
            SIGNUP_FIRST_DAY + below32(h, (EVENTS_FIRST_DAY - SIGNUP_FIRST_DAY) as u64) as i32
        }
    }

    /// 0 for a steady user (70%); `k > 0` fades with `FADE_LAMBDAS[k - 1]`.
    #[inline]
    fn fade(&self, user_id: u64) -> u8 {
        let h = mix64(self.fade ^ user_id);
        if below(h, 100) < 30 {
            1 + below32(h, FADE_LAMBDAS.len() as u64) as u8
        } else {
            0
        }
    }

    #[inline]
    fn isp(&self, user_id: u64) -> u8 {
        ISP_PICK.pick(mix64(self.isp ^ user_id))
    }
}

/// Draws users with probability ∝ rank^-0.5 (a continuous power law, by
/// inverse CDF: one multiply and a square), then maps ranks to ids through
/// a seeded affine permutation of `1..=U`, so heavy users are spread over
/// the ids.
#[derive(Debug, Clone, Copy)]
struct UserSampler {
    users: u64,
    /// sqrt(U + 1) - 1
    span: f64,
    mul: u64,
    add: u64,
}

impl UserSampler {
    fn new(params: &NetflixParams) -> Self {
        let users = params.users();
        let k = key(params.seed, USER_TAG ^ 0xFF);
        let mut mul = (mix64(k) % users).max(1);
        while gcd(mul, users) != 1 {
            mul += 1;
        }
        Self {
            users,
            span: ((users + 1) as f64).sqrt() - 1.0,
            mul,
            add: mix64(k ^ 1) % users,
        }
    }

    #[inline]
    fn sample(&self, r: u64) -> u64 {
        let x = 1.0 + unit(r) * self.span;
        let rank0 = ((x * x) as u64).clamp(1, self.users) - 1;
        self.permute(rank0) + 1
    }

    /// The 0-based id of a 0-based rank: `(rank × mul + add) mod U`.
    #[inline]
    fn permute(&self, rank0: u64) -> u64 {
        if self.users <= u32::MAX as u64 {
            // No overflow: rank0 × mul + add < U² < 2^64; a 64-bit modulo is
            // several times cheaper than a 128-bit one.
            (rank0 * self.mul + self.add) % self.users
        } else {
            ((rank0 as u128 * self.mul as u128 + self.add as u128) % self.users as u128) as u64
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

// ---------------------------------------------------------------------------
// Dimension model: what the facts need to know about titles
// ---------------------------------------------------------------------------

const MODEL_TAG: u64 = 0x004D_4F44_454C; // "MODEL"
const POPULARITY_TAG: u64 = 0x0050_4F50; // "POP"

/// The catalog's shape (kinds, episodes, runtimes) and the popularity
/// order: all the facts need of the dimensions, rebuilt from the seed.
struct Dims {
    is_series: Vec<bool>,
    /// Index of the title's first episode (episode_id - 1), per title.
    first_episode: Vec<u32>,
    episode_count: Vec<u32>,
    episode_title: Vec<u32>,
    episode_season: Vec<u8>,
    episode_number: Vec<u8>,
    episode_runtime: Vec<u8>,
    /// title_id of each popularity rank (index 0 = the hottest title).
    rank_to_title: Vec<u32>,
    /// Zipf(skew) over ranks, as an alias table: exact and O(1) per draw.
    popularity: WeightedAliasIndex<f64>,
}

fn dims(params: &NetflixParams) -> Arc<Dims> {
    type Cache = Mutex<HashMap<(u64, u64, u64), Arc<Dims>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let k = (params.seed, params.titles(), params.skew.to_bits());
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(
        cache
            .entry(k)
            .or_insert_with(|| Arc::new(build_dims(params))),
    )
}

fn build_dims(params: &NetflixParams) -> Dims {
    let titles = params.titles() as usize;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(key(params.seed, MODEL_TAG));
    let mut d = Dims {
        is_series: Vec::with_capacity(titles),
        first_episode: Vec::with_capacity(titles),
        episode_count: Vec::with_capacity(titles),
        episode_title: Vec::new(),
        episode_season: Vec::new(),
        episode_number: Vec::new(),
        episode_runtime: Vec::new(),
        rank_to_title: Vec::new(),
        popularity: WeightedAliasIndex::new(vec![1.0]).expect("one positive weight"),
    };
    // Fewer seasons are more likely: most shows are cancelled early.
    let seasons_pick = Weighted::new([35, 25, 15, 10, 8, 7]);
    for t in 0..titles {
        let first = d.episode_runtime.len() as u32;
        let series = below(rng.next_u64(), 100) < 40;
        if series {
            let seasons = 1 + seasons_pick.pick(rng.next_u64());
            let base = 20 + below(rng.next_u64(), 41) as i64;
            for season in 1..=seasons {
                let episodes = 6 + below(rng.next_u64(), 8) as u8;
                for number in 1..=episodes {
                    let runtime = (base + below(rng.next_u64(), 7) as i64 - 3).clamp(20, 60);
                    d.episode_title.push(t as u32 + 1);
                    d.episode_season.push(season);
                    d.episode_number.push(number);
                    d.episode_runtime.push(runtime as u8);
                }
            }
        } else {
            d.episode_title.push(t as u32 + 1);
            d.episode_season.push(1);
            d.episode_number.push(1);
            d.episode_runtime.push(80 + below(rng.next_u64(), 71) as u8);
        }
        d.is_series.push(series);
        d.first_episode.push(first);
        d.episode_count.push(d.episode_runtime.len() as u32 - first);
    }
    // Popularity: a seeded permutation of the titles (Fisher-Yates).
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(key(params.seed, POPULARITY_TAG));
    d.rank_to_title = (1..=titles as u32).collect();
    for i in (1..titles).rev() {
        let j = below(rng.next_u64(), i as u64 + 1) as usize;
        d.rank_to_title.swap(i, j);
    }
    let weights: Vec<f64> = (1..=titles)
        .map(|rank| (rank as f64).powf(-params.skew))
        .collect();
    d.popularity = WeightedAliasIndex::new(weights).expect("Zipf weights are positive");
    d
}

// ---------------------------------------------------------------------------
// Column helpers
// ---------------------------------------------------------------------------

/// A Utf8 column of dictionary entries, built in one pass without per-row
/// allocation. Entries of up to 16 bytes are copied as one fixed 16-byte
/// move (then the length advanced by the real size) instead of a `memcpy`
/// call per row.
fn dict_strings(dict: &[&str], indices: &[u8]) -> ArrayRef {
    let mut offsets = Vec::with_capacity(indices.len() + 1);
    offsets.push(0i32);
    let values = if dict.iter().all(|d| d.len() <= 16) {
        let padded: Vec<([u8; 16], usize)> = dict
            .iter()
            .map(|d| {
                let mut bytes = [0u8; 16];
                bytes[..d.len()].copy_from_slice(d.as_bytes());
                (bytes, d.len())
            })
            .collect();
        let longest = dict.iter().map(|d| d.len()).max().unwrap_or(0);
        let mut values = vec![0u8; indices.len() * longest + 16];
        let mut len = 0;
        for &i in indices {
            let (bytes, size) = &padded[i as usize];
            values[len..len + 16].copy_from_slice(bytes);
            len += size;
            offsets.push(len as i32);
        }
        values.truncate(len);
        values
    } else {
        let mut values = Vec::with_capacity(indices.len() * 8);
        for &i in indices {
            values.extend_from_slice(dict[i as usize].as_bytes());
            offsets.push(values.len() as i32);
        }
        values
    };
    Arc::new(StringArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        None,
    ))
}

fn names<const N: usize>(table: [(&str, u32); N]) -> [&str; N] {
    table.map(|(name, _)| name)
}

/// Rows (or users) `[start, end)` of a block.
fn block_range(units: u64, block: u64) -> (u64, usize) {
    let start = block * BLOCK_ROWS as u64;
    let end = (start + BLOCK_ROWS as u64).min(units);
    (start, end.saturating_sub(start) as usize)
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

fn gen_users(params: &NetflixParams, block: u64) -> Vec<ArrayRef> {
    let (start, n) = block_range(params.users(), block);
    let traits = UserTraits::new(params.seed);
    let mut ids = Vec::with_capacity(n);
    let mut country = Vec::with_capacity(n);
    let mut signup = Vec::with_capacity(n);
    for user_id in start + 1..=start + n as u64 {
        ids.push(user_id as i64);
        country.push(traits.country(user_id));
        signup.push(traits.signup_day(user_id));
    }
    vec![
        Arc::new(Int64Array::from(ids)),
        dict_strings(&names(COUNTRIES), &country),
        Arc::new(Date32Array::from(signup)),
    ]
}

fn gen_titles(params: &NetflixParams) -> Vec<ArrayRef> {
    let d = dims(params);
    let titles = d.is_series.len();
    let mut rng = block_rng(params.seed, NetflixTable::Titles, 0);
    let mut seen: HashMap<String, u32> = HashMap::with_capacity(titles);
    let mut ids = Vec::with_capacity(titles);
    let mut title = StringBuilder::with_capacity(titles, titles * 20);
    let mut kind = Vec::with_capacity(titles);
    let mut year = Vec::with_capacity(titles);
    let mut genres = ListBuilder::new(StringBuilder::new());
    let mut cast = ListBuilder::new(StringBuilder::new());
    let word = |r: u64, words: &[&'static str]| words[below(r, words.len() as u64) as usize];
    for (t, &series) in d.is_series.iter().enumerate() {
        let (a, n1, n2) = (
            word(rng.next_u64(), &ADJECTIVES),
            word(rng.next_u64(), &NOUNS),
            word(rng.next_u64(), &NOUNS),
        );
        let name = match below(rng.next_u64(), 5) {
            0 => format!("The {a} {n1}"),
            1 => format!("{n1} of {n2}"),
            2 => format!("The {n1} of {n2}"),
            3 => format!("{a} {n1}"),
            _ => format!("The {a} {n1} of {n2}"),
        };
        // A repeated name becomes a sequel: "Silent Harbor 2".
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            title.append_value(&name);
        } else {
            title.append_value(format!("{name} {count}"));
        }
        ids.push(t as i64 + 1);
        kind.push(series as u8);
        // Catalogs hold mostly recent titles.
        let u = unit(rng.next_u64());
        year.push(2025 - (46.0 * u * u) as i32);
        let genre_count = 1 + below(rng.next_u64(), 3) as usize;
        for i in distinct(&mut rng, genre_count, GENRES.len()) {
            genres.values().append_value(GENRES[i]);
        }
        genres.append(true);
        let people = FIRST_NAMES.len() * LAST_NAMES.len();
        let cast_count = 2 + below(rng.next_u64(), 5) as usize;
        for i in distinct(&mut rng, cast_count, people) {
            let (first, last) = (
                FIRST_NAMES[i % FIRST_NAMES.len()],
                LAST_NAMES[i / FIRST_NAMES.len()],
            );
            cast.values().append_value(format!("{first} {last}"));
        }
        cast.append(true);
    }
    vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(title.finish()),
        dict_strings(&["film", "series"], &kind),
        Arc::new(Int32Array::from(year)),
        Arc::new(genres.finish()),
        Arc::new(cast.finish()),
    ]
}

/// `count` distinct indices below `size`, in draw order.
fn distinct(rng: &mut Xoshiro256PlusPlus, count: usize, size: usize) -> Vec<usize> {
    let mut chosen = Vec::with_capacity(count);
    while chosen.len() < count.min(size) {
        let i = below(rng.next_u64(), size as u64) as usize;
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen
}

fn gen_episodes(params: &NetflixParams) -> Vec<ArrayRef> {
    let d = dims(params);
    let n = d.episode_runtime.len();
    let to_i32 = |v: &[u8]| Int32Array::from_iter_values(v.iter().map(|&x| x as i32));
    vec![
        Arc::new(Int64Array::from_iter_values(1..=n as i64)),
        Arc::new(Int64Array::from_iter_values(
            d.episode_title.iter().map(|&t| t as i64),
        )),
        Arc::new(to_i32(&d.episode_season)),
        Arc::new(to_i32(&d.episode_number)),
        Arc::new(to_i32(&d.episode_runtime)),
    ]
}

/// Fading users' warp of a uniform `u` in [0, 1): `(1 - e^-λ, 1 / λ)` per level.
fn fade_constants() -> &'static [(f64, f64); 6] {
    static CONSTANTS: OnceLock<[(f64, f64); 6]> = OnceLock::new();
    CONSTANTS.get_or_init(|| FADE_LAMBDAS.map(|l| (1.0 - (-l).exp(), 1.0 / l)))
}

fn gen_viewing_events(params: &NetflixParams, block: u64) -> Vec<ArrayRef> {
    let (_, n) = block_range(params.viewing_events(), block);
    let d = dims(params);
    let users = UserSampler::new(params);
    let traits = UserTraits::new(params.seed);
    let fade = fade_constants();
    let mut rng = block_rng(params.seed, NetflixTable::ViewingEvents, block);
    let mut user_ids = Vec::with_capacity(n);
    let mut title_ids = Vec::with_capacity(n);
    let mut episode_ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut watched = Vec::with_capacity(n);
    let mut device = Vec::with_capacity(n);
    for _ in 0..n {
        let user_id = users.sample(rng.next_u64());
        let rank = d.popularity.sample(&mut rng);
        let title = d.rank_to_title[rank] as usize - 1;

        // Episode: uniform half the time, else biased to early ones.
        let count = d.episode_count[title] as u64;
        let r = rng.next_u64();
        let offset = if count == 1 {
            0
        } else if r & 1 == 0 {
            below(r, count)
        } else {
            let u = unit(r);
            (u * u * count as f64) as u64
        };
        let episode = d.first_episode[title] as usize + offset as usize;

        // Time: from signup (or Jan 1) to the end of June; fading users
        // front-loaded by an exponential decay.
        let from = EVENTS_START_US.max(traits.signup_day(user_id) as i64 * DAY_US);
        let u = unit(rng.next_u64());
        let fading = traits.fade(user_id);
        let frac = if fading == 0 {
            u
        } else {
            let (c, inv) = fade[fading as usize - 1];
            -(1.0 - u * c).ln() * inv
        };
        let t = from + (frac * (EVENTS_END_US - from) as f64) as i64;

        // Minutes: complete (>= 80% of the runtime) 55% of the time.
        let runtime = d.episode_runtime[episode] as u64;
        let complete_from = (runtime * 4).div_ceil(5);
        let r = rng.next_u64();
        let minutes = if below(r, 100) < 55 {
            complete_from + below(mix64(r), runtime - complete_from + 1)
        } else {
            1 + below(mix64(r), complete_from - 1)
        };

        user_ids.push(user_id as i64);
        title_ids.push(title as i64 + 1);
        episode_ids.push(episode as i64 + 1);
        ts.push(t.min(EVENTS_END_US - 1));
        watched.push(minutes as i32);
        device.push(DEVICE_PICK.pick(rng.next_u64()));
    }
    vec![
        Arc::new(Int64Array::from(user_ids)),
        Arc::new(Int64Array::from(title_ids)),
        Arc::new(Int64Array::from(episode_ids)),
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(Int32Array::from(watched)),
        dict_strings(&names(DEVICES), &device),
    ]
}

fn gen_licensing_windows(params: &NetflixParams) -> Vec<ArrayRef> {
    let titles = params.titles();
    let mut rng = block_rng(params.seed, NetflixTable::LicensingWindows, 0);
    let windows_pick = Weighted::new([30, 30, 25, 15]);
    let mut ids = Vec::new();
    let mut region = Vec::new();
    let mut start = Vec::new();
    let mut end = Vec::new();
    for title_id in 1..=titles as i64 {
        let windows = 1 + windows_pick.pick(rng.next_u64()) as usize;
        let mut regions: Vec<u8> = Vec::with_capacity(windows);
        while regions.len() < windows {
            let r = COUNTRY_PICK.pick(rng.next_u64());
            if !regions.contains(&r) {
                regions.push(r);
            }
        }
        for r in regions {
            let months = 3 + below(rng.next_u64(), 34) as i64;
            let how = below(rng.next_u64(), 100);
            let day = rng.next_u64();
            let (s, e) = if how < 8 {
                // Starts inside July 2025.
                let s = JULY_2025 + below(day, 31) as i32;
                (s, add_months(s, months) - 1)
            } else if how < 16 {
                // Ends inside July 2025.
                let e = JULY_2025 + below(day, 31) as i32;
                (add_months(e + 1, -months).max(LICENSE_FIRST_DAY), e)
            } else {
                let s = LICENSE_FIRST_DAY
                    + below(day, (LICENSE_LAST_START - LICENSE_FIRST_DAY + 1) as u64) as i32;
                (s, add_months(s, months) - 1)
            };
            ids.push(title_id);
            region.push(r);
            start.push(s);
            end.push(e);
        }
    }
    vec![
        Arc::new(Int64Array::from(ids)),
        dict_strings(&names(COUNTRIES), &region),
        Arc::new(Date32Array::from(start)),
        Arc::new(Date32Array::from(end)),
    ]
}

const EXPERIMENT_TAG: u64 = 0x0045_5850; // "EXP"

/// One row of the assignment log: user `user_id` in experiment `e`
/// (0-based), when the hash enrolls them.
struct Assignment {
    experiment: usize,
    user_id: u64,
    treatment: bool,
    assigned_at: i64,
}

/// The assignments of a block of users, in (user, experiment) order.
fn assignments(params: &NetflixParams, block: u64) -> Vec<Assignment> {
    let (start, n) = block_range(params.users(), block);
    let exp_key = key(params.seed, EXPERIMENT_TAG);
    let traits = UserTraits::new(params.seed);
    let mut out = Vec::with_capacity(n * 2 + 8);
    for user_id in start + 1..=start + n as u64 {
        let signup = traits.signup_day(user_id) as i64 * DAY_US;
        for (e, first_day) in EXPERIMENT_STARTS.iter().enumerate() {
            let h = mix64(exp_key ^ ((e as u64 + 1) << 56) ^ user_id);
            // Bit 0 enrolls, bit 1 picks the variant: ~50% enrolled, 50/50.
            if h & 1 == 0 {
                continue;
            }
            let from = (*first_day as i64 * DAY_US).max(signup);
            out.push(Assignment {
                experiment: e,
                user_id,
                treatment: h & 2 != 0,
                assigned_at: from + below(mix64(h), 14 * DAY_US as u64) as i64,
            });
        }
    }
    out
}

fn gen_assignments(params: &NetflixParams, block: u64) -> Vec<ArrayRef> {
    let rows = assignments(params, block);
    let variant: Vec<u8> = rows.iter().map(|a| a.treatment as u8).collect();
    vec![
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|a| a.experiment as i32 + 1),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|a| a.user_id as i64),
        )),
        dict_strings(&VARIANTS, &variant),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            rows.iter().map(|a| a.assigned_at),
        )),
    ]
}

fn gen_metrics(params: &NetflixParams, block: u64) -> Vec<ArrayRef> {
    let rows = assignments(params, block);
    let mut rng = block_rng(params.seed, NetflixTable::ExperimentMetrics, block);
    // Log-normal with mean 300 and sd 250: sigma² = ln(1 + (250/300)²).
    let sigma2 = (1.0f64 + (250.0f64 / 300.0).powi(2)).ln();
    let watch = LogNormal::new(300.0f64.ln() - sigma2 / 2.0, sigma2.sqrt())
        .expect("valid log-normal parameters");
    let mut minutes = Vec::with_capacity(rows.len());
    let mut sessions = Vec::with_capacity(rows.len());
    let mut churned = Vec::with_capacity(rows.len());
    for a in &rows {
        let effect = if a.treatment {
            1.0 + EXPERIMENT_EFFECTS[a.experiment]
        } else {
            1.0
        };
        let m = watch.sample(&mut rng) * effect;
        let m = (m * 10.0).round() / 10.0;
        let session_length = 25.0 + 40.0 * unit(rng.next_u64());
        let (control, treatment) = CHURN_RATES[a.experiment];
        let churn = if a.treatment { treatment } else { control };
        minutes.push(m);
        sessions.push(((m / session_length).round() as i64).max(1));
        churned.push(unit(rng.next_u64()) < churn);
    }
    vec![
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|a| a.experiment as i32 + 1),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|a| a.user_id as i64),
        )),
        Arc::new(Float64Array::from(minutes)),
        Arc::new(Int64Array::from(sessions)),
        Arc::new(BooleanArray::from(churned)),
    ]
}

fn gen_telemetry(params: &NetflixParams, block: u64) -> Vec<ArrayRef> {
    let (start, n) = block_range(params.playback_sessions(), block);
    let users = UserSampler::new(params);
    let traits = UserTraits::new(params.seed);
    let mut rng = block_rng(params.seed, NetflixTable::PlaybackTelemetry, block);
    let mut session_ids = Vec::with_capacity(n);
    let mut user_ids = Vec::with_capacity(n);
    let mut isp = Vec::with_capacity(n);
    let mut device = Vec::with_capacity(n);
    let mut cdn = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut bitrate = Vec::with_capacity(n);
    let mut rebuffer = Vec::with_capacity(n);
    let mut play = Vec::with_capacity(n);
    // Bitrate rungs below the device's top one: usually 0-1, sometimes more.
    const DROPS: [u8; 8] = [0, 0, 0, 1, 1, 2, 3, 4];
    for i in 0..n as u64 {
        let user_id = users.sample(rng.next_u64());
        let user_isp = traits.isp(user_id);
        let dev = DEVICE_PICK.pick(rng.next_u64());
        let c = CDN_PICK.pick(rng.next_u64());
        let t = TELEMETRY_START_US + below(rng.next_u64(), TELEMETRY_SPAN_US) as i64;
        let r = rng.next_u64();
        let mut drop = DROPS[(r & 7) as usize];
        if user_isp == ISP_RURALWAVE {
            drop += 3;
        }
        let rung = DEVICE_TOP_RUNG[dev as usize].saturating_sub(drop);
        // Session length: exponential, mean 25 minutes, at least 5 seconds.
        let play_ms = 5_000.0 - (-unit(mix64(r))).ln_1p() * 25.0 * 60_000.0;
        let play_ms = play_ms.min(6.0 * 3_600_000.0);
        // Rebuffering: 40% of sessions stall; the mean ratio is
        // 0.75% × the ISP's multiplier (× 1.6 for mobile on cdn-c).
        let r = rng.next_u64();
        let rebuffer_ms = if below(r, 100) < 40 {
            let mut ratio = 0.0075 / 0.4 * ISPS[user_isp as usize].2;
            if dev == DEVICE_MOBILE && c == CDN_C {
                ratio *= 1.6;
            }
            (play_ms * ratio * 2.0 * unit(mix64(r))).round() as i64
        } else {
            0
        };
        session_ids.push((start + i + 1) as i64);
        user_ids.push(user_id as i64);
        isp.push(user_isp);
        device.push(dev);
        cdn.push(c);
        ts.push(t);
        bitrate.push(BITRATES[rung as usize]);
        rebuffer.push(rebuffer_ms);
        play.push(play_ms.round() as i64);
    }
    let isp_names = ISPS.map(|(name, _, _)| name);
    vec![
        Arc::new(Int64Array::from(session_ids)),
        Arc::new(Int64Array::from(user_ids)),
        dict_strings(&isp_names, &isp),
        dict_strings(&names(DEVICES), &device),
        dict_strings(&names(CDNS), &cdn),
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(Int32Array::from(bitrate)),
        Arc::new(Int64Array::from(rebuffer)),
        Arc::new(Int64Array::from(play)),
    ]
}

// ---------------------------------------------------------------------------
// Schema names
// ---------------------------------------------------------------------------

/// The scale of a schema name: `tiny`, `small`, `medium`, `large`, or
/// `sf<scale>` with `_` as the decimal point (`sf0_05`, `sf2`).
pub fn parse_netflix_schema(name: &str) -> Result<f64> {
    if let Some((_, scale)) = NAMED_SCALES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return Ok(*scale);
    }
    crate::tpch::parse_scale_factor_schema(name).map_err(|_| {
        plan_datafusion_err!(
            "invalid netflix schema name '{name}': expected tiny, small, medium, large \
             or 'sf<scale>' with '_' as decimal point, e.g. sf0_05, sf2"
        )
    })
}

// ---------------------------------------------------------------------------
// NetflixScanExec
// ---------------------------------------------------------------------------

/// Leaf [`ExecutionPlan`] generating `num_partitions` partitions of a
/// netflix table.
///
/// Partition `p` generates its range of blocks
/// ([`NetflixTable::partition_blocks`]) when executed, one block at a time,
/// sliced into batches of at most `batch_size` rows and projected. The node
/// holds no data: it serializes as (table, scale, skew, seed, partitions,
/// projection, batch size).
#[derive(Debug)]
pub struct NetflixScanExec {
    table: NetflixTable,
    params: NetflixParams,
    /// Partitions, projection, batch size, output schema, metrics.
    scan: GeneratedScan,
}

impl NetflixScanExec {
    /// A scan of `table`, split in `num_partitions`, producing the columns of
    /// `projection` (indices into [`NetflixTable::schema`]; `None` for all).
    pub fn try_new(
        table: NetflixTable,
        params: NetflixParams,
        num_partitions: usize,
        projection: Option<Vec<usize>>,
        batch_size: usize,
    ) -> Result<Self> {
        params.validate()?;
        if num_partitions == 0 {
            return plan_err!("NetflixScanExec: the number of partitions must be positive");
        }
        let scan = GeneratedScan::try_new(
            "NetflixScanExec",
            &table,
            table.schema(),
            projection,
            num_partitions,
            batch_size,
        )?;
        Ok(Self {
            table,
            params,
            scan,
        })
    }

    /// The generated table.
    pub fn table(&self) -> NetflixTable {
        self.table
    }

    /// Scale, skew and seed.
    pub fn params(&self) -> NetflixParams {
        self.params
    }

    /// Number of output partitions.
    pub fn num_partitions(&self) -> usize {
        self.scan.num_partitions()
    }

    /// Projected column indices into [`NetflixTable::schema`], if any.
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.scan.projection()
    }

    /// Maximum rows per output batch.
    pub fn batch_size(&self) -> usize {
        self.scan.batch_size()
    }

    /// Statistics of one partition (`Some`) or of all of them.
    fn estimate_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        let blocks = match partition {
            Some(p) => {
                self.scan.check_partition(p)?;
                self.table
                    .partition_blocks(&self.params, p, self.scan.num_partitions())
            }
            None => 0..self.table.num_blocks(&self.params),
        };
        let rows = self.table.estimated_block_rows(&self.params, blocks);
        let exact = matches!(
            self.table,
            NetflixTable::Users
                | NetflixTable::Titles
                | NetflixTable::Episodes
                | NetflixTable::ViewingEvents
                | NetflixTable::PlaybackTelemetry
        );
        Ok(self
            .scan
            .statistics(rows, exact, self.table.avg_row_bytes()))
    }
}

impl DisplayAs for NetflixScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let p = &self.params;
        self.scan.fmt_as(
            t,
            f,
            &[
                ("table", &self.table),
                ("scale", &p.scale),
                ("skew", &p.skew),
                ("seed", &p.seed),
            ],
        )
    }
}

impl ExecutionPlan for NetflixScanExec {
    fn name(&self) -> &str {
        "NetflixScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("NetflixScanExec is a leaf and takes no children");
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.scan.check_partition(partition)?;
        let num_partitions = self.scan.num_partitions();
        tracing::debug!(
            table = self.table.name(),
            scale = self.params.scale,
            partition,
            num_partitions,
            "generating netflix partition"
        );
        // One batch per block of `BLOCK_ROWS`, sliced to the batch size.
        let batches = self
            .table
            .generate_partition(&self.params, partition, num_partitions);
        Ok(self.scan.stream(partition, batches))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.scan.metrics())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.estimate_statistics(args.partition()).map(Arc::new)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.estimate_statistics(partition).map(Arc::new)
    }
}

// ---------------------------------------------------------------------------
// TableProvider / SchemaProvider / CatalogProvider
// ---------------------------------------------------------------------------

/// [`TableProvider`] of one netflix table at one scale.
///
/// [`scan`](TableProvider::scan) reads `minispark.netflix.skew` and
/// `minispark.netflix.seed` from the session and returns a
/// [`NetflixScanExec`] with the session's `target_partitions` partitions.
#[derive(Debug)]
pub struct NetflixTableProvider {
    table: NetflixTable,
    scale: f64,
    settings: SessionSettings,
}

/// Reads a session's skew and seed (`minispark.netflix.skew`, `.seed`) from
/// its configuration when a scan is planned. The planner, which declares
/// minispark's settings, passes its reader in; this crate declares none.
pub type SessionSettings = fn(&ConfigOptions) -> (f64, u64);

impl NetflixTableProvider {
    /// A provider of `table` at `scale`, taking skew and seed from the
    /// session through `settings`.
    pub fn new(table: NetflixTable, scale: f64, settings: SessionSettings) -> Self {
        Self {
            table,
            scale,
            settings,
        }
    }

    /// The provided table.
    pub fn table(&self) -> NetflixTable {
        self.table
    }

    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

impl TableProvider for NetflixTableProvider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    // Written out instead of `#[async_trait]` (not a dependency of this
    // crate); nothing here needs to await.
    fn scan<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        state: &'life1 dyn Session,
        projection: Option<&'life2 Vec<usize>>,
        _filters: &'life3 [Expr],
        _limit: Option<usize>,
    ) -> BoxFuture<'async_trait, Result<Arc<dyn ExecutionPlan>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        let config = state.config();
        let (skew, seed) = (self.settings)(config.options());
        let plan = NetflixParams::try_new(self.scale, skew, seed)
            .and_then(|params| {
                NetflixScanExec::try_new(
                    self.table,
                    params,
                    config.target_partitions().max(1),
                    projection.cloned(),
                    config.batch_size().max(1),
                )
            })
            .map(|exec| Arc::new(exec) as Arc<dyn ExecutionPlan>);
        Box::pin(std::future::ready(plan))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    fn statistics(&self) -> Option<Statistics> {
        NetflixScanExec::try_new(
            self.table,
            NetflixParams::with_scale(self.scale),
            1,
            None,
            1,
        )
        .and_then(|exec| exec.estimate_statistics(None))
        .ok()
    }
}

/// [`SchemaProvider`] of one scale: the eight tables.
#[derive(Debug, Clone, Copy)]
pub struct NetflixSchema {
    scale: f64,
    settings: SessionSettings,
}

impl NetflixSchema {
    /// The tables at `scale`.
    pub fn new(scale: f64, settings: SessionSettings) -> Self {
        Self { scale, settings }
    }

    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

impl SchemaProvider for NetflixSchema {
    fn table_names(&self) -> Vec<String> {
        NetflixTable::ALL
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    }

    // Written out instead of `#[async_trait]`; nothing here needs to await.
    fn table<'life0, 'life1, 'async_trait>(
        &'life0 self,
        name: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<Option<Arc<dyn TableProvider>>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let provider = NetflixTable::from_name(name).map(|table| {
            Arc::new(NetflixTableProvider::new(table, self.scale, self.settings))
                as Arc<dyn TableProvider>
        });
        Box::pin(std::future::ready(Ok(provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        NetflixTable::from_name(name).is_some()
    }
}

/// [`CatalogProvider`] `netflix`: one schema per scale (see
/// [`parse_netflix_schema`]); lists the named scales.
#[derive(Debug)]
pub struct NetflixCatalog {
    settings: SessionSettings,
}

impl NetflixCatalog {
    /// The catalog, reading skew and seed from each session through `settings`.
    pub fn new(settings: SessionSettings) -> Self {
        Self { settings }
    }
}

impl CatalogProvider for NetflixCatalog {
    fn schema_names(&self) -> Vec<String> {
        NAMED_SCALES.iter().map(|(n, _)| n.to_string()).collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match parse_netflix_schema(name) {
            Ok(scale) => Some(Arc::new(NetflixSchema::new(scale, self.settings))),
            Err(e) => {
                tracing::debug!("no netflix schema {name}: {e}");
                None
            }
        }
    }
}

/// Register the [`NetflixCatalog`] as `netflix` on a [`SessionContext`].
pub fn register_netflix_catalog(ctx: &SessionContext, settings: SessionSettings) {
    ctx.register_catalog(
        NETFLIX_CATALOG_NAME,
        Arc::new(NetflixCatalog::new(settings)),
    );
}

// ---------------------------------------------------------------------------
// Parquet export
// ---------------------------------------------------------------------------

/// Number of Parquet files [`write_netflix_parquet`] writes for `table`:
/// one for a dimension; else one per ~1M rows, at least 2 (at most one per
/// block).
pub fn netflix_files_per_table(table: NetflixTable, params: &NetflixParams) -> usize {
    if table.is_dimension() {
        return 1;
    }
    let files = table
        .estimated_rows(params)
        .div_ceil(ROWS_PER_FILE)
        .max(2)
        .min(table.num_blocks(params))
        .max(1);
    usize::try_from(files).unwrap_or(usize::MAX)
}

/// Write every netflix table as ZSTD Parquet under
/// `out_dir/<table>/part-<i>.parquet`: file `i` of `n` holds partition `i`
/// of `n` of the catalog's scan, so the files hold exactly the rows of
/// `netflix.<scale>.<table>` with the same skew and seed.
///
/// Stale `part-*.parquet` files are removed first. Files are written in
/// parallel, one thread per core, biggest first, each streaming block by
/// block.
///
/// Returns `(table, rows, files)` per table in [`NetflixTable::ALL`] order.
pub fn write_netflix_parquet(
    params: &NetflixParams,
    out_dir: &Path,
) -> Result<Vec<(String, u64, usize)>> {
    params.validate()?;
    let tables = NetflixTable::ALL.map(|table| ExportTable {
        name: table.name(),
        schema: table.schema(),
        files: netflix_files_per_table(table, params),
    });
    export_parquet(
        "netflix",
        out_dir,
        &tables,
        |job| {
            let table = NetflixTable::ALL[job.table];
            table.estimated_rows(params) * table.avg_row_bytes() as u64 / job.files as u64
        },
        |job| NetflixTable::ALL[job.table].generate_partition(params, job.file, job.files),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::TempDir;
    use arrow::array::{Array, AsArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::Int64Type;
    use datafusion::common::config::ConfigExtension;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::collect_partitioned;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig};

    datafusion::common::extensions_options! {
        /// Skew and seed as the tests set them (`test.skew`, `test.seed`):
        /// the planner declares the real `minispark.netflix.*` settings.
        struct TestSettings {
            skew: f64, default = NetflixParams::DEFAULT_SKEW
            seed: u64, default = NetflixParams::DEFAULT_SEED
        }
    }

    impl ConfigExtension for TestSettings {
        const PREFIX: &'static str = "test";
    }

    fn test_settings(options: &ConfigOptions) -> (f64, u64) {
        let s = options
            .extensions
            .get::<TestSettings>()
            .cloned()
            .unwrap_or_default();
        (s.skew, s.seed)
    }

    /// A session with 3 partitions, the netflix catalog, and `settings`
    /// (`test.skew`, `test.seed`).
    fn ctx(settings: &[(&str, &str)]) -> SessionContext {
        let mut config = SessionConfig::new()
            .with_target_partitions(3)
            .with_option_extension(TestSettings::default());
        for (k, v) in settings {
            config.options_mut().set(k, v).unwrap();
        }
        let ctx = SessionContext::new_with_config(config);
        register_netflix_catalog(&ctx, test_settings);
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    async fn int(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = rows(ctx, sql).await;
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    async fn float(ctx: &SessionContext, sql: &str) -> f64 {
        let batches = rows(ctx, sql).await;
        let col = arrow::compute::cast(batches[0].column(0), &DataType::Float64).unwrap();
        col.as_primitive::<arrow::datatypes::Float64Type>().value(0)
    }

    fn tiny() -> NetflixParams {
        NetflixParams::with_scale(0.001)
    }

    fn concat(table: NetflixTable, batches: &[RecordBatch]) -> RecordBatch {
        concat_batches(&table.schema(), batches).unwrap()
    }

    #[tokio::test]
    async fn row_counts() {
        let ctx = ctx(&[]);
        let count = |t: &str| format!("SELECT count(*) FROM netflix.tiny.{t}");
        assert_eq!(int(&ctx, &count("users")).await, 1000);
        assert_eq!(int(&ctx, &count("titles")).await, 200);
        assert_eq!(int(&ctx, &count("viewing_events")).await, 20_000);
        assert_eq!(int(&ctx, &count("playback_telemetry")).await, 10_000);
        let episodes = int(&ctx, &count("episodes")).await;
        assert_eq!(
            episodes as u64,
            NetflixTable::Episodes.estimated_rows(&tiny())
        );
        // 60% films (1 row) + 40% series (~2.5 seasons of ~9.5 episodes).
        assert!((1000..4000).contains(&episodes), "{episodes}");
        let windows = int(&ctx, &count("licensing_windows")).await;
        assert!((350..600).contains(&windows), "{windows}");
        let assignments = int(&ctx, &count("experiment_assignments")).await;
        assert!((1800..2200).contains(&assignments), "{assignments}");
        assert_eq!(int(&ctx, &count("experiment_metrics")).await, assignments);
        // Named and sf schemas, and row counts at another scale.
        assert_eq!(
            int(&ctx, "SELECT count(*) FROM netflix.sf0_0005.viewing_events").await,
            10_000
        );
        assert_eq!(
            int(&ctx, "SELECT count(*) FROM netflix.small.users").await,
            10_000
        );
        assert_eq!(
            int(&ctx, "SELECT count(*) FROM netflix.small.titles").await,
            1000
        );
        let medium = NetflixParams::with_scale(0.1);
        assert_eq!(medium.titles(), 10_000);
        assert_eq!(medium.viewing_events(), 2_000_000);
        assert_eq!(NetflixParams::with_scale(5.0).titles(), 10_000);
    }

    #[test]
    fn same_rows_whatever_the_partitions() {
        let params = tiny();
        for table in NetflixTable::ALL {
            let whole = concat(table, &table.generate_all(&params).unwrap());
            for n in [3, 7] {
                let mut batches = Vec::new();
                for p in 0..n {
                    let part: Vec<_> = table
                        .generate_partition(&params, p, n)
                        .collect::<Result<_>>()
                        .unwrap();
                    if table.is_dimension() && p > 0 {
                        assert!(part.is_empty(), "{table} partition {p}");
                    }
                    batches.extend(part);
                }
                assert_eq!(whole, concat(table, &batches), "{table} in {n} partitions");
            }
        }
    }

    /// The rows of a scan with `n` partitions, sorted by every column.
    async fn sorted_scan(table: NetflixTable, n: usize) -> RecordBatch {
        let exec = Arc::new(NetflixScanExec::try_new(table, tiny(), n, None, 1000).unwrap());
        let schema = exec.schema();
        let out = collect_partitioned(exec, Arc::new(TaskContext::default()))
            .await
            .unwrap();
        assert_eq!(out.len(), n);
        assert!(out.iter().flatten().all(|b| b.num_rows() <= 1000));
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, out).unwrap()))
            .unwrap();
        let order: Vec<String> = (1..=table.schema().fields().len())
            .map(|i| i.to_string())
            .collect();
        let sql = format!("SELECT * FROM t ORDER BY {}", order.join(", "));
        let batches = rows(&ctx, &sql).await;
        concat(table, &batches)
    }

    #[tokio::test]
    async fn scan_partitions_give_the_same_sorted_rows() {
        for table in [
            NetflixTable::ViewingEvents,
            NetflixTable::ExperimentMetrics,
            NetflixTable::PlaybackTelemetry,
        ] {
            let one = sorted_scan(table, 1).await;
            assert_eq!(one, sorted_scan(table, 3).await, "{table}");
            assert_eq!(one, sorted_scan(table, 7).await, "{table}");
        }
    }

    #[test]
    fn deterministic_and_seeded() {
        let params = tiny();
        let other_seed = NetflixParams { seed: 43, ..params };
        for table in NetflixTable::ALL {
            let a = concat(table, &table.generate_all(&params).unwrap());
            let b = concat(table, &table.generate_all(&params).unwrap());
            assert_eq!(a, b, "{table}");
            let c = concat(table, &table.generate_all(&other_seed).unwrap());
            assert_ne!(a, c, "{table} with another seed");
        }
        // The dimension model rebuilt from scratch is the same too.
        let again = build_dims(&params);
        let cached = dims(&params);
        assert_eq!(again.episode_runtime, cached.episode_runtime);
        assert_eq!(again.rank_to_title, cached.rank_to_title);
    }

    const TOP_TITLE_SHARE: &str = "SELECT max(c) * 1.0 / sum(c) FROM \
        (SELECT title_id, count(*) AS c FROM netflix.small.viewing_events GROUP BY title_id)";

    #[tokio::test]
    async fn skew_sets_the_hot_title() {
        let skewed = float(&ctx(&[]), TOP_TITLE_SHARE).await;
        assert!(skewed > 0.18, "top title share at skew 1.2: {skewed}");
        let uniform = float(&ctx(&[("test.skew", "0")]), TOP_TITLE_SHARE).await;
        assert!(uniform < 0.005, "top title share at skew 0: {uniform}");
        // The hot title is not simply title 1.
        let ctx = ctx(&[]);
        let hot = int(
            &ctx,
            "SELECT title_id FROM netflix.small.viewing_events \
             GROUP BY title_id ORDER BY count(*) DESC LIMIT 1",
        )
        .await;
        assert_eq!(
            hot,
            dims(&NetflixParams::with_scale(0.01)).rank_to_title[0] as i64
        );
        assert_ne!(hot, 1);
    }

    #[tokio::test]
    async fn watched_minutes_within_runtime() {
        let ctx = ctx(&[]);
        let sql = "SELECT count(*) AS all_events,
                sum(CASE WHEN v.watched_minutes BETWEEN 1 AND e.runtime_minutes
                          AND v.title_id = e.title_id THEN 1 ELSE 0 END) AS valid,
                sum(CASE WHEN v.watched_minutes >= 0.8 * e.runtime_minutes THEN 1 ELSE 0 END)
                    AS complete
            FROM netflix.tiny.viewing_events v
            JOIN netflix.tiny.episodes e ON v.episode_id = e.episode_id";
        let batch = &rows(&ctx, sql).await[0];
        let col = |i: usize| batch.column(i).as_primitive::<Int64Type>().value(0);
        assert_eq!(col(0), 20_000, "every event has its episode");
        assert_eq!(col(1), 20_000);
        let complete = col(2) as f64 / 20_000.0;
        assert!(
            (0.52..0.58).contains(&complete),
            "completed share {complete}"
        );
        // Events fall in the six months, never before the user's signup.
        let bad = int(
            &ctx,
            "SELECT count(*) FROM netflix.tiny.viewing_events v
             JOIN netflix.tiny.users u ON v.user_id = u.user_id
             WHERE v.event_ts < TIMESTAMP '2025-01-01 00:00:00'
                OR v.event_ts >= TIMESTAMP '2025-07-01 00:00:00'
                OR CAST(v.event_ts AS DATE) < u.signup_date",
        )
        .await;
        assert_eq!(bad, 0);
    }

    #[tokio::test]
    async fn engagement_drops_and_new_users_exist() {
        let ctx = ctx(&[]);
        let new_users = int(
            &ctx,
            "SELECT count(*) FROM netflix.small.users WHERE signup_date >= DATE '2025-01-01'",
        )
        .await;
        assert!((1200..1800).contains(&new_users), "{new_users}");
        let sql = "WITH monthly AS (
                SELECT user_id, date_trunc('month', event_ts) AS month,
                       sum(watched_minutes) / 60.0 AS hours
                FROM netflix.small.viewing_events GROUP BY 1, 2),
            lagged AS (
                SELECT user_id, month, hours,
                       lag(hours) OVER (PARTITION BY user_id ORDER BY month) AS prev
                FROM monthly)
            SELECT count(DISTINCT user_id) FROM lagged WHERE hours < prev / 2";
        let dropped = int(&ctx, sql).await;
        assert!(dropped > 100, "{dropped} users dropped below half");
        // Later months have fewer events overall (fading users).
        let jan = int(&ctx, "SELECT count(*) FROM netflix.small.viewing_events WHERE event_ts < TIMESTAMP '2025-02-01 00:00:00'").await;
        let jun = int(&ctx, "SELECT count(*) FROM netflix.small.viewing_events WHERE event_ts >= TIMESTAMP '2025-06-01 00:00:00'").await;
        assert!(jun > 0 && jun < jan, "jan {jan} jun {jun}");
    }

    #[tokio::test]
    async fn experiments_bucket_users() {
        let ctx = ctx(&[]);
        let mixed = int(
            &ctx,
            "SELECT count(*) FROM (SELECT experiment_id, user_id FROM netflix.small.experiment_assignments
              GROUP BY 1, 2 HAVING count(*) > 1 OR count(DISTINCT variant) > 1)",
        )
        .await;
        assert_eq!(mixed, 0);
        let batches = rows(
            &ctx,
            "SELECT experiment_id, count(*) AS n,
                    sum(CASE WHEN variant = 'treatment' THEN 1 ELSE 0 END) AS treated
             FROM netflix.small.experiment_assignments GROUP BY 1 ORDER BY 1",
        )
        .await;
        let batch = concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(batch.num_rows(), 4);
        for i in 0..4 {
            let n = batch.column(1).as_primitive::<Int64Type>().value(i) as f64;
            let treated = batch.column(2).as_primitive::<Int64Type>().value(i) as f64;
            assert!((4700.0..5300.0).contains(&n), "enrolled {n}");
            assert!(
                (0.46..0.54).contains(&(treated / n)),
                "treated {treated}/{n}"
            );
        }
        // Metrics: one row per assignment, same users and variants.
        let unmatched = int(
            &ctx,
            "SELECT count(*) FROM netflix.small.experiment_assignments a
             FULL JOIN netflix.small.experiment_metrics m
               ON a.experiment_id = m.experiment_id AND a.user_id = m.user_id
             WHERE a.user_id IS NULL OR m.user_id IS NULL",
        )
        .await;
        assert_eq!(unmatched, 0);
        let mean = float(
            &ctx,
            "SELECT avg(watch_minutes) FROM netflix.small.experiment_metrics",
        )
        .await;
        assert!((280.0..320.0).contains(&mean), "mean watch minutes {mean}");
        let churn = float(
            &ctx,
            "SELECT avg(CASE WHEN churned THEN 1.0 ELSE 0.0 END) FROM netflix.small.experiment_metrics",
        )
        .await;
        assert!((0.04..0.065).contains(&churn), "churn {churn}");
    }

    #[tokio::test]
    async fn ruralwave_rebuffers_most() {
        let ctx = ctx(&[]);
        let batches = rows(
            &ctx,
            "SELECT isp, CAST(sum(rebuffer_ms) AS DOUBLE) / sum(play_ms) AS ratio
             FROM netflix.tiny.playback_telemetry GROUP BY isp ORDER BY ratio DESC",
        )
        .await;
        let batch = concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(batch.num_rows(), 8);
        let isp = batch.column(0).as_string::<i32>();
        let ratio = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(isp.value(0), "RuralWave");
        assert!(ratio.value(0) > 0.025, "RuralWave {}", ratio.value(0));
        for i in 1..8 {
            assert!(
                (0.004..0.013).contains(&ratio.value(i)),
                "{} {}",
                isp.value(i),
                ratio.value(i)
            );
        }
        // 168 hours over seven days.
        let hours = int(
            &ctx,
            "SELECT count(DISTINCT date_trunc('hour', event_ts)) FROM netflix.tiny.playback_telemetry
             WHERE event_ts >= TIMESTAMP '2025-06-01 00:00:00' AND event_ts < TIMESTAMP '2025-06-08 00:00:00'",
        )
        .await;
        assert_eq!(hours, 168);
        let sessions = int(
            &ctx,
            "SELECT count(DISTINCT session_id) FROM netflix.tiny.playback_telemetry",
        )
        .await;
        assert_eq!(sessions, 10_000);
    }

    #[tokio::test]
    async fn titles_and_licensing_windows() {
        let ctx = ctx(&[]);
        let titles = NetflixTable::Titles.generate_all(&tiny()).unwrap();
        let titles = concat(NetflixTable::Titles, &titles);
        let names = titles.column(1).as_string::<i32>();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), 200, "title names are unique");
        let genres = titles.column(4).as_list::<i32>();
        let cast = titles.column(5).as_list::<i32>();
        for i in 0..titles.num_rows() {
            assert!((1..=3).contains(&genres.value(i).len()));
            assert!((2..=6).contains(&cast.value(i).len()));
        }
        let series = int(
            &ctx,
            "SELECT count(*) FROM netflix.small.titles WHERE kind = 'series'",
        )
        .await;
        assert!((340..460).contains(&series), "{series} series of 1000");
        // Films have one 80-150 minute episode; series 20-60 minute ones.
        let bad = int(
            &ctx,
            "SELECT count(*) FROM netflix.tiny.titles t JOIN netflix.tiny.episodes e USING (title_id)
             WHERE (t.kind = 'film' AND (e.runtime_minutes NOT BETWEEN 80 AND 150 OR e.season <> 1 OR e.episode_number <> 1))
                OR (t.kind = 'series' AND (e.runtime_minutes NOT BETWEEN 20 AND 60 OR e.season > 6 OR e.episode_number > 13))",
        )
        .await;
        assert_eq!(bad, 0);
        let bad_windows = int(
            &ctx,
            "SELECT count(*) FROM netflix.tiny.licensing_windows WHERE end_date < start_date",
        )
        .await;
        assert_eq!(bad_windows, 0);
        let duplicate_regions = int(
            &ctx,
            "SELECT count(*) FROM (SELECT title_id, region FROM netflix.tiny.licensing_windows
              GROUP BY 1, 2 HAVING count(*) > 1)",
        )
        .await;
        assert_eq!(duplicate_regions, 0);
        // What is available in Germany in July 2025, with edge cases.
        let overlap = "FROM netflix.small.licensing_windows WHERE region = 'DE'
            AND start_date <= DATE '2025-07-31' AND end_date >= DATE '2025-07-01'";
        let available = int(&ctx, &format!("SELECT count(*) {overlap}")).await;
        let partial = int(
            &ctx,
            &format!(
                "SELECT count(*) {overlap} AND (start_date > DATE '2025-07-01' OR end_date < DATE '2025-07-31')"
            ),
        )
        .await;
        assert!(available > 30, "{available} DE windows in July 2025");
        assert!(partial >= 5, "{partial} DE windows partly in July 2025");
    }

    #[tokio::test]
    async fn settings_reach_the_scan_and_the_codec_round_trips() {
        let ctx = ctx(&[("test.seed", "7"), ("test.skew", "0.5")]);
        let plan = ctx
            .sql("SELECT user_id, device FROM netflix.tiny.viewing_events")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(
            text.contains(
                "NetflixScanExec: table=viewing_events, scale=0.001, skew=0.5, seed=7, \
                 partitions=3, projection=[user_id, device]"
            ),
            "{text}"
        );
        // Through the codec: the decoded node generates the same rows.
        let node = crate::codec::encode_scan(plan.as_ref()).unwrap();
        let decoded = crate::codec::decode_scan(&node).unwrap().unwrap();
        let scan = decoded.downcast_ref::<NetflixScanExec>().unwrap();
        assert_eq!(scan.table(), NetflixTable::ViewingEvents);
        assert_eq!(
            scan.params(),
            NetflixParams {
                scale: 0.001,
                skew: 0.5,
                seed: 7
            }
        );
        assert_eq!(scan.num_partitions(), 3);
        assert_eq!(scan.projection(), Some(&vec![0, 5]));
        let a = collect_partitioned(plan, ctx.task_ctx()).await.unwrap();
        let b = collect_partitioned(decoded, ctx.task_ctx()).await.unwrap();
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn statistics() {
        let exec =
            NetflixScanExec::try_new(NetflixTable::ViewingEvents, tiny(), 2, None, 8192).unwrap();
        let all = exec.estimate_statistics(None).unwrap();
        assert_eq!(all.num_rows, Precision::Exact(20_000));
        let p0 = exec.estimate_statistics(Some(0)).unwrap();
        let p1 = exec.estimate_statistics(Some(1)).unwrap();
        let (Precision::Exact(a), Precision::Exact(b)) = (p0.num_rows, p1.num_rows) else {
            panic!("exact partition rows");
        };
        assert_eq!(a + b, 20_000);
        let out = collect_partitioned(Arc::new(exec), Arc::new(TaskContext::default()))
            .await
            .unwrap();
        let rows: Vec<usize> = out
            .iter()
            .map(|p| p.iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(rows, vec![a, b]);
    }

    #[test]
    fn dictionary_strings() {
        let indices = [0u8, 1, 2, 1, 3];
        let short = ["a", "bb", "", "exactly-16-bytes"];
        let expected: StringArray = indices.iter().map(|&i| Some(short[i as usize])).collect();
        assert_eq!(dict_strings(&short, &indices).as_string::<i32>(), &expected);
        let long = ["a", "bb", "", "seventeen-bytes!!"];
        let expected: StringArray = indices.iter().map(|&i| Some(long[i as usize])).collect();
        assert_eq!(dict_strings(&long, &indices).as_string::<i32>(), &expected);
        assert_eq!(dict_strings(&short, &[]).len(), 0);
    }

    #[test]
    fn schema_names_and_dates() {
        assert_eq!(parse_netflix_schema("tiny").unwrap(), 0.001);
        assert_eq!(parse_netflix_schema("Small").unwrap(), 0.01);
        assert_eq!(parse_netflix_schema("medium").unwrap(), 0.1);
        assert_eq!(parse_netflix_schema("large").unwrap(), 1.0);
        assert_eq!(parse_netflix_schema("sf0_05").unwrap(), 0.05);
        assert_eq!(parse_netflix_schema("sf2").unwrap(), 2.0);
        for bad in ["huge", "sf", "sf0", "sf-1", ""] {
            let err = parse_netflix_schema(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        assert!(NetflixCatalog::new(test_settings).schema("sfx").is_none());
        assert_eq!(
            NetflixCatalog::new(test_settings).schema_names(),
            ["tiny", "small", "medium", "large"]
        );
        assert_eq!(
            NetflixTable::from_name("Viewing_Events"),
            Some(NetflixTable::ViewingEvents)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2025, 1, 1), 20_089);
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        let jan31 = days_from_civil(2025, 1, 31);
        assert_eq!(add_months(jan31, 1), days_from_civil(2025, 2, 28));
        assert_eq!(add_months(jan31, 13), days_from_civil(2026, 2, 28));
        assert_eq!(
            add_months(days_from_civil(2025, 7, 15), -7),
            days_from_civil(2024, 12, 15)
        );
        assert!(NetflixParams::try_new(0.0, 1.2, 1).is_err());
        assert!(NetflixParams::try_new(1.0, f64::NAN, 1).is_err());
    }

    #[tokio::test]
    async fn parquet_export_round_trip() {
        // Removed when the test ends, even if an assertion fails.
        let dir = TempDir::new("minispark-netflix");
        let params = NetflixParams::try_new(0.001, 1.0, 9).unwrap();
        let written = write_netflix_parquet(&params, &dir).unwrap();
        assert_eq!(written.len(), 8);
        let ctx = ctx(&[("test.skew", "1"), ("test.seed", "9")]);
        for (name, rows, files) in &written {
            let table = NetflixTable::from_name(name).unwrap();
            let expected = if table.is_dimension() {
                1
            } else {
                table.num_blocks(&params).min(2) as usize
            };
            assert_eq!(*files, expected, "{name}");
            for i in 0..*files {
                assert!(dir.join(name).join(format!("part-{i}.parquet")).is_file());
            }
            ctx.register_parquet(
                format!("f_{name}"),
                dir.join(name).to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
            let built_in = format!("netflix.tiny.{name}");
            let count = int(&ctx, &format!("SELECT count(*) FROM {built_in}")).await;
            assert_eq!(*rows as i64, count, "{name}");
            let differ = int(
                &ctx,
                &format!(
                    "SELECT count(*) FROM (SELECT * FROM f_{name} EXCEPT ALL SELECT * FROM {built_in})"
                ),
            )
            .await;
            assert_eq!(differ, 0, "{name}: files and catalog differ");
        }
    }

    #[test]
    fn user_sampler_is_a_skewed_permutation() {
        let params = NetflixParams::with_scale(0.01);
        let sampler = UserSampler::new(&params);
        // Every rank maps to a distinct id in 1..=U.
        let mut seen = vec![false; params.users() as usize];
        for rank0 in 0..params.users() {
            let id = sampler.permute(rank0) as usize;
            assert!(!seen[id]);
            seen[id] = true;
        }
        // Heavy users exist: the top 1% of users watch far more than 1%.
        let mut counts = vec![0u32; params.users() as usize + 1];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for _ in 0..200_000 {
            counts[sampler.sample(rng.next_u64()) as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..100].iter().sum();
        assert!(top > 200_000 / 20, "top 1% of users: {top} events");
        assert!(counts.iter().filter(|&&c| c > 0).count() > 9_000);
    }
}
