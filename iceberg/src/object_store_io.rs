//! The `iceberg` crate's file I/O over DataFusion's object stores: one
//! `FileIO` that reads and writes local paths, `s3://`, `gs://`, `az://`
//! and `http(s)://` through the same stores (and the same settings,
//! credentials and TLS) as minispark's Parquet tables.
//!
//! `iceberg` asks a `Storage` for every file it touches (metadata JSON,
//! manifest lists, manifests, data and delete files). This one resolves a
//! path to a store with the session's or task's `ObjectStoreRegistry`
//! (DataFusion's `RuntimeEnv`), so a table whose files are in a bucket is
//! read by each executor with the stores minispark built for that bucket.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use url::Url;

/// A `FileIO` whose files are found through `registry`.
pub fn file_io(registry: Arc<dyn ObjectStoreRegistry>) -> FileIO {
    FileIOBuilder::new(Arc::new(ObjectStoreStorageFactory {
        registry: Some(registry),
    }))
    .build()
}

/// The URL of a path as `iceberg` spells it: a URL with a scheme, or a
/// local path (a relative one from the current directory, as DataFusion's
/// file tables take it).
pub fn url_of(path: &str) -> std::result::Result<Url, String> {
    if path.contains("://") {
        return Url::parse(path).map_err(|e| format!("'{path}' is not a valid location: {e}"));
    }
    if path.is_empty() {
        return Err(
            "an empty location: give a folder or a URL (file://, s3://, gs://, \
                    az://, http(s)://)"
                .into(),
        );
    }
    let absolute =
        std::path::absolute(path).map_err(|e| format!("'{path}' is not a valid path: {e}"))?;
    Url::from_file_path(&absolute).map_err(|_| format!("'{path}' is not a valid path"))
}

/// The names of the files directly in `folder` (`iceberg`'s FileIO cannot
/// list); none when it does not exist.
pub async fn list_names(
    registry: &Arc<dyn ObjectStoreRegistry>,
    folder: &str,
) -> std::result::Result<Vec<String>, String> {
    let url = url_of(folder)?;
    let store = registry
        .get_store(&url)
        .map_err(|e| format!("no object store for '{folder}': {e}"))?;
    let key = Path::from_url_path(url.path()).map_err(|e| format!("'{folder}': {e}"))?;
    let listed = store
        .list_with_delimiter(Some(&key))
        .await
        .map_err(|e| format!("cannot list '{folder}': {e}"))?;
    Ok(listed
        .objects
        .into_iter()
        .filter_map(|o| o.location.filename().map(str::to_string))
        .collect())
}

fn io_error(path: &str, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Unexpected, format!("cannot {what} '{path}'")).with_source(e)
}

/// Builds [`ObjectStoreStorage`]; `iceberg` wants storage factories to be
/// serializable, but a registry is not: a deserialized one has none and
/// says so.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ObjectStoreStorageFactory {
    #[serde(skip)]
    registry: Option<Arc<dyn ObjectStoreRegistry>>,
}

#[typetag::serde(name = "minispark-object-store-factory")]
impl StorageFactory for ObjectStoreStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(ObjectStoreStorage {
            registry: self.registry.clone(),
        }))
    }
}

/// `iceberg`'s storage over the stores of a DataFusion runtime.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ObjectStoreStorage {
    #[serde(skip)]
    registry: Option<Arc<dyn ObjectStoreRegistry>>,
}

impl ObjectStoreStorage {
    /// The store holding `path`, and the path inside it.
    fn locate(&self, path: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
        let registry = self.registry.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "an Iceberg file I/O without object stores (deserialized)",
            )
        })?;
        let url = url_of(path).map_err(|e| Error::new(ErrorKind::DataInvalid, e))?;
        let store = registry.get_store(&url).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("no object store for '{path}': {e}"),
            )
        })?;
        let key = Path::from_url_path(url.path())
            .map_err(|e| io_error(path, "resolve the path of", e))?;
        Ok((store, key))
    }
}

#[async_trait::async_trait]
#[typetag::serde(name = "minispark-object-store")]
impl Storage for ObjectStoreStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let (store, key) = self.locate(path)?;
        match store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error(path, "look up", e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let (store, key) = self.locate(path)?;
        let meta = store
            .head(&key)
            .await
            .map_err(|e| io_error(path, "look up", e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let (store, key) = self.locate(path)?;
        store
            .get(&key)
            .await
            .map_err(|e| io_error(path, "read", e))?
            .bytes()
            .await
            .map_err(|e| io_error(path, "read", e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let (store, key) = self.locate(path)?;
        Ok(Box::new(ObjectStoreRead {
            store,
            key,
            path: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let (store, key) = self.locate(path)?;
        store
            .put(&key, bs.into())
            .await
            .map_err(|e| io_error(path, "write", e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let (store, key) = self.locate(path)?;
        Ok(Box::new(ObjectStoreWrite {
            writer: Some(BufWriter::new(store, key)),
            path: path.to_string(),
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let (store, key) = self.locate(path)?;
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(path, "delete", e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let (store, key) = self.locate(path)?;
        let listed: Vec<Path> = store
            .list(Some(&key))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| io_error(path, "list", e))?;
        for location in listed {
            match store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error(path, "delete under", e)),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Ranged reads of one object.
struct ObjectStoreRead {
    store: Arc<dyn ObjectStore>,
    key: Path,
    path: String,
}

#[async_trait::async_trait]
impl FileRead for ObjectStoreRead {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.key, range)
            .await
            .map_err(|e| io_error(&self.path, "read", e))
    }
}

/// A streamed upload of one object (multipart on object stores), visible
/// only once closed.
struct ObjectStoreWrite {
    writer: Option<BufWriter>,
    path: String,
}

#[async_trait::async_trait]
impl FileWrite for ObjectStoreWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("'{}' was already closed", self.path),
            )
        })?;
        writer
            .put(bs)
            .await
            .map_err(|e| io_error(&self.path, "write", e))
    }

    async fn close(&mut self) -> Result<()> {
        let mut writer = self.writer.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("'{}' was already closed", self.path),
            )
        })?;
        writer
            .shutdown()
            .await
            .map_err(|e| io_error(&self.path, "finish writing", e))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::object_store::DefaultObjectStoreRegistry;

    use super::*;

    #[tokio::test]
    async fn local_files_are_written_read_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let io = file_io(Arc::new(DefaultObjectStoreRegistry::new()));
        let base = dir.path().to_str().unwrap();
        let a = format!("{base}/t/metadata/a.json");
        let out = io.new_output(&a).unwrap();
        let mut w = out.writer().await.unwrap();
        w.write(Bytes::from_static(b"hello ")).await.unwrap();
        w.write(Bytes::from_static(b"world")).await.unwrap();
        w.close().await.unwrap();
        assert!(w.close().await.is_err(), "closed twice");
        let input = io.new_input(format!("file://{a}")).unwrap();
        assert!(input.exists().await.unwrap());
        assert_eq!(input.metadata().await.unwrap().size, 11);
        assert_eq!(&input.read().await.unwrap()[..], b"hello world");
        let r = input.reader().await.unwrap();
        assert_eq!(&r.read(6..11).await.unwrap()[..], b"world");
        io.delete_prefix(format!("{base}/t")).await.unwrap();
        assert!(!io.exists(&a).await.unwrap());
        // A relative path is taken from the current directory.
        assert!(
            !io.new_input("no/such/relative/path")
                .unwrap()
                .exists()
                .await
                .unwrap()
        );
        assert_eq!(
            url_of("rel/t").unwrap(),
            Url::from_file_path(std::env::current_dir().unwrap().join("rel/t")).unwrap()
        );
        assert!(url_of("").is_err());
    }
}
