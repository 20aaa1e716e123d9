//! Serializing minispark's own plan nodes.
//!
//! Stage plans travel to executors as datafusion-proto bytes. DataFusion's
//! own operators serialize themselves; minispark's nodes (shuffle reader and
//! writer) are encoded here as [`minispark_proto::ExtensionNode`] messages,
//! the built-in TPC-H and netflix scans by [`minispark_datagen::codec`],
//! and Iceberg scans by [`minispark_iceberg::codec`].

use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::common::{Result, internal_datafusion_err, internal_err};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{Partitioning, PhysicalExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr_with_converter;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use minispark_proto::{
    BlockList, BlockLocation as PbBlockLocation, CoalesceNode, ExtensionNode, FileWriteNode,
    IcebergScanNode, RangeSampleNode, ShuffleBlock, ShuffleReaderNode, ShuffleWriterNode,
    extension_node::Node,
};
use prost::Message;

use crate::ansi_arithmetic::{AnsiProtoConverter, ansi_enabled};
use crate::exchange::RangeSpec;
use crate::exchange::range::{decode_bounds, encode_bounds};
use crate::exchange::{BlockLocation, ExchangeKind, ShuffleReaderExec, ShuffleWriterExec};
use crate::repartition::coalesce::CoalesceExec;
use crate::repartition::range_sample::RangeSampleExec;
use crate::write::{CommitTarget, FileWriteExec};

/// The extension codec for minispark's plan nodes.
#[derive(Debug, Default, Clone)]
pub struct MinisparkCodec;

impl MinisparkCodec {
    fn encode_exprs(&self, exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Vec<Vec<u8>>> {
        exprs
            .iter()
            .map(|e| Ok(serialize_physical_expr(e, self)?.encode_to_vec()))
            .collect()
    }

    fn decode_exprs(
        &self,
        bytes: &[Vec<u8>],
        ctx: &TaskContext,
        schema: &Schema,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
        bytes
            .iter()
            .map(|b| {
                let node = protobuf::PhysicalExprNode::decode(b.as_slice())
                    .map_err(|e| internal_datafusion_err!("bad hash expression: {e}"))?;
                parse_physical_expr_with_converter(&node, schema, &decode_ctx, proto_converter)
            })
            .collect()
    }
}

fn encode_schema(schema: &Schema) -> Result<Vec<u8>> {
    Ok(protobuf::Schema::try_from(schema)?.encode_to_vec())
}

fn decode_schema(bytes: &[u8]) -> Result<Schema> {
    let proto =
        protobuf::Schema::decode(bytes).map_err(|e| internal_datafusion_err!("bad schema: {e}"))?;
    Ok(Schema::try_from(&proto)?)
}

impl PhysicalExtensionCodec for MinisparkCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node = ExtensionNode::decode(buf)
            .map_err(|e| internal_datafusion_err!("bad minispark plan node: {e}"))?;
        match node.node {
            Some(Node::ShuffleReader(r)) => {
                let schema = Arc::new(decode_schema(&r.schema)?);
                let kind = ExchangeKind::from_u32(r.kind)?;
                let n = r.num_partitions as usize;
                let partitioning = if r.hash_exprs.is_empty() {
                    Partitioning::UnknownPartitioning(n)
                } else {
                    Partitioning::Hash(
                        self.decode_exprs(&r.hash_exprs, ctx, &schema, proto_converter)?,
                        n,
                    )
                };
                let reader = ShuffleReaderExec::new_unordered(
                    r.stage_id as usize,
                    kind,
                    partitioning,
                    schema,
                );
                if r.resolved {
                    let partitions = r
                        .partitions
                        .into_iter()
                        .map(|list| list.blocks.into_iter().map(block_from_proto).collect())
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Arc::new(reader.resolved(partitions)?))
                } else {
                    Ok(Arc::new(reader))
                }
            }
            Some(Node::ShuffleWriter(w)) => {
                let [input] = inputs else {
                    return internal_err!(
                        "ShuffleWriterExec needs one input, got {}",
                        inputs.len()
                    );
                };
                let kind = ExchangeKind::from_u32(w.kind)?;
                if kind == ExchangeKind::Range {
                    let keys =
                        self.decode_exprs(&w.range_keys, ctx, &input.schema(), proto_converter)?;
                    if keys.len() != w.range_descending.len()
                        || keys.len() != w.range_nulls_first.len()
                    {
                        return internal_err!("a range shuffle's keys and directions differ");
                    }
                    let keys = keys
                        .into_iter()
                        .zip(w.range_descending.iter().zip(&w.range_nulls_first))
                        .map(|(expr, (desc, nulls_first))| {
                            datafusion::physical_expr::PhysicalSortExpr::new(
                                expr,
                                arrow::compute::SortOptions::new(*desc, *nulls_first),
                            )
                        })
                        .collect();
                    let bounds = if w.range_bounds.is_empty() {
                        None
                    } else {
                        Some(decode_bounds(&w.range_bounds)?)
                    };
                    return Ok(Arc::new(ShuffleWriterExec::try_new_range(
                        w.stage_id as usize,
                        Arc::clone(input),
                        w.num_partitions as usize,
                        RangeSpec {
                            keys,
                            bounds,
                            sampled_rows: w.range_sampled_rows,
                        },
                    )?));
                }
                let exprs =
                    self.decode_exprs(&w.hash_exprs, ctx, &input.schema(), proto_converter)?;
                Ok(Arc::new(ShuffleWriterExec::try_new(
                    w.stage_id as usize,
                    Arc::clone(input),
                    ExchangeKind::from_u32(w.kind)?,
                    w.num_partitions as usize,
                    exprs,
                )?))
            }
            Some(Node::Coalesce(c)) => {
                let [input] = inputs else {
                    return internal_err!("CoalesceExec needs one input, got {}", inputs.len());
                };
                Ok(Arc::new(CoalesceExec::new(
                    Arc::clone(input),
                    c.partitions as usize,
                    c.origin,
                )))
            }
            Some(Node::IcebergScan(scan)) => minispark_iceberg::codec::decode_scan(
                Arc::new(decode_schema(&scan.schema)?),
                &scan.scan,
            ),
            Some(Node::RangeSample(r)) => {
                let [input] = inputs else {
                    return internal_err!("RangeSampleExec needs one input, got {}", inputs.len());
                };
                let keys = self.decode_exprs(&r.keys, ctx, &input.schema(), proto_converter)?;
                Ok(Arc::new(RangeSampleExec::try_new(
                    Arc::clone(input),
                    keys,
                    r.per_partition as usize,
                )?))
            }
            Some(Node::FileWrite(w)) => {
                let [input] = inputs else {
                    return internal_err!("FileWriteExec needs one input, got {}", inputs.len());
                };
                let sink = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
                    &w.sink_plan,
                    ctx,
                    self,
                )?;
                let Some(sink) = sink.downcast_ref::<DataSinkExec>() else {
                    return internal_err!("a FileWriteNode must hold a DataSinkExec");
                };
                Ok(Arc::new(
                    FileWriteExec::from_sink_exec(Arc::clone(input), sink, w.write_id)?
                        .with_commit_target(CommitTarget::decode(&w.commit_target)?),
                ))
            }
            Some(scan @ (Node::TpchScan(_) | Node::NetflixScan(_))) => {
                minispark_datagen::codec::decode_scan(&scan)
                    .unwrap_or_else(|| internal_err!("not a built-in scan"))
            }
            None => internal_err!("empty minispark plan node"),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(r) = node.downcast_ref::<ShuffleReaderExec>() {
            let (n, hash_exprs) = match r.partitioning() {
                Partitioning::Hash(exprs, n) => (*n, self.encode_exprs(exprs)?),
                other => (other.partition_count(), vec![]),
            };
            let partitions = r
                .partitions()
                .map(|parts| {
                    parts
                        .iter()
                        .map(|blocks| BlockList {
                            blocks: blocks.iter().map(block_to_proto).collect(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Node::ShuffleReader(ShuffleReaderNode {
                stage_id: r.stage_id() as u32,
                schema: encode_schema(&r.schema())?,
                num_partitions: n as u32,
                hash_exprs,
                partitions,
                resolved: r.partitions().is_some(),
                kind: r.kind() as u32,
            })
        } else if let Some(w) = node.downcast_ref::<ShuffleWriterExec>() {
            let mut writer = ShuffleWriterNode {
                stage_id: w.stage_id() as u32,
                kind: w.kind() as u32,
                num_partitions: w.num_partitions() as u32,
                hash_exprs: self.encode_exprs(w.hash_exprs())?,
                ..Default::default()
            };
            if let Some(range) = w.range() {
                let exprs: Vec<_> = range.keys.iter().map(|k| Arc::clone(&k.expr)).collect();
                writer.range_keys = self.encode_exprs(&exprs)?;
                writer.range_descending = range.keys.iter().map(|k| k.options.descending).collect();
                writer.range_nulls_first =
                    range.keys.iter().map(|k| k.options.nulls_first).collect();
                writer.range_bounds = match &range.bounds {
                    Some(bounds) => encode_bounds(bounds)?,
                    None => vec![],
                };
                writer.range_sampled_rows = range.sampled_rows;
            }
            Node::ShuffleWriter(writer)
        } else if let Some(r) = node.downcast_ref::<RangeSampleExec>() {
            Node::RangeSample(RangeSampleNode {
                keys: self.encode_exprs(r.keys())?,
                per_partition: r.per_partition() as u32,
            })
        } else if let Some(c) = node.downcast_ref::<CoalesceExec>() {
            Node::Coalesce(CoalesceNode {
                partitions: c.requested() as u32,
                origin: c.origin().to_string(),
            })
        } else if let Some(w) = node.downcast_ref::<FileWriteExec>() {
            Node::FileWrite(FileWriteNode {
                sink_plan: datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
                    Arc::new(w.sink_exec()),
                    self,
                )?
                .to_vec(),
                write_id: w.write_id().to_string(),
                commit_target: w.commit_target().encode(),
            })
        } else if let Some(scan) = minispark_datagen::codec::encode_scan(node.as_ref()) {
            scan
        } else if let Some(scan) = minispark_iceberg::codec::encode_scan(node.as_ref()) {
            let (schema, scan) = scan?;
            Node::IcebergScan(IcebergScanNode {
                schema: encode_schema(&schema)?,
                scan,
            })
        } else {
            return internal_err!("minispark cannot serialize plan node {}", node.name());
        };
        ExtensionNode {
            node: Some(encoded),
        }
        .encode(buf)
        .map_err(|e| internal_datafusion_err!("encoding plan node: {e}"))
    }
}

fn block_to_proto(b: &BlockLocation) -> PbBlockLocation {
    PbBlockLocation {
        executor_id: b.executor_id.clone(),
        address: b.address.clone(),
        block: Some(ShuffleBlock {
            job_id: b.job_id.clone(),
            stage_id: b.stage_id as u32,
            map_partition: b.map_partition as u32,
            reduce_partition: b.reduce_partition as u32,
            map_attempt: b.map_attempt,
        }),
        bytes: b.bytes,
        rows: b.rows,
    }
}

fn block_from_proto(b: PbBlockLocation) -> Result<BlockLocation> {
    let block = b
        .block
        .ok_or_else(|| internal_datafusion_err!("block location without a block"))?;
    Ok(BlockLocation {
        executor_id: b.executor_id,
        address: b.address,
        job_id: block.job_id,
        stage_id: block.stage_id as usize,
        map_partition: block.map_partition as usize,
        reduce_partition: block.reduce_partition as usize,
        map_attempt: block.map_attempt,
        bytes: b.bytes,
        rows: b.rows,
    })
}

/// Serializes a stage plan for the wire.
pub fn encode_plan(plan: Arc<dyn ExecutionPlan>) -> Result<Vec<u8>> {
    Ok(
        datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
            plan,
            &MinisparkCodec,
        )?
        .to_vec(),
    )
}

/// Deserializes a stage plan received from the driver. Integer `+`, `-`,
/// `*` check for overflow when the task's `minispark.sql.ansi.enabled` is
/// on (see [`crate::ansi_arithmetic`]).
pub fn decode_plan(bytes: &[u8], ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
    let converter = AnsiProtoConverter {
        ansi: ansi_enabled(ctx.session_config().options()),
    };
    datafusion_proto::bytes::physical_plan_from_bytes_with_proto_converter(
        bytes,
        ctx,
        &MinisparkCodec,
        &converter,
    )
}
