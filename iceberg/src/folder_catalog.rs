//! A catalog of one table that is its own folder: commits without a
//! catalog service, as Iceberg's Hadoop tables do.
//!
//! A catalog's job in a commit is to make one writer win: it checks the
//! commit's requirements against the current metadata, applies its
//! updates, and swaps the table's pointer to the new metadata file
//! atomically. Here the pointer is the folder's newest
//! `metadata/v<N>.metadata.json` ([`crate::table_location`] reads tables
//! the same way), and the swap is creating `v<N+1>.metadata.json` with
//! put-if-absent (object_store's `PutMode::Create`: a local file created
//! exclusively, S3's `If-None-Match: *`): of two writers committing on
//! version N, exactly one creates N+1; the other gets a "concurrent
//! commit" error and nothing of it is visible. `iceberg`'s transaction
//! then reloads the table and applies its append again, a few times (the
//! table's `commit.retry.*` properties), as Iceberg's appends do; if every
//! try loses, the error reaches the user and the write is aborted.
//! `metadata/version-hint.text` is rewritten after each commit for
//! readers that go by it (Spark's `HadoopTables`, DuckDB).
//!
//! A table made by another catalog (pyiceberg's SQL catalog names its
//! files `00003-<uuid>.metadata.json`) takes commits the same way; that
//! catalog's own pointer is not moved, so its users see minispark's
//! snapshots only by reading the folder or the new metadata file.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, Namespace, NamespaceIdent, Result, TableCommit, TableCreation,
    TableIdent,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

use crate::object_store_io::{file_io, list_names, url_of};
use crate::scan::chain;
use crate::table_location::{newest, version};

/// The catalog of the table in one folder. See the module docs.
#[derive(Debug)]
pub struct FolderCatalog {
    registry: Arc<dyn ObjectStoreRegistry>,
    io: FileIO,
    /// The table's folder, no trailing `/`.
    location: String,
}

impl FolderCatalog {
    /// The catalog of the table at `location` (its folder), reading and
    /// writing through `registry`'s stores.
    pub fn new(registry: Arc<dyn ObjectStoreRegistry>, location: &str) -> Self {
        Self {
            io: file_io(Arc::clone(&registry)),
            registry,
            location: location.trim_end_matches('/').to_string(),
        }
    }

    /// The one identifier its table has.
    pub fn ident() -> TableIdent {
        TableIdent::from_strs(["minispark", "table"]).expect("a valid identifier")
    }

    fn metadata_folder(&self) -> String {
        format!("{}/metadata", self.location)
    }

    /// The store and path of `file` in the metadata folder.
    fn locate(&self, file: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
        let full = format!("{}/{file}", self.metadata_folder());
        let url = url_of(&full).map_err(|e| Error::new(ErrorKind::DataInvalid, e))?;
        let store = self.registry.get_store(&url).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("no object store for '{full}': {e}"),
            )
        })?;
        let path = Path::from_url_path(url.path())
            .map_err(|e| Error::new(ErrorKind::DataInvalid, format!("'{full}': {e}")))?;
        Ok((store, path))
    }

    /// The current metadata file (its full path and version) and its
    /// contents.
    pub async fn current(&self) -> Result<(String, u64, TableMetadata)> {
        let names = list_names(&self.registry, &self.metadata_folder())
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, e))?;
        let name = newest(&names).ok_or_else(|| {
            Error::new(
                ErrorKind::TableNotFound,
                format!(
                    "'{}' is not an Iceberg table: no metadata/*.metadata.json in it",
                    self.location
                ),
            )
        })?;
        let version = version(name).unwrap_or_default();
        let path = format!("{}/{name}", self.metadata_folder());
        let metadata = TableMetadata::read_from(&self.io, &path).await?;
        Ok((path, version, metadata))
    }

    /// `metadata` as the table's version `version`, if no other writer
    /// made that version first: the atomic step of a commit. Returns the
    /// new metadata file's path.
    pub async fn write_version(&self, version: u64, metadata: &TableMetadata) -> Result<String> {
        let name = format!("v{version}.metadata.json");
        let (store, path) = self.locate(&name)?;
        let json = serde_json::to_vec(metadata)?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match store.put_opts(&path, json.into(), create).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!(
                        "concurrent commit: another writer committed version {version} of \
                         Iceberg table {} first",
                        self.location
                    ),
                )
                .with_retryable(true));
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("cannot write '{}/{name}'", self.metadata_folder()),
                )
                .with_source(e));
            }
        }
        // For readers that go by the hint; the version file is the commit.
        let (store, hint) = self.locate("version-hint.text")?;
        if let Err(e) = store
            .put(&hint, version.to_string().into_bytes().into())
            .await
        {
            tracing::warn!(
                table = self.location,
                error = %e,
                "committed, but version-hint.text was not updated"
            );
        }
        Ok(format!("{}/{name}", self.metadata_folder()))
    }

    fn table(&self, metadata: TableMetadata, metadata_location: String) -> Result<Table> {
        Table::builder()
            .metadata(metadata)
            .metadata_location(metadata_location)
            .identifier(Self::ident())
            .file_io(self.io.clone())
            .runtime(iceberg::Runtime::try_current()?)
            .build()
    }

    fn check_ident(&self, table: &TableIdent) -> Result<()> {
        if *table == Self::ident() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::TableNotFound,
                format!(
                    "the folder catalog of {} has one table, not {table}",
                    self.location
                ),
            ))
        }
    }
}

/// Whether the folder at `location` holds an Iceberg table (any
/// `metadata/*.metadata.json`).
pub async fn has_table(
    registry: Arc<dyn ObjectStoreRegistry>,
    location: &str,
) -> datafusion::common::Result<bool> {
    let catalog = FolderCatalog::new(registry, location);
    // A local folder that is not there holds no table (and lists as an
    // error on some stores).
    if let Ok(url) = url_of(&catalog.metadata_folder())
        && url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
        && !path.exists()
    {
        return Ok(false);
    }
    match catalog.current().await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::TableNotFound => Ok(false),
        Err(e) => Err(DataFusionError::Execution(format!(
            "cannot look for an Iceberg table at '{location}': {}",
            chain(&e)
        ))),
    }
}

/// Creates an Iceberg table (format version 2) at `location` with
/// `schema`'s columns, their field ids assigned in order, partitioned by
/// `partition_by` (none: unpartitioned), as its
/// `metadata/v1.metadata.json`; fails if another writer created it first.
pub async fn create_table(
    registry: Arc<dyn ObjectStoreRegistry>,
    location: &str,
    schema: &arrow::datatypes::Schema,
    partition_by: &[crate::partition_spec::PartitionField],
) -> datafusion::common::Result<()> {
    let failed = |e: iceberg::Error| {
        DataFusionError::Plan(format!(
            "cannot create an Iceberg table at '{location}': {}",
            chain(&e)
        ))
    };
    let url = url_of(location.trim_end_matches('/')).map_err(DataFusionError::Plan)?;
    // Iceberg's strings and binaries (view types are how DataFusion reads).
    let plain: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                arrow::datatypes::DataType::Utf8View => arrow::datatypes::DataType::Utf8,
                arrow::datatypes::DataType::BinaryView => arrow::datatypes::DataType::Binary,
                other => other.clone(),
            };
            f.as_ref().clone().with_data_type(t)
        })
        .collect();
    let arrow58 = crate::arrow_bridge::schema_to_58(&arrow::datatypes::Schema::new(plain))?;
    let iceberg_schema =
        iceberg::arrow::arrow_schema_to_schema_auto_assign_ids(&arrow58).map_err(failed)?;
    let spec = crate::partition_spec::spec(&iceberg_schema, partition_by)?;
    let creation = TableCreation::builder()
        .name("table".to_string())
        .location(url.to_string().trim_end_matches('/').to_string())
        .schema(iceberg_schema)
        .partition_spec(spec)
        .build();
    let metadata = iceberg::spec::TableMetadataBuilder::from_table_creation(creation)
        .and_then(|b| b.build())
        .map_err(failed)?
        .metadata;
    FolderCatalog::new(registry, url.as_str())
        .write_version(1, &metadata)
        .await
        .map_err(failed)?;
    Ok(())
}

fn unsupported<T>(what: &str) -> Result<T> {
    Err(Error::new(
        ErrorKind::FeatureUnsupported,
        format!("a folder catalog (one table in its folder) cannot {what}"),
    ))
}

#[async_trait]
impl Catalog for FolderCatalog {
    async fn list_namespaces(&self, _: Option<&NamespaceIdent>) -> Result<Vec<NamespaceIdent>> {
        unsupported("list namespaces")
    }

    async fn create_namespace(
        &self,
        _: &NamespaceIdent,
        _: HashMap<String, String>,
    ) -> Result<Namespace> {
        unsupported("create namespaces")
    }

    async fn get_namespace(&self, _: &NamespaceIdent) -> Result<Namespace> {
        unsupported("get namespaces")
    }

    async fn namespace_exists(&self, _: &NamespaceIdent) -> Result<bool> {
        unsupported("look up namespaces")
    }

    async fn update_namespace(&self, _: &NamespaceIdent, _: HashMap<String, String>) -> Result<()> {
        unsupported("update namespaces")
    }

    async fn drop_namespace(&self, _: &NamespaceIdent) -> Result<()> {
        unsupported("drop namespaces")
    }

    async fn list_tables(&self, _: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        unsupported("list tables")
    }

    async fn create_table(&self, _: &NamespaceIdent, _: TableCreation) -> Result<Table> {
        unsupported("create tables through the Catalog trait")
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        self.check_ident(table)?;
        let (path, _, metadata) = self.current().await?;
        self.table(metadata, path)
    }

    async fn drop_table(&self, _: &TableIdent) -> Result<()> {
        unsupported("drop tables")
    }

    async fn purge_table(&self, _: &TableIdent) -> Result<()> {
        unsupported("purge tables")
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.check_ident(table)?;
        match self.current().await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::TableNotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn rename_table(&self, _: &TableIdent, _: &TableIdent) -> Result<()> {
        unsupported("rename tables")
    }

    async fn register_table(&self, _: &TableIdent, _: String) -> Result<Table> {
        unsupported("register tables")
    }

    /// Checks the commit's requirements on the current metadata, applies
    /// its updates, and writes the next version (see the module docs).
    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        self.check_ident(commit.identifier())?;
        let (path, version, base) = self.current().await?;
        for requirement in commit.take_requirements() {
            requirement.check(Some(&base)).map_err(|e| {
                let retryable = e.retryable();
                Error::new(
                    e.kind(),
                    format!(
                        "concurrent commit: Iceberg table {} changed since the commit began",
                        self.location
                    ),
                )
                .with_retryable(retryable)
                .with_source(e)
            })?;
        }
        let mut builder = base.into_builder(Some(path));
        for update in commit.take_updates() {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let written = self.write_version(version + 1, &metadata).await?;
        self.table(metadata, written)
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::object_store::DefaultObjectStoreRegistry;
    use iceberg::transaction::{ApplyTransactionAction, Transaction};

    use super::*;

    /// Of two writers making the same version, one wins and the other gets
    /// a "concurrent commit" error (retryable: `iceberg`'s transaction
    /// reloads and tries again); a transaction commits the next version and
    /// moves the version hint.
    #[tokio::test]
    async fn one_writer_wins_each_version() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("t");
        let location = location.to_str().unwrap();
        let registry: Arc<dyn ObjectStoreRegistry> = Arc::new(DefaultObjectStoreRegistry::new());
        assert!(!has_table(Arc::clone(&registry), location).await.unwrap());
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
        ]);
        create_table(Arc::clone(&registry), location, &schema, &[])
            .await
            .unwrap();
        assert!(has_table(Arc::clone(&registry), location).await.unwrap());
        let again = create_table(Arc::clone(&registry), location, &schema, &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains("concurrent commit"), "{again}");

        let catalog = FolderCatalog::new(Arc::clone(&registry), location);
        let (path, version, metadata) = catalog.current().await.unwrap();
        assert!(path.ends_with("/metadata/v1.metadata.json"), "{path}");
        assert_eq!(version, 1);
        let fields = metadata.current_schema().as_struct().fields().to_vec();
        assert_eq!(
            fields
                .iter()
                .map(|f| (f.id, f.name.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "id"), (2, "name")]
        );

        // Two writers, both on version 1.
        catalog.write_version(2, &metadata).await.unwrap();
        let lost = catalog.write_version(2, &metadata).await.unwrap_err();
        assert_eq!(lost.kind(), ErrorKind::CatalogCommitConflicts);
        assert!(lost.retryable());
        assert!(lost.to_string().contains("concurrent commit"), "{lost}");

        // A transaction on a stale table reloads and commits version 3.
        let stale = catalog.table(metadata, path).unwrap();
        let tx = Transaction::new(&stale);
        let tx = tx
            .update_table_properties()
            .set("owner".into(), "minispark".into())
            .apply(tx)
            .unwrap();
        let committed = tx.commit(&catalog).await.unwrap();
        assert!(
            committed
                .metadata_location()
                .unwrap()
                .ends_with("/metadata/v3.metadata.json")
        );
        let (_, version, now) = catalog.current().await.unwrap();
        assert_eq!(version, 3);
        assert_eq!(
            now.properties().get("owner").map(String::as_str),
            Some("minispark")
        );
        let hint =
            std::fs::read_to_string(dir.path().join("t/metadata/version-hint.text")).unwrap();
        assert_eq!(hint, "3");
    }
}
