//! `submit`'s progress from a remote driver: a client that asks for it gets
//! the running stages of its own job as `progress` events while the job
//! runs (what the CLI draws on a terminal), and the job's answer as ever.

use std::collections::HashMap;

use minispark::client::{StatementOutput, run_script_remote_with_progress};
use minispark::console_progress::{progress_text, stage_label};
use minispark::driver::status_store::StageProgress;

use crate::common::{cluster, timed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_driver_streams_the_progress_of_its_clients_job() {
    let cluster = cluster(2).await;
    let url = cluster.driver.url();
    // A scan stage of seconds, then a shuffle.
    let script = "SELECT l_returnflag, count(*) AS n FROM tpch.sf1.lineitem \
                  GROUP BY l_returnflag ORDER BY l_returnflag";
    let mut outputs: Vec<StatementOutput> = vec![];
    let mut snapshots: Vec<Vec<StageProgress>> = vec![];
    timed(
        "the job with progress",
        run_script_remote_with_progress(
            &url,
            cluster.security(),
            script,
            HashMap::new(),
            &mut |out| {
                outputs.push(out);
                Ok(())
            },
            Some(&mut |stages| snapshots.push(stages)),
        ),
    )
    .await
    .expect("the job runs");
    assert_eq!(outputs.len(), 1);
    let rows: usize = outputs[0].batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);

    // Snapshots while it ran: its job only, each stage's counts sane, and
    // the scan stage seen with tasks still to do.
    let shown: Vec<&StageProgress> = snapshots.iter().flatten().collect();
    assert!(!shown.is_empty(), "no progress: {snapshots:?}");
    let job = &shown[0].job_id;
    assert!(job.starts_with("job-"), "{job}");
    for p in &shown {
        assert_eq!(&p.job_id, job, "{snapshots:?}");
        assert!(p.done <= p.total && p.total > 0, "{p:?}");
        let label = stage_label(p);
        assert_eq!(
            label,
            format!("[Stage {}: {}/{} tasks]", p.stage, p.done, p.total)
        );
    }
    assert!(
        shown.iter().any(|p| p.stage == 0 && p.done < p.total),
        "{}",
        snapshots
            .iter()
            .map(|s| progress_text(s))
            .collect::<Vec<_>>()
            .join("--\n")
    );
    // Sent when they change: never the same snapshot twice in a row.
    for pair in snapshots.windows(2) {
        assert_ne!(pair[0], pair[1], "{snapshots:?}");
    }
}
