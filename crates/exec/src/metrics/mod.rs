//! TraceQL metrics (`{ status = error } | rate() by (resource.service.name)`): time
//! series from the spans a pipeline selects, with Tempo's time model, second stages and
//! arithmetic between queries.

//!
//! The time model, each function's plan and the series finishing live in
//! `traceql_planner::metrics`; here the engine runs them ([`run`]) and the answer takes
//! the shape of Tempo's `query_range` response.

mod run;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use traceql_format::value::Value;
pub use traceql_planner::metrics::{Buckets, Series};

pub use self::run::MAX_POINTS;

/// What a metrics query covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Start of the range, unix nanoseconds (default: the store's first span).
    pub start_unix_nano: Option<u64>,
    /// End of the range, unix nanoseconds (default: the store's last span).
    pub end_unix_nano: Option<u64>,
    /// Bucket width in nanoseconds (default: Tempo's choice for the range).
    pub step_nano: Option<u64>,
    /// One value for the whole range instead of a series over time.
    pub instant: bool,
}

/// The answer to a metrics query, serialised like Tempo's `query_range` response.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsResponse {
    /// The buckets the series cover.
    pub buckets: Buckets,
    /// The series, ordered by their labels.
    pub series: Vec<Series>,
    /// Spans read.
    pub inspected_spans: u64,
    /// Bytes read.
    pub inspected_bytes: u64,
}

impl MetricsResponse {
    /// The timestamp (ms) of each bucket.
    pub fn timestamps(&self) -> Vec<u64> {
        (0..self.buckets.count())
            .map(|i| self.buckets.timestamp_ms(i))
            .collect()
    }
}

/// A label's value as Tempo prints it: an OTLP/JSON `AnyValue`, `{}` for nil.
struct LabelValue<'a>(&'a Option<Value>);

impl Serialize for LabelValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(value) => value.serialize(serializer),
            None => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

/// One label as Tempo prints it.
#[derive(Serialize)]
struct LabelJson<'a> {
    key: &'a str,
    value: LabelValue<'a>,
}

/// One point: `timestampMs` is a string, as protobuf JSON prints 64-bit integers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SampleJson {
    timestamp_ms: String,
    value: f64,
}

#[derive(Serialize)]
struct SeriesJson<'a> {
    labels: Vec<LabelJson<'a>>,
    samples: Vec<SampleJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsJson {
    inspected_spans: String,
    inspected_bytes: String,
}

impl Serialize for MetricsResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let timestamps = self.timestamps();
        let series: Vec<SeriesJson<'_>> = self
            .series
            .iter()
            .map(|s| SeriesJson {
                labels: labels_json(s),
                samples: s
                    .values
                    .iter()
                    .zip(&timestamps)
                    .filter(|(v, _)| !v.is_nan())
                    .map(|(v, t)| SampleJson {
                        timestamp_ms: t.to_string(),
                        value: *v,
                    })
                    .collect(),
            })
            .collect();
        let mut out = serializer.serialize_struct("MetricsResponse", 2)?;
        out.serialize_field("series", &series)?;
        out.serialize_field("metrics", &self.metrics_json())?;
        out.end()
    }
}

impl MetricsResponse {
    /// The answer as Tempo's instant query (`/api/metrics/query`) writes it: each
    /// series' labels and its one value; series without a value are left out.
    pub fn instant(&self) -> InstantResponse<'_> {
        InstantResponse(self)
    }

    fn metrics_json(&self) -> MetricsJson {
        MetricsJson {
            inspected_spans: self.inspected_spans.to_string(),
            inspected_bytes: self.inspected_bytes.to_string(),
        }
    }
}

/// The labels of `series` as Tempo prints them.
fn labels_json(series: &Series) -> Vec<LabelJson<'_>> {
    series
        .labels
        .iter()
        .map(|(key, value)| LabelJson {
            key,
            value: LabelValue(value),
        })
        .collect()
}

/// A [`MetricsResponse`] serialised like Tempo's `QueryInstantResponse`
/// (see [`MetricsResponse::instant`]).
pub struct InstantResponse<'a>(&'a MetricsResponse);

#[derive(Serialize)]
struct InstantSeriesJson<'a> {
    labels: Vec<LabelJson<'a>>,
    value: f64,
}

impl Serialize for InstantResponse<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let series: Vec<InstantSeriesJson<'_>> = self
            .0
            .series
            .iter()
            .filter_map(|s| {
                let value = s.values.first().copied().filter(|v| !v.is_nan())?;
                Some(InstantSeriesJson {
                    labels: labels_json(s),
                    value,
                })
            })
            .collect();
        let mut out = serializer.serialize_struct("QueryInstantResponse", 2)?;
        out.serialize_field("series", &series)?;
        out.serialize_field("metrics", &self.0.metrics_json())?;
        out.end()
    }
}
