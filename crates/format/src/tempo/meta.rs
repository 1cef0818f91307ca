//! Tempo's `meta.json`: what a Tempo block holds, as a [`BlockMeta`].

use serde::{Deserialize, Serialize};

use crate::block::{BlockMeta, TypedColumn};
use crate::error::{FormatError, Result};
use crate::schema::typed_attribute_column;
use crate::tempo::columns::{SpareScope, spares};
use crate::value::ValueType;
use traceql_parser::ast::AttributeScope;

/// An entry of a Tempo block's `dedicatedColumns`: an attribute Tempo stores in a
/// column of its own. The order of the entries decides which spare column each gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicatedColumn {
    /// `resource`, `span` or `event`; `span` when absent.
    #[serde(rename = "s", default = "span_scope")]
    pub scope: String,
    /// The attribute key.
    #[serde(rename = "n")]
    pub name: String,
    /// `string` or `int`; `string` when absent.
    #[serde(rename = "t", default = "string_type")]
    pub value_type: String,
    /// Options such as `array` or `blob`.
    #[serde(rename = "o", default)]
    pub options: Vec<String>,
}

fn span_scope() -> String {
    "span".into()
}

fn string_type() -> String {
    "string".into()
}

/// The fields of Tempo's `meta.json` a reader needs (others are ignored).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TempoMeta {
    /// `vParquet4`, `vParquet5`, or a version this code does not read.
    pub format: String,
    /// The block id (its directory name).
    #[serde(rename = "blockID")]
    pub block_id: String,
    /// First trace start, whole seconds (RFC 3339).
    pub start_time: String,
    /// Last trace end, whole seconds, rounded down (RFC 3339).
    pub end_time: String,
    /// Traces (= Parquet rows).
    #[serde(default)]
    pub total_objects: u64,
    /// Size of `data.parquet`, bytes.
    #[serde(default)]
    pub size: u64,
    /// Parquet row groups.
    #[serde(default)]
    pub total_records: u64,
    /// Length of the Parquet footer, bytes.
    #[serde(default)]
    pub footer_size: u64,
    /// Trace-id bloom filter shards (`bloom-0` …); 0 means Tempo's former default, 10.
    #[serde(default)]
    pub bloom_shards: u32,
    /// The dedicated columns, in the order that assigns spare columns.
    #[serde(default)]
    pub dedicated_columns: Vec<DedicatedColumn>,
}

/// The versions of Tempo's block format this code reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TempoVersion {
    /// vParquet4.
    V4,
    /// vParquet5.
    V5,
}

impl TempoVersion {
    /// Every version this code reads.
    pub const ALL: [TempoVersion; 2] = [TempoVersion::V4, TempoVersion::V5];

    /// The name in the `format` field of Tempo's `meta.json`.
    pub fn name(self) -> &'static str {
        match self {
            TempoVersion::V4 => "vParquet4",
            TempoVersion::V5 => "vParquet5",
        }
    }

    /// The version whose name is `name`.
    pub fn of_name(name: &str) -> Option<TempoVersion> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// What a reader of a Tempo block needs beyond [`BlockMeta`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempoBlock {
    /// vParquet4 or vParquet5.
    pub version: TempoVersion,
    /// The dedicated columns of the block, in `meta.json` order.
    pub dedicated: Vec<DedicatedColumn>,
    /// Length of the Parquet footer, bytes (0 if unknown).
    pub footer_size: u64,
    /// Trace-id bloom filter shards (see [`crate::tempo::bloom`]).
    pub bloom_shards: u32,
}

impl TempoMeta {
    /// Parses Tempo's `meta.json`.
    pub fn parse(bytes: &[u8]) -> Result<TempoMeta> {
        serde_json::from_slice(bytes)
            .map_err(|e| FormatError::corrupt(format!("invalid Tempo meta.json: {e}")))
    }

    /// The block as traceql describes blocks, and what reading it needs. Tempo records
    /// its time range in whole seconds (the end rounded down), so the range is widened
    /// to the whole last second; the span count is not recorded (0). The typed columns
    /// of its span table are `resource.service.name` and the block's dedicated string
    /// and integer span and resource attributes.
    pub fn open(&self) -> Result<(BlockMeta, TempoBlock)> {
        let version = TempoVersion::of_name(&self.format).ok_or_else(|| {
            FormatError::Unsupported(format!(
                "Tempo block {} has format `{}`, which this version does not read \
                 (it reads vParquet4 and vParquet5)",
                self.block_id, self.format
            ))
        })?;
        let seconds = |what: &str, text: &str| -> Result<u64> {
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    FormatError::corrupt(format!(
                        "Tempo block {}: invalid {what} `{text}`: {e}",
                        self.block_id
                    ))
                })
                .map(|t| t.timestamp().max(0) as u64)
        };
        let start = seconds("startTime", &self.start_time)?;
        let end = seconds("endTime", &self.end_time)?;
        let mut typed = vec![typed_column(
            AttributeScope::Resource,
            "service.name",
            ValueType::Str,
        )];
        for spare in spares(version, &self.dedicated_columns) {
            let scope = match spare.scope {
                SpareScope::Resource => AttributeScope::Resource,
                SpareScope::Span => AttributeScope::Span,
                SpareScope::Event => continue,
            };
            let t = if spare.int {
                ValueType::Int
            } else {
                ValueType::Str
            };
            let column = typed_column(scope, &spare.key, t);
            if !typed.contains(&column) {
                typed.push(column);
            }
        }
        typed.sort_by(|a, b| a.name.cmp(&b.name));
        let meta = BlockMeta {
            format: version.name().into(),
            version: 0,
            id: self.block_id.clone(),
            start_unix_nano: start.saturating_mul(1_000_000_000),
            end_unix_nano: end.saturating_add(1).saturating_mul(1_000_000_000) - 1,
            traces: self.total_objects,
            spans: 0,
            min_trace_id: String::new(),
            max_trace_id: String::new(),
            row_groups: self.total_records,
            bytes: self.size,
            typed_columns: typed,
            fallback_keys: None,
            dictionaries: Default::default(),
            trace_durations: Vec::new(),
            partial_traces: false,
            txn: None,
            source_block: None,
            wal_marks: Default::default(),
        };
        let block = TempoBlock {
            version,
            dedicated: self.dedicated_columns.clone(),
            footer_size: self.footer_size,
            bloom_shards: self.bloom_shards,
        };
        Ok((meta, block))
    }
}

fn typed_column(scope: AttributeScope, key: &str, t: ValueType) -> TypedColumn {
    let name = typed_attribute_column(scope, key, t).expect("span and resource have columns");
    TypedColumn {
        name,
        scope: crate::schema::scope_prefix(scope)
            .expect("span and resource have prefixes")
            .into(),
        key: key.into(),
        value_type: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5: &str = r#"{"format":"vParquet5","blockID":"6ed8f22a-e948-4664-9fbb-b1485b8f1662","tenantID":"single-tenant","startTime":"2026-11-27T10:15:01Z","endTime":"2026-11-27T10:44:59Z","totalObjects":3000,"size":3039308,"compactionLevel":0,"indexPageSize":0,"totalRecords":1,"bloomShards":1,"footerSize":13518,"dedicatedColumns":[{"n":"http.route"},{"n":"http.status_code","t":"int"},{"s":"resource","n":"deployment.environment"},{"s":"event","n":"exception.type"},{"n":"db.statement","o":["blob"]}],"replicationFactor":1}"#;

    #[test]
    fn a_tempo_meta_becomes_a_block_meta() {
        let (meta, tempo) = TempoMeta::parse(V5.as_bytes()).unwrap().open().unwrap();
        assert_eq!(meta.format, "vParquet5");
        assert_eq!(meta.id, "6ed8f22a-e948-4664-9fbb-b1485b8f1662");
        assert_eq!(meta.start_unix_nano, 1_795_774_501_000_000_000);
        assert_eq!(meta.end_unix_nano, 1_795_776_299_999_999_999);
        assert_eq!(
            (meta.traces, meta.row_groups, meta.bytes),
            (3000, 1, 3039308)
        );
        let names: Vec<&str> = meta.typed_columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "resource.deployment.environment",
                "resource.service.name",
                "span.db.statement",
                "span.http.route",
                "span.http.status_code:int"
            ]
        );
        assert_eq!(tempo.version, TempoVersion::V5);
        assert_eq!(tempo.dedicated.len(), 5);
        assert_eq!(tempo.dedicated[2].scope, "resource");
        assert_eq!(tempo.dedicated[1].value_type, "int");
        assert_eq!(tempo.footer_size, 13518);
    }

    #[test]
    fn other_versions_are_refused_by_name() {
        let text = V5.replace("\"vParquet5\"", "\"vParquet5-preview3\"");
        let error = TempoMeta::parse(text.as_bytes())
            .unwrap()
            .open()
            .unwrap_err();
        assert!(matches!(&error, FormatError::Unsupported(m) if m.contains("vParquet5-preview3")));
        assert!(TempoMeta::parse(b"{").is_err());
    }
}
