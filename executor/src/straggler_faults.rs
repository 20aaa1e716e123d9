//! TEST-ONLY fault injection: makes one task a straggler.
//!
//! With the environment variable [`STRAGGLER_ENV`] set on an executor
//! process to `STAGE:PARTITION:MILLIS` (several separated by commas), the
//! first attempt (attempt 0) of the task of that stage and partition sleeps
//! `MILLIS` before it runs; later attempts (a retry, a speculative copy) do
//! not. The tests of speculative execution and of `minispark.task.timeout`
//! use it to make a task slow without making it wrong. Nothing sets it
//! outside tests; an executor without it never sleeps, and a value that
//! does not parse is ignored with a warning.

use std::time::Duration;

/// The environment variable read by [`straggler_delay`].
pub const STRAGGLER_ENV: &str = "MINISPARK_TEST_STRAGGLER";

/// One injected straggler: the task and how long it sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Straggler {
    pub stage: u32,
    pub partition: u32,
    pub delay: Duration,
}

/// Parses `STAGE:PARTITION:MILLIS[,...]`; `None` when any part is not a
/// number.
pub fn parse(text: &str) -> Option<Vec<Straggler>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|spec| {
            let mut parts = spec.trim().split(':').map(|p| p.trim().parse::<u64>().ok());
            let (stage, partition, millis) = (parts.next()??, parts.next()??, parts.next()??);
            if parts.next().is_some() {
                return None;
            }
            Some(Straggler {
                stage: u32::try_from(stage).ok()?,
                partition: u32::try_from(partition).ok()?,
                delay: Duration::from_millis(millis),
            })
        })
        .collect()
}

/// How long attempt `attempt` of task (`stage`, `partition`) sleeps before
/// it runs: only attempt 0 of a task named in [`STRAGGLER_ENV`] does.
pub fn straggler_delay(stage: u32, partition: u32, attempt: u32) -> Option<Duration> {
    if attempt != 0 {
        return None;
    }
    let text = std::env::var(STRAGGLER_ENV).ok()?;
    let Some(stragglers) = parse(&text) else {
        tracing::warn!(
            value = text,
            "{STRAGGLER_ENV} is not STAGE:PARTITION:MILLIS[,...]; ignored"
        );
        return None;
    };
    stragglers
        .into_iter()
        .find(|s| s.stage == stage && s.partition == partition)
        .map(|s| s.delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse("1:2:3000, 0:0:5").unwrap(),
            vec![
                Straggler {
                    stage: 1,
                    partition: 2,
                    delay: Duration::from_millis(3000)
                },
                Straggler {
                    stage: 0,
                    partition: 0,
                    delay: Duration::from_millis(5)
                }
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        for bad in ["1:2", "1:2:x", "1:2:3:4", "-1:0:5", "99999999999:0:1"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
