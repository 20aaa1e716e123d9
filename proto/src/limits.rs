//! Bounds on what arrives over the wire: ids that become file names,
//! counts that size allocations, message sizes per RPC kind, nesting.
//!
//! Every check here answers with an error that names the bound, so a user
//! who hits one knows which limit and why. The services call these checks
//! before an id touches the file system or a number sizes anything.

/// Most partitions a shuffle may have (`minispark.shuffle.partitions`).
pub const MAX_SHUFFLE_PARTITIONS: usize = 100_000;

/// Most task slots one executor may register with.
pub const MAX_EXECUTOR_SLOTS: u32 = 1024;

/// The smallest executor memory (`--memory`) accepted: below it no query
/// gets far, and a bare number (bytes) meant as megabytes is caught.
pub const MIN_EXECUTOR_MEMORY: u64 = 8 << 20;

/// Longest executor id accepted at registration.
pub const MAX_EXECUTOR_ID_LEN: usize = 128;

/// Longest executor address accepted at registration.
pub const MAX_ADDRESS_LEN: usize = 512;

/// Largest request carrying a plan (SubmitJob, LaunchTask): plans with huge
/// IN-lists or many unions exceed tonic's 4 MiB default. It is also the
/// bound tonic applies to a whole service; [`crate::request_limits`] holds
/// every other RPC to [`SMALL_MESSAGE_LIMIT`].
pub const PLAN_MESSAGE_LIMIT: usize = 1 << 30;

/// Largest request message of every RPC that carries no plan: executor
/// registrations, heartbeats, job references (CancelJob, RemoveJobData) and
/// shuffle block ids (FetchPartition) are a few hundred bytes at most.
/// Enforced per RPC by [`crate::request_limits`].
pub const SMALL_MESSAGE_LIMIT: usize = 64 << 10;

/// Largest answer of an executor: a chunk of a shuffle block stream (one
/// `DataChunk`, [`crate::DATA_CHUNK_SIZE`] bytes plus framing) or a task's
/// status (its block sizes, one per reduce partition).
pub const BLOCK_MESSAGE_LIMIT: usize = 16 * crate::DATA_CHUNK_SIZE;

/// Largest message of a job's result stream (one `JobEvent`: an Arrow IPC
/// record batch of the result, or a schema).
pub const RESULT_MESSAGE_LIMIT: usize = 256 << 20;

/// Most concurrent HTTP/2 streams (in-flight RPCs) one connection may open
/// to a driver or an executor; the driver's task launches to one executor
/// share a connection, so this is well above any executor's slots.
pub const MAX_CONCURRENT_STREAMS: u32 = 4096;

/// Largest Arrow IPC message (one record batch) a shuffle or result reader
/// decodes: the declared body and the declared decompressed size of its
/// buffers are checked against it before anything is allocated.
pub const MAX_DECODED_MESSAGE_BYTES: u64 = 2 << 30;

/// Largest Arrow IPC metadata (flatbuffer header) a reader accepts.
pub const MAX_IPC_METADATA_BYTES: usize = 64 << 20;

/// Deepest expression or plan nesting accepted in a job's SQL text before
/// it is planned: deeper ones are refused with an error naming this limit.
/// Planning cost grows faster than the depth (a 5 000-term sum plans in
/// about a minute in a debug build, 19 000 terms take over 2 GB), so the
/// limit is a little above what generated SQL needs.
pub const MAX_PLAN_DEPTH: usize = 8_000;

/// Stack of the threads that parse, decode and plan what arrives over the
/// wire (reserved address space, touched only as deep as a plan goes).
pub const DEEP_WORK_STACK_BYTES: usize = 512 << 20;

/// Stack of an executor's task threads. Stage plans arrive as protobuf,
/// whose decoder refuses nesting beyond [`PROTOBUF_NESTING_LIMIT`], so tasks
/// need far less than [`DEEP_WORK_STACK_BYTES`]; this leaves a wide margin
/// over tokio's 2 MiB default for operators that recurse.
pub const TASK_STACK_BYTES: usize = 64 << 20;

/// How deep protobuf messages may nest when decoded (prost's recursion
/// limit): a serialized plan deeper than this is refused while decoding.
pub const PROTOBUF_NESTING_LIMIT: usize = 100;

/// A decoding error, with the nesting limit named when that is what failed.
pub fn explain_decode_error(message: &str) -> String {
    if message.contains("recursion limit") {
        format!(
            "{message} (a serialized plan nests at most {PROTOBUF_NESTING_LIMIT} protobuf \
             messages deep: prost's recursion limit)"
        )
    } else {
        message.to_string()
    }
}

/// A job id as the driver makes them: `job-` and 12 lowercase hex digits
/// (see `minispark_driver::ids::JobId`). Anything else, a path above all,
/// is refused.
pub fn check_job_id(id: &str) -> Result<(), String> {
    let ok = id.len() == 16
        && id.starts_with("job-")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid job id '{}': a job id is 'job-' and 12 lowercase hex digits",
            shorten(id)
        ))
    }
}

/// An executor id: 1 to [`MAX_EXECUTOR_ID_LEN`] letters, digits, `-`, `_` or `.`
/// (not only dots).
pub fn check_executor_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_EXECUTOR_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.bytes().any(|b| b != b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid executor id '{}': 1 to {MAX_EXECUTOR_ID_LEN} letters, digits, '-', '_' or '.'",
            shorten(id)
        ))
    }
}

/// Task slots of a registering executor: 1 to [`MAX_EXECUTOR_SLOTS`].
pub fn check_slots(slots: u64) -> Result<usize, String> {
    if (1..=MAX_EXECUTOR_SLOTS as u64).contains(&slots) {
        Ok(slots as usize)
    } else {
        Err(format!(
            "invalid executor slots {slots}: an executor has 1 to {MAX_EXECUTOR_SLOTS} slots"
        ))
    }
}

/// An executor's memory: 0 (unbounded) or at least [`MIN_EXECUTOR_MEMORY`].
pub fn check_memory(bytes: u64) -> Result<(), String> {
    if bytes == 0 || bytes >= MIN_EXECUTOR_MEMORY {
        Ok(())
    } else {
        Err(format!(
            "executor memory of {bytes} bytes is below the minimum of {} MiB \
             (--memory / minispark.executor.memory take a unit: 512m, 4g)",
            MIN_EXECUTOR_MEMORY >> 20
        ))
    }
}

/// A partition number or count that names shuffle blocks: below
/// [`MAX_SHUFFLE_PARTITIONS`]. `what` names the field in the error.
pub fn check_partition(what: &str, value: u64) -> Result<usize, String> {
    if value < MAX_SHUFFLE_PARTITIONS as u64 {
        Ok(value as usize)
    } else {
        Err(format!(
            "invalid {what} {value}: at most {MAX_SHUFFLE_PARTITIONS} shuffle partitions \
             (minispark.shuffle.partitions)"
        ))
    }
}

/// A stage id: below [`MAX_STAGES`].
pub fn check_stage_id(value: u64) -> Result<usize, String> {
    if value < MAX_STAGES as u64 {
        Ok(value as usize)
    } else {
        Err(format!(
            "invalid stage id {value}: a job has at most {MAX_STAGES} stages"
        ))
    }
}

/// Most stages one job may have (stage ids are below it).
pub const MAX_STAGES: usize = 100_000;

/// A value cut to something printable in an error message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_only_what_the_driver_makes() {
        assert!(check_job_id("job-0123456789ab").is_ok());
        for bad in [
            "",
            "job-",
            "../../x",
            "/tmp/x",
            "job-0123456789ab/../x",
            "job-0123456789AB",
            "job-0123456789abc",
            "job-..23456789ab",
            "..",
            "job-012345\u{0}789ab",
        ] {
            let err = check_job_id(bad).unwrap_err();
            assert!(err.contains("invalid job id"), "{err}");
        }
    }

    #[test]
    fn executor_ids_slots_and_partitions_are_bounded() {
        assert!(check_executor_id("exec-0").is_ok());
        assert!(check_executor_id("exec.host_1").is_ok());
        for bad in ["", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_executor_id(bad).is_err(), "{bad}");
        }
        assert_eq!(check_slots(1), Ok(1));
        assert_eq!(check_slots(1024), Ok(1024));
        for bad in [0, 1025, u32::MAX as u64] {
            let err = check_slots(bad).unwrap_err();
            assert!(err.contains("1 to 1024 slots"), "{err}");
        }
        assert_eq!(check_partition("map partition", 99_999), Ok(99_999));
        let err = check_partition("reduce partition", 100_000).unwrap_err();
        assert!(err.contains("minispark.shuffle.partitions"), "{err}");
        assert!(check_stage_id(u32::MAX as u64).is_err());
        assert_eq!(check_stage_id(3), Ok(3));
    }
}
