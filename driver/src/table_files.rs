//! The files behind a `CREATE EXTERNAL TABLE`, checked when the table is
//! created, so that a mistake is named then instead of answering with an
//! empty table or an error that does not say which file:
//!
//! * a location that does not exist (a local path) is an error;
//! * a Parquet location whose files none end in `.parquet` is an error
//!   (DataFusion would read it as an empty table);
//! * a `PARTITIONED BY` column that no file's folder names (`col=value/`)
//!   is an error (the table would be empty);
//! * a zero-byte file of a Parquet table is not Parquet: it reads as no
//!   rows, with a warning naming it;
//! * when the table cannot be created because a Parquet file's footer is
//!   corrupt, the error names that file; so does a query that failed on a
//!   table (with a declared schema, created without reading footers)
//!   holding such a file.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlan};
use futures::{StreamExt, TryStreamExt};

/// Most files listed for these checks; a larger table is checked on its
/// first files only.
const MAX_LISTED: usize = 100_000;

/// One listed file: its path as the store names it, and its size.
struct Listed {
    path: String,
    size: u64,
}

fn is_parquet(cmd: &CreateExternalTable) -> bool {
    cmd.file_type.eq_ignore_ascii_case("parquet")
}

/// Every file under `location` (all extensions).
async fn list(state: &SessionState, location: &str) -> Result<Vec<Listed>> {
    let url = ListingTableUrl::parse(location)?;
    let store = state.runtime_env().object_store(url.object_store())?;
    let files: Vec<Listed> = url
        .list_all_files(state, store.as_ref(), "")
        .await?
        .map_ok(|meta| Listed {
            path: meta.location.to_string(),
            size: meta.size,
        })
        .take(MAX_LISTED)
        .try_collect()
        .await?;
    Ok(files)
}

/// A local path (no scheme, or `file://`) that does not exist.
fn missing_local_path(location: &str) -> Option<String> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    // Other stores, and glob patterns, are listed instead.
    if path.contains("://") || path.contains(['*', '?', '[']) {
        return None;
    }
    let path = std::path::Path::new(path);
    (!path.exists()).then(|| path.display().to_string())
}

/// Checks a table that was created; returns the warnings to show.
pub async fn check_created_table(
    state: &SessionState,
    cmd: &CreateExternalTable,
) -> Result<Vec<String>> {
    let mut warnings = vec![];
    for location in &cmd.locations {
        if let Some(path) = missing_local_path(location) {
            return plan_err!("table {}: '{path}' does not exist", cmd.name);
        }
        // A table format's files are the ones its metadata (Iceberg) or log
        // (Delta) names, checked by its table factory, not whatever lies in
        // the folder.
        if cmd.file_type.eq_ignore_ascii_case("ICEBERG")
            || cmd.file_type.eq_ignore_ascii_case("DELTA")
        {
            continue;
        }
        let files = list(state, location).await?;
        let readable: Vec<&Listed> = if is_parquet(cmd) {
            files
                .iter()
                .filter(|f| f.path.ends_with(".parquet"))
                .collect()
        } else {
            files.iter().collect()
        };
        if is_parquet(cmd) && readable.is_empty() && !files.is_empty() {
            return plan_err!(
                "table {}: '{location}' holds no file ending in .parquet, which a STORED AS \
                 PARQUET table reads ({} other file(s), e.g. '{}')",
                cmd.name,
                files.len(),
                files[0].path
            );
        }
        for column in &cmd.table_partition_cols {
            let segment = format!("{column}=");
            let laid_out = readable
                .iter()
                .any(|f| f.path.split('/').any(|s| s.starts_with(&segment)));
            if !readable.is_empty() && !laid_out {
                return plan_err!(
                    "table {}: PARTITIONED BY ({column}), but no file under '{location}' is in \
                     a folder named {column}=<value>; the table would be empty. Name the \
                     folders' column, or leave PARTITIONED BY out",
                    cmd.name
                );
            }
        }
        if is_parquet(cmd) {
            for f in readable.iter().filter(|f| f.size == 0) {
                warnings.push(format!(
                    "table {}: file '{}' has 0 bytes, so it is not Parquet; it is read as no rows",
                    cmd.name, f.path
                ));
            }
        }
    }
    Ok(warnings)
}

/// Why a Parquet table could not be created, with the file named: the
/// first file whose footer cannot be read. `None` when no single file is
/// at fault.
pub async fn find_unreadable_file(
    state: &SessionState,
    cmd: &CreateExternalTable,
) -> Option<DataFusionError> {
    if !is_parquet(cmd) {
        return None;
    }
    let urls: Vec<ListingTableUrl> = cmd
        .locations
        .iter()
        .map(|l| ListingTableUrl::parse(l).ok())
        .collect::<Option<_>>()?;
    unreadable_parquet_file(state, &cmd.name.to_string(), &urls).await
}

/// The first Parquet file of a table whose footer cannot be read, as an
/// error naming it and the table.
async fn unreadable_parquet_file(
    state: &SessionState,
    table: &str,
    urls: &[ListingTableUrl],
) -> Option<DataFusionError> {
    use datafusion::datasource::file_format::FileFormat;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    for url in urls {
        let store = state.runtime_env().object_store(url.object_store()).ok()?;
        let metas: Vec<_> = url
            .list_all_files(state, store.as_ref(), ".parquet")
            .await
            .ok()?
            .take(MAX_LISTED)
            .try_collect()
            .await
            .ok()?;
        for meta in metas {
            if meta.size == 0 {
                continue;
            }
            let format = ParquetFormat::default();
            if let Err(e) = format
                .infer_schema(state, &store, std::slice::from_ref(&meta))
                .await
            {
                return Some(e.context(format!(
                    "file '{}' of table {table} is not a readable Parquet file",
                    meta.location
                )));
            }
        }
    }
    None
}

/// The Parquet tables `plan` reads: name and locations.
pub fn parquet_tables(plan: &LogicalPlan) -> Vec<(String, Vec<ListingTableUrl>)> {
    use datafusion::catalog::default_table_source::source_as_provider;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::ListingTable;
    let mut tables = vec![];
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<ListingTable>()
            && table
                .options()
                .format
                .downcast_ref::<ParquetFormat>()
                .is_some()
        {
            tables.push((scan.table_name.to_string(), table.table_paths().clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    tables
}

/// A query over `tables` ([`parquet_tables`]) that failed, with the file at
/// fault named when one of them has a file whose footer cannot be read (a
/// table with a declared schema reads no footer when it is created).
/// Looked for only after a failure; `err` is kept as the cause.
pub async fn name_unreadable_file(
    state: &SessionState,
    tables: &[(String, Vec<ListingTableUrl>)],
    err: DataFusionError,
) -> DataFusionError {
    for (name, urls) in tables {
        if let Some(named) = unreadable_parquet_file(state, name, urls).await {
            return DataFusionError::Context(named.to_string(), Box::new(err));
        }
    }
    err
}
