//! Tempo's `index` file: the last (largest) trace id of each row group of a block,
//! whose rows ascend by trace id, so a trace lookup reads one row group.

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{FormatError, Result};
use crate::ids::TraceId;

/// The file as Tempo writes it: `{"rowGroups": [base64 id, …]}`.
#[derive(Deserialize)]
struct IndexFile {
    #[serde(rename = "rowGroups")]
    row_groups: Vec<String>,
}

/// The last trace id of each row group, in row-group order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowGroupIndex {
    last: Vec<TraceId>,
}

impl RowGroupIndex {
    /// Parses an `index` file.
    pub fn parse(bytes: &[u8]) -> Result<RowGroupIndex> {
        let corrupt = |e: &dyn std::fmt::Display| FormatError::corrupt(format!("index: {e}"));
        let file: IndexFile = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
        let last = file
            .row_groups
            .iter()
            .map(|id| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(id)
                    .map_err(|e| corrupt(&e))?;
                TraceId::try_from(bytes.as_slice())
                    .map_err(|_| corrupt(&format!("a trace id of {} bytes", bytes.len())))
            })
            .collect::<Result<Vec<_>>>()?;
        if !last.is_sorted() {
            return Err(corrupt(&"row groups out of trace-id order"));
        }
        Ok(RowGroupIndex { last })
    }

    /// How many row groups it describes.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether it describes no row group.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// The row group that holds trace `id` if the block does: the first whose last id
    /// is not below it; `None` when `id` is beyond every row group.
    pub fn row_group(&self, id: &TraceId) -> Option<usize> {
        let i = self.last.partition_point(|last| last < id);
        (i < self.last.len()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(id: TraceId) -> String {
        base64::engine::general_purpose::STANDARD.encode(id)
    }

    #[test]
    fn a_trace_lies_in_the_first_row_group_whose_last_id_reaches_it() {
        let json = format!(
            r#"{{"rowGroups":["{}","{}","{}"]}}"#,
            encode([0x10; 16]),
            encode([0x20; 16]),
            encode([0x30; 16])
        );
        let index = RowGroupIndex::parse(json.as_bytes()).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.row_group(&[0x01; 16]), Some(0));
        assert_eq!(index.row_group(&[0x10; 16]), Some(0));
        assert_eq!(index.row_group(&[0x11; 16]), Some(1));
        assert_eq!(index.row_group(&[0x30; 16]), Some(2));
        assert_eq!(index.row_group(&[0x31; 16]), None);
    }

    #[test]
    fn a_damaged_index_is_refused() {
        for bad in [
            &b"{}"[..],
            br#"{"rowGroups":["not base64!"]}"#,
            br#"{"rowGroups":["AAEC"]}"#,
        ] {
            assert!(RowGroupIndex::parse(bad).is_err());
        }
        let unsorted = format!(
            r#"{{"rowGroups":["{}","{}"]}}"#,
            encode([0x20; 16]),
            encode([0x10; 16])
        );
        assert!(RowGroupIndex::parse(unsorted.as_bytes()).is_err());
    }
}
