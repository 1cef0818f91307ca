//! A store of blocks: `<root>/<tenant>/<block-id>/data.parquet` and `meta.json`, read and
//! written through `object_store`, so local directories, memory, S3, GCS and Azure share
//! one path.
//!
//! `meta.json` is written after `data.parquet` (each by an atomic put), and a block is
//! listed only through its `meta.json`: a crashed or killed write leaves no half block.
//! Every request passes through a counter ([`Store::io`]).

mod aws_profile;
mod cause;
mod metered;
mod remote;
mod txn;

pub use metered::Io;
pub use remote::StoreOptions;
pub(crate) use txn::process_running;
pub use txn::{TIDY_GRACE, TidyReport, Txn};

use self::txn::Records;

pub(crate) use cause::cause;

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use self::metered::Metered;

use traceql_format::FormatError;
use traceql_format::block::{BlockMeta, DATA_FILE, EncodedBlock, META_FILE};

use crate::source::{Block, Opened};

/// The tenant used when none is given.
pub const DEFAULT_TENANT: &str = "single-tenant";

/// What kind of store failure happened: what a caller can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store, bucket, block or file does not exist.
    NotFound,
    /// Credentials are missing or were refused.
    AccessDenied,
    /// The store cannot be reached: connection refused, unknown host, time-out, TLS.
    Unreachable,
    /// A block is there but is not valid: its `meta.json` or data file is corrupt.
    Corrupt,
    /// A block of a kind or format version this version does not read.
    Unsupported,
    /// The location or the settings are not usable (unknown scheme, bad URL, profile).
    InvalidLocation,
    /// Anything else (local I/O, an unexpected server answer).
    Other,
}

/// A store failure, with the location it concerns.
#[derive(Debug)]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// What failed, in a sentence.
    pub message: String,
}

impl StoreError {
    /// A failure of `kind`, described by `message`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// The error of object store failure `e`, of the kind its cause says; `message` puts
/// the one-line cause in context.
fn failed(e: &object_store::Error, message: impl FnOnce(&cause::Cause) -> String) -> StoreError {
    let cause = cause(e);
    StoreError::new(cause.kind, message(&cause))
}

/// A block store.
#[derive(Clone, Debug)]
pub struct Store {
    url: Url,
    object_store: Arc<Metered>,
    root: Path,
    tenant: String,
    display: String,
}

impl Store {
    /// A store of the blocks under `root` in `inner`, which DataFusion finds at `url`.
    fn new(
        url: Url,
        inner: Arc<dyn ObjectStore>,
        remote: bool,
        root: Path,
        display: String,
    ) -> Store {
        Store {
            url,
            object_store: Arc::new(Metered::new(inner, remote)),
            root,
            tenant: DEFAULT_TENANT.into(),
            display,
        }
    }

    /// A store in a local directory, created if `create` is set.
    pub fn local(dir: &FsPath, create: bool) -> Result<Store, StoreError> {
        if create {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Other,
                    format!("cannot create store directory {}: {e}", dir.display()),
                )
            })?;
        } else if !dir.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!(
                    "store {} does not exist (create it with `traceql ingest` or `traceql gen`)",
                    dir.display()
                ),
            ));
        }
        let abs: PathBuf = std::fs::canonicalize(dir).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Other,
                format!("cannot open store {}: {e}", dir.display()),
            )
        })?;
        let root = Path::from_absolute_path(&abs).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidLocation,
                format!("invalid store path {}: {e}", abs.display()),
            )
        })?;
        Ok(Store::new(
            Url::parse("file:///").expect("valid URL"),
            Arc::new(LocalFileSystem::new()),
            false,
            root,
            dir.display().to_string(),
        ))
    }

    /// A store in the cloud: `s3://bucket/prefix` (or an S3-compatible server), or
    /// `gs://bucket/prefix`, or `az://container/prefix`. Nothing is requested yet.
    pub fn remote(location: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let url = Url::parse(location).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidLocation,
                format!("invalid store URL `{location}`: {e}"),
            )
        })?;
        let (inner, endpoint) = remote::open(&url, options)
            .map_err(|e| StoreError::new(StoreErrorKind::InvalidLocation, e))?;
        let base =
            Url::parse(&format!("{}://{}/", url.scheme(), url.authority())).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::InvalidLocation,
                    format!("invalid store URL `{location}`: {e}"),
                )
            })?;
        let root = Path::from(url.path().trim_matches('/'));
        let display = match endpoint {
            Some(endpoint) => format!("{} (at {endpoint})", location.trim_end_matches('/')),
            None => location.trim_end_matches('/').to_string(),
        };
        Ok(Store::new(base, inner, true, root, display))
    }

    /// An empty store in memory, named `name` (used for the bundled demo data and tests).
    pub fn in_memory(name: &str) -> Store {
        Store::new(
            Url::parse(&format!("memory://{name}/")).expect("valid URL"),
            Arc::new(InMemory::new()),
            false,
            Path::default(),
            format!("memory:{name}"),
        )
    }

    /// The same store, reading and writing the blocks of tenant `tenant` (a directory
    /// name under the store's root; [`DEFAULT_TENANT`] unless set).
    pub fn with_tenant(mut self, tenant: &str) -> Result<Store, StoreError> {
        if tenant.is_empty() || tenant.contains('/') || tenant == "." || tenant == ".." {
            return Err(StoreError::new(
                StoreErrorKind::InvalidLocation,
                format!("invalid tenant `{tenant}`: a tenant is one directory name"),
            ));
        }
        self.tenant = tenant.to_string();
        Ok(self)
    }

    /// The tenant whose blocks the store reads and writes.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The requests and bytes the store has served so far (take two snapshots and
    /// [`Io::since`] to measure one operation).
    pub fn io(&self) -> Io {
        self.object_store.io()
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
        Arc::clone(&self.object_store) as Arc<dyn ObjectStore>
    }

    fn tenant_dir(&self) -> Path {
        self.root.clone().join(self.tenant.as_str())
    }

    fn block_path(&self, id: &str, file: &str) -> Path {
        self.tenant_dir().join(id).join(file)
    }

    /// The path of a block's data file in [`Self::object_store`].
    pub fn data_path(&self, id: &str) -> Path {
        self.block_path(id, DATA_FILE)
    }

    /// The URL of a block's data file, as DataFusion reads it.
    pub fn data_url(&self, id: &str) -> String {
        format!("{}{}", self.url, self.block_path(id, DATA_FILE))
    }

    /// The descriptions of all complete blocks, ordered by start time then id.
    pub async fn list_blocks(&self) -> Result<Vec<BlockMeta>, StoreError> {
        let blocks = self.list().await?.blocks;
        Ok(blocks.iter().map(|b| b.meta().clone()).collect())
    }

    /// All complete blocks, ordered by start time then id, of every kind this version
    /// reads (see [`crate::source`]: traceql's own and Grafana Tempo's vParquet4 and
    /// vParquet5; Tempo's compacted blocks, whose `meta.json` is renamed, are not
    /// listed), and the blocks of versions it does not read, which are skipped.
    pub async fn list(&self) -> Result<Listing, StoreError> {
        let scan = self.scan().await?;
        let visibility = self.visibility(&scan.records.commits).await?;
        let mut listing = Listing {
            blocks: scan.blocks,
            skipped: scan.skipped,
        };
        listing.blocks.retain(|b| visibility.shows(b.meta()));
        listing.blocks.sort_by(|a, b| {
            let (a, b) = (a.meta(), b.meta());
            (a.start_unix_nano, &a.id).cmp(&(b.start_unix_nano, &b.id))
        });
        listing.skipped.sort();
        Ok(listing)
    }

    /// Every object under `prefix`.
    async fn list_under(&self, prefix: &Path) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        self.object_store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| failed(&e, |c| format!("cannot list {}: {c}", self.display)))
    }

    /// Every block description under the tenant, visible or not, and the transaction
    /// records.
    async fn scan(&self) -> Result<Scan, StoreError> {
        let prefix = self.tenant_dir();
        let objects = self.list_under(&prefix).await?;
        let mut records = Records::default();
        let metas = objects.into_iter().filter(|object| {
            let parts: Vec<_> = object
                .location
                .prefix_match(&prefix)
                .map(|p| p.collect())
                .unwrap_or_default();
            let parts: Vec<&str> = parts.iter().map(|p| p.as_ref()).collect();
            !records.add(&parts, &object.location) && parts.len() == 2 && parts[1] == META_FILE
        });
        let metas: Vec<_> = metas.collect();
        // Block descriptions are small: fetch several at once, which matters on a
        // remote store with many blocks.
        let found: Vec<Opened> = futures::stream::iter(metas)
            .map(|object| async move {
                let bytes = self.get(&object.location).await?;
                self.parse_meta(&object.location, &bytes)
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut scan = Scan {
            records,
            ..Scan::default()
        };
        for f in found {
            match f {
                Opened::Block(block) => scan.blocks.push(block),
                Opened::Skipped { id, format } => scan.skipped.push(format!("{id} ({format})")),
            }
        }
        Ok(scan)
    }

    /// The block that the `meta.json` at `location` describes, of whichever kind
    /// recognises it (see [`crate::source::open`]).
    fn parse_meta(&self, location: &Path, bytes: &[u8]) -> Result<Opened, StoreError> {
        crate::source::open(bytes).map_err(|e| {
            let kind = match e {
                FormatError::Unsupported(_) => StoreErrorKind::Unsupported,
                _ => StoreErrorKind::Corrupt,
            };
            StoreError::new(kind, format!("{}: {location}: {e}", self.display))
        })
    }

    async fn get(&self, path: &Path) -> Result<Bytes, StoreError> {
        let read = async { self.object_store.get(path).await?.bytes().await };
        read.await.map_err(|e| {
            failed(&e, |c| {
                format!("cannot read {path} from {}: {c}", self.display)
            })
        })
    }

    /// Checks that block `id`'s data file exists and has a readable Parquet footer;
    /// the error names the block. Used to say which block broke a failed scan.
    pub async fn check_data(&self, id: &str) -> Result<(), StoreError> {
        use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
        let path = self.block_path(id, DATA_FILE);
        let meta = self.object_store.head(&path).await.map_err(|e| {
            failed(&e, |c| {
                format!("block {id} of {}: {path} cannot be read: {c}", self.display)
            })
        })?;
        DFParquetMetadata::new(self.object_store.as_ref(), &meta)
            .fetch_metadata()
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!(
                        "block {id} of {}: {path} is not a valid Parquet file: {e}",
                        self.display
                    ),
                )
            })
    }

    /// The file `name` of block `id`'s directory (a Tempo bloom filter, say).
    pub async fn read_block_file(&self, id: &str, name: &str) -> Result<Bytes, StoreError> {
        self.get(&self.block_path(id, name)).await
    }

    /// The data file of block `id`.
    pub async fn read_data(&self, id: &str) -> Result<Bytes, StoreError> {
        self.get(&self.block_path(id, DATA_FILE)).await
    }

    /// Writes a block: data first, then `meta.json`, which makes it visible.
    pub async fn write_block(&self, block: &EncodedBlock) -> Result<(), StoreError> {
        let id = &block.meta.id;
        let meta = serde_json::to_vec_pretty(&block.meta)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        let data_path = self.block_path(id, DATA_FILE);
        self.object_store
            .put(&data_path, PutPayload::from(block.data.clone()))
            .await
            .map_err(|e| self.write_failed(&data_path, &e))?;
        self.put_meta(id, meta).await
    }

    /// Writes `meta` over the description of its block: for a writer that learns more
    /// of blocks it wrote before it makes them visible (see [`Self::write_txn_block`]).
    pub async fn rewrite_meta(&self, meta: &BlockMeta) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(meta)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        self.put_meta(&meta.id, bytes).await
    }

    async fn put_meta(&self, id: &str, meta: Vec<u8>) -> Result<(), StoreError> {
        let meta_path = self.block_path(id, META_FILE);
        self.object_store
            .put(&meta_path, PutPayload::from(meta))
            .await
            .map_err(|e| self.write_failed(&meta_path, &e))?;
        Ok(())
    }

    fn write_failed(&self, path: &Path, e: &object_store::Error) -> StoreError {
        failed(e, |c| {
            format!("cannot write {path} to {}: {c}", self.display)
        })
    }
}

/// The blocks of a store.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The blocks this version reads, ordered by start time then id.
    pub blocks: Vec<Block>,
    /// Tempo blocks of versions this version does not read, as `<id> (<format>)`.
    pub skipped: Vec<String>,
}

/// Everything under a tenant: block descriptions, visible or not, and transaction
/// records.
#[derive(Debug, Default)]
struct Scan {
    blocks: Vec<Block>,
    skipped: Vec<String>,
    records: Records,
}

impl Scan {
    /// The descriptions of the blocks.
    fn metas(&self) -> impl Iterator<Item = &BlockMeta> {
        self.blocks.iter().map(|b| b.meta())
    }
}

/// A new time-ordered block id.
pub fn new_block_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Opens the store at `location`: a directory path (created when `create` is set), a
/// `file://` URL, or a cloud URL (see [`Store::remote`]).
pub fn open_store(
    location: &str,
    create: bool,
    options: &StoreOptions,
) -> Result<Store, StoreError> {
    if let Some((scheme, _)) = location.split_once("://") {
        if remote::SCHEMES.contains(&scheme) {
            return Store::remote(location, options);
        }
        if scheme != "file" {
            return Err(StoreError::new(
                StoreErrorKind::InvalidLocation,
                format!(
                    "`{scheme}://` stores are not supported; use a directory, s3://, gs:// or az://"
                ),
            ));
        }
        let path = Url::parse(location)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::InvalidLocation,
                    format!("invalid file URL {location}"),
                )
            })?;
        return Store::local(&path, create);
    }
    Store::local(FsPath::new(location), create)
}
