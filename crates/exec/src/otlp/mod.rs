//! Reading OTLP trace data: OTLP/JSON (one `ExportTraceServiceRequest` per file, or
//! JSON lines as the Collector's file exporter writes them) and OTLP/protobuf, either
//! optionally gzip or zstd compressed. Errors name the file and, for JSON, the line.

mod convert;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

pub use convert::{request_from_spans, spans_from_request};

use traceql_format::model::Span;

/// Bad input: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, for JSON input.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// The spans read from one file, and what had to be skipped.
#[derive(Debug, Default)]
pub struct FileSpans {
    /// Valid spans.
    pub spans: Vec<Span>,
    /// Invalid records that were skipped (only with `skip_invalid`).
    pub skipped: Vec<InputError>,
}

/// Reads one OTLP file. With `skip_invalid`, invalid records (JSON lines, spans with bad
/// ids, or a whole undecodable file) are skipped and reported instead of failing.
pub fn read_file(path: &Path, skip_invalid: bool) -> Result<FileSpans, InputError> {
    let err = |line, message: String| InputError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let raw = std::fs::read(path).map_err(|e| err(None, format!("cannot read: {e}")))?;
    let bytes = decompress(&raw).map_err(|m| err(None, m))?;
    let mut out = FileSpans::default();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        read_json(&bytes, path, skip_invalid, &mut out)?;
    } else {
        match ExportTraceServiceRequest::decode(bytes.as_slice()) {
            Ok(request) => collect(request, path, None, skip_invalid, &mut out)?,
            Err(e) if skip_invalid => out.skipped.push(err(None, protobuf_message(&e, &bytes))),
            Err(e) => return Err(err(None, protobuf_message(&e, &bytes))),
        }
    }
    Ok(out)
}

fn protobuf_message(e: &prost::DecodeError, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "empty file: not OTLP".to_string()
    } else {
        format!("not OTLP/JSON and not valid OTLP/protobuf: {e}")
    }
}

/// Undoes gzip or zstd compression, recognised by their magic numbers.
fn decompress(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|e| format!("corrupt gzip data: {e}"))?;
        Ok(out)
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(raw).map_err(|e| format!("corrupt zstd data: {e}"))
    } else {
        Ok(raw.to_vec())
    }
}

/// A stream of JSON requests: one pretty-printed document, or one per line.
fn read_json(
    bytes: &[u8],
    path: &Path,
    skip_invalid: bool,
    out: &mut FileSpans,
) -> Result<(), InputError> {
    let error = |line, e: &serde_json::Error| InputError {
        file: path.to_path_buf(),
        line: Some(line),
        message: format!("invalid OTLP/JSON: {}", strip_position(&e.to_string())),
    };
    if skip_invalid && is_json_lines(bytes) {
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ExportTraceServiceRequest>(line) {
                Ok(request) => collect(request, path, Some(i + 1), true, out)?,
                Err(e) => out.skipped.push(error(i + 1, &e)),
            }
        }
        return Ok(());
    }
    let mut requests = Vec::new();
    let mut stream =
        serde_json::Deserializer::from_slice(bytes).into_iter::<ExportTraceServiceRequest>();
    loop {
        let line = line_at(bytes, stream.byte_offset());
        match stream.next() {
            None => break,
            Some(Ok(request)) => requests.push((line, request)),
            Some(Err(e)) if skip_invalid => {
                out.skipped.push(error(e.line(), &e));
                return Ok(());
            }
            Some(Err(e)) => return Err(error(e.line(), &e)),
        }
    }
    for (line, request) in requests {
        collect(request, path, Some(line), skip_invalid, out)?;
    }
    Ok(())
}

/// True when the first non-blank line is a complete JSON value (JSON lines).
fn is_json_lines(bytes: &[u8]) -> bool {
    let first = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace));
    first.is_some_and(|l| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok())
}

fn line_at(bytes: &[u8], offset: usize) -> usize {
    let skipped = bytes[offset..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    bytes[..offset + skipped]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn collect(
    request: ExportTraceServiceRequest,
    path: &Path,
    line: Option<usize>,
    skip_invalid: bool,
    out: &mut FileSpans,
) -> Result<(), InputError> {
    for result in spans_from_request(request) {
        match result {
            Ok(span) => out.spans.push(span),
            Err(message) => {
                let error = InputError {
                    file: path.to_path_buf(),
                    line,
                    message,
                };
                if !skip_invalid {
                    return Err(error);
                }
                out.skipped.push(error);
            }
        }
    }
    Ok(())
}

/// Finds OTLP files under `paths`: files as given, directories recursively, in a stable
/// order. Hidden files are skipped. A path that cannot be read is an error naming it.
pub fn find_input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files)?;
        } else {
            std::fs::metadata(path).map_err(|e| unreadable(path, &e))?;
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn unreadable(path: &Path, e: &std::io::Error) -> InputError {
    InputError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read: {e}"),
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>());
    let mut entries = entries.map_err(|e| unreadable(dir, &e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
