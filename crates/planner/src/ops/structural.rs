//! The structural operators (`>`, `<`, `>>`, `<<`, `~`, their negations `!>` … and
//! unions `&>` …), decided per spanset from the nested-set numbers of the spans: a
//! child's `nested_set_parent` is its parent's `nested_set_left`; a descendant's
//! interval lies strictly inside its ancestor's; siblings share `nested_set_parent`
//! and are different spans. Each test is `O(n log n)` in the spans of a trace.
//!
//! Unlike Tempo, negated operators are exact: orphaned subtrees are numbered as trees
//! of their own at write time, so "no relation" really means no relation.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, Int32Builder, RecordBatch};
use datafusion::arrow::datatypes::Field;
use datafusion::error::Result;
use traceql_parser::ast::SpansetOp;

use super::{TraceOperator, column, membership, membership_field, spanset_ids};
use traceql_format::schema::columns;

/// A relation of a span `t` to some span of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum Relation {
    /// `t` is a child of a span of the set.
    ChildOf,
    /// `t` is the parent of a span of the set.
    ParentOf,
    /// `t` is a descendant of a span of the set.
    DescendantOf,
    /// `t` is an ancestor of a span of the set.
    AncestorOf,
    /// `t` is a sibling of a span of the set (and not that span).
    SiblingOf,
}

/// How the result is formed from the relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum Form {
    /// Right-hand spans related to some left-hand span.
    Plain,
    /// Right-hand spans related to no left-hand span.
    Negated,
    /// Related spans of both sides.
    Union,
}

/// A structural operator between two membership columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct Structural {
    /// The TraceQL operator.
    pub op: SpansetOp,
    /// Membership column of the left operand.
    pub lhs: String,
    /// Membership column of the right operand.
    pub rhs: String,
    /// The membership column written.
    pub output: String,
}

/// The relation a right-hand span must have to the left-hand spans, how the result is
/// formed, and (for unions) the converse relation of left-hand spans to right-hand ones.
pub fn semantics(op: SpansetOp) -> Option<(Relation, Form, Relation)> {
    use Form::*;
    use Relation::*;
    Some(match op {
        SpansetOp::Child => (ChildOf, Plain, ParentOf),
        SpansetOp::Parent => (ParentOf, Plain, ChildOf),
        SpansetOp::Descendant => (DescendantOf, Plain, AncestorOf),
        SpansetOp::Ancestor => (AncestorOf, Plain, DescendantOf),
        SpansetOp::Sibling => (SiblingOf, Plain, SiblingOf),
        SpansetOp::NotChild => (ChildOf, Negated, ParentOf),
        SpansetOp::NotParent => (ParentOf, Negated, ChildOf),
        SpansetOp::NotDescendant => (DescendantOf, Negated, AncestorOf),
        SpansetOp::NotAncestor => (AncestorOf, Negated, DescendantOf),
        SpansetOp::NotSibling => (SiblingOf, Negated, SiblingOf),
        SpansetOp::UnionChild => (ChildOf, Union, ParentOf),
        SpansetOp::UnionParent => (ParentOf, Union, ChildOf),
        SpansetOp::UnionDescendant => (DescendantOf, Union, AncestorOf),
        SpansetOp::UnionAncestor => (AncestorOf, Union, DescendantOf),
        SpansetOp::UnionSibling => (SiblingOf, Union, SiblingOf),
        SpansetOp::And | SpansetOp::Or => return None,
    })
}

/// Nested-set numbers of one span.
#[derive(Clone, Copy, Debug)]
pub struct Numbers {
    /// `nested_set_left`
    pub left: i32,
    /// `nested_set_right`
    pub right: i32,
    /// `nested_set_parent`
    pub parent: i32,
}

/// For each of `targets`, whether it has `relation` to some span of `set`. Spans are
/// identified by their index into `numbers`; a span never relates to itself.
pub fn related(
    relation: Relation,
    numbers: &[Numbers],
    targets: &[usize],
    set: &[usize],
) -> Vec<bool> {
    if set.is_empty() {
        return vec![false; targets.len()];
    }
    match relation {
        Relation::ChildOf => {
            let lefts: std::collections::HashSet<i32> =
                set.iter().map(|&i| numbers[i].left).collect();
            targets
                .iter()
                .map(|&t| lefts.contains(&numbers[t].parent))
                .collect()
        }
        Relation::ParentOf => {
            let parents: std::collections::HashSet<i32> =
                set.iter().map(|&i| numbers[i].parent).collect();
            targets
                .iter()
                .map(|&t| parents.contains(&numbers[t].left))
                .collect()
        }
        Relation::DescendantOf => {
            // Some s with s.left < t.left and s.right > t.right: the largest right end
            // among set members starting before t must pass t's right end.
            let mut sorted: Vec<(i32, i32)> = set
                .iter()
                .map(|&i| (numbers[i].left, numbers[i].right))
                .collect();
            sorted.sort_unstable();
            let mut prefix_max = Vec::with_capacity(sorted.len());
            let mut max = i32::MIN;
            for &(_, right) in &sorted {
                max = max.max(right);
                prefix_max.push(max);
            }
            targets
                .iter()
                .map(|&t| {
                    let n = numbers[t];
                    let before = sorted.partition_point(|&(left, _)| left < n.left);
                    before > 0 && prefix_max[before - 1] > n.right
                })
                .collect()
        }
        Relation::AncestorOf => {
            // Some s with s.left > t.left and s.right < t.right: the smallest right end
            // among set members starting after t must come before t's right end.
            let mut sorted: Vec<(i32, i32)> = set
                .iter()
                .map(|&i| (numbers[i].left, numbers[i].right))
                .collect();
            sorted.sort_unstable();
            let mut suffix_min = vec![i32::MAX; sorted.len() + 1];
            for i in (0..sorted.len()).rev() {
                suffix_min[i] = suffix_min[i + 1].min(sorted[i].1);
            }
            targets
                .iter()
                .map(|&t| {
                    let n = numbers[t];
                    let after = sorted.partition_point(|&(left, _)| left <= n.left);
                    suffix_min[after] < n.right
                })
                .collect()
        }
        Relation::SiblingOf => {
            let mut by_parent: HashMap<i32, usize> = HashMap::new();
            for &i in set {
                *by_parent.entry(numbers[i].parent).or_default() += 1;
            }
            targets
                .iter()
                .map(|&t| {
                    let same = by_parent.get(&numbers[t].parent).copied().unwrap_or(0);
                    let itself = usize::from(set.contains(&t));
                    same > itself
                })
                .collect()
        }
    }
}

/// The result of `op` on one spanset: which spans of the trace are in it, given the
/// left-hand spans `lhs` and right-hand spans `rhs` (indexes into `numbers`).
pub fn apply(op: SpansetOp, numbers: &[Numbers], lhs: &[usize], rhs: &[usize]) -> Vec<usize> {
    let Some((relation, form, converse)) = semantics(op) else {
        return Vec::new();
    };
    let forward = related(relation, numbers, rhs, lhs);
    let mut out: Vec<usize> = rhs
        .iter()
        .zip(&forward)
        .filter(|(_, hit)| match form {
            Form::Plain | Form::Union => **hit,
            Form::Negated => !**hit,
        })
        .map(|(&r, _)| r)
        .collect();
    if form == Form::Union {
        let backward = related(converse, numbers, lhs, rhs);
        for (&l, hit) in lhs.iter().zip(&backward) {
            if *hit && !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out
}

impl TraceOperator for Structural {
    fn name(&self) -> &'static str {
        "Structural"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![membership_field(&self.output)]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} := {} {} {}",
            self.output,
            self.lhs,
            self.op.as_str(),
            self.rhs
        )
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        let (l, r) = (membership(batch, &self.lhs)?, membership(batch, &self.rhs)?);
        let left = column::<Int32Array>(batch, columns::NESTED_SET_LEFT)?;
        let right = column::<Int32Array>(batch, columns::NESTED_SET_RIGHT)?;
        let parent = column::<Int32Array>(batch, columns::NESTED_SET_PARENT)?;
        let mut out: Vec<Option<i32>> = vec![None; batch.num_rows()];
        for trace in traces {
            let numbers: Vec<Numbers> = trace
                .clone()
                .map(|row| Numbers {
                    left: left.value(row),
                    right: right.value(row),
                    parent: parent.value(row),
                })
                .collect();
            for id in spanset_ids(&[l, r], trace.clone()) {
                let pick = |m: &Int32Array| -> Vec<usize> {
                    trace
                        .clone()
                        .filter(|&row| m.is_valid(row) && m.value(row) == id)
                        .map(|row| row - trace.start)
                        .collect()
                };
                for i in apply(self.op, &numbers, &pick(l), &pick(r)) {
                    out[trace.start + i] = Some(id);
                }
            }
        }
        let mut builder = Int32Builder::with_capacity(out.len());
        builder.extend(out);
        Ok(vec![Arc::new(builder.finish())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root(0) ─ a(1) ─ b(2)
    ///         └ c(3)
    fn tree() -> Vec<Numbers> {
        vec![
            Numbers {
                left: 1,
                right: 8,
                parent: -1,
            },
            Numbers {
                left: 2,
                right: 5,
                parent: 1,
            },
            Numbers {
                left: 3,
                right: 4,
                parent: 2,
            },
            Numbers {
                left: 6,
                right: 7,
                parent: 1,
            },
        ]
    }

    #[test]
    fn relations_follow_the_tree() {
        let n = tree();
        let all = [0, 1, 2, 3];
        assert_eq!(apply(SpansetOp::Child, &n, &[0], &all), vec![1, 3]);
        assert_eq!(apply(SpansetOp::Descendant, &n, &[0], &all), vec![1, 2, 3]);
        assert_eq!(apply(SpansetOp::Ancestor, &n, &[2], &all), vec![0, 1]);
        assert_eq!(apply(SpansetOp::Parent, &n, &[2], &all), vec![1]);
        assert_eq!(apply(SpansetOp::Sibling, &n, &[1], &all), vec![3]);
        assert_eq!(
            apply(SpansetOp::NotDescendant, &n, &[1], &all),
            vec![0, 1, 3]
        );
        assert_eq!(apply(SpansetOp::UnionChild, &n, &[1], &[2, 3]), vec![2, 1]);
    }

    #[test]
    fn a_span_never_relates_to_itself() {
        let n = tree();
        assert!(apply(SpansetOp::Descendant, &n, &[2], &[2]).is_empty());
        assert!(apply(SpansetOp::Sibling, &n, &[3], &[3]).is_empty());
        assert_eq!(apply(SpansetOp::NotSibling, &n, &[3], &[3]), vec![3]);
    }

    #[test]
    fn negation_with_an_empty_left_side_keeps_the_right_side() {
        let n = tree();
        assert_eq!(apply(SpansetOp::NotChild, &n, &[], &[1, 2]), vec![1, 2]);
        assert!(apply(SpansetOp::Child, &n, &[], &[1, 2]).is_empty());
    }
}
