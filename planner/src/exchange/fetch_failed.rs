//! [`FetchFailed`]: a task could not read a block of another stage's output.
//!
//! When the block is really gone (the executor holding it answered that it
//! does not have it: [`FetchFailed::missing`]), that is not the task's
//! fault: the driver computes that map output again and then reruns the
//! task, rather than count a failure against the task. Spark has the same
//! distinction (`FetchFailedException` becomes a `FetchFailed` task end
//! reason that resubmits the map stage). When the executor could not be
//! reached, even after the fetch's retries ([`FetchFailed::unreachable`]),
//! the driver asks its own view of the cluster: an executor it knows to be
//! lost has its outputs recomputed; one that is alive is not evicted, and
//! the task fails (and is retried) as for any other error.
//!
//! The error is typed, not a message to match: the executor's shuffle
//! reader returns it as `DataFusionError::External`, DataFusion may wrap it
//! on its way out of the plan (`Context`, `Shared`, `ArrowError::ExternalError`,
//! ...), and [`FetchFailed::find`] walks the error chain and downcasts. A
//! user's value that happens to contain the text "FetchFailed(" is only text.

use std::error::Error;
use std::fmt;

use datafusion::common::DataFusionError;

use super::BlockLocation;

/// A shuffle block that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailed {
    /// The executor that held the block: its output must be recomputed.
    pub executor_id: String,
    /// The block that could not be read.
    pub block: BlockLocation,
    /// What went wrong (the I/O or gRPC error).
    pub message: String,
    /// True when the block is gone (its executor answered that it does not
    /// have it); false when its executor could not be reached.
    pub missing: bool,
}

impl FetchFailed {
    /// The executor holding `block` answered that it does not have it.
    pub fn missing(block: &BlockLocation, message: impl fmt::Display) -> Self {
        Self {
            executor_id: block.executor_id.clone(),
            block: block.clone(),
            message: message.to_string(),
            missing: true,
        }
    }

    /// The executor holding `block` could not be reached (after retries).
    pub fn unreachable(block: &BlockLocation, message: impl fmt::Display) -> Self {
        Self {
            missing: false,
            ..Self::missing(block, message)
        }
    }

    /// The fetch failure somewhere in `err`'s chain of causes, if there is one.
    pub fn find(err: &DataFusionError) -> Option<&FetchFailed> {
        find_in(err)
    }
}

/// Depth-first through the causes of `err`: `source()` for the usual
/// wrappers, every error of a `DataFusionError::Collection`, and the error
/// inside an `io::Error` (whose `source()` skips it).
fn find_in<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a FetchFailed> {
    if let Some(found) = err.downcast_ref::<FetchFailed>() {
        return Some(found);
    }
    if let Some(DataFusionError::Collection(errors)) = err.downcast_ref::<DataFusionError>() {
        return errors.iter().find_map(|e| find_in(e));
    }
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        return find_in(inner);
    }
    err.source().and_then(find_in)
}

impl fmt::Display for FetchFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.block;
        write!(
            f,
            "FetchFailed({}): cannot read block stage {} map {} reduce {} from executor {} at {}: {}",
            self.executor_id,
            b.stage_id,
            b.map_partition,
            b.reduce_partition,
            b.executor_id,
            b.address,
            self.message
        )
    }
}

impl Error for FetchFailed {}

impl From<FetchFailed> for DataFusionError {
    fn from(e: FetchFailed) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::error::ArrowError;

    use super::*;

    fn fetch_failed() -> FetchFailed {
        let block = BlockLocation {
            executor_id: "exec-1".into(),
            address: "127.0.0.1:1".into(),
            job_id: "job-1".into(),
            stage_id: 2,
            map_partition: 3,
            reduce_partition: 4,
            map_attempt: 0,
            bytes: 10,
            rows: 1,
        };
        FetchFailed::unreachable(&block, "connection refused")
    }

    #[test]
    fn is_found_through_every_wrapper() {
        let expected = fetch_failed();
        let wrapped: Vec<DataFusionError> = vec![
            expected.clone().into(),
            DataFusionError::from(expected.clone()).context("reading the join's build side"),
            DataFusionError::Shared(Arc::new(expected.clone().into())),
            DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(DataFusionError::from(
                    expected.clone(),
                )))),
                None,
            ),
            DataFusionError::External(Box::new(std::io::Error::other(DataFusionError::from(
                expected.clone(),
            )))),
            DataFusionError::Collection(vec![
                DataFusionError::Execution("another task's error".into()),
                DataFusionError::Shared(Arc::new(expected.clone().into())),
            ]),
        ];
        for err in &wrapped {
            assert_eq!(FetchFailed::find(err), Some(&expected), "{err}");
        }
        assert!(
            wrapped[1]
                .to_string()
                .contains("FetchFailed(exec-1): cannot read block stage 2 map 3 reduce 4")
        );
    }

    #[test]
    fn text_that_looks_like_one_is_not_one() {
        for err in [
            DataFusionError::Execution(
                "Cast error: 'FetchFailed(exec-1): x' is not an Int32".into(),
            ),
            DataFusionError::ArrowError(
                Box::new(ArrowError::CastError("FetchFailed(exec-1): x".into())),
                None,
            ),
            DataFusionError::External("FetchFailed(exec-1): x".into()),
        ] {
            assert_eq!(FetchFailed::find(&err), None, "{err}");
        }
    }
}
