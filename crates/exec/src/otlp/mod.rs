//! Reading OTLP trace data: OTLP/JSON (one `ExportTraceServiceRequest` per file, or
//! JSON lines as the Collector's file exporter writes them) and OTLP/protobuf, either
//! optionally gzip or zstd compressed. Errors name the file and, for JSON, the line.

mod convert;
mod json;
mod wire;

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::value::RawValue;

pub use convert::{
    any_value, arena_from_request, request_from_spans, spans_from_request, spans_of,
};
pub use json::decode_json_request;
pub use wire::decode_request;

use traceql_format::arena::{Mark, SpanArena};
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

/// Reads one OTLP file whole. With `skip_invalid`, invalid records (JSON lines, spans
/// with bad ids, or a whole undecodable file) are skipped and reported instead of
/// failing. [`read_file_streaming`] does the same a request at a time.
pub fn read_file(path: &Path, skip_invalid: bool) -> Result<FileSpans, InputError> {
    let mut spans = Vec::new();
    let skipped = read_file_streaming(path, skip_invalid, &mut |request| {
        spans.extend(spans_of(&request));
        true
    })?;
    Ok(FileSpans { spans, skipped })
}

/// Reads one OTLP file and hands its spans to `sink` one request at a time, without
/// holding the file: JSON lines are read a line at a time through the decompressor.
/// A single JSON document or a protobuf message is one request, read whole. Each
/// request's valid spans come in an arena of their own; protobuf is decoded straight
/// into it. `sink` returns `false` to stop reading. Returns the records skipped (with
/// `skip_invalid`).
pub fn read_file_streaming(
    path: &Path,
    skip_invalid: bool,
    sink: &mut dyn FnMut(SpanArena) -> bool,
) -> Result<Vec<InputError>, InputError> {
    let err = |line, message: String| InputError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(None, format!("cannot read: {e}")))?;
    let mut input = decompressed(file).map_err(|m| err(None, m))?;
    let mut reader = Reader {
        path,
        skip_invalid,
        skipped: Vec::new(),
        sink,
        stopped: false,
        last: Mark::default(),
    };
    // A zero byte first is the length of a framed message (the Collector's file
    // exporter with `format: proto` or compression: a 4-byte big-endian length before
    // each message, which it may also compress).
    let peek = input.fill_buf().map_err(|e| err(None, read_message(&e)))?;
    if peek.first() == Some(&0) {
        reader.framed(&mut input)?;
        return Ok(reader.skipped);
    }
    // Otherwise the first line that is not blank tells the kind: a whole JSON value on
    // a line of its own is JSON lines; JSON that continues is one document; anything
    // else is one protobuf message.
    let mut head = Vec::new();
    let mut line = 0;
    loop {
        head.clear();
        let read = input
            .read_until(b'\n', &mut head)
            .map_err(|e| err(Some(line + 1), read_message(&e)))?;
        line += 1;
        if read == 0 || !head.iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    let whole_line = serde_json::from_slice::<serde::de::IgnoredAny>(&head).is_ok();
    if first == Some(&b'{') && whole_line {
        reader.json_line(&head, line)?;
        let mut buf = Vec::new();
        while !reader.stopped {
            buf.clear();
            let read = input
                .read_until(b'\n', &mut buf)
                .map_err(|e| err(Some(line + 1), read_message(&e)))?;
            if read == 0 {
                break;
            }
            line += 1;
            if !buf.iter().all(u8::is_ascii_whitespace) {
                reader.json_line(&buf, line)?;
            }
        }
        return Ok(reader.skipped);
    }
    // One request (or a few pretty-printed ones): read whole. The lines before `head`
    // were blank.
    let mut bytes = vec![b'\n'; line.saturating_sub(1)];
    bytes.extend_from_slice(&head);
    input
        .read_to_end(&mut bytes)
        .map_err(|e| err(None, read_message(&e)))?;
    if first == Some(&b'{') {
        reader.json_document(&bytes)?;
    } else {
        if let Err(message) = reader.protobuf(&bytes, None)? {
            reader.skip_or_fail(err(None, protobuf_message(&message, &bytes)))?;
        }
    }
    Ok(reader.skipped)
}

fn protobuf_message(e: &str, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "empty file: not OTLP".to_string()
    } else {
        format!("not OTLP/JSON and not valid OTLP/protobuf: {e}")
    }
}

/// A failure reading the (decompressed) input, as the error says it.
fn read_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            format!("corrupt compressed data: {e}")
        }
        _ => format!("cannot read: {e}"),
    }
}

/// Writes `request` as one framed message, as the Collector's file exporter writes
/// `format: proto` and [`read_file_streaming`] reads it back: its length (4 bytes,
/// big-endian), then its protobuf encoding.
pub fn write_framed(
    out: &mut impl std::io::Write,
    request: &ExportTraceServiceRequest,
) -> std::io::Result<()> {
    let bytes = request.encode_to_vec();
    let length = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a request of 4 GiB or more cannot be framed"))?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(&bytes)
}

/// The first bytes of gzip data.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The message of an OTLP/JSON decoding error (its position is given separately).
fn json_message(e: &serde_json::Error) -> String {
    format!("invalid OTLP/JSON: {}", strip_position(&e.to_string()))
}

/// `file`, through gzip or zstd decompression where its magic number says so.
fn decompressed(file: std::fs::File) -> Result<Box<dyn BufRead>, String> {
    const BUFFER: usize = 1 << 20;
    let mut raw = BufReader::with_capacity(BUFFER, file);
    let magic = raw.fill_buf().map_err(|e| format!("cannot read: {e}"))?;
    if magic.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(raw),
        )))
    } else if magic.starts_with(&ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::with_buffer(raw)
            .map_err(|e| format!("corrupt zstd data: {e}"))?;
        Ok(Box::new(BufReader::with_capacity(BUFFER, decoder)))
    } else {
        Ok(Box::new(raw))
    }
}

/// Turns the requests of one file into spans for a sink.
struct Reader<'a> {
    path: &'a Path,
    skip_invalid: bool,
    skipped: Vec<InputError>,
    sink: &'a mut dyn FnMut(SpanArena) -> bool,
    /// The sink asked to stop.
    stopped: bool,
    /// How full the last request's arena was: the next is made as large.
    last: Mark,
}

impl Reader<'_> {
    fn error(&self, line: Option<usize>, message: String) -> InputError {
        InputError {
            file: self.path.to_path_buf(),
            line,
            message,
        }
    }

    fn json_error(&self, line: usize, e: &serde_json::Error) -> InputError {
        self.error(Some(line), json_message(e))
    }

    /// Line `line` of a JSON-lines file.
    fn json_line(&mut self, bytes: &[u8], line: usize) -> Result<(), InputError> {
        match self.json(bytes) {
            Some(Ok((arena, invalid))) => self.hand_on(arena, invalid, Some(line)),
            Some(Err(e)) => self.skip_or_fail(self.json_error(line, &e)),
            None => Ok(()),
        }
    }

    /// One OTLP/JSON request decoded into an arena of its own, with the messages of its
    /// invalid spans; `None` once the sink has asked to stop.
    fn json(&self, bytes: &[u8]) -> Option<Decoded> {
        if self.stopped {
            return None;
        }
        let mut arena = SpanArena::with_capacity(self.last);
        let mut invalid = Vec::new();
        Some(
            decode_json_request(bytes, &mut arena, &mut |m| invalid.push(m))
                .map(|()| (arena, invalid)),
        )
    }

    /// A file of one JSON document, or several one after another. All are checked
    /// before any is handed on, so a bad one fails the file (or, with `skip_invalid`,
    /// skips the rest of it).
    fn json_document(&mut self, bytes: &[u8]) -> Result<(), InputError> {
        let mut requests = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>();
        let mut lines = LineCounter::default();
        loop {
            let line = lines.line_at(bytes, stream.byte_offset());
            // Each document is found whole first, then decoded: an error in it is
            // placed from the line it starts on.
            let decoded = match stream.next() {
                None => break,
                Some(Ok(raw)) => match self.json(raw.get().as_bytes()) {
                    Some(Ok(request)) => Ok(request),
                    Some(Err(e)) => Err((line + e.line().saturating_sub(1), e)),
                    None => break,
                },
                Some(Err(e)) => Err((e.line(), e)),
            };
            match decoded {
                Ok(request) => {
                    self.last = request.0.mark();
                    requests.push((line, request));
                }
                Err((line, e)) if self.skip_invalid => {
                    self.skipped.push(self.json_error(line, &e));
                    break;
                }
                Err((line, e)) => return Err(self.json_error(line, &e)),
            }
        }
        for (line, (arena, invalid)) in requests {
            self.hand_on(arena, invalid, Some(line))?;
        }
        Ok(())
    }

    /// A stream of framed messages: each a 4-byte big-endian length, then that many
    /// bytes of OTLP/protobuf or OTLP/JSON, each possibly zstd-compressed. Errors name
    /// the message by its number.
    fn framed(&mut self, input: &mut dyn BufRead) -> Result<(), InputError> {
        let mut length = [0u8; 4];
        let mut frame = Vec::new();
        let mut number = 0;
        while !self.stopped {
            number += 1;
            let at = |message: String| format!("message {number}: {message}");
            // A clean end lies between messages.
            match input.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(self.error(None, at(read_message(&e)))),
            }
            input.read_exact(&mut length).map_err(|e| {
                let message = match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => "cut short in its length".into(),
                    _ => read_message(&e),
                };
                self.error(None, at(message))
            })?;
            let n = u32::from_be_bytes(length) as usize;
            frame.clear();
            let read = input
                .take(n as u64)
                .read_to_end(&mut frame)
                .map_err(|e| self.error(None, at(read_message(&e))))?;
            if read < n {
                return Err(self.error(None, at(format!("cut short: {read} of its {n} bytes"))));
            }
            let bytes = if frame.starts_with(&ZSTD_MAGIC) {
                match zstd::stream::decode_all(frame.as_slice()) {
                    Ok(bytes) => std::borrow::Cow::Owned(bytes),
                    Err(e) => {
                        let error = self.error(None, at(format!("corrupt zstd data: {e}")));
                        self.skip_or_fail(error)?;
                        continue;
                    }
                }
            } else {
                std::borrow::Cow::Borrowed(frame.as_slice())
            };
            let decoded = if bytes.first() == Some(&b'{') {
                match self.json(&bytes) {
                    Some(Ok((arena, invalid))) => self.hand_on(arena, invalid, None).map(Ok),
                    Some(Err(e)) => Ok(Err(json_message(&e))),
                    None => Ok(Ok(())),
                }
            } else {
                self.protobuf(&bytes, None)
                    .map(|r| r.map_err(|e| format!("invalid OTLP/protobuf: {e}")))
            };
            if let Err(message) = decoded? {
                let error = self.error(None, at(message));
                self.skip_or_fail(error)?;
            }
        }
        Ok(())
    }

    /// Skips `error` (with `skip_invalid`) or fails with it.
    fn skip_or_fail(&mut self, error: InputError) -> Result<(), InputError> {
        if self.skip_invalid {
            self.skipped.push(error);
            Ok(())
        } else {
            Err(error)
        }
    }

    /// The spans of one OTLP/protobuf request, decoded straight into the arena, to the
    /// sink; `Ok(Err)` when the bytes are not such a request.
    fn protobuf(
        &mut self,
        bytes: &[u8],
        line: Option<usize>,
    ) -> Result<Result<(), String>, InputError> {
        if self.stopped {
            return Ok(Ok(()));
        }
        let mut arena = SpanArena::with_capacity(self.last);
        let mut invalid = Vec::new();
        if let Err(message) = decode_request(bytes, &mut arena, &mut |m| invalid.push(m)) {
            return Ok(Err(message));
        }
        self.hand_on(arena, invalid, line)?;
        Ok(Ok(()))
    }

    /// Skips or fails on the invalid spans of a request, then hands its valid ones on.
    fn hand_on(
        &mut self,
        arena: SpanArena,
        invalid: Vec<String>,
        line: Option<usize>,
    ) -> Result<(), InputError> {
        for message in invalid {
            self.skip_or_fail(self.error(line, message))?;
        }
        self.last = arena.mark();
        if !arena.spans.is_empty() && !(self.sink)(arena) {
            self.stopped = true;
        }
        Ok(())
    }
}

/// An OTLP/JSON request decoded: its arena and the messages of its invalid spans.
type Decoded = Result<(SpanArena, Vec<String>), serde_json::Error>;

/// The line of a byte offset, counted on from the last offset asked about, so that
/// asking about every request of a file reads it once.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: usize,
}

impl LineCounter {
    /// The 1-based line of the first non-blank byte at or after `offset` (offsets
    /// asked about never decrease).
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> usize {
        let skipped = bytes[offset..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let to = offset + skipped;
        self.line += bytes[self.offset..to]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.offset = to;
        self.line + 1
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
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
