//! What a Tempo block holds that its `meta.json` does not say: the keys of its generic
//! attribute lists and its service names, read from the dictionary pages of the `Key`
//! and `ServiceName` columns. With them the planner knows that `service.name` (say) is
//! never in a block's resource attribute lists, and reads its typed column alone; and a
//! search for a service the block lacks skips the block.
//!
//! A dictionary is complete only if every data page of its column chunk is
//! dictionary-encoded (a writer may fall back to plain pages when a dictionary grows),
//! and Tempo's footers carry no page-encoding statistics, so every page header of a
//! chunk is checked. A chunk without a dictionary, or with a plain page, leaves the
//! facts unknown.

use std::collections::HashSet;

use bytes::Bytes;
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;
use traceql_parser::ast::AttributeScope;

use crate::error::{FormatError, Result};
use crate::facts::Facts;
use crate::tempo::TempoVersion;
use crate::tempo::columns::{RESOURCE_WELL_KNOWN, SPAN_WELL_KNOWN, SpareScope, spares};
use crate::tempo::meta::DedicatedColumn;
use crate::tempo::read::field_path;

/// The span-table column whose values the service names are.
pub const SERVICE_NAME_COLUMN: &str = "resource.service.name";

/// What one column chunk read for facts holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// The keys of the generic attribute lists of a scope.
    Keys(AttributeScope),
    /// Resource service names.
    ServiceNames,
}

/// A column chunk to read: its row group, its column and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Row group index.
    pub row_group: usize,
    /// Column index in the row group.
    pub column: usize,
    /// What its dictionary holds.
    pub holds: Holds,
}

/// What a leaf column at `path` (its field names) holds, if facts read it.
fn holds(path: &[&str]) -> Option<Holds> {
    Some(match path {
        ["rs", "Resource", "ServiceName"] => Holds::ServiceNames,
        ["rs", "Resource", "Attrs", "Key"] => Holds::Keys(AttributeScope::Resource),
        ["rs", "ss", "Scope", "Attrs", "Key"] => Holds::Keys(AttributeScope::Instrumentation),
        ["rs", "ss", "Spans", "Attrs", "Key"] => Holds::Keys(AttributeScope::Span),
        ["rs", "ss", "Spans", "Events", "Attrs", "Key"] => Holds::Keys(AttributeScope::Event),
        ["rs", "ss", "Spans", "Links", "Attrs", "Key"] => Holds::Keys(AttributeScope::Link),
        _ => return None,
    })
}

/// The column chunks of a block with `metadata` to read for its facts, and their total
/// size in bytes; `None` if some level's keys are not in the file (a schema this
/// reader does not know).
pub fn chunks(metadata: &ParquetMetaData) -> Option<(Vec<Chunk>, u64)> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (row_group, rg) in metadata.row_groups().iter().enumerate() {
        let found = out.len();
        for (column, c) in rg.columns().iter().enumerate() {
            let parts = c.column_path().parts();
            if let Some(holds) = holds(&field_path(parts)) {
                out.push(Chunk {
                    row_group,
                    column,
                    holds,
                });
                bytes += c.byte_range().1;
            }
        }
        if out.len() - found != 6 {
            return None;
        }
    }
    Some((out, bytes))
}

/// The values of the dictionary of column chunk `meta`, whose bytes (from the start of
/// the chunk, [`ColumnChunkMetaData::byte_range`]) are `bytes`; `None` if the chunk has
/// no dictionary or a page that is not dictionary-encoded, so the dictionary may not
/// hold every value.
pub fn dictionary(meta: &ColumnChunkMetaData, bytes: Bytes) -> Result<Option<Vec<String>>> {
    let corrupt = |e: parquet::errors::ParquetError| {
        FormatError::corrupt(format!("column {}: {e}", meta.column_path()))
    };
    if meta.dictionary_page_offset().is_none() {
        return Ok(None);
    }
    let start = meta.byte_range().0;
    let chunk = std::sync::Arc::new(Chunked { start, bytes });
    let rows = usize::try_from(meta.num_values()).unwrap_or(usize::MAX);
    let mut pages = SerializedPageReader::new(chunk, meta, rows, None).map_err(corrupt)?;
    let mut values = None;
    while let Some(page) = pages.get_next_page().map_err(corrupt)? {
        match page {
            Page::DictionaryPage { buf, .. } => values = Some(plain_strings(&buf)?),
            Page::DataPage { encoding, .. } | Page::DataPageV2 { encoding, .. } => {
                if !matches!(
                    encoding,
                    Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY
                ) {
                    return Ok(None);
                }
            }
        }
    }
    Ok(values)
}

/// The byte arrays of a PLAIN-encoded page (each a 4-byte little-endian length and its
/// bytes) as strings.
fn plain_strings(buf: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| FormatError::corrupt("a truncated dictionary page"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(FormatError::corrupt("a truncated dictionary page"));
        }
        out.push(String::from_utf8_lossy(&tail[..len]).into_owned());
        rest = &tail[len..];
    }
    Ok(out)
}

/// A column chunk's bytes, addressed by file offsets.
struct Chunked {
    start: u64,
    bytes: Bytes,
}

impl Length for Chunked {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Chunked {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let rest = self.len().saturating_sub(start) as usize;
        Ok(self.get_bytes(start, rest)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|f| f as usize)
            .filter(|&f| f.saturating_add(length) <= self.bytes.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::EOF(format!(
                    "bytes {start}..+{length} lie outside the column chunk read"
                ))
            })?;
        Ok(self.bytes.slice(from..from + length))
    }
}

/// The facts of a block of `version` with `dedicated` columns and the facts its
/// `meta.json` gives (`base`), given the dictionaries read of its `chunks` (in order;
/// `None` for a chunk whose dictionary is incomplete). `None` if a dictionary is
/// incomplete: nothing is known then beyond `base`.
pub fn facts(
    version: TempoVersion,
    dedicated: &[DedicatedColumn],
    base: Facts,
    chunks: &[Chunk],
    dictionaries: Vec<Option<Vec<String>>>,
) -> Option<Facts> {
    let mut keys: HashSet<(AttributeScope, String)> = HashSet::new();
    let mut services: HashSet<String> = HashSet::new();
    for (chunk, values) in chunks.iter().zip(dictionaries) {
        let values = values?;
        match chunk.holds {
            Holds::Keys(scope) => keys.extend(values.into_iter().map(|k| (scope, k))),
            Holds::ServiceNames => services.extend(values.into_iter().filter(|s| !s.is_empty())),
        }
    }
    // Values of Tempo's own columns that do not fit the span table's typed columns end
    // in the fallback lists: vParquet4's well-known columns have no typed column, and a
    // vParquet5 spare holding several values is an array.
    if version == TempoVersion::V4 {
        keys.extend(
            RESOURCE_WELL_KNOWN
                .iter()
                .map(|w| (AttributeScope::Resource, w.key.to_string())),
        );
        keys.extend(
            SPAN_WELL_KNOWN
                .iter()
                .map(|w| (AttributeScope::Span, w.key.to_string())),
        );
    } else {
        keys.extend(spares(version, dedicated).into_iter().map(|s| {
            let scope = match s.scope {
                SpareScope::Resource => AttributeScope::Resource,
                SpareScope::Span => AttributeScope::Span,
                SpareScope::Event => AttributeScope::Event,
            };
            (scope, s.key)
        }));
    }
    let mut facts = base;
    facts.fallback = Some(keys);
    facts
        .dictionaries
        .insert(SERVICE_NAME_COLUMN.to_string(), services);
    Some(facts)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// The dictionary of the one column of a file of `values` written with `props`.
    fn written(values: &[String], props: WriterProperties) -> Option<Vec<String>> {
        let batch = RecordBatch::try_from_iter([(
            "Key",
            Arc::new(StringArray::from_iter_values(values)) as _,
        )])
        .unwrap();
        let mut file = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let file = Bytes::from(file);
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&file)
            .unwrap();
        let column = metadata.row_group(0).column(0);
        let (start, len) = column.byte_range();
        dictionary(column, file.slice(start as usize..(start + len) as usize)).unwrap()
    }

    #[test]
    fn a_dictionary_counts_only_if_every_page_uses_it() {
        let values: Vec<String> = (0..2_000).map(|i| format!("key.{}", i % 50)).collect();
        let small = |props: parquet::file::properties::WriterPropertiesBuilder| {
            props
                .set_data_page_row_count_limit(100)
                .set_write_batch_size(100)
        };
        let mut found = written(&values, small(WriterProperties::builder()).build()).unwrap();
        found.sort();
        let mut want: Vec<String> = values[..50].to_vec();
        want.sort();
        assert_eq!(found, want);
        // A dictionary that outgrows its limit falls back to plain pages: incomplete.
        let many: Vec<String> = (0..2_000).map(|i| format!("key.{i}")).collect();
        let capped = small(WriterProperties::builder())
            .set_dictionary_page_size_limit(256)
            .build();
        assert_eq!(written(&many, capped), None);
        // No dictionary at all.
        let plain = small(WriterProperties::builder())
            .set_dictionary_enabled(false)
            .build();
        assert_eq!(written(&values, plain), None);
    }

    #[test]
    fn plain_pages_are_read_and_truncated_ones_refused() {
        let mut page = Vec::new();
        for s in ["a", "", "service.name"] {
            page.extend_from_slice(&(s.len() as u32).to_le_bytes());
            page.extend_from_slice(s.as_bytes());
        }
        assert_eq!(plain_strings(&page).unwrap(), ["a", "", "service.name"]);
        assert!(plain_strings(&page[..page.len() - 1]).is_err());
        assert!(plain_strings(&page[..2]).is_err());
    }

    #[test]
    fn an_incomplete_dictionary_leaves_the_facts_unknown() {
        let chunk = Chunk {
            row_group: 0,
            column: 0,
            holds: Holds::Keys(AttributeScope::Span),
        };
        assert!(
            facts(
                TempoVersion::V5,
                &[],
                Facts::default(),
                &[chunk],
                vec![None]
            )
            .is_none()
        );
        let known = facts(
            TempoVersion::V4,
            &[],
            Facts::default(),
            &[chunk],
            vec![Some(vec!["http.route".into()])],
        )
        .unwrap();
        let keys = known.fallback.unwrap();
        assert!(keys.contains(&(AttributeScope::Span, "http.route".into())));
        // vParquet4's well-known columns have no typed column.
        assert!(keys.contains(&(AttributeScope::Span, "http.method".into())));
        assert!(!keys.contains(&(AttributeScope::Resource, "service.name".into())));
    }
}
