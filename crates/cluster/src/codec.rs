//! How traceql's own plan nodes and functions cross the wire to a worker: one
//! [`PhysicalExtensionCodec`], registered on the coordinator and on every worker.
//!
//! - [`TraceExec`] travels as its [`TraceOp`] (JSON); the worker rebuilds it over the
//!   input DataFusion decoded for it.
//! - Functions go by name: datafusion-distributed 4.0 asks its own codec first, which
//!   takes every function. Workers register `latency_quantiles`, and the field
//!   expressions each query ships ([`crate::functions`]).
//!
//! Everything else in our plans (the Parquet scans, filters, projections, aggregates)
//! is DataFusion's own and is encoded by datafusion-proto. A node this codec does not
//! know ends the query with an error naming it, before anything is sent.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};
use traceql_planner::ops::TraceOp;
use traceql_planner::ops::exec::TraceExec;

/// The plan nodes of ours that workers run, as they are encoded.
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    /// A span-set operator over its one input.
    Trace(TraceOp),
}

/// Encodes and decodes traceql's plan nodes and functions (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceqlCodec;

impl PhysicalExtensionCodec for TraceqlCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node: Node = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Plan(format!("invalid traceql plan node: {e}")))?;
        match node {
            Node::Trace(op) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Plan(format!(
                        "a span-set operator takes one input, not {}",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(TraceExec::try_new(Arc::clone(input), op)?))
            }
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(exec) = node.downcast_ref::<TraceExec>() {
            Node::Trace(exec.op().clone())
        } else {
            return Err(DataFusionError::NotImplemented(format!(
                "running `{}` on a cluster is not supported yet",
                describe(node.name())
            )));
        };
        serde_json::to_writer(buf, &encoded)
            .map_err(|e| DataFusionError::Internal(format!("encoding a plan node: {e}")))
    }
}

/// What users call a plan node of ours that cannot be shipped yet.
fn describe(name: &str) -> String {
    match name {
        "TempoScanExec" => "a scan of Grafana Tempo blocks".to_string(),
        other => format!("the plan node {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion_proto::physical_plan::DefaultPhysicalProtoConverter;
    use traceql_format::schema::columns as c;
    use traceql_planner::ops::spanset_logic::{Logic, SpansetLogic};

    fn input() -> Arc<dyn ExecutionPlan> {
        let schema = Schema::new(vec![
            Field::new(c::TRACE_ID, DataType::FixedSizeBinary(16), false),
            Field::new("f0", DataType::Boolean, true),
            Field::new("f1", DataType::Boolean, true),
        ]);
        Arc::new(EmptyExec::new(Arc::new(schema)))
    }

    #[test]
    fn a_span_set_operator_round_trips() {
        let op = TraceOp::Logic(SpansetLogic {
            op: Logic::And,
            lhs: "f0".into(),
            rhs: "f1".into(),
            output: "s0".into(),
        });
        let exec: Arc<dyn ExecutionPlan> =
            Arc::new(TraceExec::try_new(input(), op.clone()).unwrap());
        let mut buf = Vec::new();
        TraceqlCodec
            .try_encode(
                Arc::clone(&exec),
                &mut buf,
                &DefaultPhysicalProtoConverter {},
            )
            .unwrap();
        let ctx = TaskContext::default();
        let back = TraceqlCodec
            .try_decode(&buf, &[input()], &ctx, &DefaultPhysicalProtoConverter {})
            .unwrap();
        let back = back.downcast_ref::<TraceExec>().unwrap();
        assert_eq!(back.op(), &op);
        assert_eq!(back.schema(), exec.schema());
    }

    #[test]
    fn an_unknown_node_is_refused_by_name() {
        let err = TraceqlCodec
            .try_encode(input(), &mut Vec::new(), &DefaultPhysicalProtoConverter {})
            .unwrap_err();
        assert!(
            err.to_string().contains("EmptyExec") && err.to_string().contains("not supported"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let ctx = TaskContext::default();
        for buf in [&b""[..], b"{", b"{\"Trace\":3}", b"\xff\xfe"] {
            let err = TraceqlCodec
                .try_decode(buf, &[input()], &ctx, &DefaultPhysicalProtoConverter {})
                .unwrap_err();
            assert!(
                err.to_string().contains("invalid traceql plan node"),
                "{err}"
            );
            assert!(TraceqlCodec.try_decode_udf("{ x }", buf).is_err());
        }
    }
}
