//! Serializing logical plans, for DataFrames built away from the driver.
//!
//! A `minispark::Session` connected to a remote
//! driver builds its DataFrames in a local DataFusion context (so a wrong
//! column name fails at once, where it was written) and sends the finished
//! logical plan to the driver, which plans the stages:
//!
//! ```text
//!  client: DataFrame ops ─▶ LogicalPlan ─▶ datafusion-proto bytes ──SubmitJob──▶ driver
//!  driver: bytes ─▶ LogicalPlan ─▶ optimize ─▶ ExecutionPlan ─▶ StageGraph ─▶ executors
//! ```
//!
//! DataFusion serializes its own nodes, file scans (Parquet, CSV, JSON) and
//! the file formats of `COPY`, but not the outer references of a
//! correlated subquery: a session sends a plan with a subquery after
//! DataFusion's optimizer has rewritten its subqueries into joins
//! (`minispark::Session`). The only tables it cannot serialize are
//! minispark's built-in catalogs, which travel here as their name and scale
//! (the driver generates them, never the client), Delta tables, which
//! travel as their location and version (the driver reads their log), and
//! Iceberg tables, which travel with the metadata and snapshot they were
//! opened at.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result, TableReference, not_impl_err, plan_datafusion_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};

use crate::hints::{HintNode, JoinHint};
use crate::salting::{SkewHint, SkewNode};
use minispark_datagen::{NetflixTable, NetflixTableProvider, TpchTable, TpchTableProvider};

/// How an Iceberg table's bytes start (the built-in tables are text).
const ICEBERG_TABLE: &[u8] = b"iceberg ";

/// The logical extension codec: built-in tables by name and scale, Iceberg
/// tables by their metadata and snapshot, file formats as DataFusion
/// encodes them.
#[derive(Debug, Default, Clone)]
pub struct MinisparkLogicalCodec;

impl LogicalExtensionCodec for MinisparkLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
        let name = std::str::from_utf8(buf).unwrap_or_default();
        if let Some(hint) = name.strip_prefix("skew ").and_then(SkewHint::decode) {
            return match inputs {
                [input] => match SkewNode::wrap(input.clone(), hint) {
                    LogicalPlan::Extension(e) => Ok(e),
                    _ => not_impl_err!("a skew hint is an extension node"),
                },
                _ => not_impl_err!("a skew hint has exactly one input"),
            };
        }
        let hint = name
            .strip_prefix("hint ")
            .and_then(JoinHint::from_name)
            .ok_or_else(|| plan_datafusion_err!("unknown logical plan node '{name}'"))?;
        match inputs {
            [input] => match HintNode::wrap(input.clone(), hint) {
                LogicalPlan::Extension(e) => Ok(e),
                _ => not_impl_err!("a join hint is an extension node"),
            },
            _ => not_impl_err!("a join hint has exactly one input"),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(skew) = node.node.as_any().downcast_ref::<SkewNode>() {
            buf.extend_from_slice(format!("skew {}", skew.hint.encode()).as_bytes());
            return Ok(());
        }
        match node.node.as_any().downcast_ref::<HintNode>() {
            Some(hint) => {
                buf.extend_from_slice(format!("hint {}", hint.hint.name()).as_bytes());
                Ok(())
            }
            None => not_impl_err!(
                "cannot send the logical plan node {} to the driver",
                node.node.name()
            ),
        }
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(iceberg) = buf.strip_prefix(ICEBERG_TABLE) {
            let registry = Arc::clone(&ctx.runtime_env().object_store_registry);
            return Ok(Arc::new(minispark_iceberg::IcebergTable::decode(
                iceberg, registry,
            )?));
        }
        if let Some(delta) = minispark_delta::DeltaTable::decode(buf, schema) {
            return Ok(Arc::new(delta?));
        }
        let text = std::str::from_utf8(buf)
            .map_err(|_| plan_datafusion_err!("table {table_ref}: malformed built-in table"))?;
        let parts: Vec<&str> = text.split(' ').collect();
        match parts.as_slice() {
            ["tpch", table, scale] => {
                let table = TpchTable::from_name(table)
                    .ok_or_else(|| plan_datafusion_err!("unknown TPC-H table {table}"))?;
                let scale: f64 = scale
                    .parse()
                    .map_err(|_| plan_datafusion_err!("bad TPC-H scale factor {scale}"))?;
                Ok(Arc::new(TpchTableProvider::new(table, scale)))
            }
            ["netflix", table, scale] => {
                let table = NetflixTable::from_name(table)
                    .ok_or_else(|| plan_datafusion_err!("unknown netflix table {table}"))?;
                let scale: f64 = scale
                    .parse()
                    .map_err(|_| plan_datafusion_err!("bad netflix scale {scale}"))?;
                Ok(Arc::new(NetflixTableProvider::new(
                    table,
                    scale,
                    crate::session::netflix_settings,
                )))
            }
            _ => not_impl_err!("table {table_ref}: unknown built-in table '{text}'"),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(tpch) = node.downcast_ref::<TpchTableProvider>() {
            let text = format!("tpch {} {}", tpch.table().name(), tpch.scale_factor());
            buf.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        // Skew and seed are settings: they travel with the job's settings.
        if let Some(netflix) = node.downcast_ref::<NetflixTableProvider>() {
            let text = format!("netflix {} {}", netflix.table().name(), netflix.scale());
            buf.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        if let Some(iceberg) = node.downcast_ref::<minispark_iceberg::IcebergTable>() {
            buf.extend_from_slice(ICEBERG_TABLE);
            buf.extend_from_slice(&iceberg.encode()?);
            return Ok(());
        }
        // A Delta table travels as its location and version: the driver
        // reads its log when it plans the scan.
        if let Some(delta) = node.downcast_ref::<minispark_delta::DeltaTable>() {
            buf.extend_from_slice(&delta.encode());
            return Ok(());
        }
        not_impl_err!(
            "table {table_ref} cannot be sent to a remote driver: only file tables \
             (Parquet, CSV, JSON), Iceberg and Delta tables, views and the built-in catalogs can"
        )
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        DefaultLogicalExtensionCodec {}.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        DefaultLogicalExtensionCodec {}.try_encode_file_format(buf, node)
    }
}

/// Serializes a logical plan for [`decode_logical_plan`] on the driver.
pub fn encode_logical_plan(plan: &LogicalPlan) -> Result<Vec<u8>> {
    Ok(
        datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(
            plan,
            &MinisparkLogicalCodec,
        )?
        .to_vec(),
    )
}

/// Deserializes a logical plan; functions resolve against `ctx`'s registry.
pub fn decode_logical_plan(bytes: &[u8], ctx: &TaskContext) -> Result<LogicalPlan> {
    datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec(
        bytes,
        ctx,
        &MinisparkLogicalCodec,
    )
}
