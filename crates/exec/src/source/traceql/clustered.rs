//! Scans of traceql's blocks cut into partitions of whole row groups that each hold
//! whole traces in trace order, for the span-set operators.
//!
//! The span-set operators need every span of a trace in one partition, each
//! partition in trace order. DataFusion, not knowing that a trace never straddles row
//! groups, gets there by repartitioning the scan by trace id while merging the
//! partitions in trace order: each output partition takes its share of every input
//! batch, and a store of one large block is decoded on one core. But a byte range of
//! a block file reads whole row groups (those whose first page starts in it), so a
//! scan whose partitions are runs of row groups already has each trace in one
//! partition. [`TraceClustered`] plans such a scan: the row groups of all blocks in
//! trace order, cut into one run of about equal size per partition, each declared
//! partitioned by trace id and (from each run's statistics) in trace order, so
//! DataFusion adds neither a repartition nor a sort.

use std::cmp::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use futures::{StreamExt, TryStreamExt, stream};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;
use traceql_format::schema::TRACE_ORDER;

use crate::source::StartRange;
use traceql_format::schema::columns as c;

/// A table of traceql's blocks (a listing table) whose scans are cut into runs of
/// whole row groups in trace order, one per partition (see the module docs). A scan
/// whose row groups cannot be put in one trace order (blocks of overlapping time
/// ranges) is planned as the inner table plans it, with the blocks' statistics.
///
/// Only for blocks in which every trace is whole: a trace written in parts to two
/// blocks could land in two partitions.
#[derive(Debug)]
pub(crate) struct TraceClustered {
    inner: Arc<dyn TableProvider>,
    starts: StartRange,
}

impl TraceClustered {
    /// `inner`, a listing table of traceql's blocks, scanned in runs of the row groups
    /// that may hold traces starting in `starts`.
    pub(crate) fn new(inner: Arc<dyn TableProvider>, starts: StartRange) -> TraceClustered {
        TraceClustered { inner, starts }
    }
}

#[async_trait]
impl TableProvider for TraceClustered {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        if let Some(clustered) = clustered(&plan, state, self.starts).await? {
            return Ok(clustered);
        }
        // Blocks that overlap in trace order: given the blocks' statistics, DataFusion
        // fills each partition with blocks that follow one another and merges them in
        // trace order instead of sorting every span.
        match state.as_any().downcast_ref::<SessionState>() {
            Some(session) if !session.config().collect_statistics() => {
                let mut with_statistics = session.clone();
                let options = with_statistics.config_mut().options_mut();
                options.execution.collect_statistics = true;
                options.execution.split_file_groups_by_statistics = true;
                let inner = self
                    .inner
                    .scan(&with_statistics, projection, filters, limit);
                inner.await
            }
            _ => Ok(plan),
        }
    }
}

/// How many block footers are fetched at once.
const FOOTERS_AT_ONCE: usize = 16;

/// A row group of a block file: where it starts, how large it is, and the least and
/// greatest trace start and trace id in it.
#[derive(Clone, Debug)]
struct RowGroup {
    /// The file, as an index into the scan's files.
    file: usize,
    /// The offset of its first page (the byte a range must hold to read it).
    offset: i64,
    /// Where the next row group of the file starts; after the last, where its data
    /// ends (not the file's end: the footer, page indexes and bloom filters after it
    /// are no row group's bytes, and a range's bytes are what shares out the scan on a
    /// cluster).
    end: i64,
    bytes: i64,
    rows: usize,
    min: [ScalarValue; 2],
    max: [ScalarValue; 2],
}

/// `plan`, a scan of the listing table, with the row groups of its files that may hold
/// traces starting in `starts` cut into one run per partition; `None` when it is not a
/// plain Parquet scan of whole files or its row groups overlap in trace order.
async fn clustered(
    plan: &Arc<dyn ExecutionPlan>,
    state: &dyn Session,
    starts: StartRange,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(config) = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
    else {
        return Ok(None);
    };
    let files: Vec<&PartitionedFile> = config.file_groups.iter().flat_map(|g| g.iter()).collect();
    if files.is_empty() || files.iter().any(|f| f.range.is_some()) {
        return Ok(None);
    }
    let schema = config.file_schema();
    let Some(trace_id) = schema.index_of(c::TRACE_ID).ok() else {
        return Ok(None);
    };
    let runtime = state.runtime_env();
    let store = runtime.object_store(&config.object_store_url)?;
    let cache = runtime.cache_manager.get_file_metadata_cache();
    // The footers, several at a time (a remote store answers each in tens of ms); they
    // stay in the session's metadata cache for the scan.
    let metas: Vec<_> = files.iter().map(|f| f.object_meta.clone()).collect();
    let footers: Vec<Arc<ParquetMetaData>> = stream::iter(metas)
        .map(|meta| {
            let (store, cache) = (Arc::clone(&store), Arc::clone(&cache));
            async move {
                DFParquetMetadata::new(store.as_ref(), &meta)
                    .with_file_metadata_cache(Some(cache))
                    .fetch_metadata()
                    .await
            }
        })
        .buffered(FOOTERS_AT_ONCE)
        .try_collect()
        .await?;
    let mut row_groups = Vec::new();
    for (i, (file, metadata)) in files.iter().zip(&footers).enumerate() {
        let size = file.object_meta.size as i64;
        match file_row_groups(i, size, metadata, schema)? {
            Some(groups) => row_groups.extend(groups),
            None => return Ok(None),
        }
    }
    row_groups.sort_by(|a, b| a.min.partial_cmp(&b.min).unwrap_or(Ordering::Equal));
    let follows = |pair: &[RowGroup]| {
        matches!(
            pair[0].max.partial_cmp(&pair[1].min),
            Some(Ordering::Less | Ordering::Equal)
        )
    };
    if !row_groups.windows(2).all(follows) {
        return Ok(None);
    }
    let start = |bound: &[ScalarValue; 2]| match bound[0] {
        ScalarValue::UInt64(Some(start)) => Some(start),
        _ => None,
    };
    row_groups.retain(|g| match (start(&g.min), start(&g.max)) {
        (Some(min), Some(max)) => starts.overlaps(min, max),
        _ => true,
    });
    let partitions = state.config().target_partitions().max(1);
    let mut groups: Vec<FileGroup> = runs(&row_groups, partitions)
        .into_iter()
        .map(|run| file_group(run, &files, schema))
        .collect();
    // With fewer row groups than partitions, the rest read nothing: fewer partitions
    // would have DataFusion spread the scan's batches over more, then repartition them
    // by trace.
    groups.resize_with(partitions, || FileGroup::new(Vec::new()));
    let count = groups.len();
    let mut config = config.clone();
    config.file_groups = groups;
    config.output_partitioning = Some(Partitioning::Hash(
        vec![Arc::new(Column::new(c::TRACE_ID, trace_id))],
        count,
    ));
    Ok(Some(DataSourceExec::from_data_source(config)))
}

/// The row groups of file `file`, of `size` bytes, with their bounds in trace order;
/// `None` if a bound is not recorded.
fn file_row_groups(
    file: usize,
    size: i64,
    metadata: &ParquetMetaData,
    schema: &SchemaRef,
) -> Result<Option<Vec<RowGroup>>> {
    let groups = metadata.row_groups();
    let parquet_schema = metadata.file_metadata().schema_descr();
    let mut bounds: Vec<(ArrayRef, ArrayRef)> = Vec::new();
    for name in TRACE_ORDER {
        let converter = StatisticsConverter::try_new(name, schema, parquet_schema)?;
        bounds.push((
            converter.row_group_mins(groups)?,
            converter.row_group_maxes(groups)?,
        ));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let bound = |column: usize, max: bool| {
            let (mins, maxes) = &bounds[column];
            ScalarValue::try_from_array(if max { maxes } else { mins }, i)
        };
        let min = [bound(0, false)?, bound(1, false)?];
        let max = [bound(0, true)?, bound(1, true)?];
        if min.iter().chain(&max).any(ScalarValue::is_null) || group.num_columns() == 0 {
            return Ok(None);
        }
        let first = group.column(0);
        out.push(RowGroup {
            file,
            offset: first
                .dictionary_page_offset()
                .unwrap_or_else(|| first.data_page_offset()),
            end: size,
            bytes: group.compressed_size(),
            rows: group.num_rows().max(0) as usize,
            min,
            max,
        });
    }
    for i in 1..out.len() {
        out[i - 1].end = out[i].offset;
    }
    if let Some(last) = out.last_mut() {
        last.end = (last.offset + last.bytes).clamp(last.offset + 1, size);
    }
    Ok(Some(out))
}

/// `row_groups` (in trace order) cut into at most `partitions` consecutive runs of
/// about equal size in bytes: a run ends where the bytes so far come nearest its share.
fn runs(row_groups: &[RowGroup], partitions: usize) -> Vec<&[RowGroup]> {
    let total: i64 = row_groups.iter().map(|g| g.bytes.max(1)).sum();
    let share = |runs: usize| total * (runs as i64 + 1) / partitions as i64;
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = 0;
    for (i, group) in row_groups.iter().enumerate() {
        let before = seen;
        seen += group.bytes.max(1);
        let due = share(runs.len());
        // End the run before this row group if it would overshoot the share by more
        // than stopping short of it falls short.
        if runs.len() + 1 < partitions && i > start && seen - due > due - before {
            runs.push(&row_groups[start..i]);
            start = i;
        }
        if runs.len() + 1 < partitions && seen >= share(runs.len()) {
            runs.push(&row_groups[start..=i]);
            start = i + 1;
        }
    }
    if start < row_groups.len() {
        runs.push(&row_groups[start..]);
    }
    runs
}

/// The file group reading `run`: one byte range per stretch of consecutive row groups
/// of one file, each with its row count and bounds in trace order (from which
/// DataFusion checks that the group is in trace order). `schema`: the table's.
fn file_group(run: &[RowGroup], files: &[&PartitionedFile], schema: &SchemaRef) -> FileGroup {
    let ranges = run.chunk_by(|a, b| a.file == b.file).map(|stretch| {
        // A range reads the row groups whose first page starts in it.
        files[stretch[0].file]
            .clone()
            .with_range(stretch[0].offset, stretch[stretch.len() - 1].end)
            .with_statistics(Arc::new(stretch_statistics(stretch, schema)))
    });
    FileGroup::new(ranges.collect())
}

/// The statistics of a stretch of row groups: its rows, and the least and greatest
/// trace start and trace id; nothing of the other columns.
fn stretch_statistics(stretch: &[RowGroup], schema: &SchemaRef) -> Statistics {
    let mut statistics = Statistics::new_unknown(schema);
    statistics.num_rows = Precision::Exact(stretch.iter().map(|g| g.rows).sum());
    for (k, name) in TRACE_ORDER.iter().enumerate() {
        let Ok(index) = schema.index_of(name) else {
            continue;
        };
        let column = &mut statistics.column_statistics[index];
        if let Some(min) = extreme(stretch.iter().map(|g| &g.min[k]), Ordering::Less) {
            column.min_value = Precision::Exact(min);
        }
        if let Some(max) = extreme(stretch.iter().map(|g| &g.max[k]), Ordering::Greater) {
            column.max_value = Precision::Exact(max);
        }
    }
    statistics
}

/// The least (`wanted` `Less`) or greatest (`Greater`) of `values`.
fn extreme<'a>(
    values: impl Iterator<Item = &'a ScalarValue>,
    wanted: Ordering,
) -> Option<ScalarValue> {
    values
        .reduce(|a, b| {
            if b.partial_cmp(a) == Some(wanted) {
                b
            } else {
                a
            }
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(bytes: &[i64]) -> Vec<RowGroup> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| {
                let bound = || [ScalarValue::UInt64(Some(i as u64)), ScalarValue::Null];
                RowGroup {
                    file: 0,
                    offset: i as i64,
                    end: i as i64 + 1,
                    bytes,
                    rows: 1,
                    min: bound(),
                    max: bound(),
                }
            })
            .collect()
    }

    fn lengths(bytes: &[i64], partitions: usize) -> Vec<usize> {
        runs(&sized(bytes), partitions)
            .iter()
            .map(|r| r.len())
            .collect()
    }

    #[test]
    fn runs_share_the_bytes_and_keep_the_order() {
        assert_eq!(lengths(&[10, 10, 10, 10], 2), [2, 2]);
        assert_eq!(lengths(&[10, 10, 10, 10, 10, 10], 3), [2, 2, 2]);
        // A large row group first fills the first run by itself.
        assert_eq!(lengths(&[100, 1, 1, 1], 2), [1, 3]);
        assert_eq!(lengths(&[1, 1, 1, 100], 2), [3, 1]);
        // Fewer row groups than partitions: a run each.
        assert_eq!(lengths(&[5], 2), [1]);
        assert_eq!(lengths(&[], 2), Vec::<usize>::new());
        // Every row group once, in order.
        let groups = sized(&[3, 9, 1, 4, 7, 2, 8]);
        let offsets: Vec<i64> = runs(&groups, 3).concat().iter().map(|g| g.offset).collect();
        assert_eq!(offsets, (0..7).collect::<Vec<_>>());
    }
}
