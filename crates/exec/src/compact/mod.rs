//! Compaction: rewrites blocks so that every trace is whole in one block and blocks
//! reach their target size, in bounded memory, crash-safe.
//!
//! Blocks whose time ranges overlap form a group (a trace's parts overlap in time, so
//! they always fall in one group), and neighbouring groups join while together they
//! stay within the target size. A group is rewritten when it holds a block with
//! [`BlockMeta::partial_traces`] (an ingest outgrew its memory), or at least two
//! blocks below half the target size, or always with [`CompactOptions::all`]. A group
//! that fits the memory budget is read whole; a larger one is first spread over
//! partition files by trace id ([`spill`]), so that a trace's parts meet in one
//! partition, and then read a partition at a time. The new blocks and the removal of
//! the old ones are one store transaction: a query sees the old blocks or the new
//! ones, never both and never neither.

use rustc_hash::FxHashMap as HashMap;
use std::time::Instant;

use traceql_format::block::reader::decode_block_batches;
use traceql_format::block::{BlockMeta, RowGroupEncoder, joined_typed_columns};
use traceql_format::ids::TraceId;
use traceql_format::model::{Span, Trace};

mod merge;
mod spill;

use self::merge::Merge;
use self::spill::{Runs, Spill, SpillError, by_trace};
use crate::ingest::pipeline::{self, Feed, Feeder};
use crate::ingest::sorted::{SPAN_BYTES, Sizes, write_sorted};
use crate::ingest::{IngestError, IngestOptions};
use crate::store::{Store, StoreError, StoreErrorKind, TIDY_GRACE, TidyReport, new_block_id};
use traceql_format::block::order::in_block_order;

/// How compaction runs.
#[derive(Clone, Debug, Default)]
pub struct CompactOptions {
    /// Blocks to write (their target size is `block.spans_per_block`) and the memory
    /// budget (see [`IngestOptions::memory_limit`]).
    pub write: IngestOptions,
    /// Rewrite every group of overlapping blocks, not only those that need it (joins
    /// the parts of traces ingested separately, which no block records).
    pub all: bool,
}

/// What compaction did.
#[derive(Debug, Default)]
pub struct CompactReport {
    /// What tidying found first.
    pub tidy: TidyReport,
    /// Groups rewritten.
    pub groups: usize,
    /// Blocks read and replaced.
    pub read_blocks: usize,
    /// Blocks written.
    pub written_blocks: usize,
    /// Traces written (each whole).
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
    /// Trace parts joined: a trace that was in `k` blocks counts `k - 1`.
    pub joined_traces: u64,
    /// Wall time.
    pub seconds: f64,
}

impl CompactReport {
    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        format!(
            "{} groups: {} blocks replaced by {}, {} traces ({} parts joined), {} spans in {:.2}s",
            self.groups,
            self.read_blocks,
            self.written_blocks,
            self.traces,
            self.joined_traces,
            self.spans,
            self.seconds
        )
    }
}

/// Progress of compaction: `done` of `total` groups.
#[derive(Clone, Copy, Debug)]
pub struct CompactProgress {
    /// Groups done.
    pub done: usize,
    /// Groups to do.
    pub total: usize,
}

/// Threads that spread a large group over partition files, and that sort the
/// partitions into runs: the writer has nothing to do meanwhile.
const THREADS: usize = 2;

/// Compacts `store` (its traceql blocks; Tempo's are left as they are).
pub async fn compact(
    store: &Store,
    options: &CompactOptions,
    progress: &dyn Fn(CompactProgress),
) -> Result<CompactReport, IngestError> {
    let started = Instant::now();
    if store.running("compact").await.map_err(IngestError::Store)? {
        return Err(IngestError::Store(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "another compaction of {} is running; wait for it to finish",
                store.display()
            ),
        )));
    }
    let mut report = CompactReport {
        tidy: store.tidy(TIDY_GRACE).await.map_err(IngestError::Store)?,
        ..CompactReport::default()
    };
    let blocks: Vec<BlockMeta> = store
        .list()
        .await
        .map_err(IngestError::Store)?
        .blocks
        .iter()
        .filter(|b| b.layout().compactable)
        .map(|b| b.meta().clone())
        .collect();
    let plan = Plan::of(options);
    let groups: Vec<Vec<BlockMeta>> = runs(overlapping(blocks), plan.sizes.block_spans as u64)
        .into_iter()
        .filter(|g| needs_compaction(g, plan.sizes.block_spans as u64, options.all))
        .collect();
    for (i, group) in groups.iter().enumerate() {
        let mut txn = store.begin("compact").await.map_err(IngestError::Store)?;
        for block in group {
            txn.mark(&block.wal_marks);
        }
        let replaces: Vec<String> = group.iter().map(|b| b.id.clone()).collect();
        let typed = joined_typed_columns(
            group.iter().map(|b| (b.typed_columns.as_slice(), b.spans)),
            &options.write.block,
        );
        let reader = GroupReader {
            store: store.clone(),
            group: group.clone(),
            plan,
            encoder: RowGroupEncoder::new(typed, plan.sizes.row_group_spans)
                .map_err(IngestError::Encode)?,
            runtime: tokio::runtime::Handle::current(),
        };
        let (written, ()) = pipeline::run(
            store,
            txn,
            &replaces,
            &options.write,
            &|_| {},
            move |feed| reader.feed(feed),
        )
        .await?;
        report.read_blocks += group.len();
        report.written_blocks += written.blocks as usize;
        report.traces += written.traces;
        report.spans += written.spans;
        // A trace in k blocks was k traces there and is one now.
        let before: u64 = group.iter().map(|b| b.traces).sum();
        report.joined_traces += before.saturating_sub(written.traces);
        progress(CompactProgress {
            done: i + 1,
            total: groups.len(),
        });
    }
    report.groups = groups.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes from `store`, in one transaction, the traceql blocks whose every span ended
/// before `before` (unix nanoseconds): retention. Queries under way finish on them;
/// their files are deleted by a later tidy, after [`TIDY_GRACE`]. Returns how many
/// blocks it removed.
pub async fn expire(store: &Store, before: u64) -> Result<usize, StoreError> {
    let old: Vec<String> = store
        .list()
        .await?
        .blocks
        .iter()
        .filter(|b| b.layout().compactable && b.meta().end_unix_nano < before)
        .map(|b| b.meta().id.clone())
        .collect();
    if !old.is_empty() {
        let txn = store.begin("retention").await?;
        store.commit(txn, &old).await?;
    }
    Ok(old.len())
}

/// How a group is read and cut, from the memory budget.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Spans sorted at once (a whole group, or one partition of it, on each of
    /// [`THREADS`] threads), in bytes: an eighth of the budget.
    pass_bytes: u64,
    /// Spans of all runs held at once while they are merged, in bytes: an eighth of
    /// the budget.
    merge_bytes: u64,
    /// Blocks and row groups written.
    sizes: Sizes,
}

impl Plan {
    fn of(options: &CompactOptions) -> Plan {
        let limit = options.write.memory_limit.max(10) as u64;
        Plan {
            pass_bytes: limit / 8,
            merge_bytes: limit / 8,
            sizes: Sizes::of(&options.write),
        }
    }
}

/// Reads a group of blocks and feeds its traces, whole and in block order, to the
/// writer as blocks of the target size.
struct GroupReader {
    store: Store,
    group: Vec<BlockMeta>,
    plan: Plan,
    encoder: RowGroupEncoder,
    runtime: tokio::runtime::Handle,
}

impl GroupReader {
    /// Feeds the group's traces: sorted at once when they fit the budget; else spread
    /// over partition files by trace id, each partition sorted into a run, and the runs
    /// merged.
    fn feed(&self, feed: &Feeder) -> Result<(), IngestError> {
        // Compaction writes whole traces only.
        if !feed.send(Feed::Drain) {
            return Ok(());
        }
        let spans: u64 = self.group.iter().map(|b| b.spans).sum();
        let partitions = (spans * SPAN_BYTES).div_ceil(self.plan.pass_bytes).max(1);
        if partitions == 1 {
            let mut traces: HashMap<TraceId, Trace> = HashMap::default();
            self.read(self.group.iter(), |span| {
                traces.entry(span.trace_id).or_default().push(span);
                Ok(())
            })?;
            let mut traces: Vec<Trace> = traces.into_values().collect();
            in_block_order(&mut traces);
            return write_sorted(
                feed,
                &self.encoder,
                self.plan.sizes,
                new_block_id,
                traces.into_iter().map(Ok),
            );
        }
        let name = self.group.first().map_or("", |b| b.id.as_str());
        let spills = self.spread(partitions, name)?;
        let runs = Runs::new(name).map_err(spill_failed)?;
        // Each run is read a batch at a time while all are merged.
        let batch_spans = (self.plan.merge_bytes / partitions / SPAN_BYTES).clamp(16, 4096);
        on_threads(|t| {
            for p in (t..partitions as usize).step_by(THREADS) {
                let mut spans = Vec::new();
                for spill in &spills {
                    spans.extend(spill.take(p).map_err(spill_failed)?);
                }
                let mut traces = by_trace(spans);
                in_block_order(&mut traces);
                runs.write(p, &traces, batch_spans as usize)
                    .map_err(spill_failed)?;
            }
            Ok(())
        })?;
        drop(spills);
        let readers = (0..partitions as usize)
            .map(|p| runs.reader(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(spill_failed)?;
        let merge = Merge::new(readers).map_err(spill_failed)?;
        write_sorted(
            feed,
            &self.encoder,
            self.plan.sizes,
            new_block_id,
            merge.map(|t| t.map_err(spill_failed)),
        )
    }

    /// Spreads the group's spans over `partitions` partition files by trace id, on
    /// every core: each thread its share of the blocks into its own files.
    fn spread(&self, partitions: u64, name: &str) -> Result<Vec<Spill>, IngestError> {
        // What waits to be spilled stays within one partition's share of memory.
        let flush_spans =
            (self.plan.pass_bytes / partitions / SPAN_BYTES / THREADS as u64).clamp(64, 4096);
        on_threads(|t| {
            let mut spill = Spill::new(
                partitions as usize,
                flush_spans as usize,
                &format!("{name}-{t}"),
            )
            .map_err(spill_failed)?;
            let mine = self.group.iter().skip(t).step_by(THREADS);
            self.read(mine, |span| {
                spill
                    .push(partition_of(&span.trace_id, partitions), span)
                    .map_err(spill_failed)
            })?;
            spill.finish().map_err(spill_failed)?;
            Ok(spill)
        })
    }

    /// Hands every span of `blocks` to `each`, block by block; stops at the first
    /// error `each` returns.
    fn read<'a>(
        &self,
        blocks: impl Iterator<Item = &'a BlockMeta>,
        mut each: impl FnMut(Span) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        for meta in blocks {
            let data = self
                .runtime
                .block_on(self.store.read_data(&meta.id))
                .map_err(IngestError::Store)?;
            let mut failed = Ok(());
            decode_block_batches(data, meta, |batch| {
                for span in batch {
                    if failed.is_ok() {
                        failed = each(span);
                    }
                }
            })
            .map_err(|e| {
                IngestError::Store(StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("block {} of {}: {e}", meta.id, self.store.display()),
                ))
            })?;
            failed?;
        }
        Ok(())
    }
}

/// Runs `work(t)` for each `t` below [`THREADS`], each on a thread of its own; their
/// results in order, or the first failure.
fn on_threads<T: Send>(
    work: impl Fn(usize) -> Result<T, IngestError> + Sync,
) -> Result<Vec<T>, IngestError> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let work = &work;
                scope.spawn(move || work(t))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| IngestError::Internal("a compaction thread panicked".into()))?
            })
            .collect()
    })
}

/// The error of a failure `e` of the spill files.
fn spill_failed(e: SpillError) -> IngestError {
    IngestError::Store(StoreError::new(
        StoreErrorKind::Other,
        format!("compaction: {e}"),
    ))
}

/// `blocks` in groups whose time ranges overlap (transitively), in time order.
fn overlapping(mut blocks: Vec<BlockMeta>) -> Vec<Vec<BlockMeta>> {
    blocks.sort_by_key(|b| (b.start_unix_nano, b.end_unix_nano));
    let mut groups: Vec<Vec<BlockMeta>> = Vec::new();
    let mut end = 0;
    for b in blocks {
        match groups.last_mut() {
            Some(group) if b.start_unix_nano <= end => {
                end = end.max(b.end_unix_nano);
                group.push(b);
            }
            _ => {
                end = b.end_unix_nano;
                groups.push(vec![b]);
            }
        }
    }
    groups
}

/// Consecutive `groups` (in time order) joined while they hold at most `target` spans
/// together, so that small blocks next to each other in time are merged too; a
/// group larger than that stays alone.
fn runs(groups: Vec<Vec<BlockMeta>>, target: u64) -> Vec<Vec<BlockMeta>> {
    let mut out = Vec::new();
    let mut run: Vec<BlockMeta> = Vec::new();
    let mut spans = 0;
    for group in groups {
        let size: u64 = group.iter().map(|b| b.spans).sum();
        if !run.is_empty() && spans + size > target {
            out.push(std::mem::take(&mut run));
            spans = 0;
        }
        spans += size;
        run.extend(group);
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// Whether a group of overlapping blocks is rewritten.
fn needs_compaction(group: &[BlockMeta], target: u64, all: bool) -> bool {
    let small = group.iter().filter(|b| b.spans < target / 2).count();
    (all && group.len() > 1) || group.iter().any(|b| b.partial_traces) || small >= 2
}

/// The partition (of `partitions`) of the trace `id`.
fn partition_of(id: &TraceId, partitions: u64) -> usize {
    // Trace ids are random: their last bytes spread evenly.
    (u64::from_le_bytes(id[8..16].try_into().expect("8 bytes")) % partitions) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: &str, start: u64, end: u64, spans: u64, partial: bool) -> BlockMeta {
        let mut meta: BlockMeta = serde_json::from_value(serde_json::json!({
            "format": "traceql-block", "version": 2, "id": id,
            "start_unix_nano": start, "end_unix_nano": end, "traces": 1, "spans": spans,
            "min_trace_id": "00", "max_trace_id": "00", "row_groups": 1, "bytes": 1,
            "typed_columns": [],
        }))
        .unwrap();
        meta.partial_traces = partial;
        meta
    }

    fn ids(groups: &[Vec<BlockMeta>]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|g| g.iter().map(|b| b.id.as_str()).collect())
            .collect()
    }

    #[test]
    fn blocks_group_by_overlapping_time_ranges() {
        let groups = overlapping(vec![
            block("c", 50, 60, 10, false),
            block("a", 0, 20, 10, false),
            block("b", 10, 30, 10, false),
            block("d", 55, 70, 10, false),
            block("e", 80, 90, 10, false),
        ]);
        assert_eq!(
            ids(&groups),
            vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
    }

    #[test]
    fn neighbouring_groups_join_up_to_the_target_size() {
        let groups = overlapping(vec![
            block("a", 0, 10, 30, false),
            block("b", 20, 30, 30, false),
            block("c", 40, 50, 50, false),
            block("d", 60, 70, 200, false),
            block("e", 80, 90, 10, false),
        ]);
        assert_eq!(
            ids(&runs(groups, 100)),
            vec![vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]
        );
    }

    #[test]
    fn a_group_is_rewritten_for_parts_or_small_blocks_only() {
        let full = |id| block(id, 0, 10, 100, false);
        let small = |id| block(id, 0, 10, 10, false);
        assert!(!needs_compaction(&[full("a"), full("b")], 100, false));
        assert!(!needs_compaction(&[full("a"), small("b")], 100, false));
        assert!(needs_compaction(&[small("a"), small("b")], 100, false));
        assert!(needs_compaction(
            &[full("a"), block("b", 0, 10, 100, true)],
            100,
            false
        ));
        assert!(needs_compaction(&[full("a"), full("b")], 100, true));
        assert!(!needs_compaction(&[full("a")], 100, true));
    }
}
