//! Spark's task summary: for each metric of a stage's successful tasks, the
//! minimum, 25th percentile, median, 75th percentile and maximum.

use serde::Serialize;

use crate::status_store::{TaskMetrics, TaskRecord};

/// The quantiles shown: Spark's stage page shows the same five.
pub const QUANTILES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// The five quantiles of `values` (nearest rank); `None` when empty.
pub fn quantiles(values: &[f64]) -> Option<[f64; 5]> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let last = (sorted.len() - 1) as f64;
    Some(QUANTILES.map(|q| sorted[(q * last).round() as usize]))
}

/// One metric's row of the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricSummary {
    pub metric: &'static str,
    /// "ms", "rows" or "bytes".
    pub unit: &'static str,
    /// Min, 25th, median, 75th, max.
    pub quantiles: [f64; 5],
}

/// How a metric is read from a task's metrics.
type Metric = fn(&TaskMetrics) -> f64;

/// The metrics summarized, with their units.
const METRICS: [(&str, &str, Metric); 7] = [
    ("duration", "ms", |m| m.duration_ms),
    ("rows in", "rows", |m| m.rows_in as f64),
    ("bytes in", "bytes", |m| m.bytes_in as f64),
    ("rows out", "rows", |m| m.rows_out as f64),
    ("bytes out", "bytes", |m| m.bytes_out as f64),
    ("bytes fetched remotely", "bytes", |m| m.bytes_remote as f64),
    ("spill", "bytes", |m| m.spilled_bytes as f64),
];

/// The summary of the successful tasks among `tasks` (empty when none).
pub fn summarize(tasks: &[TaskRecord]) -> Vec<MetricSummary> {
    let metrics: Vec<&TaskMetrics> = tasks.iter().filter_map(|t| t.metrics.as_ref()).collect();
    METRICS
        .iter()
        .filter_map(|(metric, unit, get)| {
            let values: Vec<f64> = metrics.iter().map(|m| get(m)).collect();
            Some(MetricSummary {
                metric,
                unit,
                quantiles: quantiles(&values)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_quantiles_by_nearest_rank() {
        assert_eq!(quantiles(&[]), None);
        assert_eq!(quantiles(&[3.0]), Some([3.0; 5]));
        let v: Vec<f64> = (1..=9).rev().map(f64::from).collect();
        assert_eq!(quantiles(&v), Some([1.0, 3.0, 5.0, 7.0, 9.0]));
    }
}
