//! Speculative execution: a second attempt of a task that runs much longer
//! than the others of its stage (a straggler: a slow disk, a busy host, a
//! task stuck on something outside it).
//!
//! Spark's rule (`TaskSetManager.checkSpeculatableTasks`), with its
//! settings and defaults:
//!
//! * speculation is off unless `minispark.speculation` is `true`
//!   (`spark.speculation`, false);
//! * a stage is checked once at least `minispark.speculation.quantile` of
//!   its tasks are done (`spark.speculation.quantile`, 0.75; at least one);
//! * a running task whose only attempt has run longer than
//!   `minispark.speculation.multiplier` times the median duration of the
//!   stage's finished tasks (`spark.speculation.multiplier`, 1.5), and at
//!   least [`MIN_RUNTIME`] (`spark.speculation.minTaskRuntime`, 100 ms), gets
//!   one more attempt, on another executor.
//!
//! The scheduler ([`crate::scheduler`]) launches the copy on a free slot of
//! an executor that does not run the task already; the first attempt to
//! finish wins and its output is the one recorded; the others are cancelled
//! (their calls dropped, which aborts them on their executors) and a result
//! that still arrives from one is ignored. Copies are counted in the job's
//! `speculative_attempts` ([`crate::job_counters::JobCounters`]).

use std::time::Duration;

use minispark_planner::config::MinisparkConfig;

/// The shortest run a task may have before it is copied (Spark's
/// `spark.speculation.minTaskRuntime`, 100 ms): very short tasks are not
/// worth a second attempt.
pub const MIN_RUNTIME: Duration = Duration::from_millis(100);

/// The speculation settings of a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeculationConfig {
    /// How many times the median a task must run to be copied.
    pub multiplier: f64,
    /// The fraction of a stage's tasks that must be done first.
    pub quantile: f64,
}

impl SpeculationConfig {
    /// The job's speculation settings; `None` when speculation is off.
    pub fn from_config(config: &MinisparkConfig) -> Option<Self> {
        config.speculation.then_some(Self {
            multiplier: config.speculation_multiplier,
            quantile: config.speculation_quantile,
        })
    }

    /// How long a task of a stage must have run to be copied, once enough
    /// of its `num_tasks` tasks are done; `None` while too few are (or none
    /// has a duration yet). `finished` are the durations of the stage's
    /// finished attempts, `done` its tasks that have their output.
    pub fn threshold(
        &self,
        num_tasks: usize,
        done: usize,
        finished: &[Duration],
    ) -> Option<Duration> {
        let needed = ((self.quantile * num_tasks as f64).floor() as usize).max(1);
        if done < needed || finished.is_empty() {
            return None;
        }
        let median = median(finished);
        Some(median.mul_f64(self.multiplier).max(MIN_RUNTIME))
    }
}

/// The median of durations: the middle one, or the mean of the two middle
/// ones of an even count (as Spark's `MedianHeap`).
fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    if !sorted.len().is_multiple_of(2) {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn settings_turn_it_on_and_off() {
        let mut config = MinisparkConfig::default();
        assert_eq!(SpeculationConfig::from_config(&config), None);
        config.speculation = true;
        assert_eq!(
            SpeculationConfig::from_config(&config),
            Some(SpeculationConfig {
                multiplier: 1.5,
                quantile: 0.75
            })
        );
    }

    #[test]
    fn a_task_is_copied_past_multiplier_times_the_median_once_quantile_are_done() {
        let c = SpeculationConfig {
            multiplier: 1.5,
            quantile: 0.75,
        };
        let finished = [ms(1000), ms(2000), ms(3000)];
        // 4 tasks: 3 must be done.
        assert_eq!(c.threshold(4, 2, &finished[..2]), None);
        assert_eq!(c.threshold(4, 3, &finished), Some(ms(3000)));
        // Never below the minimum runtime.
        assert_eq!(c.threshold(4, 3, &[ms(1), ms(2), ms(3)]), Some(MIN_RUNTIME));
        // At least one task must be done: the only task of a stage is never
        // copied.
        assert_eq!(c.threshold(1, 0, &[]), None);
        // An even count: the mean of the two middle durations.
        assert_eq!(c.threshold(2, 2, &[ms(400), ms(200)]), Some(ms(450)));
        // Retries of a task count their durations too: a stage whose tasks
        // all finished once has a median even after outputs were lost.
        assert_eq!(
            c.threshold(2, 1, &[ms(10_000), ms(200), ms(300)]),
            Some(ms(450))
        );
        let eager = SpeculationConfig {
            multiplier: 1.0,
            quantile: 0.0,
        };
        assert_eq!(eager.threshold(10, 0, &[]), None);
        assert_eq!(eager.threshold(10, 1, &[ms(500)]), Some(ms(500)));
    }
}
