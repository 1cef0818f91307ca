//! A store of blocks: `<root>/<tenant>/<block-id>/data.parquet` and `meta.json`, read and
//! written through `object_store`, so local directories, memory and S3 share one path.
//!
//! `meta.json` is written after `data.parquet` (each by an atomic put), and a block is
//! listed only through its `meta.json`: a crashed or killed write leaves no half block.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::block::{BlockMeta, EncodedBlock};

/// The tenant used when none is given.
pub const DEFAULT_TENANT: &str = "single-tenant";

/// A store failure, with the location it concerns.
#[derive(Debug)]
pub struct StoreError {
    /// What failed, in a sentence.
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

fn error(message: impl Into<String>) -> StoreError {
    StoreError {
        message: message.into(),
    }
}

/// A block store.
#[derive(Clone, Debug)]
pub struct Store {
    url: Url,
    object_store: Arc<dyn ObjectStore>,
    root: Path,
    tenant: String,
    display: String,
}

impl Store {
    /// A store in a local directory, created if `create` is set.
    pub fn local(dir: &FsPath, create: bool) -> Result<Store, StoreError> {
        if create {
            std::fs::create_dir_all(dir).map_err(|e| {
                error(format!(
                    "cannot create store directory {}: {e}",
                    dir.display()
                ))
            })?;
        } else if !dir.is_dir() {
            return Err(error(format!(
                "store {} does not exist (create it with `traceql ingest` or `traceql gen`)",
                dir.display()
            )));
        }
        let abs: PathBuf = std::fs::canonicalize(dir)
            .map_err(|e| error(format!("cannot open store {}: {e}", dir.display())))?;
        let root = Path::from_absolute_path(&abs)
            .map_err(|e| error(format!("invalid store path {}: {e}", abs.display())))?;
        Ok(Store {
            url: Url::parse("file:///").expect("valid URL"),
            object_store: Arc::new(LocalFileSystem::new()),
            root,
            tenant: DEFAULT_TENANT.into(),
            display: dir.display().to_string(),
        })
    }

    /// An empty store in memory, named `name` (used for the bundled demo data and tests).
    pub fn in_memory(name: &str) -> Store {
        Store {
            url: Url::parse(&format!("memory://{name}/")).expect("valid URL"),
            object_store: Arc::new(InMemory::new()),
            root: Path::default(),
            tenant: DEFAULT_TENANT.into(),
            display: format!("memory:{name}"),
        }
    }

    /// How the store is shown to users.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The URL under which DataFusion finds the store's object store.
    pub fn object_store_url(&self) -> &Url {
        &self.url
    }

    /// The object store holding the blocks.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.object_store)
    }

    fn tenant_dir(&self) -> Path {
        self.root.clone().join(self.tenant.as_str())
    }

    fn block_path(&self, id: &str, file: &str) -> Path {
        self.tenant_dir().join(id).join(file)
    }

    /// The URL of a block's data file, as DataFusion reads it.
    pub fn data_url(&self, id: &str) -> String {
        format!("{}{}", self.url, self.block_path(id, "data.parquet"))
    }

    /// All complete blocks, ordered by start time then id.
    pub async fn list_blocks(&self) -> Result<Vec<BlockMeta>, StoreError> {
        let prefix = self.tenant_dir();
        let objects: Vec<_> = self
            .object_store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| error(format!("cannot list store {}: {e}", self.display)))?;
        let mut blocks = Vec::new();
        for object in objects {
            let parts: Vec<_> = object
                .location
                .prefix_match(&prefix)
                .map(|p| p.collect())
                .unwrap_or_default();
            if parts.len() != 2 || parts[1].as_ref() != "meta.json" {
                continue;
            }
            let bytes = self.get(&object.location).await?;
            let meta: BlockMeta = serde_json::from_slice(&bytes)
                .map_err(|e| error(format!("{}: invalid meta.json: {e}", object.location)))?;
            blocks.push(meta);
        }
        blocks.sort_by(|a, b| (a.start_unix_nano, &a.id).cmp(&(b.start_unix_nano, &b.id)));
        Ok(blocks)
    }

    async fn get(&self, path: &Path) -> Result<Bytes, StoreError> {
        let read = async { self.object_store.get(path).await?.bytes().await };
        read.await
            .map_err(|e| error(format!("cannot read {path}: {e}")))
    }

    /// The data file of block `id`.
    pub async fn read_data(&self, id: &str) -> Result<Bytes, StoreError> {
        self.get(&self.block_path(id, "data.parquet")).await
    }

    /// Writes a block: data first, then `meta.json`, which makes it visible.
    pub async fn write_block(&self, block: &EncodedBlock) -> Result<(), StoreError> {
        let id = &block.meta.id;
        let meta = serde_json::to_vec_pretty(&block.meta).map_err(|e| error(e.to_string()))?;
        let data_path = self.block_path(id, "data.parquet");
        self.object_store
            .put(&data_path, PutPayload::from(block.data.clone()))
            .await
            .map_err(|e| error(format!("cannot write {data_path}: {e}")))?;
        let meta_path = self.block_path(id, "meta.json");
        self.object_store
            .put(&meta_path, PutPayload::from(meta))
            .await
            .map_err(|e| error(format!("cannot write {meta_path}: {e}")))?;
        Ok(())
    }
}

/// A new time-ordered block id.
pub fn new_block_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Opens the store at `location`: a directory path (created when `create` is set).
pub fn open_store(location: &str, create: bool) -> Result<Store, StoreError> {
    if let Some((scheme, _)) = location.split_once("://") {
        if scheme != "file" {
            return Err(error(format!(
                "`{scheme}://` stores are not supported yet; use a local directory"
            )));
        }
        let path = Url::parse(location)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| error(format!("invalid file URL {location}")))?;
        return Store::local(&path, create);
    }
    Store::local(FsPath::new(location), create)
}
