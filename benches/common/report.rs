//! The header every benchmark runner prints above its table: how to rerun
//! it, at which commit, when, on what machine, and with which settings of
//! each engine, all read at run time (nothing here is copied text), so a
//! runner's standard output goes into BENCHMARKS.md as it is.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::common::config::ConfigOptions;
use minispark::planner::config::minispark_config;
use minispark::planner::session::FORCED_SETTINGS;

/// The command that reruns this runner with the arguments it was given
/// (`cargo bench` passes `--bench`, which is not the user's).
pub fn command(bench: &str) -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect();
    if args.is_empty() {
        format!("cargo bench --bench {bench}")
    } else {
        format!("cargo bench --bench {bench} -- {}", args.join(" "))
    }
}

fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git rev-parse --short HEAD` of this checkout, with "(dirty)" when
/// `git status --porcelain` lists anything.
pub fn commit() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(head) = output("git", &["rev-parse", "--short", "HEAD"], dir) else {
        return "unknown (not a git checkout)".to_string();
    };
    match output("git", &["status", "--porcelain"], dir) {
        Some(status) if status.is_empty() => head,
        Some(_) => format!("{head} (dirty)"),
        None => format!("{head} (status unknown)"),
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn date_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let time = i64::try_from(secs)
        .ok()
        .and_then(arrow::temporal_conversions::timestamp_s_to_datetime)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    format!("{time} UTC")
}

fn file_field(path: &str, key: &str, separator: char) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(separator)?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// CPU model, cores, memory, OS, kernel, rustc and build profile.
pub fn machine() -> String {
    let cpu =
        file_field("/proc/cpuinfo", "model name", ':').unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let memory = file_field("/proc/meminfo", "MemTotal", ':')
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown memory".into());
    let os =
        file_field("/etc/os-release", "PRETTY_NAME", '=').unwrap_or_else(|| "unknown OS".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", Linux {}", k.trim()))
        .unwrap_or_default();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output(&rustc, &["--version"], Path::new("."))
        .unwrap_or_else(|| "rustc version unknown".into());
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: these times mean nothing"
    } else {
        "optimized build (`bench` profile)"
    };
    format!("{cpu}, {cores} cores, {memory}; {os}{kernel}; {rustc}; {profile}")
}

/// The lines every runner starts with: the command in a code block, then
/// commit, date and machine.
pub fn run_header(bench: &str) -> String {
    format!(
        "```sh\n{}\n```\n\n- Commit: `{}`\n- Date: {}\n- Machine: {}\n",
        command(bench),
        commit(),
        date_utc(),
        machine()
    )
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// DataFusion's settings that decide what the baseline does, from its
/// session config.
pub fn datafusion_line(df: &ConfigOptions) -> String {
    let o = &df.optimizer;
    format!(
        "one process, {} target partitions; a join side is collected (broadcast to every \
         partition) below `hash_join_single_partition_threshold` = {} bytes and `_rows` = {} rows; \
         dynamic filters {} (join {}, TopK {}, aggregate {})",
        df.execution.target_partitions,
        o.hash_join_single_partition_threshold,
        o.hash_join_single_partition_threshold_rows,
        on_off(o.enable_dynamic_filter_pushdown),
        on_off(o.enable_join_dynamic_filter_pushdown),
        on_off(o.enable_topk_dynamic_filter_pushdown),
        on_off(o.enable_aggregate_dynamic_filter_pushdown),
    )
}

/// minispark's settings that decide what a job does, from a session config.
pub fn minispark_line(ms: &ConfigOptions, executors: usize, slots: usize) -> String {
    let c = minispark_config(ms);
    let broadcast = if c.auto_broadcast_join_threshold < 0 {
        "automatic broadcasts off (`autoBroadcastJoinThreshold` = -1)".to_string()
    } else {
        format!(
            "a join side is broadcast below `autoBroadcastJoinThreshold` = {} bytes",
            c.auto_broadcast_join_threshold
        )
    };
    let compression = format!("{:?}", c.shuffle_compression).to_lowercase();
    let partitions = match c.shuffle_partitions {
        0 => format!("{slots} (one per task slot)"),
        n => n.to_string(),
    };
    format!(
        "embedded cluster: the driver in the runner's process, {executors} executor processes, \
         {slots} task slots in all, loopback gRPC; {partitions} shuffle partitions; adaptive execution {}; \
         shuffle compression {compression}; {broadcast}; salting {}",
        on_off(c.adaptive_enabled),
        if c.salting_auto { "auto" } else { "off" },
    )
}

fn entries(options: &ConfigOptions) -> BTreeMap<String, String> {
    options
        .entries()
        .into_iter()
        .map(|e| (e.key, e.value.unwrap_or_else(|| "(unset)".into())))
        .collect()
}

/// A Markdown table of the DataFusion settings that matter for the
/// comparison (partitions, join thresholds, dynamic filters, every setting
/// minispark forces) and of every other `datafusion.*` setting that differs
/// between the baseline's session and minispark's.
pub fn settings_table(df: &ConfigOptions, ms: &ConfigOptions) -> String {
    let (df, ms) = (entries(df), entries(ms));
    let always = |key: &str| {
        key == "datafusion.execution.target_partitions"
            || key.starts_with("datafusion.optimizer.hash_join_single_partition_threshold")
            || key.contains("dynamic_filter")
            || FORCED_SETTINGS.iter().any(|(k, _)| *k == key)
    };
    let mut out = String::from(
        "| DataFusion setting | DataFusion baseline | minispark | |\n|---|---|---|---|\n",
    );
    let mut same_others = 0;
    for (key, df_value) in df.iter().filter(|(k, _)| k.starts_with("datafusion.")) {
        let ms_value = ms.get(key).map(String::as_str).unwrap_or("(unset)");
        let differs = df_value != ms_value;
        if always(key) || differs {
            let _ = writeln!(
                out,
                "| `{key}` | {df_value} | {ms_value} | {} |",
                if differs { "**differs**" } else { "same" }
            );
        } else {
            same_others += 1;
        }
    }
    let _ = writeln!(
        out,
        "\nThe other {same_others} `datafusion.*` settings are the same in both sessions. \
         Both columns are read from the engines' session configs in this run."
    );
    out
}
