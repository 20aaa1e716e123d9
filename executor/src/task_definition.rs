//! Checks on a `LaunchTask` request before anything runs: every id is in
//! its format and range, and the plan and settings are of bounded size. A
//! task that fails them is refused with `InvalidArgument`, naming the field.

use minispark_proto::TaskDefinition;
use minispark_proto::limits::{check_job_id, check_partition, check_stage_id};

/// Most settings one task may carry.
pub const MAX_TASK_SETTINGS: usize = 4096;

/// Longest key or value of a task's setting.
pub const MAX_SETTING_LEN: usize = 1 << 20;

/// Most attempts of one task (far above any `minispark.task.maxFailures`).
pub const MAX_ATTEMPTS: u32 = 100_000;

/// Checks a task's ids, plan and settings; the error names what is wrong.
pub fn check_task(task: &TaskDefinition) -> Result<(), String> {
    check_job_id(&task.job_id)?;
    check_stage_id(task.stage_id as u64)?;
    check_partition("partition", task.partition as u64)?;
    if task.attempt >= MAX_ATTEMPTS {
        return Err(format!(
            "invalid attempt {}: a task has at most {MAX_ATTEMPTS} attempts",
            task.attempt
        ));
    }
    if task.plan.is_empty() {
        return Err("a task needs a stage plan; this one has none".into());
    }
    if task.settings.len() > MAX_TASK_SETTINGS {
        return Err(format!(
            "a task carries at most {MAX_TASK_SETTINGS} settings, this one {}",
            task.settings.len()
        ));
    }
    if let Some((key, _)) = task
        .settings
        .iter()
        .find(|(k, v)| k.len() > MAX_SETTING_LEN || v.len() > MAX_SETTING_LEN)
    {
        return Err(format!(
            "setting '{}' of a task is longer than {MAX_SETTING_LEN} bytes",
            key.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(job_id: &str) -> TaskDefinition {
        TaskDefinition {
            job_id: job_id.into(),
            stage_id: 1,
            partition: 2,
            attempt: 0,
            plan: vec![1, 2, 3],
            settings: Default::default(),
        }
    }

    #[test]
    fn hostile_task_fields_are_refused_by_name() {
        assert_eq!(check_task(&task("job-0123456789ab")), Ok(()));
        for (t, expected) in [
            (task("../../x"), "invalid job id"),
            (task("/etc"), "invalid job id"),
            (
                TaskDefinition {
                    stage_id: u32::MAX,
                    ..task("job-0123456789ab")
                },
                "invalid stage id",
            ),
            (
                TaskDefinition {
                    partition: 100_000,
                    ..task("job-0123456789ab")
                },
                "invalid partition",
            ),
            (
                TaskDefinition {
                    attempt: u32::MAX,
                    ..task("job-0123456789ab")
                },
                "invalid attempt",
            ),
            (
                TaskDefinition {
                    plan: vec![],
                    ..task("job-0123456789ab")
                },
                "needs a stage plan",
            ),
        ] {
            let err = check_task(&t).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
