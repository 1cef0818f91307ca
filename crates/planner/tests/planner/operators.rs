//! Each span-set operator on hand-built batches of whole traces, with the answer worked
//! out by hand from the trace shapes below.
//!
//! Trace 1: `root` (nested set 1..8) with children `a` (2..5) and `c` (6..7); `b`
//! (3..4) is a child of `a`. Trace 2: `r` (1..4) with one child `s` (2..3). Rows are in
//! that order: root, a, b, c, r, s.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use traceql_format::schema::columns;
use traceql_parser::ast::Function;
use traceql_parser::ast::{ComparisonOp, SpansetOp};
use traceql_planner::ops::aggregate::AggregateFilter;
use traceql_planner::ops::group_by::GroupBy;
use traceql_planner::ops::spanset_logic::{Logic, SpansetLogic};
use traceql_planner::ops::structural::Structural;
use traceql_planner::ops::{TraceOp, TraceOperator, trace_ranges};

const ROWS: usize = 6;

/// The six spans, with extra columns (`name`, values) appended.
fn batch(extra: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let ids: Vec<[u8; 16]> = [1u8, 1, 1, 1, 2, 2].iter().map(|t| [*t; 16]).collect();
    let mut fields = vec![
        Field::new(columns::TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(columns::TRACE_START_UNIX_NANO, DataType::UInt64, false),
        Field::new(columns::NESTED_SET_LEFT, DataType::Int32, false),
        Field::new(columns::NESTED_SET_RIGHT, DataType::Int32, false),
        Field::new(columns::NESTED_SET_PARENT, DataType::Int32, false),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(FixedSizeBinaryArray::try_from_iter(ids.into_iter()).unwrap()),
        Arc::new(UInt64Array::from(vec![10, 10, 10, 10, 20, 20])),
        Arc::new(Int32Array::from(vec![1, 2, 3, 6, 1, 2])),
        Arc::new(Int32Array::from(vec![8, 5, 4, 7, 4, 3])),
        Arc::new(Int32Array::from(vec![-1, 1, 2, 1, -1, 1])),
    ];
    for (name, array) in extra {
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn members(values: [Option<i32>; ROWS]) -> ArrayRef {
    Arc::new(Int32Array::from(values.to_vec()))
}

/// Runs `op` (through the registry, as plans do) and returns its first output column.
fn run(op: impl Into<TraceOp>, batch: &RecordBatch) -> Vec<ArrayRef> {
    let op: TraceOp = op.into();
    let traces = trace_ranges(batch).unwrap();
    assert_eq!(traces, vec![0..4, 4..6], "two traces");
    let out = op.evaluate(batch, &traces).unwrap();
    assert_eq!(out.len(), op.outputs().len());
    for (array, field) in out.iter().zip(op.outputs()) {
        assert_eq!(array.len(), ROWS);
        assert_eq!(array.data_type(), field.data_type());
    }
    out
}

fn membership(array: &ArrayRef) -> Vec<Option<i32>> {
    let a = array.as_any().downcast_ref::<Int32Array>().unwrap();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

const N: Option<i32> = None;
const S0: Option<i32> = Some(0);

/// Left: `root` and `r`. Right: `b` and `s`.
fn two_sides() -> RecordBatch {
    batch(vec![
        ("l", members([S0, N, N, N, S0, N])),
        ("r", members([N, N, S0, N, N, S0])),
    ])
}

#[test]
fn spanset_and_keeps_both_sides_only_where_both_match() {
    let batch = batch(vec![
        ("l", members([S0, N, N, N, S0, N])),
        ("r", members([N, N, S0, N, N, N])),
    ]);
    let and = SpansetLogic {
        op: Logic::And,
        lhs: "l".into(),
        rhs: "r".into(),
        output: "o".into(),
    };
    assert_eq!(
        membership(&run(and.clone(), &batch)[0]),
        [S0, N, S0, N, N, N]
    );
    let or = SpansetLogic {
        op: Logic::Or,
        ..and
    };
    assert_eq!(membership(&run(or, &batch)[0]), [S0, N, S0, N, S0, N]);
}

fn structural(op: SpansetOp, batch: &RecordBatch) -> Vec<Option<i32>> {
    let op = Structural {
        op,
        lhs: "l".into(),
        rhs: "r".into(),
        output: "o".into(),
    };
    membership(&run(op, batch)[0])
}

#[test]
fn structural_operators_follow_the_nested_sets() {
    let batch = two_sides();
    // `b` descends from `root`, `s` from `r`; only `s` is a child.
    assert_eq!(
        structural(SpansetOp::Descendant, &batch),
        [N, N, S0, N, N, S0]
    );
    assert_eq!(structural(SpansetOp::Child, &batch), [N, N, N, N, N, S0]);
    // Negated: right-hand spans with no such relation to a left-hand span.
    assert_eq!(structural(SpansetOp::NotChild, &batch), [N, N, S0, N, N, N]);
    assert_eq!(structural(SpansetOp::NotDescendant, &batch), [N; ROWS]);
    // Union: the related spans of both sides.
    assert_eq!(
        structural(SpansetOp::UnionChild, &batch),
        [N, N, N, N, S0, S0]
    );
    // Ancestors seen from the right-hand side.
    let reversed = batch_with_sides([N, N, S0, N, N, S0], [S0, S0, N, S0, S0, N]);
    assert_eq!(
        structural(SpansetOp::Ancestor, &reversed),
        [S0, S0, N, N, S0, N]
    );
    assert_eq!(
        structural(SpansetOp::Parent, &reversed),
        [N, S0, N, N, S0, N]
    );
}

#[test]
fn siblings_share_a_parent_and_are_other_spans() {
    // Left `a`, right everything in trace 1: `c` is `a`'s only sibling.
    let batch = batch_with_sides([N, S0, N, N, N, N], [S0, S0, S0, S0, N, N]);
    assert_eq!(structural(SpansetOp::Sibling, &batch), [N, N, N, S0, N, N]);
    assert_eq!(
        structural(SpansetOp::NotSibling, &batch),
        [S0, S0, S0, N, N, N]
    );
}

fn batch_with_sides(l: [Option<i32>; ROWS], r: [Option<i32>; ROWS]) -> RecordBatch {
    batch(vec![("l", members(l)), ("r", members(r))])
}

#[test]
fn aggregate_filters_keep_or_drop_whole_spansets_and_write_the_value() {
    let all = [S0, S0, S0, S0, S0, S0];
    let batch = batch(vec![
        ("in", members(all)),
        (
            "v",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(2.0),
                None,
                Some(6.0),
                Some(10.0),
                Some(30.0),
            ])),
        ),
    ]);
    let count = AggregateFilter {
        function: Function::Count,
        op: ComparisonOp::Gt,
        threshold_bits: 2.0f64.to_bits(),
        label: "count()".into(),
        input: "in".into(),
        argument: None,
        output: "o".into(),
        value: "agg".into(),
    };
    let out = run(count.clone(), &batch);
    assert_eq!(membership(&out[0]), [S0, S0, S0, S0, N, N]);
    let values = out[1].as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(values.value(0), 4.0);
    // avg skips nil values: trace 1 averages 1, 2 and 6; trace 2 averages 10 and 30.
    let avg = AggregateFilter {
        function: Function::Avg,
        op: ComparisonOp::Gte,
        threshold_bits: 20.0f64.to_bits(),
        label: "avg(.v)".into(),
        argument: Some("v".into()),
        ..count
    };
    let out = run(avg, &batch);
    assert_eq!(membership(&out[0]), [N, N, N, N, S0, S0]);
    let values = out[1].as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(values.value(4), 20.0);
}

#[test]
fn group_by_splits_spansets_by_value_in_order_of_first_appearance() {
    let batch = batch(vec![
        ("in", members([S0, S0, N, S0, S0, S0])),
        (
            "k",
            Arc::new(StringArray::from(vec![
                Some("\"x\""),
                Some("\"y\""),
                Some("\"x\""),
                Some("\"x\""),
                None,
                Some("\"y\""),
            ])),
        ),
    ]);
    let by = GroupBy {
        label: ".k".into(),
        input: "in".into(),
        key: "k".into(),
        output: "o".into(),
    };
    // `b` is in no spanset; in trace 2 the nil key is a group of its own.
    assert_eq!(
        membership(&run(by, &batch)[0]),
        [S0, Some(1), N, S0, S0, Some(1)]
    );
}

#[test]
fn operators_are_named_and_described_in_traceql_terms() {
    let op: TraceOp = Structural {
        op: SpansetOp::Descendant,
        lhs: "__m1".into(),
        rhs: "__m2".into(),
        output: "__m3".into(),
    }
    .into();
    assert_eq!(op.name(), "Structural");
    struct Describe<'a>(&'a TraceOp);
    impl std::fmt::Display for Describe<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.describe(f)
        }
    }
    assert_eq!(Describe(&op).to_string(), "__m3 := __m1 >> __m2");
}

#[test]
fn a_missing_input_column_is_an_error_not_a_panic() {
    let batch = batch(vec![("l", members([S0; ROWS]))]);
    let op: TraceOp = SpansetLogic {
        op: Logic::And,
        lhs: "l".into(),
        rhs: "missing".into(),
        output: "o".into(),
    }
    .into();
    let error = op
        .evaluate(&batch, &trace_ranges(&batch).unwrap())
        .unwrap_err();
    assert!(error.to_string().contains("`missing`"), "{error}");
}

/// Runs `op` as its physical operator over `batch` in a session whose memory pool holds
/// `pool` bytes.
async fn run_exec(
    op: TraceOp,
    batch: RecordBatch,
    pool: usize,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::TaskContext;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use traceql_planner::ops::exec::TraceExec;

    let input = MemorySourceConfig::try_new_exec(&[vec![batch.clone()]], batch.schema(), None)?;
    let exec = Arc::new(TraceExec::try_new(input, op)?);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool)))
        .build_arc()?;
    let context = Arc::new(TaskContext::default().with_runtime(runtime));
    datafusion::physical_plan::collect(exec, context).await
}

#[tokio::test]
async fn what_an_operator_buffers_is_reserved_from_the_memory_pool() {
    let op: TraceOp = Structural {
        op: SpansetOp::Descendant,
        lhs: "l".into(),
        rhs: "r".into(),
        output: "o".into(),
    }
    .into();
    let batch = two_sides();
    // Enough memory: the same answer as the operator on its own.
    let out = run_exec(op.clone(), batch.clone(), 64 << 20).await.unwrap();
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, ROWS);
    // The last trace is held back until the input ends, so it comes in its own batch.
    let members: Vec<Option<i32>> = out
        .iter()
        .flat_map(|b| membership(b.column_by_name("o").unwrap()))
        .collect();
    assert_eq!(members, [N, N, S0, N, N, S0]);
    // Too little to hold the buffered traces: a clear error naming the operator.
    let error = run_exec(op, batch, 64).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error.find_root(),
            datafusion::error::DataFusionError::ResourcesExhausted(_)
        ),
        "{message}"
    );
    assert!(message.contains("StructuralExec[0]"), "{message}");
}
