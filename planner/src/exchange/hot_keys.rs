//! Finding the hot keys of a shuffle while it is written.
//!
//! A skewed shuffle has one reduce partition far larger than the rest, and
//! almost always for one reason: a few key values (one title that half the
//! world watches) hold a large share of the rows. Partition sizes show *that*
//! a partition is skewed; the hot keys say *why*, and are what salting needs.
//!
//! Each map task samples one row in [`SAMPLE_EVERY`] (at random gaps) and feeds the key's
//! Spark hash to a Filtered Space-Saving sketch (the `topk` crate): a fixed
//! number of counters that always holds every key more frequent than
//! 1/[`SKETCH_SIZE`] of the sample. The task reports its top keys with
//! estimated row counts; the driver adds up the reports of all tasks
//! ([`merge_hot_keys`]).
//!
//! ```text
//!  map task 0: title_id=1440 ~41k rows, title_id=7 ~9k, ...  ┐
//!  map task 1: title_id=1440 ~40k rows, title_id=93 ~8k, ... ├─▶ driver: title_id=1440 ~81k (20.3%) → partition 3
//!  map task 2: ...                                           ┘
//! ```

use std::collections::HashMap;

use arrow::array::ArrayRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;
use topk::FilteredSpaceSaving;

/// One row in this many is sampled (rows are hashed anyway; the sketch is
/// the cost). Estimated counts are sample counts times this.
pub const SAMPLE_EVERY: usize = 8;

/// Counters in each task's sketch.
pub const SKETCH_SIZE: usize = 32;

/// Keys a task reports: the heaviest of its sketch.
pub const REPORTED_KEYS: usize = 8;

/// A key that holds many rows of a shuffle, as one map task or the whole
/// stage saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKey {
    /// The key's Spark hash (seed 42): its identity across tasks.
    pub hash: u32,
    /// The key as `column=value, ...`, for people.
    pub display: String,
    /// Estimated rows with this key.
    pub estimated_rows: u64,
    /// The reduce partition the key's rows go to.
    pub partition: usize,
}

/// A map task's sampler of its hash-shuffle keys.
pub struct HotKeySampler {
    sketch: FilteredSpaceSaving<u32>,
    /// How the tracked keys look, rendered once from a row that had them.
    rendered: HashMap<u32, String>,
    names: Vec<String>,
    num_partitions: usize,
    /// Rows to skip before the next sample (the gaps span batches).
    skip: usize,
    rng: u64,
    sampled_rows: HashMap<u32, usize>,
}

impl std::fmt::Debug for HotKeySampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotKeySampler")
            .field("names", &self.names)
            .field("tracked", &self.rendered.len())
            .finish_non_exhaustive()
    }
}

impl HotKeySampler {
    /// A sampler for keys named `names` (e.g. `["title_id"]`) shuffled
    /// into `num_partitions` partitions.
    pub fn new(names: Vec<String>, num_partitions: usize) -> Self {
        Self {
            sketch: FilteredSpaceSaving::new(SKETCH_SIZE),
            rendered: HashMap::new(),
            names,
            num_partitions: num_partitions.max(1),
            skip: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            sampled_rows: HashMap::new(),
        }
    }

    /// Samples a batch: `keys` are its key columns, `hashes` their Spark
    /// hashes (as computed for partitioning).
    pub fn observe(&mut self, keys: &[ArrayRef], hashes: &[u32]) -> Result<()> {
        self.sampled_rows.clear();
        let mut row = self.skip;
        while row < hashes.len() {
            let hash = hashes[row];
            self.sketch.insert(hash, 1);
            self.sampled_rows.entry(hash).or_insert(row);
            row += self.next_gap();
        }
        self.skip = row - hashes.len();
        // Render the tracked keys not rendered yet that this batch has.
        let missing: Vec<(u32, usize)> = self
            .sketch
            .iter()
            .filter(|(hash, _)| !self.rendered.contains_key(*hash))
            .filter_map(|(hash, _)| self.sampled_rows.get(hash).map(|&row| (*hash, row)))
            .collect();
        if !missing.is_empty() {
            let options = FormatOptions::default().with_null("NULL");
            let formatters = keys
                .iter()
                .map(|k| ArrayFormatter::try_new(k.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for (hash, row) in missing {
                let text: Vec<String> = self
                    .names
                    .iter()
                    .zip(&formatters)
                    .map(|(name, f)| format!("{name}={}", f.value(row)))
                    .collect();
                self.rendered.insert(hash, text.join(", "));
            }
        }
        // Forget keys the sketch no longer tracks.
        if self.rendered.len() > 4 * SKETCH_SIZE {
            let tracked: std::collections::HashSet<u32> =
                self.sketch.iter().map(|(h, _)| *h).collect();
            self.rendered.retain(|h, _| tracked.contains(h));
        }
        Ok(())
    }

    /// Rows to the next sample: uniform in 1..2*SAMPLE_EVERY (mean
    /// SAMPLE_EVERY). A fixed stride would alias with periodic data (every
    /// other row the same key) and see a key in every sample or none.
    fn next_gap(&mut self) -> usize {
        // xorshift64: a few cycles per sample, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        1 + (self.rng % (2 * SAMPLE_EVERY as u64 - 1)) as usize
    }

    /// The task's heaviest keys, heaviest first.
    pub fn finish(self) -> Vec<HotKey> {
        let rendered = self.rendered;
        let n = self.num_partitions as i32;
        self.sketch
            .into_sorted_vec()
            .into_iter()
            .take(REPORTED_KEYS)
            .map(|(hash, counter)| HotKey {
                hash,
                display: rendered
                    .get(&hash)
                    .cloned()
                    .unwrap_or_else(|| format!("hash={}", hash as i32)),
                estimated_rows: counter.estimated_count() * SAMPLE_EVERY as u64,
                partition: (hash as i32).rem_euclid(n) as usize,
            })
            .collect()
    }
}

/// The stage's hot keys from its tasks' reports: counts added up per key,
/// heaviest first, at most `limit`.
pub fn merge_hot_keys<'a>(
    reports: impl IntoIterator<Item = &'a HotKey>,
    limit: usize,
) -> Vec<HotKey> {
    let mut merged: HashMap<u32, HotKey> = HashMap::new();
    for key in reports {
        merged
            .entry(key.hash)
            .and_modify(|k| k.estimated_rows += key.estimated_rows)
            .or_insert_with(|| key.clone());
    }
    let mut keys: Vec<HotKey> = merged.into_values().collect();
    keys.sort_by(|a, b| {
        b.estimated_rows
            .cmp(&a.estimated_rows)
            .then_with(|| a.display.cmp(&b.display))
    });
    keys.truncate(limit);
    keys
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;

    use super::*;
    use minispark_functions::hash::spark_murmur3::partition_ids;

    fn sample(values: &[i64], partitions: usize, batch: usize) -> Vec<HotKey> {
        let mut sampler = HotKeySampler::new(vec!["title_id".into()], partitions);
        let (mut hashes, mut ids) = (vec![], vec![]);
        for chunk in values.chunks(batch) {
            let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(chunk.to_vec()))];
            partition_ids(&keys, chunk.len(), partitions, &mut hashes, &mut ids).unwrap();
            sampler.observe(&keys, &hashes).unwrap();
        }
        sampler.finish()
    }

    #[test]
    fn finds_the_hot_key_and_its_partition() {
        // Key 1440 is 30% of the rows; the rest are spread over 20k keys.
        let values: Vec<i64> = (0..100_000)
            .map(|i| {
                if i % 10 < 3 {
                    1440
                } else {
                    10_000 + (i * 7919) % 20_000
                }
            })
            .collect();
        let keys = sample(&values, 8, 4096);
        let top = &keys[0];
        assert_eq!(top.display, "title_id=1440");
        let share = top.estimated_rows as f64 / values.len() as f64;
        assert!((share - 0.3).abs() < 0.03, "estimated share {share}");
        // The partition the shuffle really sends key 1440 to.
        let (mut hashes, mut ids) = (vec![], vec![]);
        let key: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1440]))];
        partition_ids(&key, 1, 8, &mut hashes, &mut ids).unwrap();
        assert_eq!(top.partition, ids[0] as usize);
        // No other key comes close.
        assert!(keys[1].estimated_rows < top.estimated_rows / 10);
    }

    #[test]
    fn merging_adds_up_the_tasks() {
        let values: Vec<i64> = (0..50_000)
            .map(|i| if i % 2 == 0 { 7 } else { i })
            .collect();
        let a = sample(&values, 4, 1000);
        let b = sample(&values, 4, 777);
        let merged = merge_hot_keys(a.iter().chain(&b), 3);
        assert_eq!(merged[0].display, "title_id=7");
        let share = merged[0].estimated_rows as f64 / 100_000.0;
        assert!((share - 0.5).abs() < 0.02, "merged share {share}");
        assert!(merged.len() <= 3);
    }
}
