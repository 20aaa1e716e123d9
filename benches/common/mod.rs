//! What the end-to-end benchmark runners share: where their data lives, the
//! embedded cluster they time, and the table of medians and ratios they
//! print (minispark against single-node DataFusion, measured in the same run).

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
    let mut options = LocalClusterOptions::new(executors)?;
    options.binary = PathBuf::from(env!("CARGO_BIN_EXE_minispark"));
    LocalCluster::start(options).await
}

/// Prints one line per job (DataFusion ms, minispark ms, ratio) and the total.
pub struct RatioTable {
    width: usize,
    total_df: Duration,
    total_ms: Duration,
    worst: Option<(String, f64)>,
}

impl RatioTable {
    /// Prints the header; `label` names the first column, `width` its width.
    pub fn new(label: &str, width: usize) -> Self {
        Self::with_headers(label, width, "datafusion ms", "minispark ms")
    }

    /// [`RatioTable::new`] with other names for the baseline and measured
    /// columns (the ratio is measured / baseline).
    pub fn with_headers(label: &str, width: usize, baseline: &str, measured: &str) -> Self {
        println!(
            "{label:>width$} {baseline:>14} {measured:>14} {:>8}",
            "ratio"
        );
        Self {
            width,
            total_df: Duration::ZERO,
            total_ms: Duration::ZERO,
            worst: None,
        }
    }

    /// One job's medians.
    pub fn row(&mut self, name: &str, datafusion: Duration, minispark: Duration) {
        let ratio = minispark.as_secs_f64() / datafusion.as_secs_f64();
        if self.worst.as_ref().is_none_or(|(_, w)| ratio > *w) {
            self.worst = Some((name.to_string(), ratio));
        }
        self.total_df += datafusion;
        self.total_ms += minispark;
        println!(
            "{name:>width$} {:>14.1} {:>14.1} {ratio:>7.2}x",
            datafusion.as_secs_f64() * 1e3,
            minispark.as_secs_f64() * 1e3,
            width = self.width
        );
    }

    /// The totals and the worst ratio.
    pub fn finish(self) {
        let (name, ratio) = self.worst.unwrap_or_default();
        println!(
            "{:>width$} {:>14.1} {:>14.1} {:>7.2}x   (worst: {name} at {ratio:.2}x)",
            "total",
            self.total_df.as_secs_f64() * 1e3,
            self.total_ms.as_secs_f64() * 1e3,
            self.total_ms.as_secs_f64() / self.total_df.as_secs_f64(),
            width = self.width
        );
    }
}
