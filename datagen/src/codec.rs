//! The built-in scans on the wire.
//!
//! A stage plan reaches an executor as datafusion-proto bytes; DataFusion
//! cannot serialize a node it does not know, so the planner's codec asks
//! this module for the two scans of this crate. A scan travels as *what to
//! generate* (table, scale, skew, seed, partitions, projection, batch
//! size), never as data: the executor rebuilds the node and generates its
//! partition itself.
//!
//! ```text
//!  driver: TpchScanExec ──encode_scan──▶ TpchScanNode { table, sf, .. } ──▶ executor
//!  executor: TpchScanNode ──decode_scan──▶ TpchScanExec ──execute(p)──▶ rows of part p
//! ```

use std::sync::Arc;

use datafusion::common::{Result, internal_datafusion_err};
use datafusion::physical_plan::ExecutionPlan;
use minispark_proto::extension_node::Node;
use minispark_proto::{NetflixScanNode, TpchScanNode};

use crate::netflix::{NetflixParams, NetflixScanExec, NetflixTable};
use crate::tpch::{TpchScanExec, TpchTable};

/// The wire form of `node` when it is one of this crate's scans, else `None`.
pub fn encode_scan(node: &dyn ExecutionPlan) -> Option<Node> {
    if let Some(t) = node.downcast_ref::<TpchScanExec>() {
        Some(Node::TpchScan(TpchScanNode {
            table: t.table().name().to_string(),
            scale_factor: t.scale_factor(),
            num_partitions: t.num_partitions() as u32,
            projection: encode_projection(t.projection()),
            has_projection: t.projection().is_some(),
            batch_size: t.batch_size() as u32,
        }))
    } else if let Some(t) = node.downcast_ref::<NetflixScanExec>() {
        let params = t.params();
        Some(Node::NetflixScan(NetflixScanNode {
            table: t.table().name().to_string(),
            scale: params.scale,
            skew: params.skew,
            seed: params.seed,
            num_partitions: t.num_partitions() as u32,
            projection: encode_projection(t.projection()),
            has_projection: t.projection().is_some(),
            batch_size: t.batch_size() as u32,
        }))
    } else {
        None
    }
}

/// The scan `node` describes, when it is one of this crate's; `None` for
/// any other node. A scan node from the network is checked like any other
/// input: an unknown table or bad parameters are an error, not a panic.
pub fn decode_scan(node: &Node) -> Option<Result<Arc<dyn ExecutionPlan>>> {
    match node {
        Node::TpchScan(t) => Some(decode_tpch(t)),
        Node::NetflixScan(t) => Some(decode_netflix(t)),
        _ => None,
    }
}

fn decode_tpch(t: &TpchScanNode) -> Result<Arc<dyn ExecutionPlan>> {
    let table = TpchTable::from_name(&t.table)
        .ok_or_else(|| internal_datafusion_err!("unknown TPC-H table {}", t.table))?;
    Ok(Arc::new(TpchScanExec::try_new(
        table,
        t.scale_factor,
        t.num_partitions as usize,
        decode_projection(t.has_projection, &t.projection),
        t.batch_size as usize,
    )?))
}

fn decode_netflix(t: &NetflixScanNode) -> Result<Arc<dyn ExecutionPlan>> {
    let table = NetflixTable::from_name(&t.table)
        .ok_or_else(|| internal_datafusion_err!("unknown netflix table {}", t.table))?;
    Ok(Arc::new(NetflixScanExec::try_new(
        table,
        NetflixParams::try_new(t.scale, t.skew, t.seed)?,
        t.num_partitions as usize,
        decode_projection(t.has_projection, &t.projection),
        t.batch_size as usize,
    )?))
}

fn encode_projection(projection: Option<&Vec<usize>>) -> Vec<u32> {
    projection
        .map(|p| p.iter().map(|&i| i as u32).collect())
        .unwrap_or_default()
}

/// Proto3 cannot tell an empty list from a missing one, hence the flag: an
/// empty projection (`SELECT count(*)`) is not "all columns".
fn decode_projection(has_projection: bool, projection: &[u32]) -> Option<Vec<usize>> {
    has_projection.then(|| projection.iter().map(|&i| i as usize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::TaskContext;
    use datafusion::physical_plan::collect_partitioned;

    fn round_trip(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let node = encode_scan(plan.as_ref()).expect("a built-in scan");
        decode_scan(&node).expect("a built-in scan node").unwrap()
    }

    #[tokio::test]
    async fn scans_round_trip_and_generate_the_same_rows() {
        let task = Arc::new(TaskContext::default());
        let params = NetflixParams::try_new(0.001, 0.5, 7).unwrap();
        let netflix: Arc<dyn ExecutionPlan> = Arc::new(
            NetflixScanExec::try_new(
                NetflixTable::ViewingEvents,
                params,
                3,
                Some(vec![0, 5]),
                500,
            )
            .unwrap(),
        );
        let decoded = round_trip(Arc::clone(&netflix));
        let scan = decoded.downcast_ref::<NetflixScanExec>().unwrap();
        assert_eq!(scan.table(), NetflixTable::ViewingEvents);
        assert_eq!(scan.params(), params);
        assert_eq!(scan.num_partitions(), 3);
        assert_eq!(scan.projection(), Some(&vec![0, 5]));
        assert_eq!(scan.batch_size(), 500);
        let a = collect_partitioned(netflix, Arc::clone(&task))
            .await
            .unwrap();
        let b = collect_partitioned(decoded, Arc::clone(&task))
            .await
            .unwrap();
        assert_eq!(a, b);

        let tpch: Arc<dyn ExecutionPlan> =
            Arc::new(TpchScanExec::try_new(TpchTable::Nation, 0.01, 2, None, 1024).unwrap());
        let decoded = round_trip(Arc::clone(&tpch));
        let scan = decoded.downcast_ref::<TpchScanExec>().unwrap();
        assert_eq!(scan.projection(), None);
        let a = collect_partitioned(tpch, Arc::clone(&task)).await.unwrap();
        let b = collect_partitioned(decoded, task).await.unwrap();
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn an_empty_projection_keeps_the_row_count() {
        let exec = NetflixScanExec::try_new(
            NetflixTable::Users,
            NetflixParams::with_scale(0.001),
            2,
            Some(vec![]),
            100,
        )
        .unwrap();
        let decoded = round_trip(Arc::new(exec));
        let out = collect_partitioned(decoded, Arc::new(TaskContext::default()))
            .await
            .unwrap();
        let rows: usize = out.iter().flatten().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 1000);
    }

    #[test]
    fn bad_nodes_are_errors() {
        let bad_table = Node::TpchScan(TpchScanNode {
            table: "no_such_table".into(),
            scale_factor: 1.0,
            num_partitions: 1,
            projection: vec![],
            has_projection: false,
            batch_size: 1024,
        });
        assert!(decode_scan(&bad_table).unwrap().is_err());
        let bad_skew = Node::NetflixScan(NetflixScanNode {
            table: "users".into(),
            scale: 0.001,
            skew: -1.0,
            seed: 1,
            num_partitions: 1,
            projection: vec![],
            has_projection: false,
            batch_size: 1024,
        });
        assert!(decode_scan(&bad_skew).unwrap().is_err());
    }
}
