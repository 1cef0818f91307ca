//! Nested-set numbers for the spans of one trace, so that parent, child, ancestor and
//! sibling tests are integer comparisons.
//!
//! A depth-first walk gives each span `left` on entry and `right` on exit (one counter,
//! starting at 1, incremented at every entry and exit). Roots are walked in the order
//! the spans are given, children likewise. `parent` is the parent's `left`.
//!
//! Unlike Tempo, which zeroes the numbers of orphan subtrees (spans whose parent is not
//! in the trace) so that no relation holds there, an orphan subtree is numbered as a tree
//! of its own: relations inside it hold. Its root gets a negative `parent` shared by all
//! orphans of the same missing parent, so those orphans are siblings of each other but
//! not of the true roots (whose `parent` is -1). Spans caught in a parent cycle are
//! numbered from the first of them met in input order.

use rustc_hash::FxHashMap as HashMap;

use super::span_rows::SpanRow;
use crate::ids::SpanId;
use crate::model::Span;

/// The three numbers of one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedSet {
    /// Counter on entry.
    pub left: i32,
    /// Counter on exit.
    pub right: i32,
    /// The parent's `left`; -1 for roots, below -1 for orphans (see the module docs).
    pub parent: i32,
    /// How many spans of the trace have this span as their parent.
    pub children: i32,
}

/// What numbering needs of a span: its id, its parent's id and its kind.
pub trait Linked {
    /// Span id.
    fn span_id(&self) -> SpanId;
    /// Parent span id; `None` for a root.
    fn parent_span_id(&self) -> Option<SpanId>;
    /// OTLP span kind.
    fn kind(&self) -> i8;
}

/// Spans of the model and of borrowed rows hold the same three fields.
macro_rules! linked {
    ($t:ty) => {
        impl Linked for $t {
            fn span_id(&self) -> SpanId {
                self.span_id
            }
            fn parent_span_id(&self) -> Option<SpanId> {
                self.parent_span_id
            }
            fn kind(&self) -> i8 {
                self.kind
            }
        }
    };
}

linked!(Span);
linked!(SpanRow<'_>);

impl<T: Linked> Linked for &T {
    fn span_id(&self) -> SpanId {
        (*self).span_id()
    }
    fn parent_span_id(&self) -> Option<SpanId> {
        (*self).parent_span_id()
    }
    fn kind(&self) -> i8 {
        (*self).kind()
    }
}

/// Numbers the spans of one trace; the result is parallel to `spans`.
///
/// When several spans share a span id (a Zipkin client/server pair), a child whose
/// parent id is shared takes the server span as parent, or the client span if the child
/// is itself a server span.
pub fn nested_sets<S: Linked>(spans: &[S]) -> Vec<NestedSet> {
    let n = spans.len();
    // First span of each id, plus the rare ids shared by several spans.
    let mut first: HashMap<SpanId, usize> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    let mut shared: HashMap<SpanId, Vec<usize>> = HashMap::default();
    for (i, s) in spans.iter().enumerate() {
        let id = s.span_id();
        if let Some(&j) = first.get(&id) {
            shared.entry(id).or_insert_with(|| vec![j]).push(i);
        } else {
            first.insert(id, i);
        }
    }
    let mut parent_of: Vec<Option<usize>> = vec![None; n];
    let mut roots: Vec<(usize, i32)> = Vec::new();
    let mut orphan_groups: HashMap<SpanId, i32> = HashMap::default();
    for (i, s) in spans.iter().enumerate() {
        let parent = s.parent_span_id().and_then(|p| match shared.get(&p) {
            Some(candidates) => pick_parent(spans, candidates, i),
            None => first.get(&p).copied().filter(|&j| j != i),
        });
        match (s.parent_span_id(), parent) {
            (_, Some(p)) => parent_of[i] = Some(p),
            (None, None) => roots.push((i, -1)),
            (Some(missing), None) => {
                let next = -2 - orphan_groups.len() as i32;
                let group = *orphan_groups.entry(missing).or_insert(next);
                roots.push((i, group));
            }
        }
    }
    // Children of each span, in input order, as one array with offsets.
    let mut offsets = vec![0usize; n + 1];
    for p in parent_of.iter().flatten() {
        offsets[p + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut children = vec![0usize; offsets[n]];
    for (i, p) in parent_of.iter().enumerate() {
        if let Some(p) = *p {
            children[fill[p]] = i;
            fill[p] += 1;
        }
    }
    let children_of = |i: usize| &children[offsets[i]..offsets[i + 1]];

    let mut out = vec![
        NestedSet {
            left: 0,
            right: 0,
            parent: 0,
            children: 0,
        };
        n
    ];
    for (i, set) in out.iter_mut().enumerate() {
        set.children = children_of(i).len() as i32;
    }
    let mut visited = vec![false; n];
    let mut counter = 0i32;
    // Explicit stack of (span, next child index): no recursion on deep traces.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut walk =
        |start: usize, parent: i32, out: &mut Vec<NestedSet>, visited: &mut Vec<bool>| {
            counter += 1;
            visited[start] = true;
            out[start].left = counter;
            out[start].parent = parent;
            stack.push((start, 0));
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                match children_of(node).get(*next) {
                    Some(&child) => {
                        *next += 1;
                        if visited[child] {
                            continue;
                        }
                        visited[child] = true;
                        counter += 1;
                        out[child].left = counter;
                        out[child].parent = out[node].left;
                        stack.push((child, 0));
                    }
                    None => {
                        counter += 1;
                        out[node].right = counter;
                        stack.pop();
                    }
                }
            }
        };
    for (root, parent) in roots {
        walk(root, parent, &mut out, &mut visited);
    }
    // Spans in a parent cycle are reachable from no root.
    for i in 0..n {
        if !visited[i] {
            walk(i, -1, &mut out, &mut visited);
        }
    }
    out
}

fn pick_parent<S: Linked>(spans: &[S], candidates: &[usize], child: usize) -> Option<usize> {
    const SERVER: i8 = 2;
    const CLIENT: i8 = 3;
    let others: Vec<usize> = candidates.iter().copied().filter(|&c| c != child).collect();
    if others.len() <= 1 {
        return others.first().copied();
    }
    let want = if spans[child].kind() == SERVER {
        CLIENT
    } else {
        SERVER
    };
    others
        .iter()
        .copied()
        .find(|&c| spans[c].kind() == want)
        .or(others.first().copied())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn span(id: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: [1; 16],
            span_id: [id; 8],
            parent_span_id: parent.map(|p| [p; 8]),
            trace_state: String::new(),
            flags: 0,
            name: format!("s{id}"),
            kind: 1,
            start_unix_nano: 0,
            end_unix_nano: 0,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: 0,
            status_message: String::new(),
            resource: Arc::default(),
            scope: Arc::default(),
        }
    }

    fn numbers(spans: &[Span]) -> Vec<(i32, i32, i32)> {
        let refs: Vec<&Span> = spans.iter().collect();
        nested_sets(&refs)
            .into_iter()
            .map(|n| (n.left, n.right, n.parent))
            .collect()
    }

    #[test]
    fn a_tree() {
        // 1 ─┬─ 2 ── 4
        //    └─ 3
        let spans = [
            span(1, None),
            span(2, Some(1)),
            span(3, Some(1)),
            span(4, Some(2)),
        ];
        assert_eq!(
            numbers(&spans),
            vec![(1, 8, -1), (2, 5, 1), (6, 7, 1), (3, 4, 2)]
        );
    }

    #[test]
    fn spans_out_of_order_get_the_same_tree() {
        let spans = [
            span(4, Some(2)),
            span(3, Some(1)),
            span(2, Some(1)),
            span(1, None),
        ];
        // Children are walked in the order given: 3 before 2.
        assert_eq!(
            numbers(&spans),
            vec![(5, 6, 4), (2, 3, 1), (4, 7, 1), (1, 8, -1)]
        );
    }

    #[test]
    fn several_roots_are_walked_in_order() {
        let spans = [span(1, None), span(2, None), span(3, Some(2))];
        assert_eq!(numbers(&spans), vec![(1, 2, -1), (3, 6, -1), (4, 5, 3)]);
    }

    #[test]
    fn orphan_subtrees_are_numbered_as_their_own_trees() {
        // 9 is missing: 5 and 6 are orphans of the same parent, 7 a child of 5,
        // 8 an orphan of another missing parent.
        let spans = [
            span(1, None),
            span(5, Some(9)),
            span(6, Some(9)),
            span(7, Some(5)),
            span(8, Some(10)),
        ];
        let n = numbers(&spans);
        assert_eq!(n[0], (1, 2, -1));
        assert_eq!(n[1], (3, 6, -2));
        assert_eq!(n[2], (7, 8, -2));
        assert_eq!(n[3], (4, 5, 3));
        assert_eq!(n[4], (9, 10, -3));
        // 7 is a descendant of 5; 5 and 6 are siblings; 8 is nobody's sibling.
        assert!(n[3].0 > n[1].0 && n[3].1 < n[1].1);
        assert_eq!(n[1].2, n[2].2);
        assert!(n.iter().enumerate().all(|(i, x)| i == 4 || x.2 != n[4].2));
    }

    #[test]
    fn cycles_do_not_hang() {
        let spans = [span(1, Some(2)), span(2, Some(1))];
        assert_eq!(numbers(&spans), vec![(1, 4, -1), (2, 3, 1)]);
    }

    #[test]
    fn deep_traces_do_not_overflow() {
        let spans: Vec<Span> = (0..100_000u32)
            .map(|i| {
                let mut s = span(0, None);
                s.span_id = u64::from(i + 1).to_be_bytes();
                s.parent_span_id = (i > 0).then(|| u64::from(i).to_be_bytes());
                s
            })
            .collect();
        let n = numbers(&spans);
        assert_eq!(n[0], (1, 200_000, -1));
        assert_eq!(n[99_999], (100_000, 100_001, 99_999));
    }

    #[test]
    fn zipkin_shared_ids_pick_the_server_as_parent() {
        let mut client = span(1, None);
        client.kind = 3;
        let mut server = span(1, Some(0));
        server.parent_span_id = Some([1; 8]);
        server.kind = 2;
        let child = span(2, Some(1));
        let spans = [client, server, child];
        let n = numbers(&spans);
        // The server span is the client's child, the internal child hangs off the server.
        assert_eq!(n[1].2, n[0].0);
        assert_eq!(n[2].2, n[1].0);
    }
}
