//! What the end-to-end benchmark runners share: where their data lives, the
//! embedded cluster they time, and the table of medians and ratios they
//! print (minispark against single-node DataFusion, measured in the same run),
//! and the header above it ([`report`]).

pub mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::common::Result;
use minispark::local::{LocalCluster, LocalClusterOptions};

/// The median of some timings.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `--data` when given, else `target/<name>` of this checkout.
pub fn data_dir(given: Option<PathBuf>, name: &str) -> PathBuf {
    given.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(name)
    })
}

/// `path` relative to this checkout when it is inside it.
pub fn show_path(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Calls `generate(dir)` unless `dir/<marker>` exists already.
pub fn generate_once(
    dir: &Path,
    marker: &str,
    what: &str,
    generate: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if !dir.join(marker).exists() {
        eprintln!("generating {what} into {}", dir.display());
        generate(dir)?;
    }
    Ok(())
}

/// An embedded cluster of executor processes of this build's binary.
pub async fn start_cluster(executors: usize) -> Result<LocalCluster> {
    start_cluster_with_ui(executors, None).await
}

/// [`start_cluster`], its driver serving the web UI at `ui` (HOST:PORT).
#[allow(dead_code)] // not every runner uses it
pub async fn start_cluster_with_ui(executors: usize, ui: Option<&str>) -> Result<LocalCluster> {
    let mut options = LocalClusterOptions::new(executors)?;
    options.binary = PathBuf::from(env!("CARGO_BIN_EXE_minispark"));
    options.ui = ui.map(str::to_string);
    LocalCluster::start(options).await
}

/// A Markdown table of one line per job (baseline ms, measured ms, ratio)
/// and the total; each line also goes to stderr as it is measured.
pub struct RatioTable {
    markdown: String,
    total_baseline: Duration,
    total_measured: Duration,
    worst: Option<(String, f64)>,
}

impl RatioTable {
    /// `label` names the first column; the baseline is single-node DataFusion.
    pub fn new(label: &str) -> Self {
        Self::with_headers(label, "DataFusion ms", "minispark ms")
    }

    /// [`RatioTable::new`] with other names for the baseline and measured
    /// columns (the ratio is measured / baseline).
    pub fn with_headers(label: &str, baseline: &str, measured: &str) -> Self {
        Self {
            markdown: format!(
                "| {label} | {baseline} | {measured} | ratio |\n|---|---:|---:|---:|\n"
            ),
            total_baseline: Duration::ZERO,
            total_measured: Duration::ZERO,
            worst: None,
        }
    }

    /// One job's medians.
    pub fn row(&mut self, name: &str, baseline: Duration, measured: Duration) {
        let ratio = measured.as_secs_f64() / baseline.as_secs_f64();
        if self.worst.as_ref().is_none_or(|(_, w)| ratio > *w) {
            self.worst = Some((name.to_string(), ratio));
        }
        self.total_baseline += baseline;
        self.total_measured += measured;
        let line = format!(
            "| {name} | {:.1} | {:.1} | {ratio:.2}x |",
            baseline.as_secs_f64() * 1e3,
            measured.as_secs_f64() * 1e3,
        );
        eprintln!("{line}");
        self.markdown.push_str(&line);
        self.markdown.push('\n');
    }

    /// The table with its total line, the total ratio and the worst row's
    /// (name, ratio).
    pub fn finish(mut self) -> (String, f64, (String, f64)) {
        let ratio = self.total_measured.as_secs_f64() / self.total_baseline.as_secs_f64();
        self.markdown.push_str(&format!(
            "| **total** | **{:.1}** | **{:.1}** | **{ratio:.2}x** |\n",
            self.total_baseline.as_secs_f64() * 1e3,
            self.total_measured.as_secs_f64() * 1e3,
        ));
        (self.markdown, ratio, self.worst.unwrap_or_default())
    }
}

/// The `KEY=VALUE` of a `--conf` / `--datafusion-conf` flag.
pub fn key_value(arg: &str) -> (String, String) {
    let (key, value) = arg
        .split_once('=')
        .unwrap_or_else(|| panic!("expected KEY=VALUE, got '{arg}'"));
    (key.trim().to_string(), value.trim().to_string())
}
