//! Jobs: from a statement to results.
//!
//! A [`JobSession`] is one client's session on the driver: its tables, views
//! and settings. Each query it runs becomes a job:
//!
//! ```text
//! statement ─▶ LogicalPlan ─▶ physical plan (shuffle.partitions partitions)
//!           ─▶ StageGraph ─▶ scheduler::run_job_kept ─▶ result blocks ─▶ batches
//! ```
//!
//! The finished job's scheduler state lives as long as its result stream:
//! a result block that cannot be read has its task run again
//! (`crate::results::ResultReader`).
//!
//! DDL (`CREATE EXTERNAL TABLE`, `CREATE VIEW`, `DROP ...`) and `SET` only
//! change the session, on the driver.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use futures::StreamExt;
use futures::stream::BoxStream;
use minispark_planner::adaptive::AdaptiveConfig;
use minispark_planner::config::minispark_config;
use minispark_planner::explain::format_stage_graph;
use minispark_planner::hints::{apply_hints, sql_hints};
use minispark_planner::join_strategy::{broadcast_thresholds, describe_joins};
use minispark_planner::runtime_filter::plant_runtime_filters;
use minispark_planner::salting::{apply_skew_hints, skew_hints};
use minispark_planner::session::changed_settings;
use minispark_planner::skew::SkewRule;
use minispark_planner::stages::{StageGraph, plan_stages};
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::event_log::EventLog;
use crate::ids::{JobId, StageId};
use crate::job_counters::JobCounters;
use crate::scheduler::run_job_kept;
use crate::statement_errors::{strip_bom, syntax_error};
use crate::status_store::{StageInfo, StatusEvent, now_ms};
use crate::table_files::{
    check_created_table, find_unreadable_file, name_unreadable_file, parquet_tables,
};
use crate::unsupported::{check_stored_as, refuse_unsupported_plan, refuse_unsupported_statement};

/// The result of one statement: a schema and a stream of batches.
pub struct StatementResult {
    pub schema: SchemaRef,
    pub stream: BoxStream<'static, Result<RecordBatch>>,
    /// False for statements that only change the session (DDL, SET): they
    /// print nothing.
    pub returns_rows: bool,
    /// What the statement's job did; `None` for statements that ran no job
    /// (DDL, SET, EXPLAIN without ANALYZE).
    pub counters: Option<JobCounters>,
}

impl std::fmt::Debug for StatementResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementResult")
            .field("schema", &self.schema)
            .field("returns_rows", &self.returns_rows)
            .field("counters", &self.counters)
            .finish()
    }
}

/// One client's session on a driver.
#[derive(Clone)]
pub struct JobSession {
    cluster: Arc<Cluster>,
    ctx: SessionContext,
    /// The counters of the last job any clone of this session ran.
    last_job: Arc<Mutex<Option<JobCounters>>>,
    /// Warnings for the user not yet shown (an empty file read as no rows).
    warnings: Arc<Mutex<Vec<String>>>,
    /// The text of the statement being run, for the UI's jobs.
    statement: Arc<Mutex<Option<String>>>,
    /// The jobs this session (or a clone of it) started: whose progress
    /// `submit` shows.
    started_jobs: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for JobSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSession").finish_non_exhaustive()
    }
}

/// Splits a job script into statements. A syntax error names line and
/// column. A UTF-8 byte-order mark is dropped; statements may nest up to
/// [`crate::deep_work::MAX_PLAN_DEPTH`] levels (parse deep ones on a deep
/// stack: see [`crate::deep_work::parse_checked`]).
pub fn parse_script(script: &str) -> Result<Vec<DFStatement>> {
    let limit = crate::deep_work::MAX_PLAN_DEPTH;
    let statements = DFParserBuilder::new(strip_bom(script))
        .with_recursion_limit(limit)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| time_travel_hint(syntax_error(e, limit), script))?;
    Ok(statements.into_iter().collect())
}

/// A syntax error of Spark's time travel clause (`FROM t VERSION AS OF 3`,
/// which DataFusion's dialect has no place for), with the spelling that
/// works.
fn time_travel_hint(err: DataFusionError, script: &str) -> DataFusionError {
    let words = script.split_whitespace().collect::<Vec<_>>().join(" ");
    let words = words.to_uppercase();
    if !(words.contains("VERSION AS OF") || words.contains("TIMESTAMP AS OF")) {
        return err;
    }
    DataFusionError::Plan(format!(
        "{err}; `VERSION AS OF` / `TIMESTAMP AS OF` are not SQL minispark parses: read a \
         Delta table's past version with a table created at it, CREATE EXTERNAL TABLE t_v3 \
         STORED AS DELTA LOCATION '...' OPTIONS ('version' '3') (or 'timestamp' \
         '2026-01-01T00:00:00Z')"
    ))
}

impl JobSession {
    pub fn new(cluster: Arc<Cluster>, settings: &HashMap<String, String>) -> Result<Self> {
        for (key, value) in settings {
            minispark_planner::config::check_datafusion_bound(key, value)?;
        }
        Ok(Self {
            cluster,
            ctx: minispark_storage::session_context(settings)?,
            last_job: Arc::default(),
            warnings: Arc::default(),
            statement: Arc::default(),
            started_jobs: Arc::default(),
        })
    }

    /// The ids of the jobs this session (or a clone of it) started, oldest
    /// first.
    pub fn started_jobs(&self) -> Vec<String> {
        self.started_jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The warnings of the statements run since the last call: what was
    /// ignored and why, for the user's stderr.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("warnings lock"))
    }

    /// The counters of the last job this session (or a clone of it) ran,
    /// whether it succeeded or failed: retries, lost executors, recomputed
    /// map outputs, adaptive and salting decisions. A salting sampling pass
    /// is a job of its own, run before the query's job.
    pub fn last_job_counters(&self) -> Option<JobCounters> {
        *self.last_job.lock().expect("last job lock")
    }

    /// The DataFusion context holding this session's catalog and settings.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Partitions of every shuffle: `minispark.shuffle.partitions`, or the
    /// cluster's total slots when it is 0.
    pub(crate) fn shuffle_partitions(&self) -> usize {
        let configured = minispark_config(self.ctx.state().config().options()).shuffle_partitions;
        if configured > 0 {
            configured
        } else {
            // Many executors of many slots still make a bounded count.
            self.cluster
                .size()
                .1
                .clamp(1, minispark_proto::limits::MAX_SHUFFLE_PARTITIONS)
        }
    }

    /// When a shuffle partition counts as skewed, by this session's settings.
    fn skew_rule(&self) -> SkewRule {
        SkewRule::from_config(&minispark_config(self.ctx.state().config().options()))
    }

    /// Runs one parsed statement.
    pub async fn execute_statement(&self, statement: DFStatement) -> Result<StatementResult> {
        self.set_statement(statement.to_string());
        let plan = plan_statement(&self.ctx, statement).await;
        let result = match plan {
            Ok(plan) => self.execute_logical_plan(plan).await,
            Err(e) => Err(e),
        };
        *self.statement.lock().expect("statement lock") = None;
        result
    }

    /// Names the jobs this session runs next in the UI (the statement's
    /// text; a DataFrame's jobs are named by their logical plan).
    pub fn set_statement(&self, text: String) {
        *self.statement.lock().expect("statement lock") = Some(text);
    }

    /// Runs a logical plan: session changes locally, queries on the cluster.
    pub async fn execute_logical_plan(&self, plan: LogicalPlan) -> Result<StatementResult> {
        reject_driver_side_queries(&plan)?;
        refuse_unsupported_plan(&plan)?;
        // Object stores follow the settings as they are now (after any SET).
        minispark_storage::sync_settings(&self.ctx);
        match plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                let context = format!(
                    "cannot create table {} from '{}'",
                    cmd.name,
                    cmd.locations.join("', '")
                );
                let state = self.ctx.state();
                let plan = LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd.clone()));
                if let Err(e) = self.ctx.execute_logical_plan(plan).await {
                    // Name the file at fault when one is.
                    let e = find_unreadable_file(&state, &cmd).await.unwrap_or(e);
                    return Err(e.context(context));
                }
                match check_created_table(&state, &cmd).await {
                    Ok(warnings) => self
                        .warnings
                        .lock()
                        .expect("warnings lock")
                        .extend(warnings),
                    Err(e) => {
                        // The table is not left half made.
                        let _ = self.ctx.deregister_table(cmd.name.clone());
                        return Err(e.context(context));
                    }
                }
                Ok(StatementResult {
                    schema: Arc::new(Schema::empty()),
                    stream: futures::stream::empty().boxed(),
                    returns_rows: false,
                    counters: None,
                })
            }
            LogicalPlan::Statement(datafusion::logical_expr::Statement::SetVariable(set)) => {
                let (variable, value) = (set.variable.clone(), set.value.clone());
                minispark_planner::config::check_datafusion_bound(&variable, &value)?;
                let plan =
                    LogicalPlan::Statement(datafusion::logical_expr::Statement::SetVariable(set));
                self.ctx
                    .execute_logical_plan(plan)
                    .await
                    .map_err(|e| setting_error(e, &variable))?;
                Ok(StatementResult {
                    schema: Arc::new(Schema::empty()),
                    stream: futures::stream::empty().boxed(),
                    returns_rows: false,
                    counters: None,
                })
            }
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => {
                self.ctx.execute_logical_plan(plan).await?;
                Ok(StatementResult {
                    schema: Arc::new(Schema::empty()),
                    stream: futures::stream::empty().boxed(),
                    returns_rows: false,
                    counters: None,
                })
            }
            LogicalPlan::Explain(explain) => {
                let graph = self.plan_stages(explain.plan.as_ref().clone()).await?;
                text_result(
                    "plan",
                    format_stage_graph(&graph, None, &self.skew_rule()),
                    None,
                )
            }
            LogicalPlan::Analyze(analyze) => {
                let graph = self.plan_stages(analyze.input.as_ref().clone()).await?;
                let mut job = self.run_graph(&graph).await?;
                // Read and drop the result, so the measurement includes it.
                let stream = std::mem::replace(&mut job.stream, futures::stream::empty().boxed());
                let mut rows = 0;
                if let Some(write) = crate::write::write_of(&graph) {
                    // A write is committed as when it runs without ANALYZE
                    // (DataFusion's EXPLAIN ANALYZE COPY writes too).
                    let write_job = crate::write::WriteJob::of(write, &self.ctx)?;
                    let committer = crate::write::committer_for(write);
                    let batches = stream.collect::<Vec<_>>();
                    let read = async { batches.await.into_iter().collect::<Result<Vec<_>>>() };
                    let (written, _) =
                        crate::write::job_committer::run_write(write_job, committer, read).await?;
                    rows = written as usize;
                } else {
                    let mut stream = stream;
                    while let Some(batch) = stream.next().await {
                        rows += batch?.num_rows();
                    }
                }
                let mut text = format_stage_graph(&graph, Some(&job.metrics), &self.skew_rule());
                text.push_str(&format!(
                    "Result: {rows} rows in {:.3}s\n",
                    job.elapsed.as_secs_f64()
                ));
                text.push_str(&format!("{}\n", job.counters));
                text_result("plan", text, Some(job.counters))
            }
            plan => {
                if self.statement.lock().expect("statement lock").is_none() {
                    self.set_statement(plan.display_indent().to_string());
                }
                let tables = parquet_tables(&plan);
                let job = async {
                    let graph = self.plan_stages(plan).await?;
                    if crate::write::write_of(&graph).is_some() {
                        return Ok(Err(self.run_write(&graph).await?));
                    }
                    let job = self.run_graph(&graph).await?;
                    Ok(Ok((graph, job)))
                };
                let (graph, job) = match job.await {
                    Ok(Ok(done)) => done,
                    // A distributed write, committed: its row count.
                    Ok(Err(written)) => return Ok(written),
                    Err(e) => {
                        return Err(name_unreadable_file(&self.ctx.state(), &tables, e).await);
                    }
                };
                Ok(StatementResult {
                    schema: graph.final_stage().writer().input().schema(),
                    stream: job.stream,
                    returns_rows: true,
                    counters: Some(job.counters),
                })
            }
        }
    }

    /// Runs a distributed write (`COPY ... TO`, `INSERT INTO`): the job,
    /// then its commit, once, on the driver ([`crate::write::run_write`]).
    /// Returns the rows written, as DataFusion's `count` column.
    async fn run_write(&self, graph: &StageGraph) -> Result<StatementResult> {
        let Some(write) = crate::write::write_of(graph) else {
            return plan_err!("not a write");
        };
        let write_job = crate::write::WriteJob::of(write, &self.ctx)?;
        let committer = crate::write::committer_for(write);
        let counters = Arc::new(Mutex::new(None));
        let job_counters = Arc::clone(&counters);
        let run = async move {
            let job = self.run_graph(graph).await?;
            *job_counters.lock().expect("counters lock") = Some(job.counters);
            let mut stream = job.stream;
            let mut batches = vec![];
            while let Some(batch) = stream.next().await {
                batches.push(batch?);
            }
            Ok(batches)
        };
        let (rows, _summary) =
            crate::write::job_committer::run_write(write_job, committer, run).await?;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(arrow::array::UInt64Array::from(vec![rows]))],
        )?;
        let counters = *counters.lock().expect("counters lock");
        Ok(StatementResult {
            schema,
            stream: futures::stream::iter(vec![Ok(batch)]).boxed(),
            returns_rows: true,
            counters,
        })
    }

    /// Optimizes and plans `plan` for the cluster, and cuts it into stages.
    /// Skewed joins are salted first (see [`crate::salting`]).
    pub async fn plan_stages(&self, plan: LogicalPlan) -> Result<StageGraph> {
        self.configure_planner();
        let (plan, salting, salted_sites) = self.salt(plan).await?;
        let mut graph = self.plan_stages_unsalted(plan).await?;
        graph.join_strategies.extend(salting);
        graph.salted_sites = salted_sites;
        Ok(graph)
    }

    /// [`Self::plan_stages`] without salting: for the sampling pass itself.
    pub(crate) async fn plan_stages_unsalted(&self, plan: LogicalPlan) -> Result<StageGraph> {
        self.configure_planner();
        let (physical, join_strategies) = self.physical_plan(plan).await?;
        // REPARTITION_BY_RANGE: bounds from a sampling job (crate::range_bounds).
        let physical = self.sample_range_bounds(physical).await?;
        // A write to a folder runs in the tasks of the result stage, each
        // writing its own files (see crate::write).
        let physical = minispark_planner::write::distribute_write(physical)?;
        let mut graph = plan_stages(physical, self.shuffle_partitions())?;
        graph.join_strategies = join_strategies;
        // -1 (off) plants none.
        let threshold = minispark_config(self.ctx.state().config().options())
            .runtime_filter_creation_side_threshold;
        plant_runtime_filters(&mut graph, u64::try_from(threshold).ok())?;
        Ok(graph)
    }

    /// Sets DataFusion's planner options from minispark's settings.
    fn configure_planner(&self) {
        let partitions = self.shuffle_partitions();
        let threshold =
            minispark_config(self.ctx.state().config().options()).auto_broadcast_join_threshold;
        {
            let state = self.ctx.state_ref();
            let mut state = state.write();
            let options = state.config_mut().options_mut();
            options.execution.target_partitions = partitions;
            // DataFusion's join selection broadcasts (collects) a side under
            // both thresholds: minispark.sql.autoBroadcastJoinThreshold sets them.
            let (bytes, rows) = broadcast_thresholds(threshold, DATAFUSION_DEFAULT_ROWS);
            options.optimizer.hash_join_single_partition_threshold = bytes;
            options.optimizer.hash_join_single_partition_threshold_rows = rows;
        }
    }

    /// The optimized physical plan, and which strategy each join got and why.
    async fn physical_plan(
        &self,
        plan: LogicalPlan,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<String>)> {
        let threshold =
            minispark_config(self.ctx.state().config().options()).auto_broadcast_join_threshold;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let physical = df.create_physical_plan().await?;
        let joins = describe_joins(&physical, threshold);
        // The stage cutter removes the hints.
        Ok((physical, joins))
    }

    /// Runs a stage graph as one job; the result streams from the executors.
    pub async fn run_graph(&self, graph: &StageGraph) -> Result<JobRun> {
        if self.cluster.size().0 == 0 {
            return plan_err!(
                "no executors are registered with the driver: start at least one executor"
            );
        }
        let job_id = JobId::random();
        self.started_jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job_id.to_string());
        let settings = changed_settings(&self.ctx);
        let max_failures =
            minispark_config(self.ctx.state().config().options()).task_max_failures as u32;
        let cleanup = JobCleanup {
            cluster: Arc::clone(&self.cluster),
            job_id: job_id.clone(),
        };
        let start = Instant::now();
        let config = minispark_config(self.ctx.state().config().options());
        let adaptive = config.adaptive_enabled.then(|| AdaptiveConfig {
            advisory_bytes: config.advisory_partition_bytes,
            min_tasks: self.cluster.size().1.max(1),
            skew: SkewRule::from_config(&config),
            // -1 (off) is no threshold.
            broadcast_threshold: u64::try_from(config.auto_broadcast_join_threshold).ok(),
            task_memory: self.cluster.task_memory(),
        });
        let counters = JobCounters {
            salted_sites: graph.salted_sites as u64,
            ..Default::default()
        };
        let status = &self.cluster.status;
        if !config.event_log_dir.is_empty() {
            match EventLog::create(Path::new(&config.event_log_dir), job_id.as_str()) {
                Ok(log) => status.log_job(job_id.as_str(), log),
                Err(e) => warn!(
                    %job_id,
                    dir = config.event_log_dir,
                    error = %e,
                    "cannot create the job's event log (minispark.eventLog.dir): the job runs without one"
                ),
            }
        }
        let skew = SkewRule::from_config(&config);
        status.record(StatusEvent::JobStart {
            job_id: job_id.to_string(),
            time_ms: now_ms(),
            statement: self
                .statement
                .lock()
                .expect("statement lock")
                .clone()
                .unwrap_or_else(|| "(a stage graph run directly)".into()),
            plan: format_stage_graph(graph, None, &skew),
            stages: StageInfo::from_graph(graph),
            skew_factor: skew.factor,
            skew_threshold_bytes: skew.threshold_bytes,
        });
        let (output, finished) = run_job_kept(
            Arc::clone(&self.cluster),
            job_id.clone(),
            Arc::new(graph.clone()),
            settings,
            max_failures,
            adaptive,
            counters,
        )
        .await;
        let counters = finished.counters();
        *self.last_job.lock().expect("last job lock") = Some(counters);
        let output = output.and_then(|output| {
            crate::results::check_result_size(&output.result, config.max_result_size)?;
            Ok(output)
        });
        status.record(StatusEvent::JobEnd {
            job_id: job_id.to_string(),
            time_ms: now_ms(),
            error: output.as_ref().err().map(|e| e.to_string()),
            counters: counters.to_string(),
            recomputed_map_outputs: counters.recomputed_map_outputs,
        });
        let output = output?;
        let elapsed = start.elapsed();
        let final_stage = graph.final_stage();
        // Result blocks that cannot be read (their executor died since)
        // have their tasks run again by the finished job.
        let stream = crate::results::ResultReader {
            job: finished,
            job_id: job_id.clone(),
            stage_id: StageId(final_stage.id),
            security: self.cluster.security.clone(),
            fetch: minispark_planner::exchange::FetchSettings::from_config(&config),
            max_recomputes: max_failures,
            last_job: Arc::clone(&self.last_job),
        }
        .read(output.result);
        // Files are removed once the result has been read (or dropped).
        let stream =
            futures::stream::unfold((stream, Some(cleanup)), |(mut s, mut cleanup)| async move {
                match s.next().await {
                    Some(item) => Some((item, (s, cleanup))),
                    None => {
                        cleanup.take();
                        None
                    }
                }
            })
            .boxed();
        info!(
            %job_id,
            elapsed_ms = elapsed.as_millis() as u64,
            "job complete"
        );
        Ok(JobRun {
            stream,
            metrics: output.metrics,
            elapsed,
            counters,
        })
    }
}

/// DataFusion's default `hash_join_single_partition_threshold_rows`: a side
/// whose byte size is unknown but row count is below it is broadcast.
pub(crate) const DATAFUSION_DEFAULT_ROWS: usize = 128 * 1024;

/// A statement's logical plan, with its SQL hints (`/*+ BROADCAST(t) */`,
/// `/*+ SKEW('t', 'col') */`) applied.
pub async fn plan_statement(ctx: &SessionContext, statement: DFStatement) -> Result<LogicalPlan> {
    refuse_unsupported_statement(&statement)?;
    check_stored_as(&statement, &ctx.state())?;
    let mut statement = show_setting_in_any_case(ctx, statement);
    // DISTRIBUTE BY / SORT BY / CLUSTER BY and the repartition hints.
    let sorts_within_partitions =
        minispark_planner::repartition::clauses::rewrite_statement(&mut statement)?;
    let hints = sql_hints(&statement)?;
    let skew = skew_hints(&statement)?;
    let mut state = ctx.state();
    if sorts_within_partitions {
        // A SORT BY in a subquery is an ORDER BY without LIMIT to
        // DataFusion, which would drop it.
        state
            .config_mut()
            .options_mut()
            .sql_parser
            .enable_subquery_sort_elimination = false;
    }
    let plan = state.statement_to_plan(statement).await?;
    // `SELECT a FROM t DISTRIBUTE BY b`: b kept below the repartition.
    let plan = minispark_planner::repartition::dropped_keys::keep_distribute_keys(plan)?;
    apply_skew_hints(apply_hints(plan, &hints)?, &skew)
}

/// A `SET` that failed, with the setting named; Spark's names get a hint.
fn setting_error(e: DataFusionError, variable: &str) -> DataFusionError {
    let hint = if variable.starts_with("spark.") {
        " (Spark's settings are spelled minispark.* here; `minispark settings` lists them)"
    } else {
        ""
    };
    e.context(format!("cannot SET {variable}{hint}"))
}

/// `SHOW <setting>` names a setting in any case, as `SET` does. DataFusion
/// lowercases an unquoted name before it looks it up, and minispark's
/// settings are spelled as Spark's (`minispark.sql.autoBroadcastJoinThreshold`):
/// a name that matches a setting but for case is rewritten as that
/// setting's name, quoted.
fn show_setting_in_any_case(ctx: &SessionContext, statement: DFStatement) -> DFStatement {
    use datafusion::sql::sqlparser::ast::{Ident, Statement};
    let DFStatement::Statement(inner) = &statement else {
        return statement;
    };
    let Statement::ShowVariable { variable } = inner.as_ref() else {
        return statement;
    };
    let verbose = variable
        .last()
        .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("verbose"));
    let parts = &variable[..variable.len() - usize::from(verbose)];
    let name: Vec<&str> = parts.iter().map(|i| i.value.as_str()).collect();
    let name = name.join(".");
    let entries = ctx.state().config().options().entries();
    let Some(key) = entries
        .into_iter()
        .map(|e| e.key)
        .find(|k| k.eq_ignore_ascii_case(&name) && *k != name.to_lowercase())
    else {
        return statement;
    };
    let mut variable: Vec<Ident> = key.split('.').map(|p| Ident::with_quote('"', p)).collect();
    if verbose {
        variable.push(Ident::new("verbose"));
    }
    DFStatement::Statement(Box::new(Statement::ShowVariable { variable }))
}

/// Fails for statements DataFusion would run on the driver alone, outside
/// the cluster: `CREATE TABLE ... AS SELECT` over tables (its result would
/// also live in the driver's memory and travel inside every later plan).
pub fn reject_driver_side_queries(plan: &LogicalPlan) -> Result<()> {
    if let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) = plan {
        let reads_tables = cmd
            .input
            .exists(|p| Ok(matches!(p, LogicalPlan::TableScan(_))))?;
        if reads_tables {
            return plan_err!(
                "CREATE TABLE {} AS SELECT is not supported: it would run on the driver alone. \
                 Write the result with COPY (SELECT ...) TO 'path' STORED AS PARQUET and \
                 CREATE EXTERNAL TABLE over it, or use CREATE VIEW",
                cmd.name
            );
        }
    }
    Ok(())
}

/// A finished job whose result is ready to stream.
pub struct JobRun {
    pub stream: BoxStream<'static, Result<RecordBatch>>,
    pub metrics: Vec<minispark_planner::explain::StageMetrics>,
    pub elapsed: std::time::Duration,
    pub counters: JobCounters,
}

/// Cancels a job's tasks and removes its files on every executor when dropped:
/// after success, failure or cancellation alike.
struct JobCleanup {
    cluster: Arc<Cluster>,
    job_id: JobId,
}

impl Drop for JobCleanup {
    fn drop(&mut self) {
        let executors = self.cluster.executors();
        let job_id = self.job_id.to_string();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            for e in executors {
                let mut client = e.client.clone();
                let job = minispark_proto::JobRef {
                    job_id: job_id.clone(),
                };
                let _ = client.cancel_job(job.clone()).await;
                let _ = client.remove_job_data(job).await;
            }
        });
    }
}

fn text_result(
    column: &str,
    text: String,
    counters: Option<JobCounters>,
) -> Result<StatementResult> {
    let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![text]))],
    )
    .map_err(DataFusionError::from)?;
    Ok(StatementResult {
        schema,
        stream: futures::stream::iter(vec![Ok(batch)]).boxed(),
        returns_rows: true,
        counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn show(sql: &str) -> Result<String> {
        let ctx = minispark_planner::session::session_context(&HashMap::new())?;
        let statement = parse_script(sql)?.remove(0);
        let plan = plan_statement(&ctx, statement).await?;
        Ok(plan.display_indent().to_string())
    }

    #[tokio::test]
    async fn show_finds_a_setting_in_any_case() {
        for sql in [
            "SHOW minispark.sql.autoBroadcastJoinThreshold",
            "SHOW MINISPARK.SQL.AUTOBROADCASTJOINTHRESHOLD",
            "SHOW minispark.sql.autoBroadcastJoinThreshold VERBOSE",
            "SHOW minispark.s3.secretAccessKey",
        ] {
            let plan = show(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(plan.contains("df_settings"), "{sql}: {plan}");
        }
        let plan = show("SHOW minispark.sql.autoBroadcastJoinThreshold")
            .await
            .unwrap();
        assert!(
            plan.contains("minispark.sql.autoBroadcastJoinThreshold"),
            "{plan}"
        );
        // Lower-case DataFusion names are left as they are; unknown names
        // are still refused by DataFusion.
        assert!(show("SHOW datafusion.execution.batch_size").await.is_ok());
        let err = show("SHOW minispark.no.such.setting").await.unwrap_err();
        assert!(err.to_string().contains("not a variable"), "{err}");
    }
}
