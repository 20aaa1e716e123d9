//! `spark_partition_id()`: the partition the current task runs, as Spark's.
//!
//! Spark's function reads `TaskContext.partitionId()`: the index of the
//! partition its task computes, so `SELECT k, spark_partition_id() FROM
//! (SELECT * FROM t DISTRIBUTE BY k)` shows where each key landed. A
//! DataFusion scalar function sees no partition index, so the task passes
//! it in its session config: the executor puts a [`TaskPartition`] into the
//! config it decodes the stage plan with, and every function call decoded
//! there carries those options to `invoke_with_args`.
//!
//! The function is volatile: never folded into a constant at planning time
//! (the driver does not know the partition), and never moved across an
//! exchange by the optimizer. Evaluated outside a minispark task (a plain
//! DataFusion session) it is an error, not a made-up 0.

use std::sync::Arc;

use arrow::array::Int32Array;
use arrow::datatypes::DataType;
use datafusion::common::config::ConfigExtension;
use datafusion::common::{Result, exec_err, extensions_options};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

extensions_options! {
    /// The partition a task computes, set by the executor in the session
    /// config of each task (not a user setting).
    pub struct TaskPartition {
        /// The task's partition index; none outside a task.
        pub partition_id: Option<usize>, default = None
    }
}

impl ConfigExtension for TaskPartition {
    const PREFIX: &'static str = "minispark_task";
}

impl TaskPartition {
    pub fn new(partition: usize) -> Self {
        Self {
            partition_id: Some(partition),
        }
    }
}

/// See the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkPartitionId {
    signature: Signature,
}

impl Default for SparkPartitionId {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

/// The `spark_partition_id` function, registered in every session.
pub fn spark_partition_id_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(SparkPartitionId::default())
}

impl ScalarUDFImpl for SparkPartitionId {
    fn name(&self) -> &str {
        "spark_partition_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let partition = args
            .config_options
            .extensions
            .get::<TaskPartition>()
            .and_then(|t| t.partition_id)
            .and_then(|p| i32::try_from(p).ok());
        let Some(partition) = partition else {
            return exec_err!(
                "spark_partition_id() is evaluated only inside a minispark task, which knows its partition"
            );
        };
        Ok(ColumnarValue::Array(Arc::new(Int32Array::from(vec![
            partition;
            args.number_rows
        ]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Int32Type};
    use datafusion::common::config::ConfigOptions;

    fn call(options: ConfigOptions) -> Result<Vec<i32>> {
        let args = ScalarFunctionArgs {
            args: vec![],
            arg_fields: vec![],
            number_rows: 3,
            return_field: Arc::new(Field::new("p", DataType::Int32, false)),
            config_options: Arc::new(options),
        };
        match SparkPartitionId::default().invoke_with_args(args)? {
            ColumnarValue::Array(a) => Ok(a.as_primitive::<Int32Type>().values().to_vec()),
            ColumnarValue::Scalar(s) => panic!("a scalar {s}"),
        }
    }

    #[test]
    fn the_task_partition_on_every_row() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(TaskPartition::new(7));
        assert_eq!(call(options).unwrap(), vec![7, 7, 7]);
    }

    #[test]
    fn outside_a_task_is_an_error() {
        let err = call(ConfigOptions::new()).unwrap_err().to_string();
        assert!(err.contains("only inside a minispark task"), "{err}");
    }

    #[test]
    fn volatile_so_never_folded() {
        assert_eq!(
            SparkPartitionId::default().signature().volatility,
            Volatility::Volatile
        );
    }
}
