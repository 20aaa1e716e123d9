//! A stage's output partition sizes as a bar chart: one bar per output
//! partition, skewed ones (by the job's skew rule) in red and labelled with
//! their size over the median, the median as a dashed line, and each
//! partition's hot keys in its bar's tooltip.

use std::fmt::Write;

use super::html::{esc, fmt_bytes};
use crate::status_store::StageStatus;

const HEIGHT: usize = 180;
const MAX_WIDTH: usize = 900;

/// The SVG histogram of `stage`'s output partitions; `None` when it has no
/// measured output (not complete, or a result stage with one partition).
pub fn histogram_svg(stage: &StageStatus) -> Option<String> {
    let parts = &stage.partitions;
    if parts.len() < 2 {
        return None;
    }
    let n = parts.len();
    let bar = (MAX_WIDTH / n).clamp(3, 48);
    let left = 60;
    let width = left + bar * n + 20;
    let top = 14;
    let max = parts.iter().map(|p| p.bytes).max().unwrap_or(0).max(1);
    let mut sorted: Vec<u64> = parts.iter().map(|p| p.bytes).collect();
    sorted.sort_unstable();
    let median = sorted[n / 2];
    let scale = |b: u64| (b as f64 / max as f64 * HEIGHT as f64).round() as usize;
    let mut svg = format!(
        "<svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{h}\" \
         role=\"img\" aria-label=\"output partition sizes of stage {id}\">\
         <text x=\"2\" y=\"{ty}\" font-size=\"10\">{max}</text><text x=\"2\" y=\"{by}\" font-size=\"10\">0</text>",
        h = HEIGHT + top + 36,
        id = stage.info.id,
        ty = top + 8,
        by = top + HEIGHT,
        max = esc(&fmt_bytes(max)),
    );
    for (p, size) in parts.iter().enumerate() {
        let skewed = stage.skewed_partitions.contains(&p);
        let h = scale(size.bytes).max(1);
        let x = left + p * bar;
        let y = top + HEIGHT - h;
        let keys: Vec<String> = stage
            .hot_keys
            .iter()
            .filter(|k| k.partition == p)
            .map(|k| format!("{} (~{} rows)", k.key, k.estimated_rows))
            .collect();
        let over = size.bytes as f64 / median.max(1) as f64;
        let _ = write!(
            svg,
            "<rect class=\"bar{cls}\" data-partition=\"{p}\" data-bytes=\"{b}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{fill}\">\
             <title>partition {p}: {bytes}, {rows} rows{skew}{keys}</title></rect>",
            cls = if skewed { " skewed" } else { "" },
            b = size.bytes,
            w = bar.saturating_sub(1).max(1),
            fill = if skewed { "#d33" } else { "#69c" },
            bytes = esc(&fmt_bytes(size.bytes)),
            rows = size.rows,
            skew = if skewed {
                format!(" - SKEWED, {over:.1}x the median")
            } else {
                String::new()
            },
            keys = if keys.is_empty() {
                String::new()
            } else {
                esc(&format!("; hot keys: {}", keys.join(", ")))
            },
        );
        if skewed {
            let _ = write!(
                svg,
                "<text class=\"skew-label\" x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#b00\" text-anchor=\"middle\">p{p} {over:.1}x</text>",
                x + bar / 2,
                (y.max(top + 10)) - 2
            );
        }
        if n <= 32 || p % n.div_ceil(16) == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{p}</text>",
                x + bar / 2,
                top + HEIGHT + 12
            );
        }
    }
    let my = top + HEIGHT - scale(median);
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{my}\" x2=\"{}\" y2=\"{my}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{left}\" y=\"{}\" font-size=\"10\">median {} \u{b7} output partition</text></svg>",
        left + bar * n,
        top + HEIGHT + 28,
        esc(&fmt_bytes(median))
    );
    Some(svg)
}
