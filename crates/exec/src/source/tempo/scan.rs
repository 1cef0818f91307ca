//! The scan of Grafana Tempo's blocks: each row group of each block is one partition
//! (or, when there are fewer row groups than cores, a slice of one), read a few traces
//! at a time and made rows of the span table straight from Tempo's columns.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::MetricBuilder;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowSelection, RowSelector};
use parquet::arrow::async_reader::AsyncFileReader;
use serde::{Deserialize, Serialize};
use traceql_format::block::{TypedColumn, span_rows_batch};
use traceql_format::ids::TraceId;
use traceql_format::schema::columns as c;
use traceql_format::tempo::TraceDecoder;
use traceql_format::tempo::filter::RowFilter;
use traceql_format::tempo::index::RowGroupIndex;
use traceql_format::tempo::read::Needs;
use url::Url;

use super::TempoSource;
use crate::store::Store;

/// Traces decoded at a time: Tempo's row groups can hold tens of thousands of traces,
/// and only this many are materialised at once.
pub const TRACES_PER_BATCH: usize = 256;

/// One partition: a row group of a Tempo block, or a slice of its rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TempoPart {
    /// The block id, for messages.
    pub block: String,
    /// Its `data.parquet`.
    #[serde(with = "path_text")]
    pub path: Path,
    /// Size of `data.parquet` in bytes (0 if unknown).
    pub size: u64,
    /// Length of the Parquet footer (0 if unknown).
    pub footer_size: u64,
    /// The row group read; `None` for all of them.
    pub row_group: Option<usize>,
    /// The slice of those rows read, `(k, n)`: the `k`-th of `n` equal runs of rows
    /// (each row is a whole trace); `None` for all of them.
    pub slice: Option<(usize, usize)>,
    /// About how many bytes of the block the part reads: the block's bytes shared
    /// equally by its row groups and slices (what a cluster balances its shares by).
    pub bytes: u64,
    /// Decodes the block's rows.
    pub decoder: TraceDecoder,
    /// What the Parquet reader tests before it decodes a row, if anything.
    pub filter: Option<Arc<RowFilter>>,
}

/// An object-store path as its text (serde).
mod path_text {
    use object_store::path::Path;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(path.as_ref())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Path, D::Error> {
        let text = String::deserialize(d)?;
        Path::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a [`TempoScanExec`] reads, all but the table's schema: what travels to a
/// worker that runs it (serde), which finds the store by its URL in its own registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TempoScan {
    /// The URL the store is registered under ([`Store::object_store_url`]).
    pub store: String,
    /// The partitions' parts; partitions past them read nothing.
    pub parts: Vec<TempoPart>,
    /// How many partitions the scan has (at least one, and at least `parts.len()`).
    pub partitions: usize,
    /// The span table's typed attribute columns.
    pub typed: Vec<TypedColumn>,
    /// The columns produced, as indexes into the table's schema (all if `None`).
    pub projection: Option<Vec<usize>>,
}

/// Reads Tempo blocks as rows of the span table.
#[derive(Debug)]
pub struct TempoScanExec {
    store: ObjectStoreUrl,
    parts: Vec<TempoPart>,
    /// The whole span table's schema, which the decoded rows have.
    table_schema: SchemaRef,
    typed: Arc<Vec<TypedColumn>>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    /// The parts of Tempo's rows the projected columns need.
    needs: Needs,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

/// The parts of Tempo's rows that the span-table columns of `schema` need, given the
/// table's typed attribute columns `typed`.
fn needs(schema: &SchemaRef, typed: &[TypedColumn]) -> Needs {
    let has = |name: &str| schema.index_of(name).is_ok();
    let typed_of = |scope: &str| {
        typed.iter().any(|t| {
            t.scope == scope && has(&t.name) && !(scope == "resource" && t.key == "service.name")
        })
    };
    Needs {
        span_attributes: has(c::SPAN_ATTRIBUTES) || typed_of("span"),
        resource_attributes: has(c::RESOURCE_ATTRIBUTES) || typed_of("resource"),
        scope_attributes: has(c::INSTRUMENTATION_ATTRIBUTES),
        events: has(c::EVENTS),
    }
}

impl TempoScanExec {
    /// A scan of `parts` of the store registered under `store` (in the session's
    /// runtime), one partition each, producing the columns `projection` picks (all if
    /// `None`) of the span table `table_schema`, whose typed attribute columns are `typed`.
    pub fn try_new(
        store: &Url,
        parts: Vec<TempoPart>,
        table_schema: SchemaRef,
        typed: Arc<Vec<TypedColumn>>,
        projection: Option<Vec<usize>>,
    ) -> Result<TempoScanExec> {
        let partitions = parts.len();
        let scan = TempoScan {
            store: store.to_string(),
            parts,
            partitions,
            typed: typed.as_ref().clone(),
            projection,
        };
        TempoScanExec::of(scan, table_schema)
    }

    /// The scan `scan` describes, of the span table `table_schema`.
    pub fn of(scan: TempoScan, table_schema: SchemaRef) -> Result<TempoScanExec> {
        let store = ObjectStoreUrl::parse(&scan.store)?;
        let schema = match &scan.projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => Arc::clone(&table_schema),
        };
        let typed = Arc::new(scan.typed);
        let needs = needs(&schema, &typed);
        let partitions = scan.partitions.max(scan.parts.len()).max(1);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(TempoScanExec {
            store,
            parts: scan.parts,
            table_schema,
            typed,
            projection: scan.projection,
            schema,
            needs,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// What the scan reads (see [`TempoScan`]).
    pub fn scan(&self) -> TempoScan {
        TempoScan {
            store: self.store.as_str().to_string(),
            parts: self.parts.clone(),
            partitions: self.properties.partitioning.partition_count(),
            typed: self.typed.as_ref().clone(),
            projection: self.projection.clone(),
        }
    }

    /// The whole span table's schema, which the scan projects.
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table_schema
    }
}

impl DisplayAs for TempoScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let mut blocks: Vec<&str> = self.parts.iter().map(|p| p.block.as_str()).collect();
        blocks.dedup();
        write!(
            f,
            "TempoScanExec: blocks={}, partitions={}, reads={:?}",
            blocks.len(),
            self.parts.len(),
            self.needs
        )?;
        if let Some(filter) = self.parts.iter().find_map(|p| p.filter.as_ref()) {
            write!(f, ", row_filter=[{filter}]")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for TempoScanExec {
    fn name(&self) -> &str {
        "TempoScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.schema);
        let Some(part) = self.parts.get(partition).cloned() else {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        };
        let convert = Convert {
            table_schema: Arc::clone(&self.table_schema),
            typed: Arc::clone(&self.typed),
            projection: self.projection.clone(),
            decoder: part.decoder.clone(),
            block: part.block.clone(),
        };
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let footers = context
            .runtime_env()
            .cache_manager
            .get_file_metadata_cache();
        let store = context.runtime_env().object_store(&self.store)?;
        let rows = open(
            store,
            footers,
            part,
            self.needs,
            partition,
            self.metrics.clone(),
        );
        // Opening, reading and decoding, as a scan of traceql's blocks counts it.
        let processing =
            MetricBuilder::new(&self.metrics).subset_time("time_elapsed_processing", partition);
        let mut rows = futures::stream::once(rows)
            .try_flatten()
            .map(move |nested| {
                let _timer = metrics.elapsed_compute().timer();
                let batch = convert.batch(&nested?)?;
                metrics.record_output(batch.num_rows());
                Ok(batch)
            })
            .boxed();
        let stream = futures::stream::poll_fn(move |cx| {
            let _timer = processing.timer();
            rows.poll_next_unpin(cx)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The execution error of a failure `e` reading Tempo block `block`: one line naming it.
fn failed(block: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("Tempo block {block}: {e}"))
}

/// The Tempo rows of `part`, [`TRACES_PER_BATCH`] at a time, with only the columns
/// `needs` asks for. The block's footer is read through the session's cache of
/// footers (`footers`), so an engine that lives on (`traceql serve`) reads it once.
async fn open(
    store: Arc<dyn ObjectStore>,
    footers: Arc<FileMetadataCache>,
    part: TempoPart,
    needs: Needs,
    partition: usize,
    metrics: ExecutionPlanMetricsSet,
) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
    let block = part.block.clone();
    let failed = move |e: parquet::errors::ParquetError| failed(&block, e);
    let size = match part.size {
        0 => store.head(&part.path).await?.size,
        size => size,
    };
    let hint = (part.footer_size > 0).then_some(part.footer_size as usize + 8);
    let reader: Box<dyn AsyncFileReader> = CachedParquetFileReaderFactory::new(store, footers)
        .create_reader(
            partition,
            PartitionedFile::new(part.path.to_string(), size),
            hint,
            &metrics,
        )?;
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(&failed)?;
    let parquet_schema = builder.parquet_schema().clone();
    let parquet_schema = &parquet_schema;
    let leaves = (0..parquet_schema.num_columns())
        .filter(|&i| needs.leaf(parquet_schema.column(i).path().parts()));
    let mask = ProjectionMask::leaves(parquet_schema, leaves);
    let row_groups = builder.metadata().num_row_groups();
    let read: Vec<usize> = match part.row_group {
        Some(i) if i < row_groups => vec![i],
        Some(_) => Vec::new(),
        None => (0..row_groups).collect(),
    };
    // A row group read in slices counts once, with its first slice.
    if part.slice.is_none_or(|(k, _)| k == 0) {
        MetricBuilder::new(&metrics)
            .pruning_metrics("row_groups_pruned_statistics", partition)
            .add_matched(read.len());
    }
    let rows: usize = read
        .iter()
        .map(|&i| builder.metadata().row_group(i).num_rows().max(0) as usize)
        .sum();
    let mut builder = builder
        .with_projection(mask)
        .with_batch_size(TRACES_PER_BATCH)
        .with_row_groups(read);
    if let Some((k, n)) = part.slice {
        let (from, to) = (rows * k / n, rows * (k + 1) / n);
        builder = builder.with_row_selection(RowSelection::from(vec![
            RowSelector::skip(from),
            RowSelector::select(to - from),
            RowSelector::skip(rows - to),
        ]));
    }
    if let Some(filter) = part.filter {
        let leaves = (0..parquet_schema.num_columns())
            .filter(|&i| filter.leaf(parquet_schema.column(i).path().parts()));
        let mask = ProjectionMask::leaves(parquet_schema, leaves);
        let matched = MetricBuilder::new(&metrics).counter("pushdown_rows_matched", partition);
        let pruned = MetricBuilder::new(&metrics).counter("pushdown_rows_pruned", partition);
        let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
            let keep = filter
                .matches(&batch)
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            let kept = keep.true_count();
            matched.add(kept);
            pruned.add(keep.len() - kept);
            Ok(keep)
        });
        builder = builder.with_row_filter(parquet::arrow::arrow_reader::RowFilter::new(vec![
            Box::new(predicate),
        ]));
    }
    let stream = builder.build().map_err(&failed)?;
    Ok(stream.map_err(failed).boxed())
}

/// The partitions of Tempo block `source` of `store`: one per row group, each read
/// through `filter`.
pub(super) fn parts(
    store: &Store,
    source: &TempoSource,
    filter: Option<Arc<RowFilter>>,
) -> Vec<TempoPart> {
    let (b, info) = (&source.meta, &source.tempo);
    let row_groups = b.row_groups.max(1);
    let part = |row_group| TempoPart {
        block: b.id.clone(),
        path: store.data_path(&b.id),
        size: b.bytes,
        footer_size: info.footer_size,
        row_group,
        slice: None,
        bytes: b.bytes / row_groups,
        decoder: TraceDecoder::new(info.version, &info.dedicated),
        filter: filter.clone(),
    };
    if b.row_groups <= 1 {
        vec![part(None)]
    } else {
        (0..b.row_groups as usize).map(|i| part(Some(i))).collect()
    }
}

/// `parts` cut into at least `target` partitions where there are fewer: each part
/// split into equal slices of its rows, so that every core decodes.
pub(super) fn sliced(parts: Vec<TempoPart>, target: usize) -> Vec<TempoPart> {
    if parts.is_empty() || parts.len() >= target {
        return parts;
    }
    let n = target.div_ceil(parts.len());
    parts
        .into_iter()
        .flat_map(|part| {
            (0..n).map(move |k| TempoPart {
                slice: Some((k, n)),
                bytes: part.bytes / n as u64,
                ..part.clone()
            })
        })
        .collect()
}

/// Turns decoded Tempo rows into span-table rows.
struct Convert {
    table_schema: SchemaRef,
    typed: Arc<Vec<TypedColumn>>,
    projection: Option<Vec<usize>>,
    decoder: TraceDecoder,
    block: String,
}

impl Convert {
    fn batch(&self, nested: &RecordBatch) -> Result<RecordBatch> {
        let failed = |e: traceql_format::FormatError| failed(&self.block, e);
        let rows = self.decoder.rows(nested).map_err(failed)?;
        let batch = span_rows_batch(&self.table_schema, &self.typed, &rows).map_err(failed)?;
        Ok(match &self.projection {
            Some(p) => batch.project(p)?,
            None => batch,
        })
    }
}

/// `parts` without the row groups that cannot hold trace `id`: of a Tempo block with
/// several row groups, only the one its `index` names is read. A block whose `index`
/// is missing, unreadable or of another size keeps all its row groups.
pub(super) async fn parts_for_trace(
    store: &Arc<dyn ObjectStore>,
    parts: Vec<TempoPart>,
    id: &TraceId,
) -> Vec<TempoPart> {
    let mut by_block: Vec<(String, Vec<TempoPart>)> = Vec::new();
    for part in parts {
        match by_block.last_mut() {
            Some((block, group)) if *block == part.block => group.push(part),
            _ => by_block.push((part.block.clone(), vec![part])),
        }
    }
    let mut kept = Vec::new();
    for (_, group) in by_block {
        let several = group.len() > 1 && group.iter().all(|p| p.row_group.is_some());
        let index = match (several, group[0].path.parts().count()) {
            (true, n) if n > 0 => {
                let dir: Path = group[0].path.parts().take(n - 1).collect();
                read_index(store, &dir.join("index")).await
            }
            _ => None,
        };
        match index {
            Some(index) if index.len() == group.len() => {
                let wanted = index.row_group(id);
                kept.extend(group.into_iter().filter(|p| p.row_group == wanted));
            }
            _ => kept.extend(group),
        }
    }
    kept
}

/// A Tempo block's `index` at `path`, if it can be read.
async fn read_index(store: &Arc<dyn ObjectStore>, path: &Path) -> Option<RowGroupIndex> {
    let bytes = store.get(path).await.ok()?.bytes().await.ok()?;
    RowGroupIndex::parse(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use traceql_format::tempo::TempoVersion;

    use super::*;

    fn part(block: &str, row_group: Option<usize>) -> TempoPart {
        TempoPart {
            block: block.into(),
            path: Path::from(format!("single-tenant/{block}/data.parquet")),
            size: 0,
            footer_size: 0,
            row_group,
            slice: None,
            bytes: 0,
            decoder: TraceDecoder::new(TempoVersion::V5, &[]),
            filter: None,
        }
    }

    #[tokio::test]
    async fn a_trace_lookup_reads_the_one_row_group_the_index_names() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ids = [[0x10u8; 16], [0x20; 16], [0x30; 16]].map(|id| {
            format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(id)
            )
        });
        let index = format!(r#"{{"rowGroups":[{}]}}"#, ids.join(","));
        store
            .put(
                &Path::from("single-tenant/a/index"),
                PutPayload::from(index),
            )
            .await
            .unwrap();
        let parts = || {
            let mut parts: Vec<TempoPart> = (0..3).map(|i| part("a", Some(i))).collect();
            // No index: every row group stays; one row group: nothing to choose.
            parts.extend((0..2).map(|i| part("b", Some(i))));
            parts.push(part("c", None));
            parts
        };
        let kept = |id: [u8; 16]| {
            let store = Arc::clone(&store);
            async move {
                parts_for_trace(&store, parts(), &id)
                    .await
                    .into_iter()
                    .map(|p| (p.block, p.row_group))
                    .collect::<Vec<_>>()
            }
        };
        let others = [
            ("b".to_string(), Some(0)),
            ("b".into(), Some(1)),
            ("c".into(), None),
        ];
        let mut want = vec![("a".to_string(), Some(1))];
        want.extend(others.clone());
        assert_eq!(kept([0x18; 16]).await, want);
        // Beyond the last row group of `a`: none of it is read.
        assert_eq!(kept([0x31; 16]).await, others.to_vec());
    }
}
