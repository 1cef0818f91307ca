//! Attribute names and values read from a few traces of the blocks whose description
//! records none (Grafana Tempo's `meta.json` records no dictionaries and no attribute
//! keys beyond its dedicated columns), for completion. A sample, never used to skip
//! blocks.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use traceql_format::model::Trace;
use traceql_format::value::{KeyValue, Value};

use super::{Engine, EngineError};
use crate::source::read_traces;

/// Tempo blocks sampled, newest first.
const BLOCKS: usize = 2;

/// Values kept per attribute.
const VALUES: usize = 256;

/// What a sample of traces holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Attribute names as TraceQL writes them (`span.http.route`).
    pub names: BTreeSet<String>,
    /// String values per attribute name, and of `name`.
    pub values: BTreeMap<String, BTreeSet<String>>,
}

impl Sample {
    fn add(&mut self, traces: &[Trace]) {
        for span in traces.iter().flatten() {
            self.value("name", &span.name);
            self.attributes("span", &span.attributes);
            self.attributes("resource", &span.resource.attributes);
        }
    }

    fn attributes(&mut self, scope: &str, attributes: &[KeyValue]) {
        for kv in attributes {
            let name = format!("{scope}.{}", kv.key);
            if let Value::Str(v) = &kv.value {
                self.value(&name, v.as_str());
            }
            self.names.insert(name);
        }
    }

    fn value(&mut self, field: &str, value: &str) {
        let values = self.values.entry(field.to_string()).or_default();
        if values.len() < VALUES {
            values.insert(value.to_string());
        }
    }
}

impl Engine {
    /// Attribute names and values from the first traces of the newest blocks whose
    /// facts do not list the keys of their attributes (empty without such blocks): what
    /// completion offers where the blocks record neither.
    pub async fn sample_unrecorded_blocks(&self) -> Result<Sample, EngineError> {
        let mut sample = Sample::default();
        let mut unrecorded: Vec<_> = self
            .every_block()
            .filter(|(_, facts)| facts.fallback.is_none())
            .map(|(b, _)| b)
            .collect();
        unrecorded.sort_by_key(|b| std::cmp::Reverse(b.meta().end_unix_nano));
        for block in unrecorded.into_iter().take(BLOCKS) {
            let mut traces = std::pin::pin!(read_traces(&self.store, block));
            if let Some(first) = traces.next().await {
                sample.add(&first?);
            }
        }
        Ok(sample)
    }
}
