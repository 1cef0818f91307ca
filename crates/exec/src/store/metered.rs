//! An object store wrapper that counts requests and bytes, so a search can report what
//! it cost (`traceql query --stats`) and benchmarks can compare local and remote reads.
//! It also remembers the metadata of block data files, which are written once and
//! never changed, so that each scan does not ask for it again.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use traceql_format::block::DATA_FILE;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    OBJECT_STORE_COALESCE_DEFAULT, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, PutResult, RenameOptions, Result, coalesce_ranges,
};

/// Requests and bytes a store has served, as a snapshot of its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    /// Requests made: each get, head, put, delete, copy and rename, and each listing.
    pub requests: u64,
    /// Bytes received from reads.
    pub bytes_fetched: u64,
    /// Bytes sent by writes.
    pub bytes_sent: u64,
}

impl Io {
    /// What happened between `earlier` and this snapshot.
    pub fn since(self, earlier: Io) -> Io {
        Io {
            requests: self.requests.saturating_sub(earlier.requests),
            bytes_fetched: self.bytes_fetched.saturating_sub(earlier.bytes_fetched),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
        }
    }
}

/// The live counters behind [`Io`].
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes_fetched: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Counters {
    /// The counters now.
    fn snapshot(&self) -> Io {
        Io {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
        }
    }

    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn fetched(&self, bytes: u64) {
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    fn sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Counts what passes through to `inner`.
///
/// For a remote store, `get_ranges` is answered here by coalescing nearby ranges into
/// single range requests (object_store's default policy) issued through `get_opts`, so
/// every HTTP request is counted. A local store reads all ranges of a call in one go,
/// counted as one request.
#[derive(Debug)]
pub(crate) struct Metered {
    inner: Arc<dyn ObjectStore>,
    counters: Counters,
    remote: bool,
    /// Metadata of data files seen, answered without a request.
    data_files: Mutex<HashMap<Path, ObjectMeta>>,
}

/// Whether `path` is a block's data file: immutable once written.
fn is_data_file(path: &Path) -> bool {
    path.filename() == Some(DATA_FILE)
}

impl Metered {
    /// Wraps `inner`, whose requests go over a network if `remote`.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, remote: bool) -> Self {
        Metered {
            inner,
            counters: Counters::default(),
            remote,
            data_files: Mutex::default(),
        }
    }
}

impl Metered {
    /// The requests and bytes served so far.
    pub(crate) fn io(&self) -> Io {
        self.counters.snapshot()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Path, ObjectMeta>> {
        self.data_files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn known(&self, location: &Path) -> Option<ObjectMeta> {
        self.lock().get(location).cloned()
    }

    fn forget(&self, location: &Path) {
        self.lock().remove(location);
    }
}

impl fmt::Display for Metered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.counters.request();
        self.counters.sent(payload.content_length() as u64);
        self.forget(location);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.counters.request();
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let unconditional = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        if head
            && unconditional
            && let Some(meta) = self.known(location)
        {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(futures::stream::empty().boxed()),
                range: 0..meta.size,
                meta,
                attributes: Attributes::default(),
            });
        }
        self.counters.request();
        let result = self.inner.get_opts(location, options).await?;
        if head {
            if is_data_file(location) {
                self.lock().insert(location.clone(), result.meta.clone());
            }
        } else {
            self.counters.fetched(result.range.end - result.range.start);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.remote {
            return coalesce_ranges(
                ranges,
                |range| async move {
                    let options = GetOptions {
                        range: Some(range.into()),
                        ..GetOptions::default()
                    };
                    self.get_opts(location, options).await?.bytes().await
                },
                OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await;
        }
        self.counters.request();
        let parts = self.inner.get_ranges(location, ranges).await?;
        self.counters
            .fetched(parts.iter().map(|p| p.len() as u64).sum());
        Ok(parts)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.counters.request();
        // Deleting is rare (tests, tools): forget every remembered file.
        self.lock().clear();
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counters.request();
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counters.request();
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.counters.request();
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.counters.request();
        self.forget(to);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.counters.request();
        self.forget(from);
        self.forget(to);
        self.inner.rename_opts(from, to, options).await
    }
}
