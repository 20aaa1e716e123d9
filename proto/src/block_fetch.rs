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
    let mut retry = 0;
    loop {
        let status = match fetch_once(client, block, timeout).await {
            Ok(chunks) => return Ok(chunks),
            Err(status) => status,
        };
        if status.code() == Code::NotFound {
            return Err(BlockFetchError::Missing(status));
        }
        if !is_retryable(&status) || retry >= max_retries {
            return Err(BlockFetchError::Failed {
                status,
                tries: retry + 1,
            });
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

/// One try: the block's chunks, or the first error. Each answer (the
/// stream's start, then each chunk) must come within `timeout`, or the try
/// fails with `DeadlineExceeded` (retryable).
async fn fetch_once(
    client: &mut ExecutorClient<AuthChannel>,
    block: &ShuffleBlock,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, Status> {
    let hung = || {
        Status::deadline_exceeded(format!(
            "the executor sent nothing for {} ms \
             (minispark.shuffle.io.connectionTimeout)",
            timeout.as_millis()
        ))
    };
    let mut stream = tokio::time::timeout(timeout, client.fetch_partition(block.clone()))
        .await
        .map_err(|_| hung())??
        .into_inner();
    let mut chunks = vec![];
    while let Some(chunk) = tokio::time::timeout(timeout, stream.message())
        .await
        .map_err(|_| hung())??
    {
        chunks.push(chunk.data);
    }
    Ok(chunks)
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
