//! How traceql's own plan nodes and functions cross the wire to a worker: one
//! [`PhysicalExtensionCodec`], registered on the coordinator and on every worker.
//!
//! - [`TraceExec`] travels as its [`TraceOp`] (JSON); the worker rebuilds it over the
//!   input DataFusion decoded for it.
//! - [`TempoScanExec`] travels as its [`TempoScan`] (the store's URL, the row groups
//!   and slices read with their row filters, the projection) and the span table's
//!   schema (datafusion-proto's encoding); the worker opens the store by its URL.
//! - Functions go by name: datafusion-distributed 4.0 asks its own codec first, which
//!   takes every function. Workers register `latency_quantiles`, and the field
//!   expressions each query ships ([`crate::functions`]).
//!
//! Everything else in our plans (the scans of traceql's blocks, filters, projections,
//! aggregates) is DataFusion's own and is encoded by datafusion-proto. A node this codec does not
//! know ends the query with an error naming it, before anything is sent.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion::arrow::datatypes::Schema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use prost::Message;
use serde::{Deserialize, Serialize};
use traceql_exec::source::{TempoScan, TempoScanExec};
use traceql_planner::ops::TraceOp;
use traceql_planner::ops::exec::TraceExec;

/// The plan nodes of ours that workers run, as they are encoded.
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    /// A span-set operator over its one input.
    Trace(TraceOp),
    /// A scan of Grafana Tempo's blocks.
    Tempo {
        /// What it reads.
        scan: TempoScan,
        /// The span table's schema: datafusion-proto's encoding, in base64.
        schema: String,
    },
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
            Node::Tempo { scan, schema } => {
                let schema = decode_schema(&schema)?;
                Ok(Arc::new(TempoScanExec::of(scan, Arc::new(schema))?))
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
        } else if let Some(exec) = node.downcast_ref::<TempoScanExec>() {
            Node::Tempo {
                scan: exec.scan(),
                schema: encode_schema(exec.table_schema())?,
            }
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
    format!("the plan node {name}")
}

/// `schema` in datafusion-proto's encoding, as base64 text.
fn encode_schema(schema: &Schema) -> Result<String> {
    let proto = datafusion_proto::protobuf::Schema::try_from(schema)?;
    Ok(BASE64.encode(proto.encode_to_vec()))
}

/// The schema [`encode_schema`] wrote as `text`.
fn decode_schema(text: &str) -> Result<Schema> {
    let invalid = |e: String| DataFusionError::Plan(format!("invalid traceql plan node: {e}"));
    let bytes = BASE64.decode(text).map_err(|e| invalid(e.to_string()))?;
    let proto = datafusion_proto::protobuf::Schema::decode(bytes.as_slice())
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Schema::try_from(&proto)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion_proto::physical_plan::DefaultPhysicalProtoConverter;
    use traceql_format::schema::columns as c;
    use traceql_format::tempo::filter::Op;
    use traceql_planner::ops::spanset_logic::{Logic, SpansetLogic};

    fn input() -> Arc<dyn ExecutionPlan> {
        let schema = Schema::new(vec![
            Field::new(c::TRACE_ID, DataType::FixedSizeBinary(16), false),
            Field::new("f0", DataType::Boolean, true),
            Field::new("f1", DataType::Boolean, true),
        ]);
        Arc::new(EmptyExec::new(Arc::new(schema)))
    }

    /// `exec` encoded and decoded again over `inputs`.
    fn round_trip(
        exec: &Arc<dyn ExecutionPlan>,
        inputs: &[Arc<dyn ExecutionPlan>],
    ) -> Arc<dyn ExecutionPlan> {
        let converter = DefaultPhysicalProtoConverter {};
        let mut buf = Vec::new();
        TraceqlCodec
            .try_encode(Arc::clone(exec), &mut buf, &converter)
            .unwrap();
        let ctx = TaskContext::default();
        TraceqlCodec
            .try_decode(&buf, inputs, &ctx, &converter)
            .unwrap()
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
        let back = round_trip(&exec, &[input()]);
        let back = back.downcast_ref::<TraceExec>().unwrap();
        assert_eq!(back.op(), &op);
        assert_eq!(back.schema(), exec.schema());
    }

    #[test]
    fn a_tempo_scan_round_trips() {
        use datafusion::physical_plan::displayable;
        use object_store::path::Path;
        use traceql_exec::source::TempoPart;
        use traceql_format::block::schema::block_schema;
        use traceql_format::tempo::filter::{Cmp, RowFilter, Target, Test};
        use traceql_format::tempo::{DedicatedColumn, TempoVersion, TraceDecoder};

        let dedicated = vec![DedicatedColumn {
            scope: "span".into(),
            name: "http.route".into(),
            value_type: "string".into(),
            options: Vec::new(),
        }];
        let test = Test::All(vec![
            Test::Leaf(
                Target::Name,
                Cmp::anchored_regex("^(?:GET .*)$", true).unwrap(),
            ),
            Test::Leaf(Target::Duration, Cmp::Float(Op::Gt, 1.5)),
        ]);
        let filter = RowFilter::new(
            TempoVersion::V4,
            &dedicated,
            Some(test),
            Some([7; 16]),
            (Some(10), None),
        );
        let part = TempoPart {
            block: "b1".into(),
            path: Path::from("single-tenant/b1/data.parquet"),
            size: 1000,
            footer_size: 100,
            row_group: Some(2),
            slice: Some((1, 3)),
            bytes: 111,
            decoder: TraceDecoder::new(TempoVersion::V4, &dedicated),
            filter: filter.map(Arc::new),
        };
        let url = url::Url::parse("s3://bucket/").unwrap();
        let exec: Arc<dyn ExecutionPlan> = Arc::new(
            TempoScanExec::try_new(
                &url,
                vec![part],
                block_schema(&[]),
                Arc::new(Vec::new()),
                Some(vec![0, 2, 3]),
            )
            .unwrap(),
        );
        let back = round_trip(&exec, &[]);
        let shown = |p: &Arc<dyn ExecutionPlan>| displayable(p.as_ref()).one_line().to_string();
        assert_eq!(shown(&back), shown(&exec));
        assert!(shown(&back).contains("GET .*"), "{}", shown(&back));
        assert_eq!(back.schema(), exec.schema());
        let scan = |p: &Arc<dyn ExecutionPlan>| {
            serde_json::to_string(&p.downcast_ref::<TempoScanExec>().unwrap().scan()).unwrap()
        };
        assert_eq!(scan(&back), scan(&exec));
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
