//! Printing results: a table, CSV (with a header), JSON lines or a JSON array.
//!
//! An empty result still shows its columns where the format can: `table`
//! prints the header box, `csv` the header line and `json-array` prints `[]`.
//! `json` (JSON lines, one object per row) has no header, so an empty result
//! prints nothing.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};

/// Output format of `minispark submit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table with a header (also for an empty result).
    Table,
    /// CSV with a header line (also for an empty result).
    Csv,
    /// JSON lines (NDJSON): one object per row; nothing for an empty result.
    #[value(alias = "ndjson")]
    Json,
    /// One JSON array of objects; `[]` for an empty result.
    JsonArray,
}

/// Writes a statement's result, `batches` of `schema`, to `out` in `format`.
pub fn write_result(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> Result<()> {
    match format {
        Format::Table => {
            let table =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
            writeln!(out, "{table}").map_err(DataFusionError::from)?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                // The writer prints the header with the first batch.
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                writer.write(b)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        Format::JsonArray => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            writeln!(out).map_err(DataFusionError::from)?;
        }
    }
    Ok(())
}
