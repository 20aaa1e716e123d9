//! Task timeouts: an attempt that has not finished within
//! `minispark.task.timeout` is failed and retried.
//!
//! A task can hang without its executor dying: it waits on a lock, on a
//! storage request that never answers, on a peer that accepts the
//! connection and never sends. Heartbeats keep coming, so the driver never
//! declares the executor lost, and the job would wait forever. With a
//! timeout set, the scheduler ([`crate::scheduler`]) cancels such an attempt
//! (its call is dropped, which aborts the task on its executor), counts it
//! as a failure of the task (it takes part in `minispark.task.maxFailures`,
//! and the retry goes to another executor when there is one) and as
//! `timed_out_attempts` in the job's counters.
//!
//! Spark has no such setting: a hung task there holds its stage until
//! speculation (`spark.speculation`) runs a copy or the job is cancelled;
//! `spark.network.timeout` (120 s) only catches executors that stop
//! heartbeating. The timeout is off by default (`0`), so a legitimately
//! long task is never killed by surprise; set it above your longest task.

use std::time::Duration;

/// Whether an attempt that has run for `elapsed` is past `timeout` (zero is
/// no timeout).
pub fn is_timed_out(timeout: Duration, elapsed: Duration) -> bool {
    !timeout.is_zero() && elapsed > timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_timeout() {
        let s = Duration::from_secs;
        assert!(!is_timed_out(Duration::ZERO, s(1_000_000)));
        assert!(!is_timed_out(s(10), s(10)));
        assert!(is_timed_out(s(10), s(11)));
    }
}
