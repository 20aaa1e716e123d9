//! When is a shuffle partition skewed?
//!
//! Spark's rule: a reduce partition is skewed when it is larger than
//! `skewedPartitionFactor` times the median partition **and** larger than
//! `skewedPartitionThresholdInBytes`. minispark takes the median of the
//! non-empty partitions. The factor catches "one partition
//! far above the rest"; the threshold keeps small jobs, where a few extra
//! kilobytes cost nothing, from being called skewed.
//!
//! ```text
//!   bytes per reduce partition          median = 2 MB, factor 5 -> limit 10 MB
//!   p0 ██ 2 MB
//!   p1 ██ 2 MB
//!   p2 ████████████████████ 20 MB   <- skewed (10x the median, > threshold)
//!   p3 ██ 1 MB
//! ```

use crate::config::MinisparkConfig;
use crate::explain::PartitionSize;

/// The skew rule with its two settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewRule {
    pub factor: f64,
    pub threshold_bytes: u64,
}

impl SkewRule {
    /// The rule of a session's settings.
    pub fn from_config(config: &MinisparkConfig) -> Self {
        Self {
            factor: config.skewed_partition_factor,
            threshold_bytes: config.skewed_partition_threshold_bytes,
        }
    }

    /// The skewed partitions among `sizes`, with each one's size over the
    /// median.
    pub fn skewed(&self, sizes: &[PartitionSize]) -> Vec<(usize, f64)> {
        let median = median_bytes(sizes);
        sizes
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.bytes > self.threshold_bytes && (s.bytes as f64) > self.factor * median as f64
            })
            .map(|(p, s)| (p, s.bytes as f64 / median.max(1) as f64))
            .collect()
    }
}

/// The median bytes of the non-empty partitions (the upper median for an
/// even count). Empty partitions are no work: counting them would make any
/// shuffle with few distinct keys look skewed.
pub fn median_bytes(sizes: &[PartitionSize]) -> u64 {
    let mut bytes: Vec<u64> = sizes.iter().map(|s| s.bytes).filter(|b| *b > 0).collect();
    bytes.sort_unstable();
    bytes.get(bytes.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(bytes: &[u64]) -> Vec<PartitionSize> {
        bytes
            .iter()
            .map(|&b| PartitionSize {
                rows: b / 10,
                bytes: b,
            })
            .collect()
    }

    #[test]
    fn both_the_factor_and_the_threshold_must_be_exceeded() {
        let rule = SkewRule {
            factor: 5.0,
            threshold_bytes: 1000,
        };
        // 20x the median and above the threshold: skewed.
        assert_eq!(rule.skewed(&sizes(&[100, 100, 2000, 90])), vec![(2, 20.0)]);
        // 20x the median but below the threshold: not skewed.
        let small = SkewRule {
            factor: 5.0,
            threshold_bytes: 5000,
        };
        assert!(small.skewed(&sizes(&[100, 100, 2000, 90])).is_empty());
        // Above the threshold but only 2x the median: not skewed.
        assert!(rule.skewed(&sizes(&[3000, 3000, 6000, 3000])).is_empty());
        // No partitions, no skew.
        assert!(rule.skewed(&[]).is_empty());
    }

    #[test]
    fn defaults_are_sparks() {
        let rule = SkewRule::from_config(&MinisparkConfig::default());
        assert_eq!(rule.factor, 5.0);
        assert_eq!(rule.threshold_bytes, 256 * 1024 * 1024);
    }
}
