//! The live write path of `traceql serve`: spans sent to the server are acknowledged once
//! they are in the write-ahead log ([`wal`]), searchable from the tenant's head
//! ([`head`]) within a second, and written to the store as blocks ([`flush`]) when the
//! head is large or old enough.
//!
//! [`Live`] ties these together for every tenant: it screens what arrives against the
//! [`IngestLimits`], pushes back when the memory it holds reaches its budget, replays
//! the log on start (only the records no block of the store holds), and releases the
//! log's segments once their records are in the store.

pub mod flush;
pub mod head;
pub mod wal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use traceql_exec::otlp::decode_request;
use traceql_exec::source::Block;
use traceql_exec::store::Store;
use traceql_format::arena::{ArenaSpan, ArenaValue, Slot, SpanArena};
use traceql_format::block::BlockOptions;
use traceql_format::ids::TraceId;

use crate::head::{Head, HeadBlock, accounted_bytes};
use crate::wal::{Wal, WalError};

pub use flush::Flushed;

/// How the live write path runs.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The write-ahead log's directory.
    pub wal_dir: PathBuf,
    /// The most memory the heads (and spans on their way to them) may hold; past it,
    /// senders are asked to retry later.
    pub memory_limit: usize,
    /// How blocks are cut and encoded, in the head and in the store.
    pub block: BlockOptions,
    /// A head is written to the store once it holds this many spans…
    pub flush_spans: usize,
    /// …or its oldest spans are this old.
    pub flush_age: Duration,
    /// What a span may hold.
    pub limits: IngestLimits,
}

/// Limits on what is accepted.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    /// Spans of one trace the head may hold; further spans of it are refused.
    pub max_spans_per_trace: usize,
    /// The longest attribute value (a string's or bytes' length, in bytes); a span with a
    /// longer one is refused.
    pub max_attribute_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_spans_per_trace: 100_000,
            max_attribute_bytes: 64 << 10,
        }
    }
}

/// Why spans were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The server holds as much as its memory budget allows: retry after a while.
    Busy,
    /// The write-ahead log cannot be written.
    Unavailable(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Busy => f.write_str(
                "the server holds as many spans as its memory budget allows; retry shortly",
            ),
            Refused::Unavailable(why) => write!(f, "cannot store spans: {why}"),
        }
    }
}

/// Spans screened against the limits: those to accept, and what was refused.
#[derive(Debug, Default)]
pub struct Screened {
    /// Spans within the limits.
    pub accepted: SpanArena,
    /// Spans refused because their trace already had the most spans allowed.
    pub too_many_in_trace: usize,
    /// Spans refused for an attribute value longer than allowed.
    pub attribute_too_long: usize,
}

impl Screened {
    /// Spans refused in all.
    pub fn refused(&self) -> usize {
        self.too_many_in_trace + self.attribute_too_long
    }

    /// Why spans were refused, for the sender (empty if none were).
    pub fn message(&self, limits: &IngestLimits) -> String {
        let mut parts = Vec::new();
        if self.too_many_in_trace > 0 {
            parts.push(format!(
                "{} spans refused: their trace already has {} spans, the most allowed",
                self.too_many_in_trace, limits.max_spans_per_trace
            ));
        }
        if self.attribute_too_long > 0 {
            parts.push(format!(
                "{} spans refused: an attribute value is longer than {} bytes",
                self.attribute_too_long, limits.max_attribute_bytes
            ));
        }
        parts.join("; ")
    }
}

/// What [`Live`] has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Spans accepted.
    pub spans: AtomicU64,
    /// Spans refused by a limit.
    pub refused_spans: AtomicU64,
    /// Requests refused for want of memory.
    pub busy: AtomicU64,
    /// Flushes to the store.
    pub flushes: AtomicU64,
    /// Spans flushed to the store.
    pub flushed_spans: AtomicU64,
    /// Flushes that failed (they are retried).
    pub flush_failures: AtomicU64,
}

/// The heads of every tenant, fed by the write-ahead log.
pub struct Live {
    wal: Wal<(SpanArena, usize)>,
    heads: Arc<Mutex<BTreeMap<String, Head>>>,
    /// Held while pending spans are cut into a block and while a flush takes the
    /// head's blocks.
    cutting: Mutex<()>,
    /// Memory the heads hold and spans on their way to them.
    held: Arc<AtomicUsize>,
    options: LiveOptions,
    /// What has been done.
    pub counters: LiveCounters,
}

/// What opening the live write path found in its log.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Records read back into the heads.
    pub records: usize,
    /// Their spans.
    pub spans: usize,
    /// Records whose spans the store already holds, skipped.
    pub skipped: usize,
    /// A torn record cut off the log's end, if any.
    pub cut: Option<String>,
}

/// The marks written after each flush: per tenant, the last record in the store.
const CHECKPOINT: &str = "flushed.json";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    /// Opens the log in `options.wal_dir` and replays into the heads the records that
    /// the tenants' stores (`store` is the default tenant's) do not hold yet.
    pub async fn open(options: LiveOptions, store: &Store) -> Result<(Live, Replayed), String> {
        let opened = Wal::open(&options.wal_dir).map_err(|e| e.to_string())?;
        let checkpoint = read_checkpoint(&options.wal_dir)?;
        let mut replayed = Replayed {
            cut: opened.cut.clone(),
            ..Replayed::default()
        };
        let mut marks: BTreeMap<String, Option<u64>> = BTreeMap::new();
        let mut heads: BTreeMap<String, Head> = BTreeMap::new();
        let mut held = 0;
        let mut arena = SpanArena::default();
        for record in &opened.records {
            if !marks.contains_key(&record.tenant) {
                let tenant_store = store
                    .clone()
                    .with_tenant(&record.tenant)
                    .map_err(|e| e.to_string())?;
                let stored = flush::stored_mark(&tenant_store, &opened.id)
                    .await
                    .map_err(|e| e.to_string())?;
                let local = checkpoint.get(&record.tenant).copied();
                marks.insert(record.tenant.clone(), stored.max(local));
            }
            if marks[&record.tenant].is_some_and(|mark| record.number <= mark) {
                replayed.skipped += 1;
                continue;
            }
            // Its spans were screened before they were logged: all are valid.
            decode_request(&record.payload, &mut arena, &mut |_| {}).map_err(|e| {
                format!(
                    "record {} of the write-ahead log in {} cannot be decoded: {e}",
                    record.number,
                    options.wal_dir.display()
                )
            })?;
            let spans = std::mem::take(&mut arena);
            replayed.records += 1;
            replayed.spans += spans.spans.len();
            let bytes = accounted_bytes(&spans);
            held += bytes;
            heads
                .entry(record.tenant.clone())
                .or_default()
                .push(record.number, spans, bytes);
        }
        let heads = Arc::new(Mutex::new(heads));
        let held = Arc::new(AtomicUsize::new(held));
        let into = Arc::clone(&heads);
        // The spans of each record, with the memory `accept` accounted them with.
        let wal = Wal::start(opened, move |number, tenant: &str, (spans, bytes)| {
            let mut heads = lock(&into);
            match heads.get_mut(tenant) {
                Some(head) => head.push(number, spans, bytes),
                None => heads
                    .entry(tenant.to_string())
                    .or_default()
                    .push(number, spans, bytes),
            }
        })
        .map_err(|e| e.to_string())?;
        let live = Live {
            wal,
            heads,
            cutting: Mutex::new(()),
            held,
            options,
            counters: LiveCounters::default(),
        };
        Ok((live, replayed))
    }

    /// The options it runs with.
    pub fn options(&self) -> &LiveOptions {
        &self.options
    }

    /// The log's id.
    pub fn log_id(&self) -> &str {
        self.wal.id()
    }

    /// Screens `spans` for `tenant` against the limits.
    pub fn screen(&self, tenant: &str, mut spans: SpanArena) -> Screened {
        let limits = &self.options.limits;
        let heads = lock(&self.heads);
        let head = heads.get(tenant);
        let mut in_request: FxHashMap<TraceId, usize> = FxHashMap::default();
        let mut screened = Screened::default();
        let keep: Vec<bool> = spans
            .spans
            .iter()
            .map(|span| {
                if !within(&spans, span, limits.max_attribute_bytes) {
                    screened.attribute_too_long += 1;
                    return false;
                }
                let count = in_request
                    .entry(span.trace_id)
                    .or_insert_with(|| head.map_or(0, |h| h.trace_spans(&span.trace_id)));
                if *count >= limits.max_spans_per_trace {
                    screened.too_many_in_trace += 1;
                    return false;
                }
                *count += 1;
                true
            })
            .collect();
        // What refused spans point at stays in the arena, unused.
        let mut keep = keep.into_iter();
        spans.spans.retain(|_| keep.next().unwrap_or(false));
        screened.accepted = spans;
        self.counters
            .refused_spans
            .fetch_add(screened.refused() as u64, Ordering::Relaxed);
        screened
    }

    /// Accepts `spans` for `tenant`, whose log record is `payload` (an OTLP
    /// `ExportTraceServiceRequest` in protobuf holding exactly them): answers once they
    /// are durable, and they are in the head then.
    pub async fn accept(
        &self,
        tenant: &str,
        payload: impl Into<bytes::Bytes>,
        spans: SpanArena,
    ) -> Result<u64, Refused> {
        let bytes = accounted_bytes(&spans);
        let held = self.held.fetch_add(bytes, Ordering::AcqRel);
        if held > 0 && held + bytes > self.options.memory_limit {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            self.counters.busy.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Busy);
        }
        let count = spans.spans.len() as u64;
        match self.wal.append(tenant, payload, (spans, bytes)).await {
            Ok(number) => {
                self.counters.spans.fetch_add(count, Ordering::Relaxed);
                Ok(number)
            }
            Err(WalError(why)) => {
                self.held.fetch_sub(bytes, Ordering::AcqRel);
                Err(Refused::Unavailable(why))
            }
        }
    }

    /// Memory held now, in bytes.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Spans in the heads now.
    pub fn head_spans(&self) -> usize {
        lock(&self.heads).values().map(Head::spans).sum()
    }

    /// The tenants that have heads.
    pub fn tenants(&self) -> Vec<String> {
        lock(&self.heads).keys().cloned().collect()
    }

    /// Cuts `tenant`'s pending spans into a head block if there are any; true if it
    /// did (its head's blocks changed). The block is built without holding the heads,
    /// so the log's writer never waits for it; cuts and the start of flushes take turns,
    /// so that a flush always takes every record up to its mark.
    pub fn cut(&self, tenant: &str) -> Result<bool, String> {
        let _cutting = lock(&self.cutting);
        self.cut_alone(tenant)
    }

    /// [`Live::cut`], for a caller that holds `cutting`.
    fn cut_alone(&self, tenant: &str) -> Result<bool, String> {
        let failed =
            |e: traceql_format::FormatError| format!("cannot cut tenant {tenant}'s head: {e}");
        let Some(cut) = lock(&self.heads)
            .get_mut(tenant)
            .and_then(|h| h.take_pending(tenant))
        else {
            return Ok(false);
        };
        let estimated = cut.accounted();
        let block = cut.build(&self.options.block).map_err(failed)?;
        self.reaccount(estimated, block.accounted());
        let Some(join) = lock(&self.heads)
            .get_mut(tenant)
            .and_then(|h| h.add(block, tenant))
        else {
            return Ok(true);
        };
        let before = join.accounted();
        let joined = join.build(&self.options.block).map_err(failed)?;
        self.reaccount(before, joined.accounted());
        if let Some(head) = lock(&self.heads).get_mut(tenant) {
            head.replace_all(joined);
        }
        Ok(true)
    }

    /// Counts `now` bytes of memory held where `before` were.
    fn reaccount(&self, before: usize, now: usize) {
        if now >= before {
            self.held.fetch_add(now - before, Ordering::AcqRel);
        } else {
            self.held.fetch_sub(before - now, Ordering::AcqRel);
        }
    }

    /// `tenant`'s head blocks, for queries.
    pub fn sources(&self, tenant: &str) -> Vec<Block> {
        lock(&self.heads)
            .get(tenant)
            .map(Head::sources)
            .unwrap_or_default()
    }

    /// Whether `tenant`'s pending spans are due to be cut into a head block: they have
    /// waited `every`, or make a block's row group already.
    pub fn cut_due(&self, tenant: &str, every: Duration) -> bool {
        let heads = lock(&self.heads);
        heads.get(tenant).is_some_and(|head| {
            head.pending_since().is_some_and(|t| t.elapsed() >= every)
                || head.pending_spans() >= self.options.block.spans_per_row_group
        })
    }

    /// Whether `tenant`'s head is due to be written to the store: large or old enough,
    /// or the memory budget half used.
    pub fn due(&self, tenant: &str) -> bool {
        let heads = lock(&self.heads);
        let Some(head) = heads.get(tenant) else {
            return false;
        };
        let spans = head.spans();
        spans > 0
            && (spans >= self.options.flush_spans
                || head
                    .oldest()
                    .is_some_and(|t| t.elapsed() >= self.options.flush_age)
                || self.held() >= self.options.memory_limit / 2)
    }

    /// Cuts `tenant`'s pending spans and returns every block of its head: what a flush
    /// writes.
    /// Until [`Live::flushed`] or [`Live::flush_failed`], the head's blocks are not
    /// joined.
    pub fn to_flush(&self, tenant: &str) -> Result<Vec<Arc<HeadBlock>>, String> {
        let _cutting = lock(&self.cutting);
        self.cut_alone(tenant)?;
        let mut heads = lock(&self.heads);
        Ok(heads
            .get_mut(tenant)
            .map(|h| {
                h.flushing = true;
                h.blocks().to_vec()
            })
            .unwrap_or_default())
    }

    /// A flush of `tenant`'s head failed: its blocks stay, to be written again.
    pub fn flush_failed(&self, tenant: &str) {
        if let Some(head) = lock(&self.heads).get_mut(tenant) {
            head.flushing = false;
        }
    }

    /// Removes `blocks`, now committed to the store through record `through`, from
    /// `tenant`'s head; records the mark and deletes the log segments no head needs.
    pub fn flushed(&self, tenant: &str, blocks: &[Arc<HeadBlock>], flushed: &Flushed) {
        let (freed, first_needed) = {
            let mut heads = lock(&self.heads);
            let freed = heads.get_mut(tenant).map_or(0, |h| {
                h.flushing = false;
                h.remove(blocks)
            });
            (freed, heads.values().filter_map(Head::first_record).min())
        };
        self.held.fetch_sub(freed, Ordering::AcqRel);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .flushed_spans
            .fetch_add(flushed.spans, Ordering::Relaxed);
        if let Err(e) = write_checkpoint(&self.options.wal_dir, tenant, flushed.through) {
            eprintln!("traceql serve: {e}");
        }
        let release = match first_needed {
            Some(first) => first.checked_sub(1),
            None => Some(flushed.through),
        };
        if let Some(through) = release
            && let Err(e) = self.wal.release(through)
        {
            eprintln!("traceql serve: {e}");
        }
    }
}

/// Whether every attribute value of `span` of `arena` (its own, its events' and links')
/// is at most `max` bytes long.
fn within(arena: &SpanArena, span: &ArenaSpan, max: usize) -> bool {
    let short = |attributes: Slot| {
        arena.attributes[attributes.range()]
            .iter()
            .all(|a| match a.value {
                ArenaValue::Str(s) | ArenaValue::Opaque(s) => s.len() <= max,
                ArenaValue::StrArray(items) => {
                    arena.texts[items.range()]
                        .iter()
                        .map(|t| t.len())
                        .sum::<usize>()
                        <= max
                }
                _ => true,
            })
    };
    short(span.attributes)
        && arena.events[span.events.range()]
            .iter()
            .all(|e| short(e.attributes))
        && arena.links[span.links.range()]
            .iter()
            .all(|l| short(l.attributes))
}

fn read_checkpoint(dir: &Path) -> Result<BTreeMap<String, u64>, String> {
    let path = dir.join(CHECKPOINT);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a checkpoint: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Records that `tenant`'s records through `through` are in the store.
fn write_checkpoint(dir: &Path, tenant: &str, through: u64) -> Result<(), String> {
    let mut marks = read_checkpoint(dir)?;
    let mark = marks.entry(tenant.to_string()).or_insert(through);
    *mark = (*mark).max(through);
    let path = dir.join(CHECKPOINT);
    let temporary = dir.join(format!("{CHECKPOINT}.tmp"));
    let bytes = serde_json::to_vec(&marks).map_err(|e| e.to_string())?;
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use traceql_exec::otlp::{request_from_spans, spans_of};
    use traceql_format::model::Span;
    use traceql_format::value::{KeyValue, Value};

    fn spans(trace: u8, n: u8) -> Vec<Span> {
        (0..n)
            .map(|i| {
                let mut span = Span::bare(
                    [trace; 16],
                    [trace, i, 1, 1, 1, 1, 1, 1],
                    &format!("span {i}"),
                    1_000 + u64::from(i),
                    2_000 + u64::from(i),
                );
                span.kind = 2;
                span
            })
            .collect()
    }

    fn payload(spans: &[Span]) -> Vec<u8> {
        let request: ExportTraceServiceRequest = request_from_spans(spans);
        prost::Message::encode_to_vec(&request)
    }

    fn options(dir: &Path) -> LiveOptions {
        LiveOptions {
            wal_dir: dir.join("wal"),
            memory_limit: 1 << 30,
            block: BlockOptions::default(),
            flush_spans: 1_000_000,
            flush_age: Duration::from_secs(3600),
            limits: IngestLimits::default(),
        }
    }

    /// `spans` in an arena, as the receivers decode them.
    fn arena(spans: &[Span]) -> SpanArena {
        let mut arena = SpanArena::default();
        decode_request(&payload(spans), &mut arena, &mut |m| panic!("{m}")).unwrap();
        arena
    }

    async fn accept(live: &Live, trace: u8, n: u8) {
        let spans = spans(trace, n);
        live.accept("t", payload(&spans), arena(&spans))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_restart_replays_each_acknowledged_span_exactly_once() {
        let dir = std::env::temp_dir().join(format!(
            "traceql-live-{}-{}",
            std::process::id(),
            traceql_exec::store::new_block_id()
        ));
        let store = Store::local(&dir.join("data"), true)
            .unwrap()
            .with_tenant("t")
            .unwrap();
        let root = Store::local(&dir.join("data"), true).unwrap();
        {
            let (live, replayed) = Live::open(options(&dir), &root).await.unwrap();
            assert_eq!(replayed.records, 0);
            accept(&live, 1, 3).await;
            accept(&live, 2, 2).await;
            assert_eq!(live.head_spans(), 5);
            // Flushed and committed, but killed before the head, the checkpoint and the
            // log heard of it: the blocks' mark alone keeps the records from coming back.
            let blocks = live.to_flush("t").unwrap();
            let (txn, flushed) =
                flush::write(&store, live.log_id(), &blocks, &BlockOptions::default())
                    .await
                    .unwrap();
            assert_eq!(flushed.spans, 5);
            store.commit(txn, &[]).await.unwrap();
            accept(&live, 3, 4).await;
        }
        {
            let (live, replayed) = Live::open(options(&dir), &root).await.unwrap();
            assert_eq!(
                (replayed.records, replayed.skipped, replayed.spans),
                (1, 2, 4)
            );
            assert_eq!(live.head_spans(), 4);
            // A flush that completes: the checkpoint and the store agree.
            let blocks = live.to_flush("t").unwrap();
            let (txn, flushed) =
                flush::write(&store, live.log_id(), &blocks, &BlockOptions::default())
                    .await
                    .unwrap();
            store.commit(txn, &[]).await.unwrap();
            live.flushed("t", &blocks, &flushed);
            assert_eq!(live.head_spans(), 0);
            assert_eq!(live.held(), 0);
        }
        let (live, replayed) = Live::open(options(&dir), &root).await.unwrap();
        assert_eq!(replayed.records, 0);
        assert_eq!(live.head_spans(), 0);
        let stored: u64 = store
            .list()
            .await
            .unwrap()
            .blocks
            .iter()
            .map(|b| b.meta().spans)
            .sum();
        assert_eq!(stored, 9, "every span once");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn limits_refuse_spans_and_a_full_budget_pushes_back() {
        let dir = std::env::temp_dir().join(format!(
            "traceql-live-limits-{}-{}",
            std::process::id(),
            traceql_exec::store::new_block_id()
        ));
        let root = Store::local(&dir.join("data"), true).unwrap();
        let mut opts = options(&dir);
        opts.limits.max_spans_per_trace = 3;
        opts.limits.max_attribute_bytes = 10;
        opts.memory_limit = 1;
        let (live, _) = Live::open(opts, &root).await.unwrap();
        accept(&live, 1, 2).await;
        let mut more = spans(1, 3);
        more[2].span_id = [9; 8];
        more[0].attributes.push(KeyValue {
            key: "long".into(),
            value: Value::Str("x".repeat(11)),
        });
        let screened = live.screen("t", arena(&more));
        assert_eq!(
            (screened.attribute_too_long, screened.too_many_in_trace),
            (1, 1)
        );
        assert_eq!(screened.accepted.spans.len(), 1);
        assert!(
            screened
                .message(&live.options().limits)
                .contains("longer than 10 bytes")
        );
        // The budget (one byte) is used up by what the head holds.
        let accepted = spans_of(&screened.accepted);
        let refused = live
            .accept("t", payload(&accepted), screened.accepted)
            .await;
        assert_eq!(refused, Err(Refused::Busy));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
