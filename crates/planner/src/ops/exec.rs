//! The physical operator and stream shared by the span-set operators: input ordered by
//! `trace_id`, handed to the operator a batch of whole traces at a time.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{Stream, StreamExt};

use super::{TraceOperator, trace_ranges};
use crate::schema::columns;

/// Runs a [`TraceOperator`] over its input, one batch of whole traces at a time.
#[derive(Debug)]
pub struct TraceExec<O> {
    input: Arc<dyn ExecutionPlan>,
    op: O,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl<O: TraceOperator> TraceExec<O> {
    /// The operator `op` over `input`.
    pub fn try_new(input: Arc<dyn ExecutionPlan>, op: O) -> Result<Self> {
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
    pub fn op(&self) -> &O {
        &self.op
    }
}

impl<O: TraceOperator> DisplayAs for TraceExec<O> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}Exec: ", O::NAME)?;
        self.op.describe(f)
    }
}

impl<O: TraceOperator> ExecutionPlan for TraceExec<O> {
    fn name(&self) -> &str {
        O::NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        let requirement = col(columns::TRACE_ID, &self.input.schema())
            .ok()
            .and_then(|c| LexRequirement::new([PhysicalSortRequirement::new(c, None)]));
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
        Ok(Box::pin(TraceStream {
            input: self.input.execute(partition, context)?,
            op: self.op.clone(),
            schema: Arc::clone(&self.schema),
            carry: None,
            done: false,
            metrics: BaselineMetrics::new(&self.metrics, partition),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Buffers the rows of the last (possibly incomplete) trace of each input batch and
/// hands the operator the complete traces.
struct TraceStream<O> {
    input: SendableRecordBatchStream,
    op: O,
    schema: SchemaRef,
    carry: Option<RecordBatch>,
    done: bool,
    metrics: BaselineMetrics,
}

impl<O: TraceOperator> TraceStream<O> {
    fn process(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let traces = trace_ranges(batch)?;
        let mut columns = batch.columns().to_vec();
        columns.extend(self.op.evaluate(batch, &traces)?);
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Joins the carried rows with `batch`, processes every trace but the last and
    /// carries that one.
    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let batch = match self.carry.take() {
            Some(carry) => concat_batches(&batch.schema(), [&carry, &batch])?,
            None => batch,
        };
        let traces = trace_ranges(&batch)?;
        let Some(last) = traces.last() else {
            return Ok(None);
        };
        self.carry = Some(batch.slice(last.start, last.len()));
        if last.start == 0 {
            return Ok(None);
        }
        self.process(&batch.slice(0, last.start)).map(Some)
    }
}

impl<O: TraceOperator> Stream for TraceStream<O> {
    type Item = Result<RecordBatch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.input.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(batch))) => {
                    let elapsed = this.metrics.elapsed_compute().clone();
                    let timer = elapsed.timer();
                    let out = this.push(batch);
                    timer.done();
                    match out {
                        Ok(Some(b)) => {
                            this.metrics.record_output(b.num_rows());
                            return Poll::Ready(Some(Ok(b)));
                        }
                        Ok(None) => continue,
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Some(carry) = this.carry.take() {
                        let out = this.process(&carry);
                        if let Ok(b) = &out {
                            this.metrics.record_output(b.num_rows());
                        }
                        return Poll::Ready(Some(out));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl<O: TraceOperator> RecordBatchStream for TraceStream<O> {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
