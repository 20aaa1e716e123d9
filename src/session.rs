//! [`Session`]: the entry point of the DataFrame API.
//!
//! A session connects to a cluster and keeps a catalog (tables, views) and
//! settings. Its DataFrames are only plans: they run on the cluster when an
//! action (`collect`, `show`, `count`, `write_parquet`, ...) is called.
//!
//! ```text
//!   Session::builder().master("local[2]")        Session::builder().master("http://driver:7077")
//!        │ embedded driver + 2 executors               │ remote driver
//!        ▼                                             ▼
//!   DataFrame ops ─▶ LogicalPlan ─────────────▶ driver: stages ─▶ executors
//!                     (in process)    (datafusion-proto bytes over SubmitJob)
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference, plan_err};
use datafusion::datasource::file_format::options::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, ReadOptions,
};
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use minispark_driver::job::{JobSession, parse_script, plan_statement, reject_driver_side_queries};
use minispark_driver::job_counters::JobCounters;
use minispark_planner::session::changed_settings;

use crate::client::{StatementOutput, run_plan_remote};
use crate::dataframe::DataFrame;
use crate::local::{LocalCluster, LocalClusterOptions};
use minispark_proto::Security;

/// The file formats a session reads.
#[derive(Debug, Clone, Copy)]
enum FileKind {
    Parquet,
    Csv,
    Json,
}

/// Where a session's jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// `local[N]`: an embedded cluster of N executors on this machine.
    Local(usize),
    /// `http://host:port`: a running driver.
    Remote(String),
}

impl FromStr for Master {
    type Err = DataFusionError;

    /// Parses `local`, `local[N]` or `http(s)://host:port`.
    fn from_str(master: &str) -> Result<Self> {
        if let Some(n) = master
            .strip_prefix("local[")
            .and_then(|s| s.strip_suffix(']'))
        {
            return match n.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Master::Local(n)),
                _ => Err(DataFusionError::Configuration(format!(
                    "invalid master '{master}': expected local[N] with N a number of executors (at least 1)"
                ))),
            };
        }
        if master == "local" {
            return Ok(Master::Local(2));
        }
        if master.starts_with("http://") || master.starts_with("https://") {
            return Ok(Master::Remote(master.to_string()));
        }
        Err(DataFusionError::Configuration(format!(
            "invalid master '{master}': expected local[N] or http://HOST:PORT"
        )))
    }
}

/// Builds a [`Session`]: the master, then settings.
///
/// ```no_run
/// # async fn example() -> datafusion::common::Result<()> {
/// use minispark::Session;
///
/// // A running cluster (`minispark driver` plus `minispark executor`s).
/// let session = Session::builder()
///     .master("http://127.0.0.1:7077")
///     .config("minispark.shuffle.partitions", "16")
///     .config("datafusion.execution.batch_size", "4096")
///     .build()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    master: String,
    settings: Vec<(String, String)>,
    executor_binary: Option<std::path::PathBuf>,
    security: Option<Security>,
}

impl SessionBuilder {
    /// For a remote master: the cluster secret and TLS settings to connect
    /// with (see `minispark_proto::security`). Without it, the secret of
    /// the `MINISPARK_SECRET` environment variable, if set, and no TLS. An
    /// embedded `local[N]` cluster makes a secret of its own.
    pub fn security(mut self, security: Security) -> Self {
        self.security = Some(security);
        self
    }

    /// `local[N]` (an embedded cluster of N executors) or `http://host:port`
    /// (a running `minispark driver`). Defaults to `local[2]`.
    pub fn master(mut self, master: impl Into<String>) -> Self {
        self.master = master.into();
        self
    }

    /// A setting, as `SET key = value` would make it: a `minispark.*` or a
    /// `datafusion.*` key. Unknown keys fail in [`build`](Self::build).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// For `local[N]`: run executors as child processes of this `minispark`
    /// binary. Without it, executors run as child processes when this
    /// program is the `minispark` binary or `MINISPARK_BIN` names one, and
    /// inside this process otherwise (each still a gRPC server of its own).
    pub fn executor_binary(mut self, binary: impl Into<std::path::PathBuf>) -> Self {
        self.executor_binary = Some(binary.into());
        self
    }

    /// Connects: starts the embedded cluster for `local[N]`, or checks that
    /// the settings are valid for a remote driver.
    pub async fn build(self) -> Result<Session> {
        let master: Master = self.master.parse()?;
        let settings: HashMap<String, String> = self.settings.into_iter().collect();
        let inner = match master {
            Master::Local(executors) => {
                let mut options = LocalClusterOptions::new(executors)?.with_settings(&settings)?;
                match self.executor_binary.or_else(find_minispark_binary) {
                    Some(binary) => options.binary = binary,
                    None => options.in_process = true,
                }
                let cluster = LocalCluster::start(options).await?;
                let job = cluster.driver.session(&settings)?;
                SessionInner {
                    ctx: job.context().clone(),
                    backend: Backend::Embedded {
                        cluster: Box::new(cluster),
                        job,
                    },
                    last_job: Mutex::default(),
                }
            }
            Master::Remote(url) => {
                let ctx = minispark_storage::session_context(&settings)?;
                let security = match self.security {
                    Some(s) => s,
                    None => Security::from_env()?,
                };
                check_reachable(&url, &security).await?;
                SessionInner {
                    ctx,
                    backend: Backend::Remote { url, security },
                    last_job: Mutex::default(),
                }
            }
        };
        Ok(Session {
            inner: Arc::new(inner),
        })
    }
}

/// Fails now, with the address, when no driver answers at `url`, rather
/// than at the first action.
async fn check_reachable(url: &str, security: &Security) -> Result<()> {
    let endpoint = minispark_proto::endpoint(url, security)
        .map_err(|e| DataFusionError::Configuration(format!("invalid master '{url}': {e}")))?;
    endpoint.connect().await.map_err(|e| {
        DataFusionError::Execution(format!("cannot reach the driver at {url}: {e}"))
    })?;
    Ok(())
}

/// The `minispark` binary to run embedded executors with, if there is one.
fn find_minispark_binary() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("MINISPARK_BIN") {
        return Some(path.into());
    }
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_string_lossy().into_owned();
    // Test binaries of this package are named minispark-<hash>: not the CLI.
    (stem == "minispark").then_some(exe)
}

/// A connection to a cluster, with its own tables, views and settings.
///
/// Cloning is cheap; clones share the catalog. Dropping the last clone of a
/// `local[N]` session stops its executors.
///
/// ```no_run
/// # async fn example() -> datafusion::common::Result<()> {
/// use minispark::prelude::*;
///
/// let session = Session::builder().master("local[2]").build().await?;
/// let events = session.table("netflix.tiny.viewing_events").await?;
/// let per_device = events
///     .aggregate(vec![col("device")], vec![count(lit(1)).alias("views")])?
///     .sort(vec![col("views").sort(false, true)])?;
/// per_device.show().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    /// Where DataFrames are built: the catalog and settings of this session.
    /// For an embedded cluster it is also the driver's session.
    ctx: SessionContext,
    backend: Backend,
    /// The counters of the last action's job.
    last_job: Mutex<Option<JobCounters>>,
}

enum Backend {
    /// The driver lives in this process; plans need no serialization.
    Embedded {
        cluster: Box<LocalCluster>,
        job: JobSession,
    },
    /// Plans travel to a remote driver as datafusion-proto bytes.
    Remote { url: String, security: Security },
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let master = match &self.inner.backend {
            Backend::Embedded { cluster, .. } => {
                format!("embedded driver at {}", cluster.driver.url())
            }
            Backend::Remote { url, .. } => url.clone(),
        };
        f.debug_struct("Session")
            .field("master", &master)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts building a session (master `local[2]` unless set).
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            master: "local[2]".into(),
            settings: vec![],
            executor_binary: None,
            security: None,
        }
    }

    /// The DataFusion context DataFrames are built in: its catalog, its
    /// functions and its settings.
    pub fn context(&self) -> &SessionContext {
        &self.inner.ctx
    }

    /// The embedded cluster of a `local[N]` session.
    pub fn local_cluster(&self) -> Option<&LocalCluster> {
        match &self.inner.backend {
            Backend::Embedded { cluster, .. } => Some(cluster),
            Backend::Remote { .. } => None,
        }
    }

    /// What the job of this session's last action did: task attempts,
    /// failed attempts, executors lost, map outputs recomputed, adaptive and
    /// salting decisions (see [`JobCounters`]). `None` before the first
    /// action that ran a job. With a remote driver the counters come back
    /// with the result. [`DataFrame::collect_with_counters`] returns them
    /// with the rows of one action.
    pub fn last_job_counters(&self) -> Option<JobCounters> {
        *self.inner.last_job.lock().expect("last job lock")
    }

    /// Changes a setting for the jobs that follow, like `SET key = value`.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        let state = self.inner.ctx.state_ref();
        let mut state = state.write();
        state.config_mut().options_mut().set(key, value)
    }

    /// A DataFrame from one SQL statement. Statements that only change the
    /// session (`CREATE EXTERNAL TABLE`, `CREATE VIEW`, `SET`, `DROP`) take
    /// effect at once; queries run when an action is called.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let mut statements = parse_script(sql)?;
        if statements.len() != 1 {
            return Err(DataFusionError::Plan(format!(
                "Session::sql takes one statement, got {}",
                statements.len()
            )));
        }
        let plan = plan_statement(&self.inner.ctx, statements.remove(0)).await?;
        reject_driver_side_queries(&plan)?;
        // CREATE EXTERNAL TABLE reads its location now, with today's settings.
        minispark_storage::sync_settings(&self.inner.ctx);
        let df = self.inner.ctx.execute_logical_plan(plan).await?;
        Ok(self.wrap(df))
    }

    /// A table of the session's catalog, e.g. a registered file, a view, or a
    /// built-in table such as `tpch.sf0_01.lineitem` or
    /// `netflix.small.viewing_events`.
    pub async fn table(&self, name: impl Into<TableReference>) -> Result<DataFrame> {
        let name = name.into();
        let df = self
            .inner
            .ctx
            .table(name.clone())
            .await
            .map_err(|e| match e {
                DataFusionError::Plan(_) => e,
                e => e.context(format!("cannot read table {name}")),
            })?;
        Ok(self.wrap(df))
    }

    /// Parquet files: one file, or a folder of them. Hive-style partition
    /// folders (`date=2025-06-01/hour=3/`) become columns, and filters on
    /// them prune whole folders.
    pub async fn read_parquet(&self, path: &str) -> Result<DataFrame> {
        let table = self.file_table(path, FileKind::Parquet).await?;
        Ok(self.wrap(self.inner.ctx.read_table(table)?))
    }

    /// CSV files with a header row (partition folders as for Parquet).
    pub async fn read_csv(&self, path: &str) -> Result<DataFrame> {
        let table = self.file_table(path, FileKind::Csv).await?;
        Ok(self.wrap(self.inner.ctx.read_table(table)?))
    }

    /// Newline-delimited JSON files (partition folders as for Parquet).
    pub async fn read_json(&self, path: &str) -> Result<DataFrame> {
        let table = self.file_table(path, FileKind::Json).await?;
        Ok(self.wrap(self.inner.ctx.read_table(table)?))
    }

    /// An Apache Iceberg table: its folder (the newest `metadata/*.metadata.json`
    /// is current) or one of its metadata files, on a local path or an object
    /// store. `snapshot` picks the current snapshot or an older one (time
    /// travel: [`SnapshotChoice::Id`], [`SnapshotChoice::AsOf`] a time).
    /// Filters prune partitions and files when the scan is planned.
    ///
    /// [`SnapshotChoice::Id`]: minispark_iceberg::SnapshotChoice::Id
    /// [`SnapshotChoice::AsOf`]: minispark_iceberg::SnapshotChoice::AsOf
    pub async fn read_iceberg(
        &self,
        path: &str,
        snapshot: minispark_iceberg::SnapshotChoice,
    ) -> Result<DataFrame> {
        let table = self.read_iceberg_table(path, snapshot).await?;
        Ok(self.wrap(self.inner.ctx.read_table(Arc::new(table))?))
    }

    async fn read_iceberg_table(
        &self,
        path: &str,
        snapshot: minispark_iceberg::SnapshotChoice,
    ) -> Result<minispark_iceberg::IcebergTable> {
        minispark_storage::sync_settings(&self.inner.ctx);
        let state = self.inner.ctx.state();
        let registry = Arc::clone(&state.runtime_env().object_store_registry);
        minispark_iceberg::IcebergTable::open(registry, path, snapshot).await
    }

    /// The Iceberg table at `location` for an append of rows of `schema`
    /// (`DataFrame::write_iceberg`): the table at its current snapshot,
    /// made first (`schema`'s columns, partitioned by `partition_by`) when
    /// the location has none. A table that is there and is partitioned
    /// otherwise than a non-empty `partition_by` says is an error.
    pub(crate) async fn iceberg_append_target(
        &self,
        location: &str,
        schema: &arrow::datatypes::Schema,
        partition_by: &[minispark_iceberg::partition_spec::PartitionField],
    ) -> Result<minispark_iceberg::IcebergTable> {
        use minispark_iceberg::partition_spec;
        minispark_storage::sync_settings(&self.inner.ctx);
        let state = self.inner.ctx.state();
        let registry = Arc::clone(&state.runtime_env().object_store_registry);
        let created =
            !minispark_iceberg::folder_catalog::has_table(Arc::clone(&registry), location).await?;
        if created {
            minispark_iceberg::folder_catalog::create_table(
                Arc::clone(&registry),
                location,
                schema,
                partition_by,
            )
            .await?;
        }
        let table = self
            .read_iceberg_table(location, minispark_iceberg::SnapshotChoice::Current)
            .await?;
        let metadata = table.metadata();
        let spec = metadata.default_partition_spec();
        if !created
            && !partition_by.is_empty()
            && !partition_spec::matches(spec, metadata.current_schema(), partition_by)
        {
            return plan_err!(
                "the Iceberg table at '{location}' is partitioned by {}, not by {}: its \
                 partitioning does not change on a write (append without naming it)",
                partition_spec::describe(spec, metadata.current_schema()),
                partition_by
                    .iter()
                    .map(|p| p.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(table)
    }

    /// The snapshots of the Iceberg table at `location`, one row each,
    /// oldest first, as Spark's `<table>.snapshots` metadata table lists
    /// them (`committed_at`, `snapshot_id`, `parent_id`, `operation`,
    /// `added_records`, `total_records`, `added_data_files`,
    /// `total_data_files`, `is_current`): the ids time travel takes.
    pub async fn iceberg_snapshots(&self, location: &str) -> Result<DataFrame> {
        let table = self
            .read_iceberg_table(location, minispark_iceberg::SnapshotChoice::Current)
            .await?;
        let batch = minispark_iceberg::snapshots::snapshots(table.metadata())?;
        let plan = values_of(&batch)?;
        Ok(self.wrap(self.inner.ctx.execute_logical_plan(plan).await?))
    }

    /// A Delta Lake table at its newest version (Spark's
    /// `spark.read.format("delta").load(path)`): the driver reads its log,
    /// the executors its Parquet files.
    pub async fn read_delta(&self, path: &str) -> Result<DataFrame> {
        self.read_delta_at(path, minispark_delta::TimeTravel::Latest)
            .await
    }

    /// A Delta Lake table at `version` (Spark's `versionAsOf`).
    pub async fn read_delta_version(&self, path: &str, version: u64) -> Result<DataFrame> {
        self.read_delta_at(path, minispark_delta::TimeTravel::Version(version))
            .await
    }

    /// A Delta Lake table at the newest version committed at or before
    /// `timestamp` (Spark's `timestampAsOf`), e.g. `2026-01-01T10:00:00Z`;
    /// a time without an offset is UTC.
    pub async fn read_delta_timestamp(&self, path: &str, timestamp: &str) -> Result<DataFrame> {
        let millis = minispark_delta::parse_timestamp(timestamp)?;
        self.read_delta_at(path, minispark_delta::TimeTravel::TimestampMillis(millis))
            .await
    }

    async fn read_delta_at(
        &self,
        path: &str,
        travel: minispark_delta::TimeTravel,
    ) -> Result<DataFrame> {
        minispark_storage::sync_settings(&self.inner.ctx);
        let state = self.inner.ctx.state();
        let table = minispark_delta::DeltaTable::open(&state, path, travel)
            .await
            .map_err(|e| e.context(format!("cannot read the Delta table at '{path}'")))?;
        Ok(self.wrap(self.inner.ctx.read_table(Arc::new(table))?))
    }

    /// The Delta table at `path` a DataFrame write goes to: the table at
    /// its newest version, or `None` when `path` holds no Delta table.
    pub(crate) async fn delta_table_for_write(
        &self,
        path: &str,
    ) -> Result<Option<minispark_delta::DeltaTable>> {
        minispark_storage::sync_settings(&self.inner.ctx);
        let state = self.inner.ctx.state();
        let url = datafusion::datasource::listing::ListingTableUrl::parse(path)?;
        let store = state.runtime_env().object_store(url.object_store())?;
        if !minispark_delta::log::table_exists(store.as_ref(), url.prefix(), path).await? {
            return Ok(None);
        }
        let table =
            minispark_delta::DeltaTable::open(&state, path, minispark_delta::TimeTravel::Latest)
                .await?;
        Ok(Some(table))
    }

    /// A Delta table a DataFrame write creates at `path`.
    pub(crate) fn new_delta_table(
        &self,
        path: &str,
        schema: &arrow::datatypes::Schema,
        partition_by: &[&str],
    ) -> Result<minispark_delta::DeltaTable> {
        minispark_delta::DeltaTable::to_create(
            &self.inner.ctx.state(),
            path,
            schema,
            partition_by.iter().map(|c| c.to_string()).collect(),
        )
    }

    /// Registers Parquet files as table `name`.
    pub async fn register_parquet(&self, name: &str, path: &str) -> Result<()> {
        self.register_files(name, path, FileKind::Parquet).await
    }

    /// Registers CSV files (with a header row) as table `name`.
    pub async fn register_csv(&self, name: &str, path: &str) -> Result<()> {
        self.register_files(name, path, FileKind::Csv).await
    }

    /// Registers newline-delimited JSON files as table `name`.
    pub async fn register_json(&self, name: &str, path: &str) -> Result<()> {
        self.register_files(name, path, FileKind::Json).await
    }

    async fn register_files(&self, name: &str, path: &str, kind: FileKind) -> Result<()> {
        let table = self
            .file_table(path, kind)
            .await
            .map_err(|e| e.context(format!("cannot register table {name}")))?;
        self.inner.ctx.register_table(name, table)?;
        Ok(())
    }

    /// A table over files, with partition columns inferred from the folder
    /// names, as `CREATE EXTERNAL TABLE` does.
    async fn file_table(&self, path: &str, kind: FileKind) -> Result<Arc<dyn TableProvider>> {
        minispark_storage::sync_settings(&self.inner.ctx);
        let read = async {
            let state = self.inner.ctx.state();
            let url = ListingTableUrl::parse(path)?;
            let config = state.config();
            let table_options = state.default_table_options();
            let options = match kind {
                FileKind::Parquet => {
                    ParquetReadOptions::default().to_listing_options(config, table_options)
                }
                FileKind::Csv => {
                    CsvReadOptions::default().to_listing_options(config, table_options)
                }
                FileKind::Json => {
                    JsonReadOptions::default().to_listing_options(config, table_options)
                }
            };
            let partitions = options.infer_partitions(&state, &url).await?;
            let options = options.with_table_partition_cols(
                partitions
                    .into_iter()
                    .map(|p| {
                        let utf8 = DataType::Dictionary(
                            Box::new(DataType::UInt16),
                            Box::new(DataType::Utf8),
                        );
                        (p, utf8)
                    })
                    .collect(),
            );
            let schema = options.infer_schema(&state, &url).await?;
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(schema);
            Ok::<_, DataFusionError>(
                Arc::new(ListingTable::try_new(config)?) as Arc<dyn TableProvider>
            )
        };
        read.await
            .map_err(|e| e.context(format!("cannot read {kind:?} files at '{path}'")))
    }

    /// Registers a DataFrame as view `name`, for later SQL.
    pub fn register_view(&self, name: &str, df: &DataFrame) -> Result<()> {
        let view = df.inner().clone().into_view();
        self.inner.ctx.register_table(name, view)?;
        Ok(())
    }

    fn wrap(&self, df: datafusion::dataframe::DataFrame) -> DataFrame {
        DataFrame::new(self.clone(), df)
    }

    /// Runs `plan` on the cluster and returns its whole result.
    pub(crate) async fn run(&self, plan: LogicalPlan, label: &str) -> Result<StatementOutput> {
        let output = self.run_on_backend(plan, label).await?;
        if output.counters.is_some() {
            *self.inner.last_job.lock().expect("last job lock") = output.counters;
        }
        Ok(output)
    }

    async fn run_on_backend(&self, plan: LogicalPlan, label: &str) -> Result<StatementOutput> {
        match &self.inner.backend {
            Backend::Embedded { job, .. } => {
                let result = job.execute_logical_plan(plan).await?;
                let counters = result.counters;
                let mut batches = vec![];
                let mut stream = result.stream;
                while let Some(batch) = stream.next().await {
                    batches.push(batch?);
                }
                Ok(StatementOutput {
                    index: 0,
                    sql: label.to_string(),
                    schema: result.schema,
                    batches,
                    counters,
                })
            }
            Backend::Remote { url, security } => {
                let settings = changed_settings(&self.inner.ctx);
                // datafusion-proto cannot serialize the outer references of a
                // correlated subquery (TPC-H q2, q4, q17...). DataFusion's
                // optimizer rewrites subqueries into joins, so a plan with one
                // travels optimized, with this session's settings (the same
                // the driver is sent); the driver's optimizer runs on it again.
                let plan = if has_subquery(&plan)? {
                    self.inner.ctx.state().optimize(&plan)?
                } else {
                    plan
                };
                run_plan_remote(url, security, &plan, label, settings).await
            }
        }
    }
}

/// Whether `plan` has a subquery expression anywhere (`EXISTS`, `IN
/// (SELECT ...)`, a scalar subquery).
fn has_subquery(plan: &LogicalPlan) -> Result<bool> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::Expr;
    plan.exists(|node| {
        Ok(node.expressions().iter().any(|e| {
            e.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ))
            })
            .unwrap_or(false)
        }) || matches!(node, LogicalPlan::Subquery(_)))
    })
}

/// `batch`'s rows as a `VALUES` plan (which, unlike an in-memory table,
/// travels to a remote driver), with `batch`'s column names and types.
fn values_of(batch: &arrow::array::RecordBatch) -> Result<LogicalPlan> {
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::{LogicalPlanBuilder, lit};
    let schema = Arc::new(DFSchema::try_from(batch.schema().as_ref().clone())?);
    if batch.num_rows() == 0 {
        return Ok(LogicalPlan::EmptyRelation(
            datafusion::logical_expr::EmptyRelation {
                produce_one_row: false,
                schema,
            },
        ));
    }
    let rows = (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row).map(lit))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    // VALUES names its columns column1, column2, ...
    let names = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| datafusion::logical_expr::col(format!("column{}", i + 1)).alias(f.name()))
        .collect::<Vec<_>>();
    LogicalPlanBuilder::values_with_schema(rows, &schema)?
        .project(names)?
        .build()
}
