//! The k-way merge of sorted runs into one stream of whole traces in block order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use traceql_format::model::Trace;

use super::spill::{RunReader, SpillError};
use traceql_format::block::order::{BlockKey, block_key};

/// Traces of several runs, each in block order, merged in block order.
pub(crate) struct Merge {
    runs: Vec<RunReader>,
    /// The next trace of each run (`None` once it is done).
    heads: Vec<Option<Trace>>,
    /// The block-order keys of the heads, smallest on top.
    order: BinaryHeap<Reverse<(BlockKey, usize)>>,
}

impl Merge {
    /// The merge of `runs`.
    pub(crate) fn new(runs: Vec<RunReader>) -> Result<Merge, SpillError> {
        let mut merge = Merge {
            heads: (0..runs.len()).map(|_| None).collect(),
            runs,
            order: BinaryHeap::new(),
        };
        for run in 0..merge.runs.len() {
            merge.advance(run)?;
        }
        Ok(merge)
    }

    /// Reads the next trace of run `run` into its head.
    fn advance(&mut self, run: usize) -> Result<(), SpillError> {
        let next = self.runs[run].next_trace()?;
        if let Some(trace) = &next {
            self.order.push(Reverse((block_key(trace), run)));
        }
        self.heads[run] = next;
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = Result<Trace, SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((_, run)) = self.order.pop()?;
        let trace = self.heads[run].take()?;
        Some(self.advance(run).map(|()| trace))
    }
}
