//! The physical operator and stream shared by the span-set operators: input ordered by
//! `trace_id`, handed to the operator a batch of whole traces at a time.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
};
use futures::{Stream, StreamExt};

use super::{TraceOp, TraceOperator, same_trace, trace_ranges};
use traceql_format::schema::{TRACE_ORDER, columns};

/// Runs a [`TraceOperator`] over its input, one batch of whole traces at a time.
#[derive(Debug)]
pub struct TraceExec {
    input: Arc<dyn ExecutionPlan>,
    op: TraceOp,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl TraceExec {
    /// The operator `op` over `input`.
    pub fn try_new(input: Arc<dyn ExecutionPlan>, op: TraceOp) -> Result<Self> {
        let mut fields: Vec<_> = input.schema().fields().iter().cloned().collect();
        fields.extend(op.outputs().into_iter().map(Arc::new));
        let schema = Arc::new(Schema::new(fields));
        let input_ordering = input.properties().output_ordering().cloned();
        let mut eq = EquivalenceProperties::new(Arc::clone(&schema));
        if let Some(ordering) = input_ordering {
            eq.add_orderings([ordering.to_vec()]);
        }
        let properties = PlanProperties::new(
            eq,
            input.properties().output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(TraceExec {
            input,
            op,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The operator.
    pub fn op(&self) -> &TraceOp {
        &self.op
    }
}

impl DisplayAs for TraceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}Exec: ", self.op.name())?;
        self.op.describe(f)
    }
}

impl ExecutionPlan for TraceExec {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        // All spans of a trace must reach the same stream (and arrive together, see
        // `required_input_ordering`).
        match col(columns::TRACE_ID, &self.input.schema()) {
            Ok(trace_id) => vec![Distribution::KeyPartitioned(vec![trace_id])],
            Err(_) => vec![Distribution::SinglePartition],
        }
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        let schema = self.input.schema();
        let requirement = TRACE_ORDER
            .iter()
            .map(|name| col(name, &schema).map(|c| PhysicalSortRequirement::new(c, None)))
            .collect::<Result<Vec<_>>>()
            .ok()
            .and_then(LexRequirement::new);
        vec![requirement.map(OrderingRequirements::new)]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(TraceExec::try_new(
            children.swap_remove(0),
            self.op.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let reservation = MemoryConsumer::new(format!("{}Exec[{partition}]", self.op.name()))
            .register(context.memory_pool());
        Ok(Box::pin(TraceStream {
            input: self.input.execute(partition, context)?,
            op: self.op.clone(),
            schema: Arc::clone(&self.schema),
            carry: None,
            pending: VecDeque::new(),
            done: false,
            metrics: BaselineMetrics::new(&self.metrics, partition),
            reservation,
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Buffers the rows of the last (possibly incomplete) trace of each input batch and
/// hands the operator the complete traces. What it buffers is reserved from the
/// session's memory pool, so a trace too large for the memory limit fails the query
/// with a clear error instead of exhausting the machine.
struct TraceStream {
    input: SendableRecordBatchStream,
    op: TraceOp,
    schema: SchemaRef,
    carry: Option<RecordBatch>,
    pending: VecDeque<RecordBatch>,
    done: bool,
    metrics: BaselineMetrics,
    reservation: MemoryReservation,
}

impl TraceStream {
    /// The memory the buffered batches hold (whole buffers, also of slices: a slice
    /// keeps its batch alive).
    fn held(&self) -> usize {
        self.carry
            .iter()
            .chain(&self.pending)
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    fn process(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let traces = trace_ranges(batch)?;
        let mut columns = batch.columns().to_vec();
        columns.extend(self.op.evaluate(batch, &traces)?);
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Processes the complete traces that `batch` ends or contains and carries its
    /// last trace, which may continue in the next batch. Only a trace that spans two
    /// batches is copied.
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let traces = trace_ranges(&batch)?;
        let (Some(first), Some(last)) = (traces.first().cloned(), traces.last().cloned()) else {
            return Ok(());
        };
        let mut start = 0;
        if let Some(carry) = self.carry.take() {
            let continues = same_trace(&carry, carry.num_rows() - 1, &batch, 0)?;
            if continues && traces.len() == 1 {
                self.carry = Some(concat_batches(&batch.schema(), [&carry, &batch])?);
                return Ok(());
            }
            if continues {
                let joined = concat_batches(&batch.schema(), [&carry, &batch.slice(0, first.end)])?;
                let out = self.process(&joined)?;
                self.pending.push_back(out);
                start = first.end;
            } else {
                let out = self.process(&carry)?;
                self.pending.push_back(out);
            }
        }
        if last.start > start {
            let out = self.process(&batch.slice(start, last.start - start))?;
            self.pending.push_back(out);
        }
        self.carry = Some(batch.slice(last.start, last.len()));
        Ok(())
    }
}

impl Stream for TraceStream {
    type Item = Result<RecordBatch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(batch) = this.pending.pop_front() {
                let held = this.held();
                this.reservation.resize(held);
                // Rows, batches and bytes, as DataFusion's own operators record them.
                return Poll::Ready(Some(Ok(batch.record_output(&this.metrics))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.input.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(batch))) => {
                    let elapsed = this.metrics.elapsed_compute().clone();
                    let timer = elapsed.timer();
                    let pushed = this.push(batch);
                    timer.done();
                    let held = this.held();
                    if let Err(e) = pushed.and_then(|()| this.reservation.try_resize(held)) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Some(carry) = this.carry.take() {
                        match this.process(&carry) {
                            Ok(batch) => this.pending.push_back(batch),
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        }
                    }
                }
            }
        }
    }
}

impl RecordBatchStream for TraceStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
