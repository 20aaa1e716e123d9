//! Salt values: which salts a hot key gets, and how a row picks one.
//!
//! A hot key's S salts are picked so that its `(key, salt)` pieces hash to
//! different shuffle partitions ([`spread_salts`]), and each big-side row
//! of the key draws one of them ([`pick_salt`], at random or, for a
//! `COUNT(DISTINCT x)`, from `hash(x)`); rows of other keys get salt 0.
//!
//! ```text
//!   a hot key, S = 4, 16 partitions (illustrative numbers):
//!     salts 0, 1, 2, 3  ->  partitions 3, 9, 3, 12   two pieces share p3
//!     salts 0, 1, 5, 3  ->  partitions 3, 9, 6, 12   spread: one piece each
//! ```

use std::fmt;
use std::sync::Arc;

use arrow::array::Int32Array;
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_nested::expr_fn::make_array;
use datafusion::logical_expr::{Expr, lit, when};

/// One hot key and the salts it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct HotValue {
    /// One value per salted key column.
    pub key: Vec<ScalarValue>,
    /// The salt values: `0..S`, or values picked so that each `(key, salt)`
    /// lands in its own shuffle partition ([`spread_salts`]).
    pub salts: Vec<i32>,
    /// Share of the sampled rows, when measured.
    pub share: Option<f64>,
}

impl HotValue {
    pub fn new(key: Vec<ScalarValue>, buckets: usize, share: Option<f64>) -> Self {
        Self {
            key,
            salts: (0..buckets as i32).collect(),
            share,
        }
    }
}

impl fmt::Display for HotValue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let key: Vec<String> = self.key.iter().map(ScalarValue::to_string).collect();
        if key.len() == 1 {
            write!(f, "{}", key[0])?;
        } else {
            write!(f, "({})", key.join(", "))?;
        }
        if let Some(share) = self.share {
            write!(f, " ({:.1}%)", share * 100.0)?;
        }
        write!(f, " x{}", self.salts.len())
    }
}

/// Picks each hot key's salt values so that its `(key, salt)` pieces hash
/// (Spark's Murmur3, as the shuffle does) to different partitions, the
/// least loaded first: with salts `0..S`, two pieces of the same key land
/// in one partition about `S / N` of the time. `others` are the sampled
/// keys that stay unsalted (salt 0) with their shares: their partitions
/// count as loaded. Keys are all the shuffle's keys; hot keys hottest
/// first.
pub fn spread_salts(
    hot: &mut [HotValue],
    others: &[(Vec<ScalarValue>, f64)],
    partitions: usize,
) -> Result<()> {
    use minispark_functions::hash::spark_murmur3::partition_ids;
    const TRIES_PER_PARTITION: i32 = 16;
    let n = partitions.max(1);
    let mut load = vec![0.0f64; n];
    for (key, share) in others {
        let mut columns = key
            .iter()
            .map(|v| v.to_array_of_size(1))
            .collect::<Result<Vec<_>>>()?;
        columns.push(Arc::new(Int32Array::from(vec![0])));
        let (mut hashes, mut ids) = (vec![], vec![]);
        partition_ids(&columns, 1, n, &mut hashes, &mut ids)?;
        load[ids[0] as usize] += share;
    }
    for h in hot.iter_mut() {
        let buckets = h.salts.len().min(n);
        let candidates: Vec<i32> = (0..TRIES_PER_PARTITION * n as i32).collect();
        let mut columns = h
            .key
            .iter()
            .map(|v| v.to_array_of_size(candidates.len()))
            .collect::<Result<Vec<_>>>()?;
        columns.push(Arc::new(Int32Array::from(candidates.clone())));
        let (mut hashes, mut ids) = (vec![], vec![]);
        partition_ids(&columns, candidates.len(), n, &mut hashes, &mut ids)?;
        // The first salt reaching each partition.
        let mut first: Vec<Option<i32>> = vec![None; n];
        for (salt, p) in candidates.iter().zip(&ids) {
            first[*p as usize].get_or_insert(*salt);
        }
        let mut reachable: Vec<usize> = (0..n).filter(|p| first[*p].is_some()).collect();
        reachable.sort_by(|a, b| load[*a].total_cmp(&load[*b]).then(a.cmp(b)));
        let piece = h.share.unwrap_or(1.0) / buckets as f64;
        h.salts = reachable
            .into_iter()
            .take(buckets)
            .map(|p| {
                load[p] += piece;
                first[p].expect("reachable partitions have a salt")
            })
            .collect();
    }
    Ok(())
}

/// `CASE WHEN keys = hot1 THEN then(hot1) ... ELSE otherwise END`.
pub(super) fn case_over_hot(
    keys: &[Expr],
    hot: &[HotValue],
    then: impl Fn(&HotValue) -> Result<Expr>,
    otherwise: Expr,
) -> Result<Expr> {
    let condition = |h: &HotValue| {
        keys.iter()
            .zip(&h.key)
            .map(|(k, v)| k.clone().eq(lit(v.clone())))
            .reduce(Expr::and)
            .expect("a hot key has at least one column")
    };
    let mut case = when(condition(&hot[0]), then(&hot[0])?);
    for h in &hot[1..] {
        case = case.when(condition(h), then(h)?);
    }
    case.otherwise(otherwise)
}

/// One of a hot key's salts per row: `salt_pick([s0, s1, ..], index)`
/// ([`minispark_functions::salt`]), at random when `index` is `None`.
pub(super) fn pick_salt(hot: &HotValue, index: Option<Expr>) -> Result<Expr> {
    let salts = make_array(hot.salts.iter().copied().map(lit).collect());
    let mut args = vec![salts];
    args.extend(index);
    Ok(minispark_functions::salt::salt_pick_udf().call(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minispark_functions::hash::spark_murmur3::partition_ids;

    /// Salts are picked so a hot key's pieces hash to different partitions,
    /// and two hot keys avoid each other's partitions while they can.
    #[test]
    fn spread_salts_land_in_distinct_partitions() {
        let n = 16;
        let mut hot = vec![
            HotValue::new(vec![ScalarValue::Int64(Some(145))], 6, Some(0.3)),
            HotValue::new(vec![ScalarValue::Int64(Some(7))], 4, Some(0.1)),
        ];
        spread_salts(&mut hot, &[], n).unwrap();
        let mut all = vec![];
        for h in &hot {
            assert_eq!(h.salts.len(), if h.share == Some(0.3) { 6 } else { 4 });
            let keys = h.key[0].to_array_of_size(h.salts.len()).unwrap();
            let salts: arrow::array::ArrayRef = Arc::new(Int32Array::from(h.salts.clone()));
            let (mut buf, mut ids) = (vec![], vec![]);
            partition_ids(&[keys, salts], h.salts.len(), n, &mut buf, &mut ids).unwrap();
            let mut distinct = ids.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), ids.len(), "{h:?} -> {ids:?}");
            all.extend(ids);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10, "10 pieces, 10 partitions");

        // A big unsalted key's partition (salt 0) gets no piece.
        let other = vec![ScalarValue::Int64(Some(3))];
        let columns: Vec<arrow::array::ArrayRef> = vec![
            other[0].to_array_of_size(1).unwrap(),
            Arc::new(Int32Array::from(vec![0])),
        ];
        let (mut buf, mut busy) = (vec![], vec![]);
        partition_ids(&columns, 1, n, &mut buf, &mut busy).unwrap();
        let mut hot = vec![HotValue::new(
            vec![ScalarValue::Int64(Some(145))],
            8,
            Some(0.3),
        )];
        spread_salts(&mut hot, &[(other, 0.2)], n).unwrap();
        let keys = hot[0].key[0].to_array_of_size(8).unwrap();
        let salts: arrow::array::ArrayRef = Arc::new(Int32Array::from(hot[0].salts.clone()));
        let (mut buf, mut ids) = (vec![], vec![]);
        partition_ids(&[keys, salts], 8, n, &mut buf, &mut ids).unwrap();
        assert!(!ids.contains(&busy[0]), "{ids:?} avoid {busy:?}");
    }
}
