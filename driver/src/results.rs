//! Reading a finished job's result blocks back to the driver, once their
//! total size is within `minispark.driver.maxResultSize`.

use arrow::array::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use minispark_planner::exchange::{FetchSettings, MapOutput};
use minispark_planner::ipc::decode_chunk_stream;
use minispark_proto::block_fetch::BlockFetchError;
use minispark_proto::{Security, ShuffleBlock};

use crate::ids::{JobId, StageId};

/// Fails when the result blocks of a job hold more than `limit` bytes
/// (`minispark.driver.maxResultSize`; 0 is no limit), as Spark fails a job
/// whose results exceed `spark.driver.maxResultSize`.
pub fn check_result_size(outputs: &[MapOutput], limit: u64) -> Result<()> {
    let blocks = outputs
        .iter()
        .flat_map(|o| o.blocks.iter())
        .filter(|b| b.rows > 0);
    let (count, bytes) = blocks.fold((0u64, 0u64), |(n, total), b| {
        (n + 1, total.saturating_add(b.bytes))
    });
    if limit > 0 && bytes > limit {
        return Err(DataFusionError::Execution(format!(
            "the job's result ({bytes} bytes in {count} blocks) is bigger than \
             minispark.driver.maxResultSize ({}): raise it (SET minispark.driver.maxResultSize = ...) \
             or write the result to files with COPY (...) TO",
            minispark_planner::config::show_size(limit)
        )));
    }
    Ok(())
}

/// Streams the batches of the result blocks, partition after partition;
/// a fetch failing for a passing reason is retried as `fetch` says.
pub fn read_result(
    job_id: JobId,
    stage_id: StageId,
    outputs: Vec<MapOutput>,
    security: Security,
    fetch: FetchSettings,
) -> BoxStream<'static, Result<RecordBatch>> {
    let blocks: Vec<(String, ShuffleBlock)> = outputs
        .into_iter()
        .flat_map(|o| {
            let job_id = job_id.to_string();
            o.blocks
                .into_iter()
                .filter(|b| b.rows > 0)
                .map(move |b| {
                    (
                        o.address.clone(),
                        ShuffleBlock {
                            job_id: job_id.clone(),
                            stage_id: stage_id.0 as u32,
                            map_partition: o.map_partition as u32,
                            reduce_partition: b.reduce_partition as u32,
                            map_attempt: o.attempt,
                        },
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    futures::stream::iter(blocks)
        .map(move |(address, block)| fetch_block(address, block, security.clone(), fetch))
        .flatten()
        .boxed()
}

/// Every batch of one block, fetched whole from the executor that holds
/// it (with retries, see `minispark_proto::block_fetch`).
pub fn fetch_block(
    address: String,
    block: ShuffleBlock,
    security: Security,
    fetch: FetchSettings,
) -> BoxStream<'static, Result<RecordBatch>> {
    let fut = async move {
        let mut client = minispark_proto::executor_client(&address, &security)?;
        let chunks = minispark_proto::block_fetch::fetch_block(
            &mut client,
            &block,
            fetch.max_retries,
            |n| fetch.backoff(n),
        )
        .await
        .map_err(|e| match e {
            BlockFetchError::Missing(s) | BlockFetchError::Failed { status: s, .. } => {
                minispark_proto::from_status(s, &address)
            }
        })?;
        let chunks =
            futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
        Ok::<_, DataFusionError>(decode_chunk_stream(chunks, |e| match e {}))
    };
    futures::stream::once(fut).try_flatten().boxed()
}
