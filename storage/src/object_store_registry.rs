//! [`StoreRegistry`]: DataFusion's object store registry for a session,
//! which builds the store of a bucket the first time a location in it is
//! read or written.
//!
//! ```text
//!  get_store("s3://bucket/t/part-0.parquet")
//!     ├─ registered (file://, or ctx.register_object_store)? ─▶ that store
//!     └─ else: process-wide cache[(s3://bucket, settings)]
//!                 └─ miss: build from settings + environment, cache
//! ```
//!
//! Stores are shared by every session of the process with the same object
//! store settings, so the tasks of an executor reuse one client (and its
//! connections) per bucket.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use datafusion::common::Result;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

use crate::store_settings::{StoreSettings, build_store, store_root};

/// Stores built so far in this process, by root and settings.
type StoreCache = HashMap<(String, StoreSettings), Arc<dyn ObjectStore>>;

/// More distinct (root, settings) pairs than this, and the cache starts
/// over: a long-lived driver whose clients keep changing keys does not grow
/// without bound.
const MAX_CACHED_STORES: usize = 256;

static STORES: LazyLock<Mutex<StoreCache>> = LazyLock::new(Mutex::default);

/// A session's object stores: local files, stores registered by hand, and
/// cloud and HTTP stores built on first use from the session's settings.
pub struct StoreRegistry {
    registered: DefaultObjectStoreRegistry,
    settings: RwLock<StoreSettings>,
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings' Debug hides secrets, but there is no need to print them.
        f.debug_struct("StoreRegistry")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl StoreRegistry {
    pub fn new(settings: StoreSettings) -> Self {
        Self {
            registered: DefaultObjectStoreRegistry::new(),
            settings: RwLock::new(settings),
        }
    }

    /// Uses `settings` for the stores looked up from now on (after a `SET`).
    pub fn set_settings(&self, settings: StoreSettings) {
        let mut current = self.settings.write().unwrap_or_else(|e| e.into_inner());
        if *current != settings {
            *current = settings;
        }
    }

    fn settings(&self) -> StoreSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.registered.get_store(url) {
            return Ok(store);
        }
        let key = (store_root(url), self.settings());
        let mut stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = build_store(url, &key.1)?;
        tracing::debug!(root = %key.0, "object store built");
        if stores.len() >= MAX_CACHED_STORES {
            stores.clear();
        }
        stores.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minispark_planner::config::Secret;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn stores_are_built_once_per_bucket_and_settings() {
        let settings = StoreSettings {
            s3_endpoint: "http://127.0.0.1:9".into(),
            s3_access_key_id: "a".into(),
            s3_secret_access_key: Secret::new("b"),
            s3_region: "us-east-1".into(),
            ..Default::default()
        };
        let registry = StoreRegistry::new(settings.clone());
        let a = registry.get_store(&url("s3://one/x.parquet")).unwrap();
        let again = registry.get_store(&url("s3://one/y/z.parquet")).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        // Another session with the same settings shares it.
        let other = StoreRegistry::new(settings.clone());
        assert!(Arc::ptr_eq(
            &a,
            &other.get_store(&url("s3://one/")).unwrap()
        ));
        let b = registry.get_store(&url("s3://two/x")).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        // New settings, new store.
        registry.set_settings(StoreSettings {
            s3_secret_access_key: Secret::new("c"),
            ..settings
        });
        let c = registry.get_store(&url("s3://one/x.parquet")).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        // Local files are there from the start.
        registry.get_store(&url("file:///tmp")).unwrap();
    }
}
