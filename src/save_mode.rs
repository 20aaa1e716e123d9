//! [`SaveMode`]: what a table write does when the table already exists
//! (Spark's `DataFrameWriter.mode`).

/// See the module docs. A write to a location without a table creates it,
/// whatever the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// Add the rows to the table (Spark's `append`).
    Append,
    /// Replace every row of the table by the written ones, in one new
    /// version: older versions keep their rows for time travel (Spark's
    /// `overwrite`).
    Overwrite,
    /// Fail if the table exists (Spark's default, `errorifexists`).
    #[default]
    ErrorIfExists,
    /// Write nothing if the table exists (Spark's `ignore`).
    Ignore,
}

impl std::str::FromStr for SaveMode {
    type Err = datafusion::common::DataFusionError;

    /// Spark's names: `append`, `overwrite`, `error` / `errorifexists`,
    /// `ignore` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "append" => Ok(SaveMode::Append),
            "overwrite" => Ok(SaveMode::Overwrite),
            "error" | "errorifexists" => Ok(SaveMode::ErrorIfExists),
            "ignore" => Ok(SaveMode::Ignore),
            other => datafusion::common::plan_err!(
                "unknown save mode '{other}': use append, overwrite, errorifexists or ignore"
            ),
        }
    }
}
