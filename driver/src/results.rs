//! Reading a finished job's result blocks back to the driver, once their
//! total size is within `minispark.driver.maxResultSize`; result blocks
//! lost before they were read are computed again ([`ResultReader`]).

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use minispark_planner::exchange::{FetchSettings, MapOutput};
use minispark_planner::ipc::decode_chunk_stream;
use minispark_proto::block_fetch::BlockFetchError;
use minispark_proto::{Security, ShuffleBlock};
use tracing::warn;

use crate::ids::{JobId, StageId};
use crate::job_counters::JobCounters;
use crate::scheduler::FinishedJob;

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

/// Reads a finished job's result blocks, output after output, block after
/// block. A block that cannot be read (its executor died after the final
/// stage finished, or answers that it does not have it) is not the end of
/// the job: its task, and any lost input that task needs, runs again
/// ([`FinishedJob::recompute_results`]), and reading goes on from that
/// block, at most `max_recomputes` times. Blocks are fetched whole before
/// their batches are emitted, so no batch is emitted twice.
pub struct ResultReader {
    pub job: FinishedJob,
    pub job_id: JobId,
    pub stage_id: StageId,
    pub security: Security,
    pub fetch: FetchSettings,
    pub max_recomputes: u32,
    /// The session's counters of its last job, brought up to date after a
    /// recomputation.
    pub last_job: Arc<Mutex<Option<JobCounters>>>,
}

/// Where a [`ResultReader`] is.
struct ReadState {
    reader: ResultReader,
    outputs: Vec<MapOutput>,
    /// The output being read, and how many of its non-empty blocks are read.
    output: usize,
    block: usize,
    recomputes: u32,
    /// The batches of the block being read.
    batches: Option<BoxStream<'static, Result<RecordBatch>>>,
    done: bool,
}

impl ResultReader {
    /// The batches of the final stage's `outputs`, in order.
    pub fn read(self, outputs: Vec<MapOutput>) -> BoxStream<'static, Result<RecordBatch>> {
        let state = ReadState {
            reader: self,
            outputs,
            output: 0,
            block: 0,
            recomputes: 0,
            batches: None,
            done: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                if let Some(batches) = st.batches.as_mut() {
                    match batches.next().await {
                        Some(Ok(batch)) => return Some((Ok(batch), st)),
                        Some(Err(e)) => {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                        None => {
                            st.batches = None;
                            st.block += 1;
                            continue;
                        }
                    }
                }
                let output = st.outputs.get(st.output)?;
                let Some(block) = output.blocks.iter().filter(|b| b.rows > 0).nth(st.block) else {
                    st.output += 1;
                    st.block = 0;
                    continue;
                };
                let wire = ShuffleBlock {
                    job_id: st.reader.job_id.to_string(),
                    stage_id: st.reader.stage_id.0 as u32,
                    map_partition: output.map_partition as u32,
                    reduce_partition: block.reduce_partition as u32,
                    map_attempt: output.attempt,
                };
                let address = output.address.clone();
                match fetch_chunks(&address, &wire, &st.reader.security, st.reader.fetch).await {
                    Ok(chunks) => {
                        let chunks = futures::stream::iter(
                            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
                        );
                        st.batches = Some(decode_chunk_stream(chunks, |e| match e {}));
                    }
                    Err(e) => {
                        if let Err(e) = st.recover(e, &address).await {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                }
            }
        })
        .boxed()
    }
}

impl ReadState {
    /// The block being read could not be fetched: its output, and the
    /// outputs after it on the same executor, are computed again.
    async fn recover(&mut self, error: BlockFetchError, address: &str) -> Result<()> {
        let failed = &self.outputs[self.output];
        if self.recomputes >= self.reader.max_recomputes {
            return Err(DataFusionError::Execution(format!(
                "cannot read the result of task {} of job {} after computing lost results \
                 {} times (minispark.task.maxFailures): {}",
                failed.map_partition,
                self.reader.job_id,
                self.recomputes,
                minispark_proto::from_status(error.status().clone(), address)
            )));
        }
        self.recomputes += 1;
        warn!(
            job_id = %self.reader.job_id,
            partition = failed.map_partition,
            executor_id = failed.executor_id,
            error = %error,
            "cannot read a result block; computing it again"
        );
        let lost: Vec<MapOutput> = self.outputs[self.output..]
            .iter()
            .filter(|o| o.executor_id == failed.executor_id)
            .cloned()
            .collect();
        let output = self.reader.job.recompute_results(&lost).await;
        *self.reader.last_job.lock().expect("last job lock") = Some(self.reader.job.counters());
        let output = output?;
        if output.result.len() != self.outputs.len() {
            return Err(DataFusionError::Internal(format!(
                "job {}: {} result outputs after recomputing, {} before",
                self.reader.job_id,
                output.result.len(),
                self.outputs.len()
            )));
        }
        self.outputs = output.result;
        Ok(())
    }
}

/// Every chunk of one block, fetched whole from the executor at `address`
/// (with retries, see `minispark_proto::block_fetch`).
async fn fetch_chunks(
    address: &str,
    block: &ShuffleBlock,
    security: &Security,
    fetch: FetchSettings,
) -> std::result::Result<Vec<Vec<u8>>, BlockFetchError> {
    let mut client = minispark_proto::executor_client(address, security).map_err(|e| {
        BlockFetchError::Failed {
            status: tonic::Status::unavailable(e.to_string()),
            tries: 1,
        }
    })?;
    minispark_proto::block_fetch::fetch_block(
        &mut client,
        block,
        fetch.max_retries,
        |n| fetch.backoff(n),
        fetch.connection_timeout,
    )
    .await
}
