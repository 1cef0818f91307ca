//! The object stores a worker reads: opened on first use from the URL a shipped scan
//! names, with the worker's own credentials (environment, AWS profile, instance role),
//! so plans carry no secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use traceql_exec::store::{Store, StoreOptions};
use url::Url;

/// Opens `file://`, `s3://`, `gs://` and `az://` stores as scans ask for them, and keeps
/// them for the worker's later tasks.
#[derive(Debug)]
pub struct OpeningRegistry {
    options: StoreOptions,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl OpeningRegistry {
    /// A registry opening remote stores as `options` say.
    pub fn new(options: StoreOptions) -> OpeningRegistry {
        OpeningRegistry {
            options,
            stores: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self, key: &str, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "file" => Ok(Arc::new(LocalFileSystem::new())),
            "memory" => Err(DataFusionError::Plan(format!(
                "`{key}` is a store in the coordinator's memory (the bundled demo data): \
                 workers cannot read it; give the query a directory or bucket with --data"
            ))),
            _ => Store::remote(&format!("{key}/"), &self.options)
                .map(|store| store.object_store())
                .map_err(|e| DataFusionError::Plan(e.to_string())),
        }
    }
}

/// The key of a store: its scheme and authority (`s3://bucket`, `file://`).
fn key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

impl ObjectStoreRegistry for OpeningRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key(url), store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = key(url);
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = self.open(&key, url)?;
        stores.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_stores_open_and_the_demo_store_is_refused() {
        let registry =
            OpeningRegistry::new(StoreOptions::s3_compatible("http://127.0.0.1:1", vec![]));
        let local = registry
            .get_store(&Url::parse("file:///").unwrap())
            .unwrap();
        let again = registry
            .get_store(&Url::parse("file:///tmp").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&local, &again));
        registry
            .get_store(&Url::parse("s3://bucket/").unwrap())
            .unwrap();
        let err = registry
            .get_store(&Url::parse("memory://demo/").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("--data"), "{err}");
    }
}
