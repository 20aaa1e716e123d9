//! [`DataFrame`]: a lazy query on a [`Session`]'s cluster.
//!
//! Transformations (`select`, `filter`, `join`, `aggregate`, ...) only build
//! a DataFusion logical plan, with DataFusion's own `DataFrame` methods that
//! many users already know. Actions (`collect`, `show`, `count`,
//! `write_parquet`, `explain`) send the plan to the driver, which cuts it
//! into stages and runs them on the executors: nothing is computed in the
//! calling process.

use std::collections::HashMap;
use std::fmt;

use arrow::array::{Int64Array, RecordBatch};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue, plan_err};
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, SortExpr};
use datafusion::prelude::lit;

use minispark_driver::job_counters::JobCounters;
use minispark_planner::hints::{HintNode, JoinHint};
use minispark_planner::salting::{SkewHint, SkewNode};

use crate::save_mode::SaveMode;
use crate::session::Session;

/// How [`DataFrame::join_with`] runs a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinStrategy {
    /// Broadcast a side estimated below
    /// `minispark.sql.autoBroadcastJoinThreshold`, shuffle otherwise.
    Auto,
    /// Collect the right side once and send it to every task of the left.
    Broadcast,
    /// Shuffle both sides by the join keys.
    Shuffle,
    /// Sort-merge join: shuffle both sides by the join keys, sort each
    /// partition by them, then merge the two sorted streams. What Spark does
    /// by default for large joins; it uses little memory because no hash
    /// table is built (the sorts spill to disk when they must).
    Merge,
}

/// A lazy query: a logical plan and the session it runs on.
///
/// ```no_run
/// # async fn example() -> datafusion::common::Result<()> {
/// use minispark::prelude::*;
///
/// let session = Session::builder().master("local[2]").build().await?;
/// let events = session.table("netflix.tiny.viewing_events").await?;
/// let titles = session.table("netflix.tiny.titles").await?;
/// let top = events
///     .join(titles, JoinType::Inner, &["title_id"], &["title_id"], None)?
///     .aggregate(vec![col("title")], vec![sum(col("watched_minutes")).alias("minutes")])?
///     .sort(vec![col("minutes").sort(false, true)])?
///     .limit(0, Some(10))?;
/// println!("{}", top.explain().await?); // the stages and their shuffles
/// top.show().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DataFrame {
    session: Session,
    df: datafusion::dataframe::DataFrame,
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame")
            .field("schema", self.df.schema())
            .finish_non_exhaustive()
    }
}

/// Wraps a DataFusion transformation so it keeps the session.
macro_rules! transform {
    ($self:ident, $df:ident => $body:expr) => {{
        let session = $self.session;
        let $df = $self.df;
        Ok(DataFrame {
            session,
            df: $body?,
        })
    }};
}

impl DataFrame {
    pub(crate) fn new(session: Session, df: datafusion::dataframe::DataFrame) -> Self {
        Self { session, df }
    }

    /// The DataFusion DataFrame underneath (its plan, its schema).
    pub fn inner(&self) -> &datafusion::dataframe::DataFrame {
        &self.df
    }

    /// The result's schema.
    pub fn schema(&self) -> &DFSchema {
        self.df.schema()
    }

    /// The logical plan, before optimization.
    pub fn logical_plan(&self) -> &LogicalPlan {
        self.df.logical_plan()
    }

    // ---------------------------------------------------------------
    // Transformations: build the plan, run nothing.
    // ---------------------------------------------------------------

    /// Keeps these expressions as columns (`col("a")`, `(col("b") * lit(2)).alias("b2")`).
    pub fn select(self, exprs: Vec<Expr>) -> Result<Self> {
        transform!(self, df => df.select(exprs))
    }

    /// Keeps these columns.
    pub fn select_columns(self, columns: &[&str]) -> Result<Self> {
        transform!(self, df => df.select_columns(columns))
    }

    /// Keeps the rows where `predicate` is true.
    pub fn filter(self, predicate: Expr) -> Result<Self> {
        transform!(self, df => df.filter(predicate))
    }

    /// Adds (or replaces) column `name`.
    pub fn with_column(self, name: &str, expr: Expr) -> Result<Self> {
        transform!(self, df => df.with_column(name, expr))
    }

    /// Renames column `old` to `new`.
    pub fn with_column_renamed(self, old: &str, new: &str) -> Result<Self> {
        transform!(self, df => df.with_column_renamed(old, new))
    }

    /// Drops these columns.
    pub fn drop_columns(self, columns: &[&str]) -> Result<Self> {
        transform!(self, df => df.drop_columns(columns))
    }

    /// Joins on equal key columns, with an optional extra condition. Where
    /// both sides are large, both are shuffled by the keys; a small side is
    /// broadcast to every task of the other.
    pub fn join(
        self,
        right: DataFrame,
        join_type: JoinType,
        left_cols: &[&str],
        right_cols: &[&str],
        filter: Option<Expr>,
    ) -> Result<Self> {
        transform!(self, df => df.join(right.df, join_type, left_cols, right_cols, filter))
    }

    /// [`join`](Self::join) with a strategy: broadcast `right` to every
    /// task of `self`, or shuffle both sides by the keys (then hash-join or
    /// sort-merge-join them), whatever their estimated sizes. Where broadcasting `right` would be wrong (it is the
    /// preserved side of an outer join), the join is shuffled instead: a
    /// strategy never changes the answer.
    ///
    /// ```no_run
    /// # async fn example(session: minispark::Session) -> datafusion::common::Result<()> {
    /// use minispark::prelude::*;
    /// let events = session.table("netflix.small.viewing_events").await?;
    /// let titles = session.table("netflix.small.titles").await?;
    /// let joined = events.join_with(
    ///     titles,
    ///     JoinType::Inner,
    ///     &["title_id"],
    ///     &["title_id"],
    ///     None,
    ///     JoinStrategy::Broadcast,
    /// )?;
    /// println!("{}", joined.explain().await?); // titles: a broadcast stage
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn join_with(
        self,
        right: DataFrame,
        join_type: JoinType,
        left_cols: &[&str],
        right_cols: &[&str],
        filter: Option<Expr>,
        strategy: JoinStrategy,
    ) -> Result<Self> {
        let (left, right) = match strategy {
            JoinStrategy::Auto => (self, right),
            JoinStrategy::Broadcast => (self, right.hint(JoinHint::Broadcast)?),
            JoinStrategy::Shuffle => (
                self.hint(JoinHint::Shuffle)?,
                right.hint(JoinHint::Shuffle)?,
            ),
            JoinStrategy::Merge => (self.hint(JoinHint::Merge)?, right.hint(JoinHint::Merge)?),
        };
        left.join(right, join_type, left_cols, right_cols, filter)
    }

    /// Marks this DataFrame to be broadcast by the join it goes into, as
    /// Spark's `broadcast(df)`: `big.join(small.broadcast()?, ...)`.
    pub fn broadcast(self) -> Result<Self> {
        self.hint(JoinHint::Broadcast)
    }

    /// Marks this DataFrame as skewed on `column`, as the SQL hint
    /// `/*+ SKEW('t', 'column') */` does: the joins it goes into on that
    /// column, and the GROUP BYs over it by that column, salt its hot keys.
    /// A sampling pass on the cluster finds them; [`DataFrame::skewed_at`]
    /// names them instead.
    ///
    /// ```no_run
    /// # async fn example(session: minispark::Session) -> datafusion::common::Result<()> {
    /// use minispark::prelude::*;
    ///
    /// let events = session.table("netflix.small.viewing_events").await?;
    /// let titles = session.table("netflix.small.titles").await?;
    /// let per_kind = events
    ///     .skewed("title_id")?
    ///     .join_with(titles, JoinType::Inner, &["title_id"], &["title_id"], None, JoinStrategy::Shuffle)?
    ///     .aggregate(vec![col("kind")], vec![count(lit(1)).alias("views")])?;
    /// println!("{}", per_kind.explain().await?); // "salting: join ...: salted hot keys ..."
    /// # Ok(())
    /// # }
    /// ```
    pub fn skewed(self, column: &str) -> Result<Self> {
        self.skewed_at(column, Vec::<ScalarValue>::new())
    }

    /// [`DataFrame::skewed`] at known hot values of `column`: no sampling
    /// pass; each is salted over every shuffle partition (or
    /// `minispark.skew.saltBuckets`).
    pub fn skewed_at(
        self,
        column: &str,
        values: impl IntoIterator<Item = impl Into<ScalarValue>>,
    ) -> Result<Self> {
        if self
            .df
            .schema()
            .field_with_unqualified_name(column)
            .is_err()
        {
            let columns: Vec<String> = self
                .df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().to_string())
                .collect();
            return plan_err!(
                "skewed('{column}'): no column {column}; columns: {}",
                columns.join(", ")
            );
        }
        let hint = SkewHint {
            relation: String::new(),
            column: column.to_string(),
            values: values.into_iter().map(|v| v.into().to_string()).collect(),
        };
        let (state, plan) = self.df.into_parts();
        let df = datafusion::dataframe::DataFrame::new(state, SkewNode::wrap(plan, hint));
        Ok(Self {
            session: self.session,
            df,
        })
    }

    fn hint(self, hint: JoinHint) -> Result<Self> {
        let (state, plan) = self.df.into_parts();
        let df = datafusion::dataframe::DataFrame::new(state, HintNode::wrap(plan, hint));
        Ok(Self {
            session: self.session,
            df,
        })
    }

    /// Joins on arbitrary conditions (`col("a.k").eq(col("b.k"))`, ...).
    pub fn join_on(
        self,
        right: DataFrame,
        join_type: JoinType,
        on: impl IntoIterator<Item = Expr>,
    ) -> Result<Self> {
        transform!(self, df => df.join_on(right.df, join_type, on))
    }

    /// Groups by `group` and computes `aggregates` (`sum(col("x"))`, ...).
    pub fn aggregate(self, group: Vec<Expr>, aggregates: Vec<Expr>) -> Result<Self> {
        transform!(self, df => df.aggregate(group, aggregates))
    }

    /// Adds window-function columns (`row_number().partition_by(..).order_by(..).build()`).
    pub fn window(self, window_exprs: Vec<Expr>) -> Result<Self> {
        transform!(self, df => df.window(window_exprs))
    }

    /// Sorts by these keys (`col("x").sort(ascending, nulls_first)`).
    pub fn sort(self, keys: Vec<SortExpr>) -> Result<Self> {
        transform!(self, df => df.sort(keys))
    }

    /// Spreads the rows evenly over `n` partitions, row by row (Spark's
    /// `repartition(n)`): a round-robin shuffle of its own, a stage
    /// boundary in EXPLAIN.
    pub fn repartition(self, n: usize) -> Result<Self> {
        if n == 0 {
            return plan_err!("repartition(n) needs at least one partition");
        }
        transform!(self, df => df.repartition(datafusion::logical_expr::Partitioning::RoundRobinBatch(n)))
    }

    /// Hash-partitions the rows by `exprs` into `n` partitions, as Spark's
    /// `repartition(n, cols)`: a row goes to `pmod(hash(exprs), n)` with
    /// Spark's Murmur3, so every key lands in the partition Spark picks.
    pub fn repartition_by(self, n: usize, exprs: Vec<Expr>) -> Result<Self> {
        if n == 0 || exprs.is_empty() {
            return plan_err!(
                "repartition_by(n, exprs) needs at least one partition and one expression"
            );
        }
        transform!(self, df => df.repartition(datafusion::logical_expr::Partitioning::Hash(exprs, n)))
    }

    /// Range-partitions the rows by `keys` into at most `n` partitions, as
    /// Spark's `repartitionByRange(n, cols)`: bounds between partitions are
    /// sampled from the data first (a job of its own), then each row goes
    /// to the partition whose key range holds it; partition 0 holds the
    /// first keys in the order `keys` say (`col("k").sort(asc, nulls_first)`).
    pub fn repartition_by_range(self, n: usize, keys: Vec<SortExpr>) -> Result<Self> {
        if n == 0 || keys.is_empty() {
            return plan_err!(
                "repartition_by_range(n, sort_exprs) needs at least one partition and one key"
            );
        }
        let directions: Vec<(bool, bool)> = keys.iter().map(|k| (k.asc, k.nulls_first)).collect();
        let marker = minispark_planner::repartition::markers::range_marker_expr(
            "repartition_by_range(n, sort_exprs)",
            n,
            &directions,
        );
        let exprs = std::iter::once(marker)
            .chain(keys.into_iter().map(|k| k.expr))
            .collect();
        transform!(self, df => df.repartition(datafusion::logical_expr::Partitioning::Hash(exprs, n)))
    }

    /// Merges neighbouring partitions into `n` (fewer) without a shuffle, as
    /// Spark's `coalesce(n)`: each task reads several of the partitions
    /// before it, one after the other; no stage boundary is added.
    pub fn coalesce(self, n: usize) -> Result<Self> {
        if n == 0 {
            return plan_err!("coalesce(n) needs at least one partition");
        }
        let marker = minispark_planner::repartition::markers::repartition_marker_expr(
            "coalesce(n)",
            Some(n),
        );
        transform!(self, df => df.repartition(datafusion::logical_expr::Partitioning::Hash(vec![marker], n)))
    }

    /// Sorts the rows inside each partition, with no global order and no
    /// shuffle (Spark's `sortWithinPartitions`, SQL's `SORT BY`).
    pub fn sort_within_partitions(self, keys: Vec<SortExpr>) -> Result<Self> {
        if keys.is_empty() {
            return plan_err!("sort_within_partitions needs at least one key");
        }
        let marker = minispark_planner::repartition::markers::sort_by_marker().sort(true, false);
        let keys = std::iter::once(marker).chain(keys).collect::<Vec<_>>();
        transform!(self, df => df.sort(keys))
    }

    /// Skips `skip` rows and keeps at most `fetch`.
    pub fn limit(self, skip: usize, fetch: Option<usize>) -> Result<Self> {
        transform!(self, df => df.limit(skip, fetch))
    }

    /// Rows of both (UNION ALL).
    pub fn union(self, other: DataFrame) -> Result<Self> {
        transform!(self, df => df.union(other.df))
    }

    /// Distinct rows of both (UNION).
    pub fn union_distinct(self, other: DataFrame) -> Result<Self> {
        transform!(self, df => df.union_distinct(other.df))
    }

    /// Distinct rows.
    pub fn distinct(self) -> Result<Self> {
        transform!(self, df => df.distinct())
    }

    /// One row per element of these list columns.
    pub fn unnest_columns(self, columns: &[&str]) -> Result<Self> {
        transform!(self, df => df.unnest_columns(columns))
    }

    /// Names this DataFrame, so its columns can be qualified (`alias.col`).
    pub fn alias(self, alias: &str) -> Result<Self> {
        transform!(self, df => df.alias(alias))
    }

    // ---------------------------------------------------------------
    // Actions: run on the cluster.
    // ---------------------------------------------------------------

    /// Runs the query and returns every row.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        let plan = self.df.logical_plan().clone();
        Ok(self.session.run(plan, "DataFrame::collect").await?.batches)
    }

    /// Runs the query and returns every row, with what its job did: task
    /// attempts and failed ones, executors lost, map outputs recomputed,
    /// adaptive decisions (coalesced or split partitions, joins switched to
    /// broadcast), salted joins and GROUP BYs. Spark shows these in its UI;
    /// here they are a value to print or assert on.
    ///
    /// ```no_run
    /// # async fn example(session: minispark::Session) -> datafusion::common::Result<()> {
    /// let events = session.table("netflix.small.viewing_events").await?;
    /// let (batches, counters) = events.collect_with_counters().await?;
    /// println!("{} batches; {counters}", batches.len()); // "job: 4 task attempts, 0 failed, ..."
    /// assert_eq!(counters.executors_lost, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn collect_with_counters(self) -> Result<(Vec<RecordBatch>, JobCounters)> {
        let plan = self.df.logical_plan().clone();
        let output = self
            .session
            .run(plan, "DataFrame::collect_with_counters")
            .await?;
        let counters = output.counters.ok_or_else(|| {
            DataFusionError::Internal("the query ran no job: no counters came back".into())
        })?;
        Ok((output.batches, counters))
    }

    /// Runs the query and prints it as a table.
    pub async fn show(self) -> Result<()> {
        let batches = self.collect().await?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        Ok(())
    }

    /// Prints the first `n` rows.
    pub async fn show_limit(self, n: usize) -> Result<()> {
        self.limit(0, Some(n))?.show().await
    }

    /// Counts the rows, on the cluster.
    pub async fn count(&self) -> Result<usize> {
        let counted = self
            .df
            .clone()
            .aggregate(vec![], vec![count(lit(1)).alias("count")])?;
        let output = self
            .session
            .run(counted.logical_plan().clone(), "DataFrame::count")
            .await?;
        let mut total = 0usize;
        for batch in &output.batches {
            let column = batch.column(0).as_any().downcast_ref::<Int64Array>();
            let Some(column) = column else {
                return Err(DataFusionError::Internal(
                    "count(*) did not return a BIGINT".into(),
                ));
            };
            total += column.iter().flatten().sum::<i64>() as usize;
        }
        Ok(total)
    }

    /// The stage graph the cluster would run: stages, their shuffles and
    /// partitioning keys, the join strategies chosen.
    pub async fn explain(&self) -> Result<String> {
        let plan = self
            .df
            .clone()
            .explain(false, false)?
            .logical_plan()
            .clone();
        let output = self.session.run(plan, "DataFrame::explain").await?;
        Ok(output.plan_text().concat())
    }

    /// Runs the query and returns the stage graph with what each stage
    /// measured: rows and bytes in and out, network bytes, task times.
    pub async fn explain_analyze(&self) -> Result<String> {
        let plan = self.df.clone().explain(false, true)?.logical_plan().clone();
        let output = self.session.run(plan, "DataFrame::explain_analyze").await?;
        Ok(output.plan_text().concat())
    }

    /// Writes the result as Parquet files under the folder `path`, one
    /// folder level per `partition_by` column (`date=2025-06-01/hour=3/`),
    /// from the executors. Returns the number of rows written.
    pub async fn write_parquet(self, path: &str, partition_by: &[&str]) -> Result<u64> {
        let file_type = format_as_file_type(std::sync::Arc::new(ParquetFormatFactory::new()));
        let plan = LogicalPlanBuilder::copy_to(
            self.df.logical_plan().clone(),
            path.to_string(),
            file_type,
            HashMap::new(),
            partition_by.iter().map(|c| c.to_string()).collect(),
        )?
        .build()?;
        let output = self
            .session
            .run(plan, "DataFrame::write_parquet")
            .await
            .map_err(|e| e.context(format!("cannot write Parquet to '{path}'")))?;
        Ok(rows_written(&output.batches))
    }

    /// Writes the result as a Delta Lake table at `path` (a local folder or
    /// an object store URL), from the executors; the driver commits one new
    /// version of the table's log. Spark's
    /// `df.write.format("delta").mode(mode).partitionBy(...).save(path)`.
    ///
    /// * no table at `path`: a new table (version 0) with the DataFrame's
    ///   columns and `partition_by` as its partition columns, whatever
    ///   `mode` is;
    /// * a table: `mode` decides ([`SaveMode`]); the DataFrame must have the
    ///   table's columns (by name, same types; the error names every column
    ///   that differs) and `partition_by` must be empty or the table's.
    ///
    /// Returns the number of rows written (0 for [`SaveMode::Ignore`] on an
    /// existing table).
    pub async fn write_delta(
        self,
        path: &str,
        mode: SaveMode,
        partition_by: &[&str],
    ) -> Result<u64> {
        let within = |e: DataFusionError| e.context(format!("cannot write Delta table '{path}'"));
        let input_schema = self.df.schema().as_arrow().clone();
        let existing = self
            .session
            .delta_table_for_write(path)
            .await
            .map_err(within)?;
        let (table, op) = match existing {
            Some(table) => {
                match mode {
                    SaveMode::ErrorIfExists => {
                        return plan_err!(
                            "Delta table '{path}' already exists (version {}): write with \
                             SaveMode::Append or SaveMode::Overwrite",
                            table.version()
                        );
                    }
                    SaveMode::Ignore => return Ok(0),
                    SaveMode::Append | SaveMode::Overwrite => {}
                }
                if !partition_by.is_empty() && partition_by != table.partition_columns() {
                    return plan_err!(
                        "Delta table '{path}' is partitioned by [{}], not by [{}]: its \
                         partitioning cannot change on a write",
                        table.partition_columns().join(", "),
                        partition_by.join(", ")
                    );
                }
                minispark_delta::schema::check_write_schema(
                    &datafusion::catalog::TableProvider::schema(&table),
                    &input_schema,
                    path,
                )?;
                let op = if mode == SaveMode::Overwrite {
                    InsertOp::Overwrite
                } else {
                    InsertOp::Append
                };
                (table, op)
            }
            None => (
                self.session
                    .new_delta_table(path, &input_schema, partition_by)
                    .map_err(within)?,
                InsertOp::Append,
            ),
        };
        // The rows in the table's column order and types (the same Delta
        // types: only string widths and timestamp units change).
        let target = datafusion::catalog::TableProvider::schema(&table);
        let columns: Vec<Expr> = target
            .fields()
            .iter()
            .map(|f| {
                datafusion::logical_expr::cast(
                    Expr::Column(datafusion::common::Column::new_unqualified(f.name())),
                    f.data_type().clone(),
                )
                .alias(f.name())
            })
            .collect();
        let input = self.df.select(columns)?.logical_plan().clone();
        let plan = LogicalPlanBuilder::insert_into(
            input,
            datafusion::common::TableReference::bare("delta"),
            datafusion::datasource::provider_as_source(std::sync::Arc::new(table)),
            op,
        )?
        .build()?;
        let output = self
            .session
            .run(plan, "DataFrame::write_delta")
            .await
            .map_err(within)?;
        Ok(rows_written(&output.batches))
    }

    /// Appends the result to the Apache Iceberg table at `location` (its
    /// folder, local or on an object store), written by the executors and
    /// committed once by the driver as one new snapshot, as `INSERT INTO`
    /// does. Where the location holds no table yet, an unpartitioned one
    /// with this DataFrame's columns is made first. The columns must be the
    /// table's, by name and in order. Returns the number of rows written.
    pub async fn write_iceberg(self, location: &str) -> Result<u64> {
        self.write_iceberg_partitioned(location, &[]).await
    }

    /// [`write_iceberg`](Self::write_iceberg) to a table partitioned by
    /// `partition_by`, in Spark SQL's words (`PARTITIONED BY (days(ts),
    /// country)`): columns, and `years`, `months`, `days` or `hours` of a
    /// date or timestamp column. Where the location holds no table, one
    /// partitioned so is made; a table that is there must be partitioned
    /// so (its partitioning does not change on a write).
    ///
    /// ```no_run
    /// # async fn f(events: minispark::DataFrame) -> datafusion::common::Result<()> {
    /// events.write_iceberg_partitioned("s3://lake/viewing_events", &["days(event_ts)"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_iceberg_partitioned(
        self,
        location: &str,
        partition_by: &[&str],
    ) -> Result<u64> {
        let schema = self.df.schema().as_arrow().clone();
        let partitioning = partition_by
            .iter()
            .map(|p| minispark_iceberg::partition_spec::parse(p))
            .collect::<Result<Vec<_>>>()?;
        let table = self
            .session
            .iceberg_append_target(location, &schema, &partitioning)
            .await?;
        let want: Vec<String> = datafusion::catalog::TableProvider::schema(&table)
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let have: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if want != have {
            return plan_err!(
                "cannot append columns {have:?} to the Iceberg table at '{location}', whose \
                 columns are {want:?}: select the table's columns, in order"
            );
        }
        let plan = LogicalPlanBuilder::insert_into(
            self.df.logical_plan().clone(),
            datafusion::common::TableReference::bare("iceberg_table"),
            datafusion::datasource::provider_as_source(std::sync::Arc::new(table)),
            datafusion::logical_expr::dml::InsertOp::Append,
        )?
        .build()?;
        let output = self
            .session
            .run(plan, "DataFrame::write_iceberg")
            .await
            .map_err(|e| {
                e.context(format!(
                    "cannot append to the Iceberg table at '{location}'"
                ))
            })?;
        Ok(rows_written(&output.batches))
    }
}

/// The row count a write's result reports (DataFusion's `count` column).
fn rows_written(batches: &[arrow::array::RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
        })
        .map(|c| c.iter().flatten().sum::<u64>())
        .sum()
}
