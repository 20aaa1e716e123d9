//! Fetching one shuffle block whole over gRPC, with retries: Spark's
//! `RetryingBlockTransferor`.
//!
//! A fetch that fails for a passing reason (the executor unreachable, busy,
//! the connection reset mid-stream) is tried again after a wait that doubles
//! each time, up to a number of retries (`minispark.shuffle.io.maxRetries`,
//! `minispark.shuffle.io.retryWait`). An executor that answers `NotFound`
//! does not have the block: that is final, and reported as
//! [`BlockFetchError::Missing`] so the caller can have the block's map
//! output computed again. Errors that retrying cannot cure (a wrong secret,
//! an invalid request, a message over its size limit) are not retried. A
//! try that hangs (no answer or chunk for
//! `minispark.shuffle.io.connectionTimeout`) fails with `DeadlineExceeded`
//! and is retried like a passing error.

use std::time::Duration;

use tonic::{Code, Status};
use tracing::warn;

use crate::executor_client::ExecutorClient;
use crate::{AuthChannel, ShuffleBlock};

/// Why a block could not be fetched.
#[derive(Debug)]
pub enum BlockFetchError {
    /// The executor answered that it does not have the block: not retried.
    Missing(Status),
    /// The last error of `tries` tries (retrying did not help, or could not).
    Failed { status: Status, tries: u32 },
}

impl BlockFetchError {
    pub fn status(&self) -> &Status {
        match self {
            Self::Missing(status) | Self::Failed { status, .. } => status,
        }
    }
}

impl std::fmt::Display for BlockFetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(status) => write!(f, "block not found: {}", status.message()),
            Self::Failed { status, tries } => write!(
                f,
                "{} ({:?}) after {tries} {}",
                status.message(),
                status.code(),
                if *tries == 1 { "try" } else { "tries" }
            ),
        }
    }
}

/// Whether a fetch that failed with `status` may succeed when tried again.
pub fn is_retryable(status: &Status) -> bool {
    !matches!(
        status.code(),
        Code::NotFound
            | Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::Unimplemented
            | Code::OutOfRange
            | Code::FailedPrecondition
    )
}

/// Where a fetch puts the chunks of a block as they arrive: memory
/// (`Vec<Vec<u8>>`), or a file for a block too large for memory (Spark's
/// `spark.network.maxRemoteBlockSizeFetchToMem`). A try that fails after
/// some chunks starts the sink over.
pub trait ChunkSink {
    /// A try begins: drop what an earlier try put.
    fn restart(&mut self) -> std::io::Result<()>;
    /// The next chunk of the block.
    fn put(&mut self, chunk: Vec<u8>) -> std::io::Result<()>;
}

impl ChunkSink for Vec<Vec<u8>> {
    fn restart(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }

    fn put(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        self.push(chunk);
        Ok(())
    }
}

/// Why a block could not be fetched into a sink.
#[derive(Debug)]
pub enum FetchIntoError {
    /// The fetch failed (see [`BlockFetchError`]).
    Fetch(BlockFetchError),
    /// The sink could not take a chunk (a local disk error): the reading
    /// task fails, the executor that served the block is not to blame.
    Sink(std::io::Error),
}

/// Every chunk of `block`'s bytes from the executor behind `client`; a
/// failed try is retried at most `max_retries` times, the n-th retry after
/// `backoff(n)`. The whole block is held in memory: callers bound how many
/// bytes they fetch at once.
pub async fn fetch_block(
    client: &mut ExecutorClient<AuthChannel>,
    block: &ShuffleBlock,
    max_retries: u32,
    backoff: impl Fn(u32) -> Duration,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, BlockFetchError> {
    let mut chunks = vec![];
    match fetch_block_into(client, block, max_retries, backoff, timeout, &mut chunks).await {
        Ok(()) => Ok(chunks),
        Err(FetchIntoError::Fetch(e)) => Err(e),
        Err(FetchIntoError::Sink(e)) => Err(BlockFetchError::Failed {
            status: Status::internal(format!("keeping a fetched block in memory: {e}")),
            tries: 1,
        }),
    }
}

/// [`fetch_block`] into `sink`, chunk by chunk as they arrive: with a file
/// sink, a block of any size takes one chunk of memory.
pub async fn fetch_block_into(
    client: &mut ExecutorClient<AuthChannel>,
    block: &ShuffleBlock,
    max_retries: u32,
    backoff: impl Fn(u32) -> Duration,
    timeout: Duration,
    sink: &mut impl ChunkSink,
) -> Result<(), FetchIntoError> {
    let mut retry = 0;
    loop {
        sink.restart().map_err(FetchIntoError::Sink)?;
        let status = match fetch_once(client, block, timeout, sink).await {
            Ok(()) => return Ok(()),
            Err(FetchIntoError::Sink(e)) => return Err(FetchIntoError::Sink(e)),
            Err(FetchIntoError::Fetch(e)) => e.status().clone(),
        };
        if status.code() == Code::NotFound {
            return Err(FetchIntoError::Fetch(BlockFetchError::Missing(status)));
        }
        if !is_retryable(&status) || retry >= max_retries {
            return Err(FetchIntoError::Fetch(BlockFetchError::Failed {
                status,
                tries: retry + 1,
            }));
        }
        retry += 1;
        let wait = backoff(retry);
        warn!(
            job_id = block.job_id,
            stage = block.stage_id,
            map = block.map_partition,
            reduce = block.reduce_partition,
            retry,
            max_retries,
            wait_ms = wait.as_millis() as u64,
            code = ?status.code(),
            error = status.message(),
            "shuffle fetch failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// One try: the block's chunks into `sink`, or the first error. Each
/// answer (the stream's start, then each chunk) must come within
/// `timeout`, or the try fails with `DeadlineExceeded` (retryable).
async fn fetch_once(
    client: &mut ExecutorClient<AuthChannel>,
    block: &ShuffleBlock,
    timeout: Duration,
    sink: &mut impl ChunkSink,
) -> Result<(), FetchIntoError> {
    let hung = || {
        FetchIntoError::Fetch(BlockFetchError::Failed {
            status: Status::deadline_exceeded(format!(
                "the executor sent nothing for {} ms \
                 (minispark.shuffle.io.connectionTimeout)",
                timeout.as_millis()
            )),
            tries: 1,
        })
    };
    let failed = |status| FetchIntoError::Fetch(BlockFetchError::Failed { status, tries: 1 });
    let mut stream = tokio::time::timeout(timeout, client.fetch_partition(block.clone()))
        .await
        .map_err(|_| hung())?
        .map_err(failed)?
        .into_inner();
    while let Some(chunk) = tokio::time::timeout(timeout, stream.message())
        .await
        .map_err(|_| hung())?
        .map_err(failed)?
    {
        sink.put(chunk.data).map_err(FetchIntoError::Sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_errors_are_retried() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Internal,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Aborted,
        ] {
            assert!(is_retryable(&Status::new(code, "x")), "{code:?}");
        }
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::ResourceExhausted,
        ] {
            assert!(!is_retryable(&Status::new(code, "x")), "{code:?}");
        }
    }
}
