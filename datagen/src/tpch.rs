//! A built-in TPC-H catalog whose tables generate their data on the fly.
//!
//! `SELECT count(*) FROM tpch.sf0_1.lineitem` works on any minispark session
//! with zero setup: no files to download, no `CREATE EXTERNAL TABLE`, no data
//! directory shared between machines.
//!
//! # The idea
//!
//! TPC-H data is *deterministic*: `tpchgen` can produce "part `i` of `n`" of
//! any table at any scale factor, independently of the other parts, and the
//! union of the `n` parts is exactly the full table. So instead of reading
//! bytes that somebody must have put somewhere, a scan of a TPC-H table is a
//! tiny leaf plan node, [`TpchScanExec`], which only records *what* to
//! generate: `(table, scale factor, number of partitions, projection)`.
//! Executing partition `p` generates tpchgen part `p + 1` of
//! `num_partitions` right there, batch by batch, inside the task that runs
//! it.
//!
//! For a distributed engine this has two nice properties:
//!
//! * **Zero setup.** Any executor on any machine can run any partition of
//!   the scan; there is no storage to provision or to keep in sync.
//! * **Nothing shipped in the plan.** The serialized plan carries a handful of
//!   scalars, never the data itself, so plans stay small whatever the scale
//!   factor, and a retried task simply regenerates exactly the same rows.
//!
//! # Naming
//!
//! The catalog is called `tpch`; its schemas are scale factors spelled
//! `sf<scale factor>` with `_` standing in for the decimal point (SQL
//! identifiers cannot contain `.`): `sf1`, `sf0_1` (0.1), `sf0_01` (0.01),
//! `sf10`, ... Any valid scale factor is accepted; schemas are created on
//! demand. Each schema has the eight TPC-H tables with the column names and
//! Arrow types produced by `tpchgen-arrow` (`Int64` keys, `Decimal128(15, 2)`
//! money, `Date32` dates, `Utf8View` strings), so the standard TPC-H queries
//! run unchanged.
//!
//! [`write_tpch_parquet`] materializes a whole scale factor as Parquet files
//! for engines (or benchmarks) that prefer reading files.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
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
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::generated::{ExportTable, GeneratedScan, export_parquet};

/// Name under which [`register_tpch_catalog`] registers the [`TpchCatalog`].
pub const TPCH_CATALOG_NAME: &str = "tpch";

/// Schema names listed by [`TpchCatalog::schema_names`]. Any other valid
/// scale-factor name (see [`parse_scale_factor_schema`]) works too.
pub const COMMON_TPCH_SCHEMAS: [&str; 4] = ["sf0_01", "sf0_1", "sf1", "sf10"];

/// A boxed iterator of generated record batches, as produced by the
/// `tpchgen-arrow` generators.
type BatchIter = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// The eight TPC-H tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TpchTable {
    Nation,
    Region,
    Part,
    Supplier,
    PartSupp,
    Customer,
    Orders,
    LineItem,
}

impl TpchTable {
    /// All eight tables, smallest dimension tables first.
    pub const ALL: [TpchTable; 8] = [
        TpchTable::Nation,
        TpchTable::Region,
        TpchTable::Part,
        TpchTable::Supplier,
        TpchTable::PartSupp,
        TpchTable::Customer,
        TpchTable::Orders,
        TpchTable::LineItem,
    ];

    /// The SQL name of the table (`"lineitem"`, `"partsupp"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TpchTable::Nation => "nation",
            TpchTable::Region => "region",
            TpchTable::Part => "part",
            TpchTable::Supplier => "supplier",
            TpchTable::PartSupp => "partsupp",
            TpchTable::Customer => "customer",
            TpchTable::Orders => "orders",
            TpchTable::LineItem => "lineitem",
        }
    }

    /// Look a table up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The Arrow schema of the table, taken from the `tpchgen-arrow`
    /// generator itself so it always matches the generated batches.
    pub fn schema(&self) -> SchemaRef {
        match self {
            TpchTable::Nation => NationArrow::schema_ref(),
            TpchTable::Region => RegionArrow::schema_ref(),
            TpchTable::Part => PartArrow::schema_ref(),
            TpchTable::Supplier => SupplierArrow::schema_ref(),
            TpchTable::PartSupp => PartSuppArrow::schema_ref(),
            TpchTable::Customer => CustomerArrow::schema_ref(),
            TpchTable::Orders => OrderArrow::schema_ref(),
            TpchTable::LineItem => LineItemArrow::schema_ref(),
        }
    }

    /// Whether the table's size does not depend on the scale factor
    /// (nation and region). `tpchgen` ignores part/num_parts for them, so
    /// only the first part generates rows.
    fn is_fixed_size(&self) -> bool {
        matches!(self, TpchTable::Nation | TpchTable::Region)
    }

    /// Number of rows in part `part` (1-based) of `num_parts` at `sf`.
    ///
    /// Exact for every table but lineitem, whose rows per order vary (1 to 7,
    /// 4 on average); for lineitem this is the expected count.
    fn part_row_count(&self, sf: f64, part: i32, num_parts: i32) -> u64 {
        let rows = match self {
            TpchTable::Nation => return if part == 1 { 25 } else { 0 },
            TpchTable::Region => return if part == 1 { 5 } else { 0 },
            TpchTable::Part => PartGenerator::calculate_row_count(sf, part, num_parts),
            TpchTable::Supplier => SupplierGenerator::calculate_row_count(sf, part, num_parts),
            TpchTable::PartSupp => 4 * PartSuppGenerator::calculate_row_count(sf, part, num_parts),
            TpchTable::Customer => CustomerGenerator::calculate_row_count(sf, part, num_parts),
            TpchTable::Orders => OrderGenerator::calculate_row_count(sf, part, num_parts),
            TpchTable::LineItem => 4 * OrderGenerator::calculate_row_count(sf, part, num_parts),
        };
        rows.max(0) as u64
    }

    /// Rough in-memory size of one generated row (all columns) in bytes,
    /// measured on generated Arrow batches (sf 0.1, 8192-row batches). Only
    /// used for estimates.
    fn avg_row_bytes(&self) -> usize {
        match self {
            TpchTable::Nation => 130,
            TpchTable::Region => 120,
            TpchTable::Part => 260,
            TpchTable::Supplier => 300,
            TpchTable::PartSupp => 180,
            TpchTable::Customer => 300,
            TpchTable::Orders => 200,
            TpchTable::LineItem => 230,
        }
    }

    /// Lazily generate part `part` (1-based) of `num_parts` as record
    /// batches of at most `batch_size` rows (the full schema). Nothing is
    /// generated (not even the generator's text pool touched) until the
    /// iterator is first polled.
    fn generate_part(&self, sf: f64, part: i32, num_parts: i32, batch_size: usize) -> BatchIter {
        let table = *self;
        let batch_size = batch_size.max(1);
        Box::new(std::iter::once(()).flat_map(move |()| -> BatchIter {
            match table {
                // Nation and region ignore the part arguments: generate them
                // once, in the first part, so the union of parts is the table.
                _ if table.is_fixed_size() && part != 1 => Box::new(std::iter::empty()),
                TpchTable::Nation => Box::new(
                    NationArrow::new(NationGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::Region => Box::new(
                    RegionArrow::new(RegionGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::Part => Box::new(
                    PartArrow::new(PartGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::Supplier => Box::new(
                    SupplierArrow::new(SupplierGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::PartSupp => Box::new(
                    PartSuppArrow::new(PartSuppGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::Customer => Box::new(
                    CustomerArrow::new(CustomerGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::Orders => Box::new(
                    OrderArrow::new(OrderGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
                TpchTable::LineItem => Box::new(
                    LineItemArrow::new(LineItemGenerator::new(sf, part, num_parts))
                        .with_batch_size(batch_size),
                ),
            }
        }))
    }
}

impl fmt::Display for TpchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Scale-factor schema names
// ---------------------------------------------------------------------------

/// Parse a schema name such as `"sf1"`, `"sf0_1"`, `"sf0_01"` or `"sf10"`
/// into a scale factor (1.0, 0.1, 0.01, 10.0). `_` stands for the decimal
/// point (a `.` is accepted too); the `sf` prefix is case-insensitive.
/// Errors name the bad input.
pub fn parse_scale_factor_schema(name: &str) -> Result<f64> {
    let invalid = |why: &str| {
        plan_datafusion_err!(
            "invalid TPC-H schema name '{name}': {why}; \
             expected 'sf<scale factor>' with '_' as decimal point, e.g. sf1, sf0_1, sf0_01, sf10"
        )
    };
    let number = match name.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sf") => &name[2..],
        _ => return Err(invalid("missing 'sf' prefix")),
    };
    let separators = number.chars().filter(|c| matches!(c, '_' | '.')).count();
    let well_formed = !number.is_empty()
        && separators <= 1
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '_' | '.'))
        && number.starts_with(|c: char| c.is_ascii_digit())
        && number.ends_with(|c: char| c.is_ascii_digit());
    if !well_formed {
        return Err(invalid("the scale factor is not a decimal number"));
    }
    let sf: f64 = number
        .replace('_', ".")
        .parse()
        .map_err(|_| invalid("the scale factor is not a decimal number"))?;
    validate_scale_factor(sf)
        .map_err(|_| invalid("the scale factor must be positive and finite"))?;
    Ok(sf)
}

/// The schema name of a scale factor; inverse of
/// [`parse_scale_factor_schema`]: `0.1 -> "sf0_1"`, `1.0 -> "sf1"`.
pub fn scale_factor_schema_name(sf: f64) -> String {
    format!("sf{sf}").replace('.', "_")
}

fn validate_scale_factor(sf: f64) -> Result<()> {
    if sf.is_finite() && sf > 0.0 {
        Ok(())
    } else {
        plan_err!("invalid TPC-H scale factor {sf}: must be positive and finite")
    }
}

// ---------------------------------------------------------------------------
// TpchScanExec
// ---------------------------------------------------------------------------

/// Leaf [`ExecutionPlan`] that generates `num_partitions` partitions of a
/// TPC-H table at a scale factor.
///
/// Partition `p` generates tpchgen part `p + 1` of `num_partitions` when it
/// is executed, lazily, one batch of `batch_size` rows at a time, on the
/// task that polls it, and applies the projection to each batch. The node
/// holds no data: it can be serialized as `(table, scale factor, partitions,
/// projection, batch size)` and executed on any machine.
#[derive(Debug)]
pub struct TpchScanExec {
    table: TpchTable,
    scale_factor: f64,
    /// Partitions, projection, batch size, output schema, metrics.
    scan: GeneratedScan,
}

impl TpchScanExec {
    /// Create a scan of `table` at `scale_factor`, split in `num_partitions`
    /// partitions, producing only the columns in `projection` (indices into
    /// [`TpchTable::schema`]; `None` for all).
    pub fn try_new(
        table: TpchTable,
        scale_factor: f64,
        num_partitions: usize,
        projection: Option<Vec<usize>>,
        batch_size: usize,
    ) -> Result<Self> {
        validate_scale_factor(scale_factor)?;
        if num_partitions == 0 || i32::try_from(num_partitions).is_err() {
            return plan_err!(
                "TpchScanExec: number of partitions must be between 1 and {}, got {num_partitions}",
                i32::MAX
            );
        }
        let scan = GeneratedScan::try_new(
            "TpchScanExec",
            &table,
            table.schema(),
            projection,
            num_partitions,
            batch_size,
        )?;
        Ok(Self {
            table,
            scale_factor,
            scan,
        })
    }

    /// The generated table.
    pub fn table(&self) -> TpchTable {
        self.table
    }

    /// The TPC-H scale factor.
    pub fn scale_factor(&self) -> f64 {
        self.scale_factor
    }

    /// Number of output partitions (= tpchgen parts).
    pub fn num_partitions(&self) -> usize {
        self.scan.num_partitions()
    }

    /// Projected column indices into [`TpchTable::schema`], if any.
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.scan.projection()
    }

    /// Maximum number of rows per generated batch.
    pub fn batch_size(&self) -> usize {
        self.scan.batch_size()
    }

    /// Estimated statistics of one partition (`Some`) or of all of them.
    fn estimate_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        let rows = match partition {
            Some(p) => {
                self.scan.check_partition(p)?;
                let parts = self.scan.num_partitions() as i32;
                self.table
                    .part_row_count(self.scale_factor, p as i32 + 1, parts)
            }
            None => self.table.part_row_count(self.scale_factor, 1, 1),
        };
        // Lineitem's count is an estimate: keep them all inexact.
        Ok(self
            .scan
            .statistics(rows, false, self.table.avg_row_bytes()))
    }
}

impl DisplayAs for TpchScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.scan
            .fmt_as(t, f, &[("table", &self.table), ("sf", &self.scale_factor)])
    }
}

impl ExecutionPlan for TpchScanExec {
    fn name(&self) -> &str {
        "TpchScanExec"
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
            return internal_err!("TpchScanExec is a leaf and takes no children");
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
        let num_parts = self.scan.num_partitions();
        tracing::debug!(
            table = self.table.name(),
            sf = self.scale_factor,
            part = partition + 1,
            num_parts,
            "generating TPC-H partition"
        );
        // tpchgen part `partition + 1`, already in batches of `batch_size`.
        let batches = self.table.generate_part(
            self.scale_factor,
            partition as i32 + 1,
            num_parts as i32,
            self.scan.batch_size(),
        );
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

/// [`TableProvider`] for one TPC-H table at one scale factor.
///
/// [`scan`](TableProvider::scan) returns a [`TpchScanExec`] with as many
/// partitions as the session's `target_partitions`, generating only the
/// projected columns. Filters are not pushed down (DataFusion filters the
/// generated rows) and limits are ignored.
#[derive(Debug)]
pub struct TpchTableProvider {
    table: TpchTable,
    scale_factor: f64,
}

impl TpchTableProvider {
    /// A provider for `table` at `scale_factor`.
    pub fn new(table: TpchTable, scale_factor: f64) -> Self {
        Self {
            table,
            scale_factor,
        }
    }

    /// The provided table.
    pub fn table(&self) -> TpchTable {
        self.table
    }

    /// The TPC-H scale factor.
    pub fn scale_factor(&self) -> f64 {
        self.scale_factor
    }
}

impl TableProvider for TpchTableProvider {
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
        let plan = TpchScanExec::try_new(
            self.table,
            self.scale_factor,
            config.target_partitions().max(1),
            projection.cloned(),
            config.batch_size().max(1),
        )
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
        TpchScanExec::try_new(self.table, self.scale_factor, 1, None, 1)
            .and_then(|exec| exec.estimate_statistics(None))
            .ok()
    }
}

/// [`SchemaProvider`] for one scale factor: the eight TPC-H tables.
#[derive(Debug, Clone, Copy)]
pub struct TpchSchema {
    scale_factor: f64,
}

impl TpchSchema {
    /// The schema of the tables at `scale_factor`.
    pub fn new(scale_factor: f64) -> Self {
        Self { scale_factor }
    }

    /// The TPC-H scale factor.
    pub fn scale_factor(&self) -> f64 {
        self.scale_factor
    }
}

impl SchemaProvider for TpchSchema {
    fn table_names(&self) -> Vec<String> {
        TpchTable::ALL
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
        let provider = TpchTable::from_name(name).map(|table| {
            Arc::new(TpchTableProvider::new(table, self.scale_factor)) as Arc<dyn TableProvider>
        });
        Box::pin(std::future::ready(Ok(provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TpchTable::from_name(name).is_some()
    }
}

/// [`CatalogProvider`] `tpch`: one schema per scale factor.
///
/// Any valid scale-factor name (`sf1`, `sf0_1`, `sf0_01`, `sf100`, ...) is a
/// schema, created on demand by [`schema`](CatalogProvider::schema);
/// [`schema_names`](CatalogProvider::schema_names) only lists
/// [`COMMON_TPCH_SCHEMAS`].
#[derive(Debug, Default)]
pub struct TpchCatalog;

impl CatalogProvider for TpchCatalog {
    fn schema_names(&self) -> Vec<String> {
        COMMON_TPCH_SCHEMAS.iter().map(|s| s.to_string()).collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match parse_scale_factor_schema(name) {
            Ok(sf) => Some(Arc::new(TpchSchema::new(sf))),
            Err(e) => {
                tracing::debug!("no TPC-H schema {name}: {e}");
                None
            }
        }
    }
}

/// Register the [`TpchCatalog`] as `tpch` on a [`SessionContext`], so that
/// `SELECT ... FROM tpch.sf0_01.lineitem` works without any other setup.
pub fn register_tpch_catalog(ctx: &SessionContext) {
    ctx.register_catalog(TPCH_CATALOG_NAME, Arc::new(TpchCatalog));
}

// ---------------------------------------------------------------------------
// Parquet export
// ---------------------------------------------------------------------------

/// Number of Parquet files [`write_tpch_parquet`] writes for `table` at
/// `scale_factor`: `max(1, ceil(4 * sf))` for the tables that grow with the
/// scale factor (lineitem, orders, partsupp, part, customer), one file for
/// the small ones (supplier, nation, region).
pub fn files_per_table(table: TpchTable, scale_factor: f64) -> usize {
    match table {
        TpchTable::LineItem
        | TpchTable::Orders
        | TpchTable::PartSupp
        | TpchTable::Part
        | TpchTable::Customer => {
            let files = (scale_factor * 4.0).ceil();
            if files.is_finite() && files >= 1.0 {
                (files as usize).min(i32::MAX as usize)
            } else {
                1
            }
        }
        TpchTable::Supplier | TpchTable::Nation | TpchTable::Region => 1,
    }
}

/// Write every TPC-H table at `scale_factor` as ZSTD-compressed Parquet
/// under `out_dir/<table>/part-<i>.parquet` (`i` from 0), with
/// [`files_per_table`] files per table; file `i` holds tpchgen part `i + 1`.
///
/// Existing `part-*.parquet` files in the table directories are removed
/// first so a previous export with more files cannot leak stale rows. Parts
/// are generated in parallel, one thread per core, biggest tables first;
/// each thread streams one part at a time batch by batch through an
/// `ArrowWriter`, so memory stays bounded whatever the scale factor.
///
/// Returns `(table name, rows, files)` for every table, in
/// [`TpchTable::ALL`] order.
pub fn write_tpch_parquet(scale_factor: f64, out_dir: &Path) -> Result<Vec<(String, u64, usize)>> {
    validate_scale_factor(scale_factor)?;
    let tables = TpchTable::ALL.map(|table| ExportTable {
        name: table.name(),
        schema: table.schema(),
        files: files_per_table(table, scale_factor),
    });
    export_parquet(
        "TPC-H",
        out_dir,
        &tables,
        |job| TpchTable::ALL[job.table].avg_row_bytes_total(),
        |job| {
            TpchTable::ALL[job.table].generate_part(
                scale_factor,
                job.file as i32 + 1,
                job.files as i32,
                tpchgen_arrow::DEFAULT_BATCH_SIZE,
            )
        },
    )
}

impl TpchTable {
    /// Relative size of a table at sf 1, for scheduling the export.
    fn avg_row_bytes_total(&self) -> u64 {
        self.part_row_count(1.0, 1, 1) * self.avg_row_bytes() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::TempDir;
    use arrow::compute::concat_batches;
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::collect_partitioned;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig};

    fn ctx(target_partitions: usize) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(target_partitions);
        let ctx = SessionContext::new_with_config(config);
        register_tpch_catalog(&ctx);
        ctx
    }

    async fn count(ctx: &SessionContext, sql: &str) -> u64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let batch = &batches[0];
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        col.value(0) as u64
    }

    /// Rows generated by each partition of a full scan.
    async fn partition_rows(table: TpchTable, sf: f64, parts: usize) -> Vec<u64> {
        let exec = Arc::new(TpchScanExec::try_new(table, sf, parts, None, 1024).unwrap());
        let out = collect_partitioned(exec, Arc::new(TaskContext::default()))
            .await
            .unwrap();
        out.iter()
            .map(|p| p.iter().map(|b| b.num_rows() as u64).sum())
            .collect()
    }

    fn lineitem_rows_one_part(sf: f64) -> u64 {
        TpchTable::LineItem
            .generate_part(sf, 1, 1, 8192)
            .map(|b| b.unwrap().num_rows() as u64)
            .sum()
    }

    #[tokio::test]
    async fn row_counts_at_sf0_01() {
        let ctx = ctx(4);
        let lineitem = lineitem_rows_one_part(0.01);
        assert!(
            (59_000..61_000).contains(&lineitem),
            "lineitem rows {lineitem}"
        );
        let expected = [
            (TpchTable::Nation, 25),
            (TpchTable::Region, 5),
            (TpchTable::Supplier, 100),
            (TpchTable::Customer, 1500),
            (TpchTable::Part, 2000),
            (TpchTable::PartSupp, 8000),
            (TpchTable::Orders, 15000),
            (TpchTable::LineItem, lineitem),
        ];
        for (table, rows) in expected {
            let sql = format!("SELECT count(*) FROM tpch.sf0_01.{}", table.name());
            assert_eq!(count(&ctx, &sql).await, rows, "{sql}");
            let parts = partition_rows(table, 0.01, 4).await;
            assert_eq!(parts.len(), 4);
            assert_eq!(
                parts.iter().sum::<u64>(),
                rows,
                "{table} partitions {parts:?}"
            );
            if !table.is_fixed_size() {
                assert!(parts.iter().all(|&r| r > 0), "{table} {parts:?}");
            }
        }
    }

    #[tokio::test]
    async fn orders_same_rows_for_1_and_3_partitions() {
        let mut sorted = Vec::new();
        for parts in [1, 3] {
            let exec = Arc::new(
                TpchScanExec::try_new(TpchTable::Orders, 0.01, parts, None, 1000).unwrap(),
            );
            let schema = exec.schema();
            let out = collect_partitioned(exec, Arc::new(TaskContext::default()))
                .await
                .unwrap();
            assert_eq!(out.len(), parts);
            let ctx = SessionContext::new();
            let mem = MemTable::try_new(schema, out).unwrap();
            ctx.register_table("t", Arc::new(mem)).unwrap();
            let batches = ctx
                .sql("SELECT * FROM t ORDER BY o_orderkey")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let all = concat_batches(&batches[0].schema(), &batches).unwrap();
            assert_eq!(all.num_rows(), 15000);
            sorted.push(all);
        }
        assert_eq!(sorted[0], sorted[1]);
    }

    #[tokio::test]
    async fn projection() {
        let exec =
            TpchScanExec::try_new(TpchTable::Orders, 0.01, 2, Some(vec![0, 4]), 500).unwrap();
        let names: Vec<_> = exec
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["o_orderkey", "o_orderdate"]);
        let display = datafusion::physical_plan::displayable(&exec)
            .one_line()
            .to_string();
        assert_eq!(
            display.trim(),
            "TpchScanExec: table=orders, sf=0.01, partitions=2, projection=[o_orderkey, o_orderdate]"
        );
        let out = collect_partitioned(Arc::new(exec), Arc::new(TaskContext::default()))
            .await
            .unwrap();
        let mut rows = 0;
        for batch in out.iter().flatten() {
            assert_eq!(batch.num_columns(), 2);
            assert!(batch.num_rows() <= 500);
            assert_eq!(batch.schema().field(1).name(), "o_orderdate");
            rows += batch.num_rows();
        }
        assert_eq!(rows, 15000);

        // Empty projection keeps row counts.
        let exec = TpchScanExec::try_new(TpchTable::Supplier, 0.01, 1, Some(vec![]), 1024).unwrap();
        let out = collect_partitioned(Arc::new(exec), Arc::new(TaskContext::default()))
            .await
            .unwrap();
        let rows: usize = out.iter().flatten().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 100);

        // Through SQL.
        let ctx = ctx(3);
        let df = ctx
            .sql("SELECT l_orderkey, l_quantity FROM tpch.sf0_01.lineitem LIMIT 7")
            .await
            .unwrap();
        let batches = df.collect().await.unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 7);
        assert_eq!(batches[0].num_columns(), 2);

        // Out-of-range projection is rejected.
        assert!(TpchScanExec::try_new(TpchTable::Region, 1.0, 1, Some(vec![9]), 10).is_err());
    }

    #[tokio::test]
    async fn explain_shows_scan_and_statistics() {
        let ctx = ctx(4);
        let plan = ctx
            .sql("SELECT n_name FROM tpch.sf1.nation")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(
            text.contains("TpchScanExec: table=nation, sf=1, partitions=4, projection=[n_name]"),
            "{text}"
        );

        let exec = TpchScanExec::try_new(TpchTable::LineItem, 0.1, 4, None, 8192).unwrap();
        let stats = exec.estimate_statistics(None).unwrap();
        assert_eq!(stats.num_rows, Precision::Inexact(600_000));
        assert!(matches!(stats.total_byte_size, Precision::Inexact(b) if b > 600_000));
        let stats = exec.estimate_statistics(Some(3)).unwrap();
        assert_eq!(stats.num_rows, Precision::Inexact(150_000));
        assert!(exec.estimate_statistics(Some(4)).is_err());
        let nation = TpchScanExec::try_new(TpchTable::Nation, 100.0, 4, None, 8192).unwrap();
        assert_eq!(
            nation.estimate_statistics(None).unwrap().num_rows,
            Precision::Inexact(25)
        );
    }

    #[tokio::test]
    async fn tpch_q1_runs() {
        let ctx = ctx(4);
        let sql = "select
                l_returnflag, l_linestatus,
                sum(l_quantity) as sum_qty,
                sum(l_extendedprice) as sum_base_price,
                sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
                sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
                avg(l_quantity) as avg_qty,
                avg(l_extendedprice) as avg_price,
                avg(l_discount) as avg_disc,
                count(*) as count_order
            from tpch.sf0_01.lineitem
            where l_shipdate <= date '1998-12-01' - interval '90' day
            group by l_returnflag, l_linestatus
            order by l_returnflag, l_linestatus";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 4, "{text}");
    }

    #[test]
    fn scale_factor_names() {
        assert_eq!(parse_scale_factor_schema("sf1").unwrap(), 1.0);
        assert_eq!(parse_scale_factor_schema("sf0_1").unwrap(), 0.1);
        assert_eq!(parse_scale_factor_schema("sf0_01").unwrap(), 0.01);
        assert_eq!(parse_scale_factor_schema("SF10").unwrap(), 10.0);
        for bad in [
            "sfx", "foo", "sf", "sf0", "sf_1", "sf1_", "sf1_2_3", "sf-1", "", "s",
        ] {
            let err = parse_scale_factor_schema(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        for sf in [0.01, 0.1, 1.0, 10.0, 100.0, 0.001, 2.5] {
            let name = scale_factor_schema_name(sf);
            assert_eq!(parse_scale_factor_schema(&name).unwrap(), sf, "{name}");
        }
        assert_eq!(scale_factor_schema_name(0.1), "sf0_1");
        assert_eq!(scale_factor_schema_name(1.0), "sf1");
        assert_eq!(TpchTable::from_name("LineItem"), Some(TpchTable::LineItem));
        assert_eq!(TpchTable::from_name("lineitems"), None);
        assert!(TpchCatalog.schema("sfx").is_none());
        assert!(TpchCatalog.schema("sf0_5").is_some());
    }

    #[tokio::test]
    async fn parquet_export_round_trip() {
        // Removed when the test ends, even if an assertion fails.
        let dir = TempDir::new("minispark-tpch");
        let written = write_tpch_parquet(0.01, &dir).unwrap();
        assert_eq!(written.len(), 8);
        let ctx = ctx(2);
        for (name, rows, files) in &written {
            assert_eq!(*files, 1, "{name}");
            let path = dir.join(name).join("part-0.parquet");
            assert!(path.is_file(), "{}", path.display());
            ctx.register_parquet(
                name.as_str(),
                dir.join(name).to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
            let from_files = count(&ctx, &format!("SELECT count(*) FROM {name}")).await;
            let built_in = count(&ctx, &format!("SELECT count(*) FROM tpch.sf0_01.{name}")).await;
            assert_eq!(from_files, built_in, "{name}");
            assert_eq!(*rows, built_in, "{name}");
        }
    }

    #[test]
    fn files_per_table_grows_with_sf() {
        assert_eq!(files_per_table(TpchTable::LineItem, 0.01), 1);
        assert_eq!(files_per_table(TpchTable::LineItem, 1.0), 4);
        assert_eq!(files_per_table(TpchTable::Orders, 10.0), 40);
        assert_eq!(files_per_table(TpchTable::Nation, 10.0), 1);
        assert_eq!(files_per_table(TpchTable::Supplier, 10.0), 1);
    }
}
