//! Attribute names and values read from a few traces of Grafana Tempo's blocks, for
//! completion: Tempo's `meta.json` records no dictionaries and no attribute keys
//! beyond its dedicated columns. A sample, never used to skip blocks.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use traceql_format::model::Trace;
use traceql_format::value::{KeyValue, Value};

use super::{Engine, EngineError};
use crate::table::tempo::{read_traces, tempo_parts};

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
    /// Attribute names and values from the first traces of the newest Tempo blocks
    /// (empty without Tempo blocks): what completion offers where the blocks record
    /// neither.
    pub async fn sample_tempo_blocks(&self) -> Result<Sample, EngineError> {
        let mut sample = Sample::default();
        let mut tempo: Vec<_> = self.blocks().filter(|b| b.tempo.is_some()).collect();
        tempo.sort_by_key(|b| std::cmp::Reverse(b.end_unix_nano));
        for block in tempo.into_iter().take(BLOCKS) {
            let Some(part) = tempo_parts(&self.store, block).into_iter().next() else {
                continue;
            };
            let mut traces = std::pin::pin!(read_traces(self.store.object_store(), part));
            if let Some(first) = traces.next().await {
                sample.add(&first?);
            }
        }
        Ok(sample)
    }
}
