//! Footers and page indexes kept between queries. DataFusion's Parquet reader caches a
//! file's footer in the session's metadata cache, but loads the page index after the
//! footer and does not keep it, so every query re-read and re-decoded every block's
//! page index (about 0.5 MB a block of 1M spans): most of a warm trace lookup. Readers
//! made here hand out the cached footer with its page index, loading both once.

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
/// session's metadata cache (`cache`) of `store`.
pub fn with_cached_page_indexes(
    plan: Arc<dyn ExecutionPlan>,
    store: &Arc<dyn ObjectStore>,
    cache: &Arc<FileMetadataCache>,
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
}

impl AsyncFileReader for PageIndexReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
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
            DFParquetMetadata::new(self.store.as_ref(), &self.object_meta)
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
                })
        }
        .boxed()
    }
}
