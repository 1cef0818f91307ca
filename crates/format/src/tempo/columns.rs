//! Which attribute each of a Tempo block's own columns holds: the dedicated spare
//! columns (assigned from `meta.json`'s `dedicatedColumns` in order) and the
//! well-known columns (`ServiceName`; in vParquet4 also the Kubernetes and HTTP ones).

use crate::tempo::TempoVersion;
use crate::tempo::meta::DedicatedColumn;

/// Where a spare column sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpareScope {
    /// `rs.Resource.DedicatedAttributes`.
    Resource,
    /// `…Spans.DedicatedAttributes`.
    Span,
    /// `…Spans.Events.DedicatedAttributes` (vParquet5 only).
    Event,
}

/// A dedicated spare column and the attribute it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spare {
    /// Where the column sits.
    pub scope: SpareScope,
    /// The attribute key.
    pub key: String,
    /// Whether it holds integers (`Int01`…); strings otherwise (`String01`…).
    pub int: bool,
    /// The column's name inside `DedicatedAttributes`.
    pub column: String,
}

/// The spare columns of a block of `version` with dedicated columns `dedicated`.
///
/// Entries are taken in order, separately for each scope and type: the i-th usable
/// string entry of a scope gets `String{i:02}`, the i-th integer entry `Int{i:02}`, up
/// to the spares the version has (vParquet4: 10 strings for resource and span, no
/// options allowed; vParquet5: 20 strings and 5 integers for resource, span and
/// event). Entries beyond those, or of another scope or type, get no column.
pub fn spares(version: TempoVersion, dedicated: &[DedicatedColumn]) -> Vec<Spare> {
    let v5 = version == TempoVersion::V5;
    let mut counts = [[0usize; 2]; 3];
    let mut out = Vec::new();
    for d in dedicated {
        let scope = match d.scope.as_str() {
            "resource" => SpareScope::Resource,
            "span" => SpareScope::Span,
            "event" if v5 => SpareScope::Event,
            _ => continue,
        };
        let int = match d.value_type.as_str() {
            "string" => false,
            "int" if v5 => true,
            _ => continue,
        };
        if !v5 && !d.options.is_empty() {
            continue;
        }
        let limit = match (v5, int) {
            (false, _) => 10,
            (true, false) => 20,
            (true, true) => 5,
        };
        let n = &mut counts[scope as usize][usize::from(int)];
        if *n >= limit {
            continue;
        }
        *n += 1;
        let prefix = if int { "Int" } else { "String" };
        out.push(Spare {
            scope,
            key: d.name.clone(),
            int,
            column: format!("{prefix}{n:02}"),
        });
    }
    out
}

/// A well-known column: its name in the Tempo schema, the attribute it holds and
/// whether it holds integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WellKnown {
    /// The column's field name.
    pub column: &'static str,
    /// The attribute key.
    pub key: &'static str,
    /// Integers (`HttpStatusCode`); strings otherwise.
    pub int: bool,
}

const fn known(column: &'static str, key: &'static str, int: bool) -> WellKnown {
    WellKnown { column, key, int }
}

/// The well-known resource columns besides `ServiceName` (vParquet4 only; absent
/// from vParquet5 files, where these attributes are dedicated or generic).
pub const RESOURCE_WELL_KNOWN: [WellKnown; 8] = [
    known("Cluster", "cluster", false),
    known("Namespace", "namespace", false),
    known("Pod", "pod", false),
    known("Container", "container", false),
    known("K8sClusterName", "k8s.cluster.name", false),
    known("K8sNamespaceName", "k8s.namespace.name", false),
    known("K8sPodName", "k8s.pod.name", false),
    known("K8sContainerName", "k8s.container.name", false),
];

/// The well-known span columns (vParquet4 only).
pub const SPAN_WELL_KNOWN: [WellKnown; 3] = [
    known("HttpMethod", "http.method", false),
    known("HttpUrl", "http.url", false),
    known("HttpStatusCode", "http.status_code", true),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn d(scope: &str, name: &str, t: &str, options: &[&str]) -> DedicatedColumn {
        DedicatedColumn {
            scope: scope.into(),
            name: name.into(),
            value_type: t.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    fn names(spares: &[Spare]) -> Vec<(SpareScope, &str, &str)> {
        spares
            .iter()
            .map(|s| (s.scope, s.key.as_str(), s.column.as_str()))
            .collect()
    }

    #[test]
    fn spares_follow_meta_order_per_scope_and_type() {
        let dedicated = [
            d("span", "http.route", "string", &[]),
            d("span", "http.status_code", "int", &[]),
            d("resource", "deployment.environment", "string", &[]),
            d("event", "exception.type", "string", &[]),
            d("span", "db.statement", "string", &["blob"]),
        ];
        assert_eq!(
            names(&spares(TempoVersion::V5, &dedicated)),
            [
                (SpareScope::Span, "http.route", "String01"),
                (SpareScope::Span, "http.status_code", "Int01"),
                (SpareScope::Resource, "deployment.environment", "String01"),
                (SpareScope::Event, "exception.type", "String01"),
                (SpareScope::Span, "db.statement", "String02"),
            ]
        );
        // vParquet4 has no integer, event or optioned spares.
        assert_eq!(
            names(&spares(TempoVersion::V4, &dedicated)),
            [
                (SpareScope::Span, "http.route", "String01"),
                (SpareScope::Resource, "deployment.environment", "String01"),
            ]
        );
    }

    #[test]
    fn spares_run_out() {
        let many: Vec<DedicatedColumn> = (0..12)
            .map(|i| d("span", &format!("k{i}"), "string", &[]))
            .collect();
        let v4 = spares(TempoVersion::V4, &many);
        assert_eq!(v4.len(), 10);
        assert_eq!(v4[9].column, "String10");
        assert_eq!(spares(TempoVersion::V5, &many).len(), 12);
    }
}
