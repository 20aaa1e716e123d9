//! The driver's commit of an Iceberg append: the data files the write
//! tasks staged become one new snapshot (`iceberg`'s `fast_append`),
//! committed through the table's [`FolderCatalog`].
//!
//! ```text
//!  staged files (one attempt per task) ─▶ moved to <table>/data/<partition path>/
//!     ─▶ DataFile: path, size, rows, partition tuple (from the hidden
//!        columns' folder names), column metrics (from the Parquet footer)
//!     ─▶ Transaction::fast_append ─▶ FolderCatalog::update_table
//!  any error ─▶ the moved files are deleted (the job's abort removes the rest)
//! ```
//!
//! Column metrics (sizes, value and null counts, exact lower and upper
//! bounds of primitive columns) are read from each file's Parquet footer,
//! so that readers skip files by their bounds as they do for files written
//! by other Iceberg writers.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::parquet::file::statistics::Statistics;
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, Literal, PrimitiveType,
    Schema, Struct, Type,
};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::folder_catalog::FolderCatalog;
use crate::scan::chain;
use crate::sink::IcebergAppend;

/// One data file a write task staged.
#[derive(Debug, Clone)]
pub struct StagedDataFile {
    /// Where it is in the store.
    pub staged: Path,
    /// The task (partition) that wrote it.
    pub task: usize,
    pub bytes: u64,
    pub rows: u64,
    /// The hidden partition columns and their folder values.
    pub partition_values: Vec<(String, String)>,
}

/// What a commit did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The new snapshot.
    pub snapshot_id: i64,
    /// The new metadata file.
    pub metadata_file: String,
    pub files: usize,
    pub bytes: u64,
}

fn iceberg_error(what: &str) -> impl Fn(iceberg::Error) -> DataFusionError + '_ {
    move |e| DataFusionError::Execution(format!("{what}: {}", chain(&e)))
}

/// Commits `files` (staged by write job `write_id` into `store`) as one
/// appended snapshot of the table `append` names: see the module docs.
/// `data_prefix` is the store path of the table's `data/` folder.
pub async fn commit_append(
    registry: Arc<dyn ObjectStoreRegistry>,
    store: Arc<dyn ObjectStore>,
    data_prefix: &Path,
    append: &IcebergAppend,
    write_id: &str,
    files: Vec<StagedDataFile>,
) -> Result<Appended> {
    let location = &append.location;
    let catalog = FolderCatalog::new(registry, location);
    let table = iceberg::Catalog::load_table(&catalog, &FolderCatalog::ident())
        .await
        .map_err(iceberg_error(&format!("loading Iceberg table {location}")))?;
    let metadata = table.metadata();
    if metadata.current_schema_id() != append.schema_id
        || metadata.default_partition_spec_id() != append.spec_id
    {
        return Err(DataFusionError::Execution(format!(
            "concurrent commit: the schema or partitioning of Iceberg table {location} changed \
             while the write ran (schema {} -> {}, partition spec {} -> {}); nothing was committed",
            append.schema_id,
            metadata.current_schema_id(),
            append.spec_id,
            metadata.default_partition_spec_id()
        )));
    }
    let schema = Arc::clone(metadata.current_schema());
    let spec = Arc::clone(metadata.default_partition_spec());
    let partition_type = spec
        .partition_type(&schema)
        .map_err(iceberg_error("the table's partition type"))?;

    // Each file's partition tuple, final place and metrics.
    let mut planned = vec![];
    for (seq, file) in files.iter().enumerate() {
        let partition = partition_tuple(append, &partition_type, &file.partition_values)?;
        // `name=value` per field, as Iceberg's writers spell values.
        let mut relative: Vec<String> = spec
            .fields()
            .iter()
            .zip(partition_type.fields())
            .enumerate()
            .map(|(i, (field, typed))| {
                let value = field
                    .transform
                    .to_human_string(&typed.field_type, partition[i].as_ref());
                safe_segment(&format!("{}={value}", field.name))
            })
            .collect();
        // Java's spelling: <task>-<file>-<write id>.parquet.
        relative.push(format!("{:05}-{seq}-{write_id}.parquet", file.task));
        let mut target = data_prefix.clone();
        for segment in &relative {
            target = target.join(segment.as_str());
        }
        planned.push((file, partition, relative.join("/"), target));
    }

    let mut moved: Vec<Path> = vec![];
    let result = async {
        let mut data_files: Vec<DataFile> = vec![];
        for (file, partition, relative, target) in &planned {
            store
                .rename(&file.staged, target)
                .await
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
            moved.push(target.clone());
            let footer = read_footer(store.as_ref(), target, file.bytes).await?;
            let mut builder = DataFileBuilder::default();
            builder
                .content(DataContentType::Data)
                .file_path(format!("{}/{relative}", append.data_folder()))
                .file_format(DataFileFormat::Parquet)
                .partition(partition.clone())
                .partition_spec_id(append.spec_id)
                .record_count(file.rows)
                .file_size_in_bytes(file.bytes);
            add_metrics(&mut builder, &footer, &schema);
            data_files.push(builder.build().map_err(|e| {
                DataFusionError::Execution(format!("describing data file {relative}: {e}"))
            })?);
        }
        let tx = Transaction::new(&table);
        let action = tx
            .fast_append()
            .add_data_files(data_files)
            .set_snapshot_properties(HashMap::from([(
                "minispark.write-id".to_string(),
                write_id.to_string(),
            )]));
        let tx = action
            .apply(tx)
            .map_err(iceberg_error("building the append"))?;
        let committed = tx.commit(&catalog).await.map_err(iceberg_error(&format!(
            "committing to Iceberg table {location}"
        )))?;
        let metadata = committed.metadata();
        Ok::<_, DataFusionError>(Appended {
            snapshot_id: metadata.current_snapshot_id().unwrap_or_default(),
            metadata_file: committed
                .metadata_location()
                .unwrap_or_default()
                .to_string(),
            files: planned.len(),
            bytes: planned.iter().map(|(f, ..)| f.bytes).sum(),
        })
    }
    .await;
    if result.is_err() {
        // Nothing was committed: the files moved into data/ go too.
        for path in &moved {
            if let Err(e) = store.delete(path).await {
                tracing::warn!(path = %path, error = %e, "cannot remove an uncommitted data file");
            }
        }
    }
    result
}

/// The footer of the Parquet file at `path` (`size` bytes): two ranged
/// reads, its last 8 bytes (footer length, `PAR1`), then the footer.
async fn read_footer(store: &dyn ObjectStore, path: &Path, size: u64) -> Result<ParquetMetaData> {
    let bad = |why: &str| DataFusionError::Execution(format!("data file {path}: {why}"));
    if size < 12 {
        return Err(bad("too small to be a Parquet file"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
    if tail.len() != 8 || &tail[4..] != b"PAR1" {
        return Err(bad("not a Parquet file (no PAR1 at its end)"));
    }
    let length = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if length + 12 > size {
        return Err(bad("its footer length is larger than the file"));
    }
    let footer = store
        .get_range(path, size - 8 - length..size - 8)
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
    ParquetMetaDataReader::decode_metadata(&footer)
        .map_err(|e| DataFusionError::ParquetError(Box::new(e)))
}

/// A partition path segment as a folder name: Iceberg's paths are only for
/// people (the values are in the manifests), so characters a store or a
/// path may treat specially (`/`, `%`, `:`, spaces, ...) become `_`.
fn safe_segment(segment: &str) -> String {
    segment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '=' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The partition tuple of a file from its hidden columns' folder values
/// (see [`crate::sink`]): hex of the value's text, or `null`.
fn partition_tuple(
    append: &IcebergAppend,
    partition_type: &iceberg::spec::StructType,
    values: &[(String, String)],
) -> Result<Struct> {
    let fields = partition_type.fields();
    if fields.len() != append.partition_columns.len() {
        return Err(DataFusionError::Internal(format!(
            "an Iceberg append with {} partition columns for {} partition fields",
            append.partition_columns.len(),
            fields.len()
        )));
    }
    let mut tuple = vec![];
    for (column, field) in append.partition_columns.iter().zip(fields) {
        let Some((_, value)) = values.iter().find(|(c, _)| c == column) else {
            return Err(DataFusionError::Internal(format!(
                "a written Iceberg data file has no value for partition column {column}"
            )));
        };
        tuple.push(partition_literal(value, &field.field_type).map_err(|why| {
            DataFusionError::Internal(format!(
                "partition field {} of a written file: {why} (folder value '{value}')",
                field.name
            ))
        })?);
    }
    Ok(Struct::from_iter(tuple))
}

/// One partition value from its folder spelling.
fn partition_literal(
    value: &str,
    field_type: &Type,
) -> std::result::Result<Option<Literal>, String> {
    if value == "null" {
        return Ok(None);
    }
    let bytes = (0..value.len())
        .step_by(2)
        .map(|i| {
            value
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("not hex")
        })
        .collect::<std::result::Result<Vec<u8>, _>>()?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8")?;
    let Type::Primitive(p) = field_type else {
        return Err(format!("a partition of type {field_type}"));
    };
    let number = |t: &str| t.parse::<i64>().map_err(|e| format!("'{t}': {e}"));
    Ok(Some(match p {
        PrimitiveType::Int => {
            Literal::int(i32::try_from(number(&text)?).map_err(|e| format!("'{text}': {e}"))?)
        }
        PrimitiveType::Long => Literal::long(number(&text)?),
        PrimitiveType::Date => {
            Literal::date(i32::try_from(number(&text)?).map_err(|e| format!("'{text}': {e}"))?)
        }
        PrimitiveType::Timestamp => Literal::timestamp(number(&text)?),
        PrimitiveType::Timestamptz => Literal::timestamptz(number(&text)?),
        PrimitiveType::String => Literal::string(text),
        PrimitiveType::Boolean => Literal::bool(match text.as_str() {
            "true" => true,
            "false" => false,
            other => return Err(format!("'{other}' is not a boolean")),
        }),
        other => return Err(format!("partition values of type {other} are not written")),
    }))
}

/// Column sizes, value and null counts, and exact bounds of the file's
/// primitive top-level columns, by field id, from its footer.
fn add_metrics(builder: &mut DataFileBuilder, footer: &ParquetMetaData, schema: &Schema) {
    let mut sizes: HashMap<i32, u64> = HashMap::new();
    let mut values: HashMap<i32, u64> = HashMap::new();
    let mut nulls: HashMap<i32, Option<u64>> = HashMap::new();
    let mut lower: HashMap<i32, Option<Datum>> = HashMap::new();
    let mut upper: HashMap<i32, Option<Datum>> = HashMap::new();
    for row_group in footer.row_groups() {
        for column in row_group.columns() {
            let descr = column.column_descr();
            let info = descr.self_type().get_basic_info();
            if !info.has_id() {
                continue;
            }
            let id = info.id();
            *sizes.entry(id).or_default() += column.compressed_size().max(0) as u64;
            *values.entry(id).or_default() += column.num_values().max(0) as u64;
            let stats = column.statistics();
            let null_count = stats.and_then(|s| s.null_count_opt());
            let entry = nulls.entry(id).or_insert(Some(0));
            *entry = match (*entry, null_count) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            // Bounds of top-level primitive columns only (a nested leaf's
            // id is not a top-level field's).
            let field_type = schema
                .as_struct()
                .fields()
                .iter()
                .find(|f| f.id == id)
                .and_then(|f| f.field_type.as_primitive_type().cloned());
            let Some(field_type) = field_type else {
                continue;
            };
            let (min, max) = match stats {
                Some(s) if s.min_is_exact() && s.max_is_exact() => {
                    (datum(s, &field_type, true), datum(s, &field_type, false))
                }
                // No bounds for a row group with only NULLs: the others'
                // still hold.
                Some(s) if s.null_count_opt() == Some(row_group.num_rows() as u64) => {
                    continue;
                }
                _ => (None, None),
            };
            merge(&mut lower, id, min, |a, b| a <= b);
            merge(&mut upper, id, max, |a, b| a >= b);
        }
    }
    builder
        .column_sizes(sizes)
        .value_counts(values)
        .null_value_counts(
            nulls
                .into_iter()
                .filter_map(|(id, n)| n.map(|n| (id, n)))
                .collect(),
        )
        .lower_bounds(
            lower
                .into_iter()
                .filter_map(|(id, d)| d.map(|d| (id, d)))
                .collect(),
        )
        .upper_bounds(
            upper
                .into_iter()
                .filter_map(|(id, d)| d.map(|d| (id, d)))
                .collect(),
        );
}

/// Folds one row group's bound into the file's: `keep(a, b)` when `a`
/// stays; a row group without a bound leaves the file without one.
fn merge(
    bounds: &mut HashMap<i32, Option<Datum>>,
    id: i32,
    bound: Option<Datum>,
    keep: impl Fn(&Datum, &Datum) -> bool,
) {
    match bounds.get_mut(&id) {
        None => {
            bounds.insert(id, bound);
        }
        Some(current) => {
            *current = match (current.take(), bound) {
                (Some(a), Some(b)) => Some(if keep(&a, &b) { a } else { b }),
                _ => None,
            };
        }
    }
}

/// The min (or max) of `stats` as an Iceberg value of `field_type`, for
/// the types whose Parquet statistics compare as Iceberg's do.
fn datum(stats: &Statistics, field_type: &PrimitiveType, min: bool) -> Option<Datum> {
    match (stats, field_type) {
        (Statistics::Boolean(s), PrimitiveType::Boolean) => {
            Some(Datum::bool(*if min { s.min_opt()? } else { s.max_opt()? }))
        }
        (Statistics::Int32(s), PrimitiveType::Int) => {
            Some(Datum::int(*if min { s.min_opt()? } else { s.max_opt()? }))
        }
        (Statistics::Int32(s), PrimitiveType::Date) => {
            Some(Datum::date(*if min { s.min_opt()? } else { s.max_opt()? }))
        }
        (Statistics::Int64(s), PrimitiveType::Long) => {
            Some(Datum::long(*if min { s.min_opt()? } else { s.max_opt()? }))
        }
        (Statistics::Int64(s), PrimitiveType::Timestamp) => {
            Some(Datum::timestamp_micros(*if min {
                s.min_opt()?
            } else {
                s.max_opt()?
            }))
        }
        (Statistics::Int64(s), PrimitiveType::Timestamptz) => {
            Some(Datum::timestamptz_micros(*if min {
                s.min_opt()?
            } else {
                s.max_opt()?
            }))
        }
        (Statistics::Float(s), PrimitiveType::Float) => {
            let v = *if min { s.min_opt()? } else { s.max_opt()? };
            (!v.is_nan()).then(|| Datum::float(v))
        }
        (Statistics::Double(s), PrimitiveType::Double) => {
            let v = *if min { s.min_opt()? } else { s.max_opt()? };
            (!v.is_nan()).then(|| Datum::double(v))
        }
        (Statistics::ByteArray(s), PrimitiveType::String) => {
            let v = if min { s.min_opt()? } else { s.max_opt()? };
            Some(Datum::string(std::str::from_utf8(v.data()).ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> String {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn partition_values_are_read_back_from_folder_names() {
        let p = |t| Type::Primitive(t);
        assert_eq!(
            partition_literal(&hex("20422"), &p(PrimitiveType::Date)).unwrap(),
            Some(Literal::date(20422))
        );
        assert_eq!(
            partition_literal(&hex("-3"), &p(PrimitiveType::Int)).unwrap(),
            Some(Literal::int(-3))
        );
        assert_eq!(
            partition_literal(&hex("a/b=c"), &p(PrimitiveType::String)).unwrap(),
            Some(Literal::string("a/b=c"))
        );
        assert_eq!(
            partition_literal(&hex(""), &p(PrimitiveType::String)).unwrap(),
            Some(Literal::string(""))
        );
        assert_eq!(
            partition_literal("null", &p(PrimitiveType::Long)).unwrap(),
            None
        );
        assert_eq!(
            partition_literal(&hex("true"), &p(PrimitiveType::Boolean)).unwrap(),
            Some(Literal::bool(true))
        );
        assert!(partition_literal("zz", &p(PrimitiveType::Int)).is_err());
        assert!(partition_literal(&hex("x"), &p(PrimitiveType::Int)).is_err());
        assert_eq!(safe_segment("name=a b/c"), "name=a_b_c");
    }
}
