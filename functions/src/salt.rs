//! `salt_pick(salts [, index])`: one of a hot key's salts, per row.
//!
//! Key salting (`minispark_planner::salting`) gives each row of a hot key one of the
//! key's salt values. `salt_pick([20, 8, 32], NULL)` picks one at random;
//! `salt_pick([20, 8, 32], i)` picks `salts[i mod 3]` (a GROUP BY with
//! `COUNT(DISTINCT x)` passes a hash of `x`, so equal `x` get equal salts).
//!
//! The same thing in plain SQL is `CASE i WHEN 0 THEN 20 WHEN 1 THEN 8 ..`,
//! which DataFusion evaluates branch by branch (16 branches for 16 salts);
//! this is one pass over the batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use rand::Rng;

/// See the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SaltPick {
    signature: Signature,
}

impl Default for SaltPick {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

/// The `salt_pick` function, registered in every session.
pub fn salt_pick_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(SaltPick::default())
}

/// The salt list type: `List(Int32)`.
pub fn salt_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
}

impl ScalarUDFImpl for SaltPick {
    fn name(&self) -> &str {
        "salt_pick"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [_] => Ok(vec![salt_list_type()]),
            [_, _] => Ok(vec![salt_list_type(), DataType::Int64]),
            _ => plan_err!("salt_pick(salts [, index]) takes one or two arguments"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let salts = match args.args.first() {
            Some(ColumnarValue::Scalar(ScalarValue::List(list))) if !list.is_empty() => {
                let values = list.value(0);
                values.as_primitive::<Int32Type>().values().to_vec()
            }
            // Not folded into a literal: the same list on every row.
            Some(ColumnarValue::Array(array)) if !array.is_empty() => {
                let values = array.as_list::<i32>().value(0);
                values.as_primitive::<Int32Type>().values().to_vec()
            }
            _ => return exec_err!("salt_pick: the salts must be a non-empty literal list"),
        };
        if salts.is_empty() {
            return exec_err!("salt_pick: the salt list is empty");
        }
        let n = salts.len() as i64;
        let picked: Int32Array = match args.args.get(1) {
            None | Some(ColumnarValue::Scalar(ScalarValue::Int64(None))) => {
                let mut rng = rand::rng();
                (0..rows)
                    .map(|_| Some(salts[rng.random_range(0..salts.len())]))
                    .collect()
            }
            Some(index) => {
                let index: ArrayRef = index.to_array(rows)?;
                let index = index.as_primitive::<Int64Type>();
                index
                    .iter()
                    .map(|i| Some(salts[i.unwrap_or(0).rem_euclid(n) as usize]))
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(picked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_context;

    #[tokio::test]
    async fn picks_only_listed_salts_at_random_or_by_index() {
        let ctx = test_context();
        let batches = ctx
            .sql(
                "SELECT salt_pick(make_array(20, 8, 32)) AS r, \
                 salt_pick(make_array(20, 8, 32), x) AS i \
                 FROM (SELECT unnest(range(0, 3000)) AS x)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut seen = std::collections::BTreeMap::new();
        let mut row = 0i64;
        for b in &batches {
            let r = b.column(0).as_primitive::<Int32Type>();
            let i = b.column(1).as_primitive::<Int32Type>();
            for k in 0..b.num_rows() {
                *seen.entry(r.value(k)).or_insert(0) += 1;
                assert_eq!(i.value(k), [20, 8, 32][(row % 3) as usize]);
                row += 1;
            }
        }
        assert_eq!(row, 3000);
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![8, 20, 32]);
        assert!(seen.values().all(|c| *c > 800), "{seen:?}");
    }
}
