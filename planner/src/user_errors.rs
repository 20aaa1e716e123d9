//! How errors read to a user, and which of them a retry cannot cure.
//!
//! * [`user_error`]: DataFusion's "Internal error ... please file a bug
//!   report" ending is for DataFusion's developers; a minispark user gets
//!   the same message without the request, as a plain execution error.
//! * [`is_deterministic`]: an error that depends only on the data and the
//!   plan (a division by zero, a bad cast, a value out of range, a plan
//!   that cannot run, memory exhausted by what the task must hold) fails
//!   the same way on every attempt, so its job fails at once instead of
//!   being retried `minispark.task.maxFailures` times. Transport, I/O,
//!   object store, lost-executor and fetch failures are retried. The
//!   decision is made from the error's type (the deepest error of its
//!   chain of causes), never from its text.

use std::error::Error;

use arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use datafusion::parquet::errors::ParquetError;

use crate::exchange::FetchFailed;

/// `err` without DataFusion's request to report a bug: an internal error
/// keeps its message and becomes an execution error, wherever it sits in
/// a chain of contexts.
pub fn user_error(err: DataFusionError) -> DataFusionError {
    match err {
        DataFusionError::Internal(message) => {
            DataFusionError::Execution(format!("minispark cannot run this: {}", message.trim()))
        }
        DataFusionError::Context(context, inner) => {
            DataFusionError::Context(context, Box::new(user_error(*inner)))
        }
        DataFusionError::Diagnostic(diagnostic, inner) => {
            DataFusionError::Diagnostic(diagnostic, Box::new(user_error(*inner)))
        }
        other => other,
    }
}

/// The text of `err` for a user: [`user_error`]'s, for errors that are
/// only shown (an executor's task failure, sent to the driver as text).
pub fn user_message(err: &DataFusionError) -> String {
    const BUG_REQUEST: &str = ".\nThis issue was likely caused by a bug in DataFusion's code.";
    let text = err.to_string();
    // An internal error deep in a chain (inside an Arrow or Parquet error)
    // cannot be rebuilt: its message is cut before the request.
    let text = match text.find(BUG_REQUEST) {
        Some(at) => {
            let rest = &text[at + BUG_REQUEST.len()..];
            // Drop the rest of the request's sentence (up to its URL line).
            let after = rest.find("/issues").map(|i| &rest[i + "/issues".len()..]);
            format!("{}{}", &text[..at], after.unwrap_or(""))
        }
        None => text,
    };
    text.replace("Internal error: ", "minispark cannot run this: ")
}

/// True when `err` depends only on the data and the plan: retrying it
/// would fail the same way. See the module docs.
pub fn is_deterministic(err: &DataFusionError) -> bool {
    if FetchFailed::find(err).is_some() {
        return false;
    }
    // The deepest error of the chain decides.
    let mut root: &(dyn Error + 'static) = err;
    while let Some(source) = root.source() {
        root = source;
    }
    if let Some(e) = root.downcast_ref::<DataFusionError>() {
        return matches!(
            e,
            DataFusionError::Plan(_)
                | DataFusionError::SchemaError(..)
                | DataFusionError::NotImplemented(_)
                | DataFusionError::Configuration(_)
                | DataFusionError::SQL(..)
                | DataFusionError::Execution(_)
                | DataFusionError::ResourcesExhausted(_)
        );
    }
    if let Some(e) = root.downcast_ref::<ArrowError>() {
        return matches!(
            e,
            ArrowError::DivideByZero
                | ArrowError::CastError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::ParseError(_)
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::InvalidArgumentError(_)
                | ArrowError::CsvError(_)
                | ArrowError::JsonError(_)
                | ArrowError::SchemaError(_)
                | ArrowError::NotYetImplemented(_)
                | ArrowError::DictionaryKeyOverflowError
                | ArrowError::RunEndIndexOverflowError
                | ArrowError::OffsetOverflowError(_)
        );
    }
    if let Some(e) = root.downcast_ref::<ParquetError>() {
        return matches!(
            e,
            ParquetError::General(_)
                | ParquetError::NYI(_)
                | ParquetError::EOF(_)
                | ParquetError::ArrowError(_)
                | ParquetError::IndexOutOfBound(..)
        );
    }
    // I/O, object stores, gRPC, joins of panicked tasks, anything unknown:
    // may pass, so retried.
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_are_deterministic_and_io_errors_are_not() {
        let divide = DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None);
        assert!(is_deterministic(&divide));
        let cast = DataFusionError::ArrowError(
            Box::new(ArrowError::CastError("Cannot cast string 'x'".into())),
            None,
        )
        .context("in a task");
        assert!(is_deterministic(&cast));
        assert!(is_deterministic(&DataFusionError::Execution(
            "Month value '13' is out of range".into()
        )));
        let io = DataFusionError::IoError(std::io::Error::other("disk gone"));
        assert!(!is_deterministic(&io));
        let wrapped_io = DataFusionError::ArrowError(
            Box::new(ArrowError::ExternalError(Box::new(std::io::Error::other(
                "connection reset",
            )))),
            None,
        );
        assert!(!is_deterministic(&wrapped_io));
        // Text never decides: an I/O error whose message reads like a
        // division by zero is still retried.
        let lookalike =
            DataFusionError::External(Box::new(std::io::Error::other("Divide by zero error")));
        assert!(!is_deterministic(&lookalike));
    }

    #[test]
    fn internal_errors_lose_the_bug_request() {
        let err = DataFusionError::Internal("cannot serialize node X".into()).context("stage 1");
        let text = user_error(err).to_string();
        assert!(!text.contains("bug"), "{text}");
        assert!(text.contains("cannot serialize node X"), "{text}");
        let deep = DataFusionError::ArrowError(
            Box::new(ArrowError::ExternalError(Box::new(
                DataFusionError::Internal("odd state".into()),
            ))),
            None,
        );
        let text = user_message(&deep);
        assert!(
            !text.contains("bug") && !text.contains("Internal error"),
            "{text}"
        );
        assert!(text.contains("odd state"), "{text}");
    }
}
