//! Reading a block of any kind back as whole traces of the span model, through its scan:
//! what `traceql convert` writes out and what completion samples.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use futures::{Stream, StreamExt, TryStreamExt};
use traceql_format::block::reader::decode_batch;
use traceql_format::model::{Span, Trace};

use super::{Block, ScanOrder};
use crate::store::Store;
use crate::table::{SpanTable, session_context};

/// The traces of `block`, a few at a time, each whole (as whole as the block holds it)
/// with its spans in stored order. Each partition of the block's scan in trace order
/// holds a trace's spans together, so partitions are read one after another and their
/// rows grouped by trace id; memory holds one batch and one trace at a time.
pub fn read_traces(
    store: &Store,
    block: &Block,
) -> impl Stream<Item = Result<Vec<Trace>>> + Send + 'static {
    let (store, block) = (store.clone(), Arc::clone(block));
    futures::stream::once(async move {
        let ctx = session_context();
        let table =
            SpanTable::try_new(&store, std::slice::from_ref(&block))?.with_order(ScanOrder::Trace);
        let typed = table.typed();
        let plan = table.scan(&ctx.state(), None, &[], None).await?;
        let partitions = plan.properties().partitioning.partition_count();
        let task: Arc<TaskContext> = ctx.task_ctx();
        let batches = futures::stream::iter(0..partitions)
            .map(move |p| {
                let stream = plan.execute(p, Arc::clone(&task));
                futures::stream::once(async move { stream })
                    .try_flatten()
                    .map(move |batch| batch.map(|b| (p, b)))
            })
            .flatten();
        let state = (batches.boxed(), Grouper::default(), false);
        let traces = futures::stream::unfold(state, move |(mut batches, mut grouper, done)| {
            let typed = Arc::clone(&typed);
            async move {
                if done {
                    return None;
                }
                loop {
                    let (partition, batch) = match batches.next().await {
                        Some(Ok(next)) => next,
                        Some(Err(e)) => return Some((Err(e), (batches, grouper, true))),
                        None => {
                            let last = grouper.finish()?;
                            return Some((Ok(vec![last]), (batches, grouper, true)));
                        }
                    };
                    let mut spans = Vec::with_capacity(batch.num_rows());
                    if let Err(e) = decode_batch(&batch, &typed, &mut spans) {
                        let e = DataFusionError::Execution(e.to_string());
                        return Some((Err(e), (batches, grouper, true)));
                    }
                    let traces = grouper.add(partition, spans);
                    if !traces.is_empty() {
                        return Some((Ok(traces), (batches, grouper, false)));
                    }
                }
            }
        });
        Ok::<_, DataFusionError>(traces)
    })
    .try_flatten()
}

/// Groups a stream of spans into traces: consecutive spans of one trace id in one
/// partition.
#[derive(Default)]
struct Grouper {
    current: Option<(usize, Trace)>,
}

impl Grouper {
    /// The traces completed by `spans` of `partition`.
    fn add(&mut self, partition: usize, spans: Vec<Span>) -> Vec<Trace> {
        let mut done = Vec::new();
        for span in spans {
            match &mut self.current {
                Some((p, trace)) if *p == partition && trace[0].trace_id == span.trace_id => {
                    trace.push(span)
                }
                _ => {
                    if let Some((_, trace)) = self.current.replace((partition, vec![span])) {
                        done.push(trace);
                    }
                }
            }
        }
        done
    }

    /// The last trace, if any.
    fn finish(&mut self) -> Option<Trace> {
        self.current.take().map(|(_, trace)| trace)
    }
}
