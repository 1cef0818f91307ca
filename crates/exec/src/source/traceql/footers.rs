//! Footers and page indexes kept between queries. DataFusion's Parquet reader caches a
//! file's footer in the session's metadata cache, but loads the page index after the
//! footer and does not keep it, so every query re-read and re-decoded every block's
//! page index (about 0.5 MB a block of 1M spans): most of a warm trace lookup. Readers
//! made here hand out the cached footer with its page index, loading both once, and
//! keep the bloom filters they read in the session's [`BloomFilters`] (a trace lookup
//! asks every row group's filter: a hundred reads for ten blocks, each a request on
//! S3).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// `plan` with every Parquet scan in it reading footers and page indexes through the
/// session's metadata cache (`cache`) of `store`, and bloom filters through `blooms`.
pub fn with_cached_page_indexes(
    plan: Arc<dyn ExecutionPlan>,
    store: &Arc<dyn ObjectStore>,
    cache: &Arc<FileMetadataCache>,
    blooms: Option<Arc<BloomFilters>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(Transformed::no(node));
        };
        let Some(source) = config.file_source().downcast_ref::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        let factory = Arc::new(PageIndexCaching {
            inner: CachedParquetFileReaderFactory::new(Arc::clone(store), Arc::clone(cache)),
            store: Arc::clone(store),
            cache: Arc::clone(cache),
            blooms: blooms.clone(),
        });
        let source = source.clone().with_parquet_file_reader_factory(factory);
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|t| t.data)
}

/// Makes DataFusion's cached readers, whose metadata always comes with its page index.
#[derive(Debug)]
struct PageIndexCaching {
    inner: CachedParquetFileReaderFactory,
    store: Arc<dyn ObjectStore>,
    cache: Arc<FileMetadataCache>,
    blooms: Option<Arc<BloomFilters>>,
}

impl ParquetFileReaderFactory for PageIndexCaching {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let object_meta = file.object_meta.clone();
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(PageIndexReader {
            inner,
            store: Arc::clone(&self.store),
            cache: Arc::clone(&self.cache),
            object_meta,
            metadata_size_hint,
            blooms: self.blooms.clone(),
            bloom_offsets: HashSet::new(),
        }))
    }
}

/// A reader whose metadata is the cached footer with its page index.
struct PageIndexReader {
    inner: Box<dyn AsyncFileReader + Send>,
    store: Arc<dyn ObjectStore>,
    cache: Arc<FileMetadataCache>,
    object_meta: object_store::ObjectMeta,
    metadata_size_hint: Option<usize>,
    blooms: Option<Arc<BloomFilters>>,
    /// Where this file's bloom filters start, from its footer.
    bloom_offsets: HashSet<u64>,
}

impl AsyncFileReader for PageIndexReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let Some(blooms) = self
            .blooms
            .clone()
            .filter(|_| self.bloom_offsets.contains(&range.start))
        else {
            return self.inner.get_bytes(range);
        };
        let key = (
            self.object_meta.location.to_string(),
            self.object_meta.size,
            range.clone(),
        );
        if let Some(bytes) = blooms.get(&key) {
            return futures::future::ready(Ok(bytes)).boxed();
        }
        async move {
            let bytes = self.inner.get_bytes(range).await?;
            blooms.put(key, bytes.clone());
            Ok(bytes)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = DFParquetMetadata::new(self.store.as_ref(), &self.object_meta)
                .with_file_metadata_cache(Some(Arc::clone(&self.cache)))
                .with_metadata_size_hint(self.metadata_size_hint)
                .with_page_index_policy(Some(PageIndexPolicy::Optional))
                .fetch_metadata()
                .await
                .map_err(|e| {
                    parquet::errors::ParquetError::General(format!(
                        "cannot read the footer of {}: {e}",
                        self.object_meta.location
                    ))
                })?;
            if self.blooms.is_some() {
                self.bloom_offsets = metadata
                    .row_groups()
                    .iter()
                    .flat_map(|g| g.columns())
                    .filter_map(|c| c.bloom_filter_offset())
                    .filter_map(|o| u64::try_from(o).ok())
                    .collect();
            }
            Ok(metadata)
        }
        .boxed()
    }
}

/// Bloom filters read from Parquet files, kept for the session: by file (path and
/// size) and byte range. At most [`BloomFilters::LIMIT`] bytes are kept; past it,
/// filters are read again each time.
#[derive(Debug, Default)]
pub struct BloomFilters {
    kept: std::sync::Mutex<(usize, HashMap<BloomKey, Bytes>)>,
}

/// A bloom filter's file (path, size) and byte range.
type BloomKey = (String, u64, Range<u64>);

impl BloomFilters {
    /// The most bytes of bloom filters kept.
    pub const LIMIT: usize = 64 << 20;

    fn get(&self, key: &BloomKey) -> Option<Bytes> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.1.get(key).cloned()
    }

    fn put(&self, key: BloomKey, bytes: Bytes) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.0 + bytes.len() <= Self::LIMIT {
            kept.0 += bytes.len();
            kept.1.insert(key, bytes);
        }
    }
}
