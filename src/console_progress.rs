//! `submit`'s live progress on a terminal: Spark's `ConsoleProgressBar`.
//!
//! While a job runs, one bar per running stage is drawn on stderr with
//! `indicatif`, labelled as Spark labels it, `[Stage 2: 13/16 tasks]`,
//! followed by the attempts running now. The bars are brought up to date
//! every [`REFRESH`] from the driver's status store (the same model the web
//! UI shows): read directly for an embedded cluster, or, for a remote
//! driver, from the `progress` events it streams to the client (a
//! [`ProgressFeed`]). A stage appears once it has run for [`FIRST_DELAY`],
//! so short stages do not flicker (Spark waits 500 ms too).
//!
//! Progress is drawn only when both stdout and stderr are terminals (and
//! `TERM` is not `dumb`): output piped, or written to a file with
//! `--format csv|json > out`, gets no progress and no control characters.
//! Results are printed with the bars taken down ([`ConsoleProgress::suspend`]),
//! so they never mix with a bar.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use minispark_driver::status_store::{StageProgress, StatusStore};

/// How often the bars are brought up to date (Spark: 200 ms).
pub const REFRESH: Duration = Duration::from_millis(200);

/// How long a stage runs before its bar appears (Spark: 500 ms).
pub const FIRST_DELAY: Duration = Duration::from_millis(500);

/// A bar's label: `[Stage 2: 13/16 tasks]`.
pub fn stage_label(p: &StageProgress) -> String {
    format!("[Stage {}: {}/{} tasks]", p.stage, p.done, p.total)
}

/// What follows the bar: the attempts running now, when any.
pub fn stage_message(p: &StageProgress) -> String {
    match p.running {
        0 => String::new(),
        n => format!("({n} running)"),
    }
}

/// The progress lines of `stages` as text, one per stage (the bar itself
/// left out): what the terminal shows, for tests and logs.
pub fn progress_text(stages: &[StageProgress]) -> String {
    stages
        .iter()
        .map(|p| {
            let message = stage_message(p);
            if message.is_empty() {
                format!("{}\n", stage_label(p))
            } else {
                format!("{} {message}\n", stage_label(p))
            }
        })
        .collect()
}

/// True when progress may be drawn: stdout and stderr are terminals and
/// the terminal is not `dumb`.
pub fn terminal_wants_progress() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Where the running stages are read from.
enum Source {
    /// An embedded cluster's driver, in this process.
    Store(Arc<StatusStore>),
    /// What a remote driver last sent.
    Feed(ProgressFeed),
}

impl Source {
    fn active_stages(&self) -> Vec<StageProgress> {
        match self {
            Source::Store(store) => store.active_stages(),
            Source::Feed(feed) => feed.stages(),
        }
    }
}

/// The running stages a remote driver last reported (`progress` events of
/// its job stream): [`ProgressFeed::set`] as they arrive.
#[derive(Debug, Clone, Default)]
pub struct ProgressFeed(Arc<Mutex<Vec<StageProgress>>>);

impl ProgressFeed {
    pub fn set(&self, stages: Vec<StageProgress>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = stages;
    }

    pub fn stages(&self) -> Vec<StageProgress> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Live progress bars of a driver's running stages (see the module docs).
/// Dropping it stops the refresh and takes the bars down.
pub struct ConsoleProgress {
    bars: Option<Arc<Mutex<StageBars>>>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl ConsoleProgress {
    /// Progress of `store`'s stages on stderr when
    /// [`terminal_wants_progress`]; else nothing is ever drawn.
    pub fn start(store: Arc<StatusStore>) -> Self {
        Self::start_from(Source::Store(store))
    }

    /// Progress of the stages `feed` is given (a remote driver's) on stderr
    /// when [`terminal_wants_progress`]; else nothing is ever drawn.
    pub fn start_fed(feed: ProgressFeed) -> Self {
        Self::start_from(Source::Feed(feed))
    }

    fn start_from(source: Source) -> Self {
        if !terminal_wants_progress() {
            return Self::off();
        }
        let bars = Arc::new(Mutex::new(StageBars::new(source)));
        let refreshed = Arc::clone(&bars);
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                lock(&refreshed).update();
            }
        });
        Self {
            bars: Some(bars),
            refresher: Some(refresher),
        }
    }

    /// No progress.
    pub fn off() -> Self {
        Self {
            bars: None,
            refresher: None,
        }
    }

    /// Runs `f` (which prints) with the bars taken down, then draws those
    /// of the stages still running.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bars {
            Some(bars) => {
                let mut bars = lock(bars);
                // The statement whose result is printed has ended: its
                // stages' bars go now, not at the next refresh.
                bars.update();
                bars.multi.suspend(f)
            }
            None => f(),
        }
    }

    /// Stops the refresh and clears the bars.
    pub fn finish(&mut self) {
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
        if let Some(bars) = self.bars.take() {
            let _ = lock(&bars).multi.clear();
        }
    }
}

impl Drop for ConsoleProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn lock(bars: &Mutex<StageBars>) -> std::sync::MutexGuard<'_, StageBars> {
    bars.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bars drawn, one per running stage.
struct StageBars {
    source: Source,
    multi: MultiProgress,
    style: ProgressStyle,
    /// Running stages: when they were first seen, and their bar once shown.
    seen: HashMap<(String, usize), (Instant, Option<ProgressBar>)>,
}

impl StageBars {
    fn new(source: Source) -> Self {
        // The label drawn is `stage_label`'s, from the bar's own position
        // and length so that label and bar always agree.
        let style =
            ProgressStyle::with_template("[Stage {prefix}: {pos}/{len} tasks] [{bar:30}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        Self {
            source,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            style,
            seen: HashMap::new(),
        }
    }

    /// Brings the bars up to the store: new running stages get one (after
    /// [`FIRST_DELAY`]), finished ones lose theirs.
    fn update(&mut self) {
        let active = self.source.active_stages();
        let multi = &self.multi;
        self.seen.retain(|key, (_, bar)| {
            let running = active
                .iter()
                .any(|p| (&p.job_id, p.stage) == (&key.0, key.1));
            if !running && let Some(bar) = bar.take() {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            running
        });
        for p in &active {
            let (first_seen, bar) = self
                .seen
                .entry((p.job_id.clone(), p.stage))
                .or_insert_with(|| (Instant::now(), None));
            match bar {
                Some(bar) => {
                    bar.set_length(p.total as u64);
                    bar.set_position(p.done as u64);
                    bar.set_message(stage_message(p));
                }
                None if first_seen.elapsed() >= FIRST_DELAY => {
                    let new = ProgressBar::hidden()
                        .with_style(self.style.clone())
                        .with_prefix(p.stage.to_string())
                        .with_message(stage_message(p));
                    new.set_length(p.total as u64);
                    new.set_position(p.done as u64);
                    *bar = Some(multi.add(new));
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minispark_driver::status_store::{StageInfo, StatusEvent, TaskMetrics};

    fn stage(id: usize, tasks: usize, inputs: Vec<usize>) -> StageInfo {
        StageInfo {
            id,
            tasks,
            inputs,
            exchange: "hash shuffle".into(),
            partitions: 4,
            operators: vec![],
        }
    }

    fn task(stage: usize, partition: usize, start: bool) -> StatusEvent {
        if start {
            StatusEvent::TaskStart {
                job_id: "job-1".into(),
                stage,
                partition,
                attempt: 0,
                executor_id: "exec-0".into(),
                time_ms: 10,
                speculative: false,
            }
        } else {
            StatusEvent::TaskEnd {
                job_id: "job-1".into(),
                stage,
                partition,
                attempt: 0,
                executor_id: "exec-0".into(),
                time_ms: 20,
                metrics: Some(TaskMetrics::default()),
                error: None,
            }
        }
    }

    fn submitted(stage: usize, tasks: usize) -> StatusEvent {
        StatusEvent::StageSubmitted {
            job_id: "job-1".into(),
            stage,
            time_ms: 5,
            tasks,
            adaptive: None,
            rebound: false,
        }
    }

    #[test]
    fn progress_text_follows_the_status_events() {
        let store = StatusStore::new(10);
        store.record(StatusEvent::JobStart {
            job_id: "job-1".into(),
            time_ms: 1,
            statement: "SELECT ...".into(),
            plan: String::new(),
            stages: vec![
                stage(0, 3, vec![]),
                stage(1, 4, vec![]),
                stage(2, 16, vec![0, 1]),
            ],
            skew_factor: 5.0,
            skew_threshold_bytes: 0,
        });
        // Nothing submitted yet: no bar.
        assert_eq!(progress_text(&store.active_stages()), "");

        store.record(submitted(0, 3));
        store.record(submitted(1, 4));
        for p in 0..3 {
            store.record(task(0, p, true));
        }
        store.record(task(0, 0, false));
        store.record(task(1, 0, true));
        assert_eq!(
            progress_text(&store.active_stages()),
            "[Stage 0: 1/3 tasks] (2 running)\n[Stage 1: 0/4 tasks] (1 running)\n"
        );

        // Stage 0 completes: its bar goes; adaptive execution ran stage 2
        // as 16 tasks.
        store.record(task(0, 1, false));
        store.record(task(0, 2, false));
        store.record(StatusEvent::StageCompleted {
            job_id: "job-1".into(),
            stage: 0,
            time_ms: 30,
            partitions: vec![],
            hot_keys: vec![],
        });
        store.record(submitted(2, 16));
        for p in 0..13 {
            store.record(task(2, p, true));
            store.record(task(2, p, false));
        }
        assert_eq!(
            progress_text(&store.active_stages()),
            "[Stage 1: 0/4 tasks] (1 running)\n[Stage 2: 13/16 tasks]\n"
        );

        // A failed attempt is not done, and no longer running.
        store.record(task(2, 13, true));
        store.record(StatusEvent::task_failed(
            "job-1",
            2,
            13,
            0,
            "exec-0",
            "fetch failed".into(),
        ));
        assert_eq!(
            stage_label(&store.active_stages()[1]),
            "[Stage 2: 13/16 tasks]"
        );
        assert_eq!(store.active_stages()[1].running, 0);

        // The job ends: nothing is running any more.
        store.record(StatusEvent::JobEnd {
            job_id: "job-1".into(),
            time_ms: 40,
            error: None,
            counters: String::new(),
            recomputed_map_outputs: 0,
        });
        assert!(store.active_stages().is_empty());
    }
}
