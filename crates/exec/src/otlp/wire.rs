//! OTLP/protobuf straight into a [`SpanArena`]: an `ExportTraceServiceRequest` is read
//! field by field from its bytes, each string copied once into the arena, with no
//! message structs and no span model in between. It decodes what `prost` decodes
//! (unknown fields skipped, repeated messages merged, the last of a repeated scalar
//! kept) and rejects what it rejects; values TraceQL cannot query are handed to
//! `prost` and kept as the same OTLP/JSON text as on the other paths.

use opentelemetry_proto::tonic::common::v1::{AnyValue, EntityRef};
use prost::Message;

use super::convert::{Unchecked, opaque_value, push_checked};
use traceql_format::arena::{
    ArenaAttribute, ArenaEvent, ArenaLink, ArenaResource, ArenaScope, ArenaSpan, ArenaValue, Slot,
    SpanArena,
};

/// Decodes the OTLP/protobuf `ExportTraceServiceRequest` `bytes` into `arena`. A span
/// that is not valid OTLP (bad ids, kind or status) is left out and `invalid` told why,
/// with its place (`resourceSpans[0].scopeSpans[1].spans[2]: …`). Bytes that are not
/// such a message are an error, and leave `arena` as it was.
pub fn decode_request(
    bytes: &[u8],
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) -> Result<(), String> {
    let mark = arena.mark();
    let result = request(bytes, arena, invalid);
    if result.is_err() {
        arena.truncate(mark);
    }
    result
}

fn request(
    bytes: &[u8],
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) -> Result<(), String> {
    let mut r = 0;
    for field in Fields::new(bytes) {
        if let (1, value) = field? {
            resource_spans(value.bytes("ResourceSpans")?, r, arena, invalid)?;
            r += 1;
        }
    }
    Ok(())
}

fn resource_spans(
    bytes: &[u8],
    r: usize,
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) -> Result<(), String> {
    let mut resource = ArenaResource::default();
    let from = arena.attributes.len();
    // The resource and schema first: the schema's field follows the spans.
    for field in Fields::new(bytes) {
        match field? {
            (1, value) => {
                for field in Fields::new(value.bytes("Resource")?) {
                    match field? {
                        (1, value) => key_value(value.bytes("KeyValue")?, arena)?,
                        (2, value) => resource.dropped_attributes_count = value.uint32()?,
                        // Not kept, but checked as prost checks it.
                        (3, value) => {
                            EntityRef::decode(value.bytes("EntityRef")?)
                                .map_err(|e| e.to_string())?;
                        }
                        _ => {}
                    }
                }
            }
            (3, value) => resource.schema_url = string(value, arena)?,
            _ => {}
        }
    }
    resource.attributes = Slot {
        start: from,
        end: arena.attributes.len(),
    };
    arena.resources.push(resource);
    let resource = arena.resources.len() - 1;
    let mut s = 0;
    for field in Fields::new(bytes) {
        if let (2, value) = field? {
            scope_spans(value.bytes("ScopeSpans")?, (r, s), resource, arena, invalid)?;
            s += 1;
        }
    }
    Ok(())
}

fn scope_spans(
    bytes: &[u8],
    (r, s): (usize, usize),
    resource: usize,
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) -> Result<(), String> {
    let mut scope = ArenaScope::default();
    let from = arena.attributes.len();
    for field in Fields::new(bytes) {
        match field? {
            (1, value) => {
                for field in Fields::new(value.bytes("InstrumentationScope")?) {
                    match field? {
                        (1, value) => scope.name = string(value, arena)?,
                        (2, value) => scope.version = string(value, arena)?,
                        (3, value) => key_value(value.bytes("KeyValue")?, arena)?,
                        (4, value) => scope.dropped_attributes_count = value.uint32()?,
                        _ => {}
                    }
                }
            }
            (3, value) => scope.schema_url = string(value, arena)?,
            _ => {}
        }
    }
    scope.attributes = Slot {
        start: from,
        end: arena.attributes.len(),
    };
    arena.scopes.push(scope);
    let scope = arena.scopes.len() - 1;
    let mut i = 0;
    for field in Fields::new(bytes) {
        if let (2, value) = field? {
            let mark = arena.mark();
            if let Err(message) = span(value.bytes("Span")?, resource, scope, arena)? {
                arena.truncate(mark);
                invalid(format!(
                    "resourceSpans[{r}].scopeSpans[{s}].spans[{i}]: {message}"
                ));
            }
            i += 1;
        }
    }
    Ok(())
}

/// One span into `arena`: `Err` for bytes that are not a span, `Ok(Err)` for a span
/// that is not valid OTLP (the caller takes it back out).
fn span(
    bytes: &[u8],
    resource: usize,
    scope: usize,
    arena: &mut SpanArena,
) -> Result<Result<(), String>, String> {
    let mut span = ArenaSpan {
        resource,
        scope,
        ..Default::default()
    };
    let (mut trace_id, mut span_id, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let (mut kind, mut status_code) = (0i32, 0i32);
    let from = arena.attributes.len();
    for field in Fields::new(bytes) {
        match field? {
            (1, value) => trace_id = value.bytes("trace id")?,
            (2, value) => span_id = value.bytes("span id")?,
            (3, value) => span.trace_state = string(value, arena)?,
            (4, value) => parent = value.bytes("parent span id")?,
            (5, value) => span.name = string(value, arena)?,
            (6, value) => kind = value.int32()?,
            (7, value) => span.start_unix_nano = value.fixed64()?,
            (8, value) => span.end_unix_nano = value.fixed64()?,
            (9, value) => key_value(value.bytes("KeyValue")?, arena)?,
            (10, value) => span.dropped_attributes_count = value.uint32()?,
            (12, value) => span.dropped_events_count = value.uint32()?,
            (14, value) => span.dropped_links_count = value.uint32()?,
            (15, value) => {
                for field in Fields::new(value.bytes("Status")?) {
                    match field? {
                        (2, value) => span.status_message = string(value, arena)?,
                        (3, value) => status_code = value.int32()?,
                        _ => {}
                    }
                }
            }
            (16, value) => span.flags = value.fixed32()?,
            _ => {}
        }
    }
    span.attributes = Slot {
        start: from,
        end: arena.attributes.len(),
    };
    // Events and links after the span's own attributes, each list in one run.
    let from = arena.events.len();
    for field in Fields::new(bytes) {
        if let (11, value) = field? {
            let event = event(value.bytes("Event")?, arena)?;
            arena.events.push(event);
        }
    }
    span.events = Slot {
        start: from,
        end: arena.events.len(),
    };
    let mut links = Vec::new();
    for field in Fields::new(bytes) {
        if let (13, value) = field? {
            links.push(link(value.bytes("Link")?, arena)?);
        }
    }
    Ok(push_checked(
        span,
        Unchecked {
            trace_id,
            span_id,
            parent,
            kind,
            status_code,
            links,
        },
        arena,
    ))
}

fn event(bytes: &[u8], arena: &mut SpanArena) -> Result<ArenaEvent, String> {
    let mut event = ArenaEvent::default();
    let from = arena.attributes.len();
    for field in Fields::new(bytes) {
        match field? {
            (1, value) => event.time_unix_nano = value.fixed64()?,
            (2, value) => event.name = string(value, arena)?,
            (3, value) => key_value(value.bytes("KeyValue")?, arena)?,
            (4, value) => event.dropped_attributes_count = value.uint32()?,
            _ => {}
        }
    }
    event.attributes = Slot {
        start: from,
        end: arena.attributes.len(),
    };
    Ok(event)
}

/// A link, and its trace and span ids still to check.
fn link<'a>(
    bytes: &'a [u8],
    arena: &mut SpanArena,
) -> Result<(ArenaLink, &'a [u8], &'a [u8]), String> {
    let mut link = ArenaLink::default();
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let from = arena.attributes.len();
    for field in Fields::new(bytes) {
        match field? {
            (1, value) => trace_id = value.bytes("link trace id")?,
            (2, value) => span_id = value.bytes("link span id")?,
            (3, value) => link.trace_state = string(value, arena)?,
            (4, value) => key_value(value.bytes("KeyValue")?, arena)?,
            (5, value) => link.dropped_attributes_count = value.uint32()?,
            (6, value) => link.flags = value.fixed32()?,
            _ => {}
        }
    }
    link.attributes = Slot {
        start: from,
        end: arena.attributes.len(),
    };
    Ok((link, trace_id, span_id))
}

/// A `KeyValue` appended to the arena's attributes.
fn key_value(bytes: &[u8], arena: &mut SpanArena) -> Result<(), String> {
    let (mut key, mut value): (&str, Option<&[u8]>) = ("", None);
    for field in Fields::new(bytes) {
        match field? {
            (1, v) => key = utf8(v.bytes("key")?)?,
            (3, v) => {
                v.varint("key index")?;
            }
            // Repeated, a message field merges; rare enough to hand to prost.
            (2, _) if value.is_some() => return merged_key_value(bytes, arena),
            (2, v) => value = Some(v.bytes("AnyValue")?),
            _ => {}
        }
    }
    let key = arena.push_str(key);
    let value = match value {
        Some(bytes) => any_value(bytes, arena)?,
        None => ArenaValue::Opaque(arena.push_str(&opaque_value(None))),
    };
    arena.attributes.push(ArenaAttribute { key, value });
    Ok(())
}

/// A `KeyValue` whose value field repeats, decoded by prost (which merges them).
fn merged_key_value(bytes: &[u8], arena: &mut SpanArena) -> Result<(), String> {
    let kv = opentelemetry_proto::tonic::common::v1::KeyValue::decode(bytes)
        .map_err(|e| e.to_string())?;
    let key = arena.push_str(&kv.key);
    let value = match &kv.value {
        Some(any) => prost_value(any, arena),
        None => ArenaValue::Opaque(arena.push_str(&opaque_value(None))),
    };
    arena.attributes.push(ArenaAttribute { key, value });
    Ok(())
}

/// An `AnyValue` message's value in the arena.
fn any_value(bytes: &[u8], arena: &mut SpanArena) -> Result<ArenaValue, String> {
    match scalar(bytes)? {
        Some(Scalar::Str(s)) => Ok(ArenaValue::Str(arena.push_str(s))),
        Some(Scalar::Int(v)) => Ok(ArenaValue::Int(v)),
        Some(Scalar::Float(v)) => Ok(ArenaValue::Float(v)),
        Some(Scalar::Bool(v)) => Ok(ArenaValue::Bool(v)),
        Some(Scalar::Array(items)) => match typed_array(items, arena)? {
            Some(value) => Ok(value),
            None => opaque(bytes, arena),
        },
        None => opaque(bytes, arena),
    }
}

/// A value TraceQL cannot query: decoded by prost and kept as its OTLP/JSON text.
fn opaque(bytes: &[u8], arena: &mut SpanArena) -> Result<ArenaValue, String> {
    let any = AnyValue::decode(bytes).map_err(|e| e.to_string())?;
    Ok(prost_value(&any, arena))
}

/// The arena value of a decoded `AnyValue`.
pub(super) fn prost_value(any: &AnyValue, arena: &mut SpanArena) -> ArenaValue {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let strs = |arena: &mut SpanArena, items: Vec<&str>| {
        let texts: Vec<Slot> = items.into_iter().map(|s| arena.push_str(s)).collect();
        Slot::append(&mut arena.texts, texts)
    };
    match &any.value {
        Some(V::StringValue(s)) => return ArenaValue::Str(arena.push_str(s)),
        Some(V::IntValue(v)) => return ArenaValue::Int(*v),
        Some(V::DoubleValue(v)) => return ArenaValue::Float(*v),
        Some(V::BoolValue(v)) => return ArenaValue::Bool(*v),
        Some(V::ArrayValue(a)) => {
            let values: Option<Vec<&V>> = a.values.iter().map(|v| v.value.as_ref()).collect();
            let values = values.unwrap_or_default();
            macro_rules! all {
                ($variant:ident) => {
                    values
                        .iter()
                        .map(|v| match v {
                            V::$variant(x) => Some(x.clone()),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                };
            }
            match values.first() {
                Some(V::StringValue(_)) => {
                    if let Some(items) = all!(StringValue) {
                        let items: Vec<&str> = items.iter().map(String::as_str).collect();
                        let slot = strs(arena, items);
                        return ArenaValue::StrArray(slot);
                    }
                }
                Some(V::IntValue(_)) => {
                    if let Some(items) = all!(IntValue) {
                        return ArenaValue::IntArray(Slot::append(&mut arena.ints, items));
                    }
                }
                Some(V::DoubleValue(_)) => {
                    if let Some(items) = all!(DoubleValue) {
                        return ArenaValue::FloatArray(Slot::append(&mut arena.floats, items));
                    }
                }
                Some(V::BoolValue(_)) => {
                    if let Some(items) = all!(BoolValue) {
                        return ArenaValue::BoolArray(Slot::append(&mut arena.bools, items));
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    ArenaValue::Opaque(arena.push_str(&opaque_value(Some(any))))
}

/// A homogeneous non-empty array of scalars as a typed array; `None` otherwise (the
/// arena as it was).
fn typed_array(items: &[u8], arena: &mut SpanArena) -> Result<Option<ArenaValue>, String> {
    let mark = arena.mark();
    let mut first: Option<std::mem::Discriminant<Scalar>> = None;
    let (texts, ints, floats, bools) = (
        arena.texts.len(),
        arena.ints.len(),
        arena.floats.len(),
        arena.bools.len(),
    );
    for field in Fields::new(items) {
        let (1, value) = field? else { continue };
        let Some(item) = scalar(value.bytes("AnyValue")?)? else {
            arena.truncate(mark);
            return Ok(None);
        };
        let kind = std::mem::discriminant(&item);
        if matches!(item, Scalar::Array(_)) || first.is_some_and(|k| k != kind) {
            arena.truncate(mark);
            return Ok(None);
        }
        first = Some(kind);
        match item {
            Scalar::Str(s) => {
                let slot = arena.push_str(s);
                arena.texts.push(slot);
            }
            Scalar::Int(v) => arena.ints.push(v),
            Scalar::Float(v) => arena.floats.push(v),
            Scalar::Bool(v) => arena.bools.push(v),
            Scalar::Array(_) => unreachable!("arrays were turned away above"),
        }
    }
    let slot = |start: usize, end: usize| Slot { start, end };
    Ok(if arena.texts.len() > texts {
        Some(ArenaValue::StrArray(slot(texts, arena.texts.len())))
    } else if arena.ints.len() > ints {
        Some(ArenaValue::IntArray(slot(ints, arena.ints.len())))
    } else if arena.floats.len() > floats {
        Some(ArenaValue::FloatArray(slot(floats, arena.floats.len())))
    } else if arena.bools.len() > bools {
        Some(ArenaValue::BoolArray(slot(bools, arena.bools.len())))
    } else {
        // Empty: kept as text.
        arena.truncate(mark);
        None
    })
}

/// What an `AnyValue` holds, when it is not a key-value list or bytes.
enum Scalar<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An `ArrayValue`'s bytes.
    Array(&'a [u8]),
}

/// The value of an `AnyValue` message (the last of its one-of fields wins); `None` for
/// none, a key-value list or bytes.
fn scalar(bytes: &[u8]) -> Result<Option<Scalar<'_>>, String> {
    let mut out = None;
    for field in Fields::new(bytes) {
        out = match field? {
            (1, v) => Some(Scalar::Str(utf8(v.bytes("string value")?)?)),
            (2, v) => Some(Scalar::Bool(v.varint("bool value")? != 0)),
            (3, v) => Some(Scalar::Int(v.varint("int value")? as i64)),
            (4, v) => Some(Scalar::Float(f64::from_bits(v.fixed64()?))),
            (5, v) => Some(Scalar::Array(v.bytes("ArrayValue")?)),
            (6, v) => {
                v.bytes("KeyValueList")?;
                None
            }
            (7, v) => {
                v.bytes("bytes value")?;
                None
            }
            (8, v) => {
                v.varint("string index")?;
                None
            }
            _ => out,
        };
    }
    // An array value holding one field of its own is read by `typed_array`.
    Ok(out)
}

fn string(value: Value<'_>, arena: &mut SpanArena) -> Result<Slot, String> {
    Ok(arena.push_str(utf8(value.bytes("string")?)?))
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes)
        .map_err(|_| "invalid string value: data is not UTF-8 encoded".to_string())
}

/// A field's value as the wire gives it.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    fn wrong(&self, what: &str) -> String {
        let got = match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32(_) => "32-bit",
        };
        format!("invalid wire type: {got} for {what}")
    }

    fn bytes(self, what: &str) -> Result<&'a [u8], String> {
        match self {
            Value::Bytes(b) => Ok(b),
            other => Err(other.wrong(what)),
        }
    }

    fn varint(self, what: &str) -> Result<u64, String> {
        match self {
            Value::Varint(v) => Ok(v),
            other => Err(other.wrong(what)),
        }
    }

    fn uint32(self) -> Result<u32, String> {
        Ok(self.varint("a count")? as u32)
    }

    fn int32(self) -> Result<i32, String> {
        Ok(self.varint("an enum")? as i32)
    }

    fn fixed64(self) -> Result<u64, String> {
        match self {
            Value::Fixed64(v) => Ok(v),
            other => Err(other.wrong("a 64-bit field")),
        }
    }

    fn fixed32(self) -> Result<u32, String> {
        match self {
            Value::Fixed32(v) => Ok(v),
            other => Err(other.wrong("a 32-bit field")),
        }
    }
}

/// The fields of a message, in wire order; groups (long deprecated) are skipped.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields {
            bytes,
            at: 0,
            failed: false,
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err("buffer underflow".into());
            };
            self.at += 1;
            if i == 9 && byte > 1 {
                return Err("invalid varint".into());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err("invalid varint".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("buffer underflow")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u32, u8), String> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(format!("invalid key value: {key}"));
        }
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        if number == 0 {
            return Err("invalid field number: 0".into());
        }
        Ok((number, wire))
    }

    fn value(&mut self, wire: u8) -> Result<Option<Value<'a>>, String> {
        Ok(Some(match wire {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8"))),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4"))),
            3 => return Ok(None),
            other => return Err(format!("invalid wire type value: {other}")),
        }))
    }

    /// Skips a group whose start tag (field `number`) was just read.
    fn skip_group(&mut self, number: u32) -> Result<(), String> {
        loop {
            let (n, wire) = self.field()?;
            match wire {
                4 if n == number => return Ok(()),
                4 => return Err("unexpected end group tag".into()),
                3 => self.skip_group(n)?,
                _ => {
                    self.value(wire)?;
                }
            }
        }
    }

    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        while self.at < self.bytes.len() {
            let (number, wire) = self.field()?;
            if wire == 4 {
                return Err("unexpected end group tag".into());
            }
            match self.value(wire)? {
                Some(value) => return Ok(Some((number, value))),
                None => self.skip_group(number)?,
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_field().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::otlp::{arena_from_request, spans_of};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value as V,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

    /// The spans a decoder made of a request and the invalid ones' messages; `None`
    /// when it refused the bytes.
    pub(crate) type Outcome = Option<(Vec<traceql_format::model::Span>, Vec<String>)>;

    /// What the reference path (the OTLP structs, then [`arena_from_request`]) makes
    /// of a request its decoding gave, or `None` if it refused the bytes.
    pub(crate) fn reference(request: Option<ExportTraceServiceRequest>) -> Outcome {
        request.map(|request| {
            let mut arena = SpanArena::default();
            let mut invalid = Vec::new();
            arena_from_request(&request, &mut arena, &mut |m| invalid.push(m));
            (spans_of(&arena), invalid)
        })
    }

    /// Checks that a decoder agrees with the reference path (`both` gives the two
    /// outcomes) on `bytes`, the encoded test [`request`], and on the SDK samples
    /// `sdk-1.<ext>` … `sdk-3.<ext>`.
    pub(crate) fn agrees_on_request_and_samples(
        both: impl Fn(&[u8]) -> (Outcome, Outcome),
        bytes: &[u8],
        ext: &str,
    ) {
        let (decoded, reference) = both(bytes);
        let (spans, invalid) = decoded.clone().expect("a valid request");
        assert_eq!(spans.len(), 6);
        assert_eq!(invalid.len(), 6, "{invalid:?}");
        assert_eq!(
            invalid[0],
            "resourceSpans[0].scopeSpans[0].spans[1]: trace id must be 16 bytes, got 2"
        );
        assert_eq!(decoded, reference);
        for n in 1..=3 {
            let file = format!("sdk-{n}.{ext}");
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/otlp")
                .join(&file);
            let (decoded, reference) = both(&std::fs::read(&path).unwrap());
            assert!(
                decoded.as_ref().is_some_and(|(spans, _)| !spans.is_empty()),
                "{file}"
            );
            assert_eq!(decoded, reference, "{file}");
        }
    }

    /// `count` copies of `bytes`, each with one to `most` bytes changed at random (a
    /// fixed seed), to bytes of `alphabet` if given.
    pub(crate) fn mutations(
        bytes: &[u8],
        count: usize,
        most: u64,
        alphabet: Option<&[u8]>,
    ) -> Vec<Vec<u8>> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..count)
            .map(|_| {
                let mut mutated = bytes.to_vec();
                for _ in 0..=next() % most {
                    let at = (next() % mutated.len() as u64) as usize;
                    mutated[at] = match alphabet {
                        Some(a) => a[(next() % a.len() as u64) as usize],
                        None => next() as u8,
                    };
                }
                mutated
            })
            .collect()
    }

    /// What each decoder makes of `bytes`.
    fn both(bytes: &[u8]) -> (Outcome, Outcome) {
        let mut arena = SpanArena::default();
        let mut invalid = Vec::new();
        let wire = decode_request(bytes, &mut arena, &mut |m| invalid.push(m))
            .ok()
            .map(|()| (spans_of(&arena), invalid));
        if wire.is_none() {
            assert!(
                arena.spans.is_empty() && arena.attributes.is_empty(),
                "left as it was"
            );
        }
        let prost = reference(ExportTraceServiceRequest::decode(bytes).ok());
        (wire, prost)
    }

    fn kv(key: &str, value: Option<V>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.map(|v| AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn array(values: Vec<V>) -> Option<V> {
        Some(V::ArrayValue(ArrayValue {
            values: values
                .into_iter()
                .map(|v| AnyValue { value: Some(v) })
                .collect(),
        }))
    }

    /// Every kind of value, event, link and status, and spans of every kind of fault.
    pub(crate) fn request() -> ExportTraceServiceRequest {
        let attributes = vec![
            kv("s", Some(V::StringValue("GET".into()))),
            kv("i", Some(V::IntValue(-7))),
            kv("f", Some(V::DoubleValue(0.5))),
            kv("b", Some(V::BoolValue(true))),
            kv(
                "sa",
                array(vec![V::StringValue("a".into()), V::StringValue("é".into())]),
            ),
            kv("ia", array(vec![V::IntValue(1), V::IntValue(2)])),
            kv("fa", array(vec![V::DoubleValue(1.5)])),
            kv("ba", array(vec![V::BoolValue(false), V::BoolValue(true)])),
            kv(
                "mixed",
                array(vec![V::IntValue(1), V::StringValue("x".into())]),
            ),
            kv("empty", array(vec![])),
            kv("nested", array(vec![V::ArrayValue(ArrayValue::default())])),
            kv("bytes", Some(V::BytesValue(vec![0, 1, 2]))),
            kv(
                "kvlist",
                Some(V::KvlistValue(KeyValueList {
                    values: vec![kv("k", Some(V::IntValue(1)))],
                })),
            ),
            kv("none", None),
            KeyValue {
                key: "no value".into(),
                value: Some(AnyValue { value: None }),
                ..Default::default()
            },
        ];
        let good = |id: u8| Span {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            parent_span_id: if id.is_multiple_of(2) {
                vec![1; 8]
            } else {
                vec![]
            },
            trace_state: "t=1".into(),
            flags: 0x101,
            name: format!("span {id}"),
            kind: i32::from(id % 6),
            start_time_unix_nano: u64::from(id) * 1000,
            end_time_unix_nano: u64::from(id) * 2000,
            attributes: attributes.clone(),
            dropped_attributes_count: 1,
            events: vec![span::Event {
                time_unix_nano: 5,
                name: "exception".into(),
                attributes: vec![kv("exception.message", Some(V::StringValue("boom".into())))],
                dropped_attributes_count: 2,
            }],
            dropped_events_count: 3,
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![9; 8],
                trace_state: "l".into(),
                attributes: vec![kv(
                    "opentracing.ref_type",
                    Some(V::StringValue("child_of".into())),
                )],
                dropped_attributes_count: 4,
                flags: 1,
            }],
            dropped_links_count: 5,
            status: Some(Status {
                message: "bad".into(),
                code: 2,
            }),
        };
        let bad = [
            Span {
                trace_id: vec![1, 2],
                ..good(3)
            },
            Span {
                span_id: vec![0; 8],
                ..good(3)
            },
            Span {
                parent_span_id: vec![1; 3],
                ..good(3)
            },
            Span { kind: 9, ..good(3) },
            Span {
                status: Some(Status {
                    message: String::new(),
                    code: -1,
                }),
                ..good(3)
            },
            Span {
                links: vec![span::Link {
                    trace_id: vec![],
                    ..good(3).links[0].clone()
                }],
                ..good(3)
            },
        ];
        let resource = Resource {
            attributes: vec![kv("service.name", Some(V::StringValue("checkout".into())))],
            dropped_attributes_count: 6,
            entity_refs: vec![],
        };
        let scope = InstrumentationScope {
            name: "lib".into(),
            version: "1.0".into(),
            attributes: vec![kv("x", Some(V::IntValue(1)))],
            dropped_attributes_count: 7,
        };
        let mut spans: Vec<Span> = (1..=4).map(good).collect();
        spans.insert(1, bad[0].clone());
        spans.extend(bad[1..].iter().cloned());
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(scope.clone()),
                            spans,
                            schema_url: "s1".into(),
                        },
                        ScopeSpans {
                            scope: None,
                            spans: vec![good(5)],
                            schema_url: String::new(),
                        },
                    ],
                    schema_url: "r1".into(),
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope),
                        spans: vec![good(6)],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    #[test]
    fn decodes_what_prost_and_the_other_path_decode() {
        agrees_on_request_and_samples(both, &request().encode_to_vec(), "binpb");
    }

    /// The key of field `number` of wire type `wire`.
    fn tag(number: u64, wire: u64) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(number << 3 | wire, &mut out);
        out
    }

    /// A length-delimited field.
    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = tag(number, 2);
        prost::encoding::encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn skips_unknown_fields_and_groups_and_merges_repeats_as_prost_does() {
        // Unknown fields of every wire type, a group among them.
        let unknown: Vec<u8> = [
            tag(99, 0),
            vec![0x96, 0x01],
            tag(98, 1),
            vec![1, 2, 3, 4, 5, 6, 7, 8],
            tag(97, 5),
            vec![1, 2, 3, 4],
            field(96, b"junk"),
            tag(95, 3),
            tag(1, 0),
            vec![7],
            tag(95, 4),
        ]
        .concat();
        let mut span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "first".into(),
            ..Default::default()
        }
        .encode_to_vec();
        span.extend_from_slice(&unknown);
        // A repeated scalar keeps the last; a repeated status merges.
        span.extend(field(5, b"second"));
        span.extend(field(
            15,
            &Status {
                message: "m".into(),
                code: 0,
            }
            .encode_to_vec(),
        ));
        span.extend(field(
            15,
            &Status {
                message: String::new(),
                code: 2,
            }
            .encode_to_vec(),
        ));
        span.extend(field(9, &kv("later", Some(V::IntValue(3))).encode_to_vec()));
        let scope_spans = [field(2, &span), unknown.clone()].concat();
        let resource_spans =
            [field(2, &scope_spans), unknown.clone(), field(3, b"schema")].concat();
        let bytes = [field(1, &resource_spans), unknown].concat();
        let (wire, prost) = both(&bytes);
        let (spans, _) = wire.clone().expect("valid protobuf");
        assert_eq!(spans[0].name, "second");
        assert_eq!(
            (spans[0].status_message.as_str(), spans[0].status_code),
            ("m", 2)
        );
        assert_eq!(spans[0].resource.schema_url, "schema");
        assert_eq!(wire, prost);
    }

    #[test]
    fn refuses_what_prost_refuses_and_agrees_on_mutated_messages() {
        let bytes = request().encode_to_vec();
        // Cut short anywhere: never a panic, the same answer as prost.
        for end in (0..bytes.len()).step_by(7) {
            let (wire, prost) = both(&bytes[..end]);
            assert_eq!(wire, prost, "cut at {end}");
        }
        // Bytes changed at random (a fixed seed): the same answer as prost each time.
        let (mut refused, mut taken) = (0, 0);
        for mutated in mutations(&bytes, 3000, 3, None) {
            let (wire, prost) = both(&mutated);
            assert_eq!(wire, prost, "{mutated:?}");
            if wire.is_some() {
                taken += 1
            } else {
                refused += 1
            }
        }
        assert!(
            refused > 100 && taken > 100,
            "both kinds seen: {refused} refused, {taken} taken"
        );
        // Not UTF-8 where a string must be.
        let mut span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
        .encode_to_vec();
        span.extend(field(5, &[0xff, 0xfe]));
        let bytes = field(1, &field(2, &field(2, &span)));
        assert_eq!(both(&bytes), (None, None));
    }
}
