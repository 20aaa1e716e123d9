//! Who may register as an executor: the checks the driver makes on a
//! `RegisterExecutor` request before the executor joins the cluster.
//!
//! * The id is in its format (letters, digits, `-`, `_`, `.`; see
//!   `minispark_proto::limits::check_executor_id`).
//! * Slots are 1 to 1 024: an absurd count would size every later job's
//!   shuffles (`minispark.shuffle.partitions = 0` means "the cluster's slots").
//! * The address is short and a valid gRPC endpoint.
//! * An id already held by a live executor is refused, unless the request
//!   comes from that same process (its `instance` token matches): a process
//!   registering again after the driver lost it, or after a restart of the
//!   driver, keeps its id; another process cannot take it over.

use minispark_proto::ExecutorInfo;
use minispark_proto::limits::{MAX_ADDRESS_LEN, check_executor_id, check_slots};

/// What the driver knows of a live executor holding an id.
#[derive(Debug, Clone, Copy)]
pub struct LiveExecutor<'a> {
    pub address: &'a str,
    pub instance: &'a str,
}

/// Checks a registration; returns the executor's slots. `live` is the live
/// executor that holds the same id, if any.
pub fn check_registration(
    info: &ExecutorInfo,
    live: Option<LiveExecutor<'_>>,
) -> Result<usize, String> {
    check_executor_id(&info.id)?;
    let slots = check_slots(info.slots as u64)?;
    minispark_proto::limits::check_memory(info.memory_bytes)?;
    if info.address.is_empty() || info.address.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "invalid executor address of {} bytes: 1 to {MAX_ADDRESS_LEN} bytes, host:port",
            info.address.len()
        ));
    }
    if let Some(live) = live {
        let same_process = !info.instance.is_empty() && info.instance == live.instance;
        if !same_process {
            return Err(format!(
                "executor id '{}' is taken by a live executor at {}: start another executor \
                 with its own --id, or wait until the driver declares the first one lost \
                 (no heartbeat within the timeout)",
                info.id, live.address
            ));
        }
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, slots: u32, instance: &str) -> ExecutorInfo {
        ExecutorInfo {
            id: id.into(),
            address: "127.0.0.1:5000".into(),
            slots,
            instance: instance.into(),
            memory_bytes: 0,
        }
    }

    #[test]
    fn duplicates_and_absurd_slots_are_refused() {
        assert_eq!(check_registration(&info("exec-0", 4, "a"), None), Ok(4));
        let live = LiveExecutor {
            address: "127.0.0.1:5000",
            instance: "a",
        };
        // The same process again: fine.
        assert_eq!(
            check_registration(&info("exec-0", 4, "a"), Some(live)),
            Ok(4)
        );
        // Another process, or one that does not say which it is: refused.
        for other in ["b", ""] {
            let err = check_registration(&info("exec-0", 4, other), Some(live)).unwrap_err();
            assert!(err.contains("'exec-0' is taken by a live executor at 127.0.0.1:5000"));
        }
        for slots in [0, 1025, u32::MAX] {
            let err = check_registration(&info("exec-1", slots, "a"), None).unwrap_err();
            assert!(err.contains("1 to 1024 slots"), "{err}");
        }
        let err = check_registration(&info("../x", 1, "a"), None).unwrap_err();
        assert!(err.contains("invalid executor id"), "{err}");
        let mut long = info("exec-2", 1, "a");
        long.address = "x".repeat(1000);
        assert!(check_registration(&long, None).is_err());
    }
}
