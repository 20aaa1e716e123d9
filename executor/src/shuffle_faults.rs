//! Test-only fault injection for the shuffle. **Never set these variables
//! in production**: they make an executor misbehave on purpose, so that
//! the integration tests can show what the cluster does about it.
//!
//! * `MINISPARK_TEST_FETCH_UNAVAILABLE=N`: the first `N` `FetchPartition`
//!   calls this executor serves answer `Unavailable` (a passing error the
//!   reader must retry without evicting anyone).
//! * `MINISPARK_TEST_FETCH_NOT_FOUND=N`: the first `N` `FetchPartition`
//!   calls for blocks of stage 0 answer `NotFound`, as if the block were
//!   gone (the driver must compute that map output again).
//! * `MINISPARK_TEST_ORPHAN_ATTEMPT=STAGE:PARTITION:ATTEMPT:DELAY_MS`: that
//!   task attempt is answered at once as failed while it keeps running (as
//!   when the driver's call is lost but the task is not), and it waits
//!   `DELAY_MS` before committing its output, so that the driver's next
//!   attempt of the same map partition races it.
//! * `MINISPARK_TEST_FETCH_HANG=N`: the first `N` `FetchPartition` calls
//!   this executor serves never answer (the reader's
//!   `minispark.shuffle.io.connectionTimeout` must fail and retry them).
//! * `MINISPARK_TEST_FETCH_DELAY=STAGE:DELAY_MS`: every `FetchPartition`
//!   call for a block of stage `STAGE` waits `DELAY_MS` before it answers
//!   (to see whether a reader's fetches overlap).
//!
//! All are read once, when first needed; unset, nothing changes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use minispark_proto::TaskDefinition;

pub const FETCH_UNAVAILABLE_ENV: &str = "MINISPARK_TEST_FETCH_UNAVAILABLE";
pub const ORPHAN_ATTEMPT_ENV: &str = "MINISPARK_TEST_ORPHAN_ATTEMPT";
pub const FETCH_NOT_FOUND_ENV: &str = "MINISPARK_TEST_FETCH_NOT_FOUND";
pub const FETCH_HANG_ENV: &str = "MINISPARK_TEST_FETCH_HANG";
pub const FETCH_DELAY_ENV: &str = "MINISPARK_TEST_FETCH_DELAY";

/// The faults this executor injects.
#[derive(Debug, Default)]
pub struct ShuffleFaults {
    /// `FetchPartition` calls still to answer `Unavailable`.
    fetch_unavailable: AtomicU64,
    /// `FetchPartition` calls for stage 0 still to answer `NotFound`.
    fetch_not_found: AtomicU64,
    /// `FetchPartition` calls still to leave unanswered.
    fetch_hang: AtomicU64,
    /// The stage whose blocks are served late, and how late.
    fetch_delay: Option<(u32, Duration)>,
    orphan: Option<OrphanAttempt>,
}

/// A task attempt answered as failed while it keeps running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OrphanAttempt {
    stage: u32,
    partition: u32,
    attempt: u32,
    commit_delay: Duration,
}

/// A count from a variable's value; 0 when unset or not a number.
fn count(text: Option<&str>) -> u64 {
    text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// `STAGE:DELAY_MS`; `None` when unset or malformed.
fn fetch_delay(text: Option<&str>) -> Option<(u32, Duration)> {
    let (stage, delay) = text?.split_once(':')?;
    Some((
        stage.trim().parse().ok()?,
        Duration::from_millis(delay.trim().parse().ok()?),
    ))
}

/// This process's faults, from the environment.
pub fn faults() -> &'static ShuffleFaults {
    static FAULTS: OnceLock<ShuffleFaults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let mut faults = ShuffleFaults::parse(
            std::env::var(FETCH_UNAVAILABLE_ENV).ok().as_deref(),
            std::env::var(ORPHAN_ATTEMPT_ENV).ok().as_deref(),
        );
        faults.fetch_not_found =
            AtomicU64::new(count(std::env::var(FETCH_NOT_FOUND_ENV).ok().as_deref()));
        faults.fetch_hang = AtomicU64::new(count(std::env::var(FETCH_HANG_ENV).ok().as_deref()));
        faults.fetch_delay = fetch_delay(std::env::var(FETCH_DELAY_ENV).ok().as_deref());
        faults
    })
}

impl ShuffleFaults {
    /// Faults from the variables' values; a value that does not parse
    /// injects nothing.
    pub fn parse(fetch_unavailable: Option<&str>, orphan: Option<&str>) -> Self {
        let orphan = orphan.and_then(|text| {
            let parts: Vec<u64> = text
                .split(':')
                .map(|p| p.trim().parse().ok())
                .collect::<Option<_>>()?;
            match parts[..] {
                [stage, partition, attempt, delay_ms] => Some(OrphanAttempt {
                    stage: u32::try_from(stage).ok()?,
                    partition: u32::try_from(partition).ok()?,
                    attempt: u32::try_from(attempt).ok()?,
                    commit_delay: Duration::from_millis(delay_ms),
                }),
                _ => None,
            }
        });
        Self {
            fetch_unavailable: AtomicU64::new(count(fetch_unavailable)),
            fetch_not_found: AtomicU64::new(0),
            fetch_hang: AtomicU64::new(0),
            fetch_delay: None,
            orphan,
        }
    }

    /// Whether this `FetchPartition` call must never answer.
    pub fn take_fetch_hang(&self) -> bool {
        self.fetch_hang
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// How long a `FetchPartition` call for a block of `stage` waits
    /// before it answers.
    pub fn fetch_delay(&self, stage: u32) -> Option<Duration> {
        self.fetch_delay
            .filter(|(s, _)| *s == stage)
            .map(|(_, delay)| delay)
    }

    /// Whether this `FetchPartition` call for a block of `stage` must
    /// answer `NotFound`.
    pub fn take_fetch_not_found(&self, stage: u32) -> bool {
        stage == 0
            && self
                .fetch_not_found
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }

    /// Whether this `FetchPartition` call must answer `Unavailable`.
    pub fn take_fetch_unavailable(&self) -> bool {
        self.fetch_unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// For the orphaned attempt: how long it waits before committing.
    pub fn orphan_commit_delay(&self, task: &TaskDefinition) -> Option<Duration> {
        self.orphan
            .filter(|o| {
                o.stage == task.stage_id
                    && o.partition == task.partition
                    && o.attempt == task.attempt
            })
            .map(|o| o.commit_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_count_down() {
        let none = ShuffleFaults::parse(None, None);
        assert!(!none.take_fetch_unavailable());
        let task = TaskDefinition {
            stage_id: 1,
            partition: 2,
            attempt: 0,
            ..Default::default()
        };
        assert_eq!(none.orphan_commit_delay(&task), None);

        let some = ShuffleFaults::parse(Some("2"), Some("1:2:0:1500"));
        assert!(some.take_fetch_unavailable());
        assert!(some.take_fetch_unavailable());
        assert!(!some.take_fetch_unavailable());
        assert_eq!(
            some.orphan_commit_delay(&task),
            Some(Duration::from_millis(1500))
        );
        let retry = TaskDefinition {
            attempt: 1,
            ..task.clone()
        };
        assert_eq!(some.orphan_commit_delay(&retry), None);
        assert!(
            ShuffleFaults::parse(Some("x"), Some("1:2"))
                .orphan
                .is_none()
        );
        assert_eq!(
            fetch_delay(Some("1:250")),
            Some((1, Duration::from_millis(250)))
        );
        assert_eq!(fetch_delay(Some("1")), None);
        assert_eq!(fetch_delay(None), None);
        let hang = ShuffleFaults {
            fetch_hang: AtomicU64::new(1),
            fetch_delay: Some((2, Duration::from_millis(5))),
            ..Default::default()
        };
        assert!(hang.take_fetch_hang());
        assert!(!hang.take_fetch_hang());
        assert_eq!(hang.fetch_delay(2), Some(Duration::from_millis(5)));
        assert_eq!(hang.fetch_delay(1), None);
    }
}
