//! Typed ids of the scheduler: a job, a stage of it, and one attempt at one
//! of its tasks. They print as logs, errors and EXPLAIN name them.

use std::fmt;

/// A job's id: `job-` and 12 hex digits, unique per driver. It names the
/// job's directory of shuffle files on every executor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    /// A new random id.
    pub fn random() -> Self {
        Self(format!(
            "job-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stage's number in its job's stage graph (`StageGraph::stages[n]`),
/// printed as the bare number: "stage 2" in EXPLAIN and in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageId(pub usize);

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One try at one task: its stage, its partition (the task's index in the
/// stage) and the attempt number (0 for the first try; Spark's
/// `TaskContext.attemptNumber`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskAttempt {
    pub stage: StageId,
    pub partition: usize,
    pub attempt: u32,
}

impl fmt::Display for TaskAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage {} partition {} attempt {}",
            self.stage, self.partition, self.attempt
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_logs_and_explain_name_them() {
        let job = JobId::random();
        assert!(job.as_str().starts_with("job-") && job.as_str().len() == 16);
        assert_eq!(job.to_string(), job.as_str());
        assert_eq!(format!("stage {}", StageId(2)), "stage 2");
        let task = TaskAttempt {
            stage: StageId(1),
            partition: 3,
            attempt: 0,
        };
        assert_eq!(task.to_string(), "stage 1 partition 3 attempt 0");
    }
}
