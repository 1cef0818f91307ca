//! OTLP/JSON straight into a [`SpanArena`]: serde_json's parser walks an
//! `ExportTraceServiceRequest` and each field lands in the arena as it is read (strings
//! copied once, ids decoded on the stack), with no message structs in between. It
//! accepts and refuses what the OTLP structs' own serde decoding does (camelCase names,
//! unknown fields ignored, a field twice refused, 64-bit numbers as numbers or strings,
//! ids in hex), except that it does not take a message written as a JSON array of its
//! fields in order. Values TraceQL cannot query (byte strings, key/value lists, arrays
//! that are not of one scalar type) go through those structs and are kept as the same
//! OTLP/JSON text as on the other paths.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, EntityRef, KeyValueList};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::convert::{Unchecked, opaque_value, push_checked};
use super::wire::prost_value;
use traceql_format::arena::{
    ArenaAttribute, ArenaEvent, ArenaLink, ArenaResource, ArenaScope, ArenaSpan, ArenaValue, Slot,
    SpanArena,
};

/// Decodes the OTLP/JSON `ExportTraceServiceRequest` `bytes` into `arena`. A span that
/// is not valid OTLP (bad ids, kind or status) is left out and `invalid` told why, with
/// its place (`resourceSpans[0].scopeSpans[1].spans[2]: …`). Bytes that are not such a
/// request are an error, and leave `arena` as it was (`invalid` may have been told of
/// spans before the fault).
pub fn decode_json_request(
    bytes: &[u8],
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) -> Result<(), serde_json::Error> {
    let mark = arena.mark();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Request { arena, invalid }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if result.is_err() {
        arena.truncate(mark);
    }
    result
}

/// Which of `names` a key is (`None`: a field the message does not have).
struct Field(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Field {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| *name == v))
    }
}

/// The fields of one message seen so far: a field twice is refused, as the structs'
/// decoding refuses it.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Field `i` of `names`, unless it was seen before.
    fn first<E: de::Error>(&mut self, i: usize, names: &[&'static str]) -> Result<usize, E> {
        if self.0 & (1 << i) != 0 {
            return Err(E::duplicate_field(names[i]));
        }
        self.0 |= 1 << i;
        Ok(i)
    }
}

/// Walks the fields of a message: `field(map, i)` for field `i` of `names`; others
/// are read and ignored.
fn fields<'de, A: MapAccess<'de>>(
    map: &mut A,
    names: &'static [&'static str],
    mut field: impl FnMut(&mut A, usize) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = Seen::default();
    while let Some(key) = map.next_key_seed(Field(names))? {
        match key {
            Some(i) => field(map, seen.first(i, names)?)?,
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

/// A string, appended to the arena.
struct Str<'a>(&'a mut SpanArena);

impl<'de> DeserializeSeed<'de> for Str<'_> {
    type Value = Slot;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Str<'_> {
    type Value = Slot;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Slot, E> {
        Ok(self.0.push_str(v))
    }
}

/// A 64-bit unsigned number, as a number or a string of digits.
struct U64;

impl<'de> DeserializeSeed<'de> for U64 {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for U64 {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a u64 integer or a string containing a u64 integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("i64 value {v} is out of range for u64")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse().map_err(E::custom)
    }
}

/// A 64-bit signed number, as a number or a string of digits (an `intValue`).
struct I64;

impl<'de> DeserializeSeed<'de> for I64 {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for I64 {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a string containing one")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range for i64")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse().map_err(E::custom)
    }
}

/// An id's bytes, decoded from hex (an optional `0x` first): on the stack when 16
/// bytes or fewer, which every valid id is.
enum Hex {
    /// `len` bytes at the start of `bytes`.
    Short { len: usize, bytes: [u8; 16] },
    /// More than 16 bytes (an invalid id, kept to be named with its length).
    Long(Vec<u8>),
}

impl Default for Hex {
    fn default() -> Self {
        Hex::Short {
            len: 0,
            bytes: [0; 16],
        }
    }
}

impl Hex {
    fn bytes(&self) -> &[u8] {
        match self {
            Hex::Short { len, bytes } => &bytes[..*len],
            Hex::Long(bytes) => bytes,
        }
    }
}

impl<'de> DeserializeSeed<'de> for &mut Hex {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for &mut Hex {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string representing hex-encoded bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let digits = match v.as_bytes() {
            [b'0', b'x' | b'X', rest @ ..] => rest.len(),
            _ => v.len(),
        };
        *self = if digits % 2 == 0 && digits <= 32 {
            let mut bytes = [0; 16];
            let len = digits / 2;
            const_hex::decode_to_slice(v, &mut bytes[..len]).map_err(E::custom)?;
            Hex::Short { len, bytes }
        } else {
            Hex::Long(const_hex::decode(v).map_err(E::custom)?)
        };
        Ok(())
    }
}

/// Makes the seed of each item of a list.
trait Items<'de> {
    /// The seed of one item, borrowing from the list's state while it reads.
    type Item<'s>: DeserializeSeed<'de, Value = ()>
    where
        Self: 's;

    /// The seed of the next item.
    fn item(&mut self) -> Self::Item<'_>;
}

/// A JSON list whose items `I` reads.
struct List<I>(I);

impl<'de, I: Items<'de>> DeserializeSeed<'de> for List<I> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, I: Items<'de>> Visitor<'de> for List<I> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.0.item())?.is_some() {}
        Ok(())
    }
}

/// What `S` reads, or null (`None`): the fields the OTLP structs hold as options, and
/// every field of an `AnyValue`.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// Implements `DeserializeSeed` for a message seed whose `Visitor` reads a map.
macro_rules! message_seed {
    ($seed:ident, $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $seed<'_> {
            type Value = $value;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$value, D::Error> {
                d.deserialize_map(self)
            }
        }
    };
}

/// The request: its `resourceSpans`.
struct Request<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
}

message_seed!(Request, ());

impl<'de> Visitor<'de> for Request<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ExportTraceServiceRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["resourceSpans"];
        let Request { arena, invalid } = self;
        fields(&mut map, NAMES, |map, _| {
            map.next_value_seed(List(ResourceSpansItems {
                arena: &mut *arena,
                invalid: &mut *invalid,
                r: 0,
            }))
        })
    }
}

/// The items of `resourceSpans`, numbered from `r`.
struct ResourceSpansItems<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    r: usize,
}

impl<'de> Items<'de> for ResourceSpansItems<'_> {
    type Item<'s>
        = ResourceSpans<'s>
    where
        Self: 's;

    fn item(&mut self) -> ResourceSpans<'_> {
        self.r += 1;
        ResourceSpans {
            arena: self.arena,
            invalid: self.invalid,
            r: self.r - 1,
        }
    }
}

/// One `ResourceSpans`: its resource is the arena's next, its scopes' spans point at it.
struct ResourceSpans<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    r: usize,
}

message_seed!(ResourceSpans, ());

impl<'de> Visitor<'de> for ResourceSpans<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ResourceSpans")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["resource", "scopeSpans", "schemaUrl"];
        let ResourceSpans { arena, invalid, r } = self;
        arena.resources.push(ArenaResource::default());
        let resource = arena.resources.len() - 1;
        fields(&mut map, NAMES, |map, i| match i {
            0 => map
                .next_value_seed(Nullable(Resource { arena, resource }))
                .map(drop),
            1 => map.next_value_seed(List(ScopeSpansItems {
                arena: &mut *arena,
                invalid: &mut *invalid,
                resource,
                at: (r, 0),
            })),
            _ => {
                let url = map.next_value_seed(Str(arena))?;
                arena.resources[resource].schema_url = url;
                Ok(())
            }
        })
    }
}

/// The `resource` of a `ResourceSpans`, into the arena's resource `resource`.
struct Resource<'a> {
    arena: &'a mut SpanArena,
    resource: usize,
}

message_seed!(Resource, ());

impl<'de> Visitor<'de> for Resource<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Resource")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["attributes", "droppedAttributesCount", "entityRefs"];
        let Resource { arena, resource } = self;
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => {
                    let attributes = map.next_value_seed(Attributes(arena))?;
                    arena.resources[resource].attributes = attributes;
                }
                1 => arena.resources[resource].dropped_attributes_count = map.next_value()?,
                // Not kept, but checked as the structs check them.
                _ => {
                    map.next_value::<Vec<EntityRef>>()?;
                }
            }
            Ok(())
        })
    }
}

/// The items of `scopeSpans`, numbered from `at.1`, of resource `resource`.
struct ScopeSpansItems<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    resource: usize,
    at: (usize, usize),
}

impl<'de> Items<'de> for ScopeSpansItems<'_> {
    type Item<'s>
        = ScopeSpans<'s>
    where
        Self: 's;

    fn item(&mut self) -> ScopeSpans<'_> {
        self.at.1 += 1;
        ScopeSpans {
            arena: self.arena,
            invalid: self.invalid,
            resource: self.resource,
            at: (self.at.0, self.at.1 - 1),
        }
    }
}

/// One `ScopeSpans`: its scope is the arena's next, its spans point at it.
struct ScopeSpans<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    resource: usize,
    at: (usize, usize),
}

message_seed!(ScopeSpans, ());

impl<'de> Visitor<'de> for ScopeSpans<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ScopeSpans")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["scope", "spans", "schemaUrl"];
        let ScopeSpans {
            arena,
            invalid,
            resource,
            at,
        } = self;
        arena.scopes.push(ArenaScope::default());
        let scope = arena.scopes.len() - 1;
        fields(&mut map, NAMES, |map, i| match i {
            0 => map
                .next_value_seed(Nullable(Scope { arena, scope }))
                .map(drop),
            1 => map.next_value_seed(List(SpanItems {
                arena: &mut *arena,
                invalid: &mut *invalid,
                resource,
                scope,
                at: (at.0, at.1, 0),
            })),
            _ => {
                let url = map.next_value_seed(Str(arena))?;
                arena.scopes[scope].schema_url = url;
                Ok(())
            }
        })
    }
}

/// The `scope` of a `ScopeSpans`, into the arena's scope `scope`.
struct Scope<'a> {
    arena: &'a mut SpanArena,
    scope: usize,
}

message_seed!(Scope, ());

impl<'de> Visitor<'de> for Scope<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct InstrumentationScope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["name", "version", "attributes", "droppedAttributesCount"];
        let Scope { arena, scope } = self;
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => arena.scopes[scope].name = map.next_value_seed(Str(arena))?,
                1 => arena.scopes[scope].version = map.next_value_seed(Str(arena))?,
                2 => arena.scopes[scope].attributes = map.next_value_seed(Attributes(arena))?,
                _ => arena.scopes[scope].dropped_attributes_count = map.next_value()?,
            }
            Ok(())
        })
    }
}

/// The items of `spans`, numbered from `at.2`.
struct SpanItems<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    resource: usize,
    scope: usize,
    at: (usize, usize, usize),
}

impl<'de> Items<'de> for SpanItems<'_> {
    type Item<'s>
        = Span<'s>
    where
        Self: 's;

    fn item(&mut self) -> Span<'_> {
        self.at.2 += 1;
        Span {
            arena: self.arena,
            invalid: self.invalid,
            resource: self.resource,
            scope: self.scope,
            at: (self.at.0, self.at.1, self.at.2 - 1),
        }
    }
}

/// One span: into the arena if it is valid OTLP, else left out and named to `invalid`.
struct Span<'a> {
    arena: &'a mut SpanArena,
    invalid: &'a mut dyn FnMut(String),
    resource: usize,
    scope: usize,
    at: (usize, usize, usize),
}

message_seed!(Span, ());

impl<'de> Visitor<'de> for Span<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Span")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &[
            "traceId",
            "spanId",
            "traceState",
            "parentSpanId",
            "flags",
            "name",
            "kind",
            "startTimeUnixNano",
            "endTimeUnixNano",
            "attributes",
            "droppedAttributesCount",
            "events",
            "droppedEventsCount",
            "links",
            "droppedLinksCount",
            "status",
        ];
        let Span {
            arena,
            invalid,
            resource,
            scope,
            at: (r, s, i),
        } = self;
        let mark = arena.mark();
        let mut span = ArenaSpan {
            resource,
            scope,
            ..Default::default()
        };
        let (mut trace_id, mut span_id, mut parent) =
            (Hex::default(), Hex::default(), Hex::default());
        let (mut kind, mut status_code) = (0i32, 0i32);
        let mut links = Vec::new();
        fields(&mut map, NAMES, |map, field| {
            match field {
                0 => map.next_value_seed(&mut trace_id)?,
                1 => map.next_value_seed(&mut span_id)?,
                2 => span.trace_state = map.next_value_seed(Str(arena))?,
                3 => map.next_value_seed(&mut parent)?,
                4 => span.flags = map.next_value()?,
                5 => span.name = map.next_value_seed(Str(arena))?,
                6 => kind = map.next_value()?,
                7 => span.start_unix_nano = map.next_value_seed(U64)?,
                8 => span.end_unix_nano = map.next_value_seed(U64)?,
                9 => span.attributes = map.next_value_seed(Attributes(arena))?,
                10 => span.dropped_attributes_count = map.next_value()?,
                11 => {
                    let from = arena.events.len();
                    map.next_value_seed(List(EventItems(arena)))?;
                    span.events = Slot {
                        start: from,
                        end: arena.events.len(),
                    };
                }
                12 => span.dropped_events_count = map.next_value()?,
                13 => map.next_value_seed(List(LinkItems {
                    arena,
                    links: &mut links,
                }))?,
                14 => span.dropped_links_count = map.next_value()?,
                _ => {
                    map.next_value_seed(Nullable(Status {
                        arena,
                        message: &mut span.status_message,
                        code: &mut status_code,
                    }))?;
                }
            }
            Ok(())
        })?;
        let raw = Unchecked {
            trace_id: trace_id.bytes(),
            span_id: span_id.bytes(),
            parent: parent.bytes(),
            kind,
            status_code,
            links: links.iter().map(|(l, t, s)| (*l, t.bytes(), s.bytes())),
        };
        if let Err(message) = push_checked(span, raw, arena) {
            arena.truncate(mark);
            invalid(format!(
                "resourceSpans[{r}].scopeSpans[{s}].spans[{i}]: {message}"
            ));
        }
        Ok(())
    }
}

/// A span's `status`: its message into the arena, its code to check.
struct Status<'a> {
    arena: &'a mut SpanArena,
    message: &'a mut Slot,
    code: &'a mut i32,
}

message_seed!(Status, ());

impl<'de> Visitor<'de> for Status<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Status")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["message", "code"];
        let Status {
            arena,
            message,
            code,
        } = self;
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => *message = map.next_value_seed(Str(arena))?,
                _ => *code = map.next_value()?,
            }
            Ok(())
        })
    }
}

/// The items of a span's `events`, each appended to the arena's events.
struct EventItems<'a>(&'a mut SpanArena);

impl<'de> Items<'de> for EventItems<'_> {
    type Item<'s>
        = Event<'s>
    where
        Self: 's;

    fn item(&mut self) -> Event<'_> {
        Event(self.0)
    }
}

/// One event, appended to the arena's events.
struct Event<'a>(&'a mut SpanArena);

message_seed!(Event, ());

impl<'de> Visitor<'de> for Event<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &[
            "timeUnixNano",
            "name",
            "attributes",
            "droppedAttributesCount",
        ];
        let arena = self.0;
        let mut event = ArenaEvent::default();
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => event.time_unix_nano = map.next_value_seed(U64)?,
                1 => event.name = map.next_value_seed(Str(arena))?,
                2 => event.attributes = map.next_value_seed(Attributes(arena))?,
                _ => event.dropped_attributes_count = map.next_value()?,
            }
            Ok(())
        })?;
        arena.events.push(event);
        Ok(())
    }
}

/// A link read but not yet checked: the link, its trace id and its span id.
type PendingLink = (ArenaLink, Hex, Hex);

/// The items of a span's `links`, gathered in `links` to be checked with the span.
struct LinkItems<'a> {
    arena: &'a mut SpanArena,
    links: &'a mut Vec<PendingLink>,
}

impl<'de> Items<'de> for LinkItems<'_> {
    type Item<'s>
        = Link<'s>
    where
        Self: 's;

    fn item(&mut self) -> Link<'_> {
        Link {
            arena: self.arena,
            links: self.links,
        }
    }
}

/// One link, gathered in `links`.
struct Link<'a> {
    arena: &'a mut SpanArena,
    links: &'a mut Vec<PendingLink>,
}

message_seed!(Link, ());

impl<'de> Visitor<'de> for Link<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Link")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &[
            "traceId",
            "spanId",
            "traceState",
            "attributes",
            "droppedAttributesCount",
            "flags",
        ];
        let Link { arena, links } = self;
        let mut link = ArenaLink::default();
        let (mut trace_id, mut span_id) = (Hex::default(), Hex::default());
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => map.next_value_seed(&mut trace_id)?,
                1 => map.next_value_seed(&mut span_id)?,
                2 => link.trace_state = map.next_value_seed(Str(arena))?,
                3 => link.attributes = map.next_value_seed(Attributes(arena))?,
                4 => link.dropped_attributes_count = map.next_value()?,
                _ => link.flags = map.next_value()?,
            }
            Ok(())
        })?;
        links.push((link, trace_id, span_id));
        Ok(())
    }
}

/// A list of `KeyValue`s, appended to the arena's attributes; their run.
struct Attributes<'a>(&'a mut SpanArena);

impl<'de> DeserializeSeed<'de> for Attributes<'_> {
    type Value = Slot;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot, D::Error> {
        let from = self.0.attributes.len();
        let arena = self.0;
        List(AttributeItems(&mut *arena)).deserialize(d)?;
        Ok(Slot {
            start: from,
            end: arena.attributes.len(),
        })
    }
}

/// The items of a list of `KeyValue`s.
struct AttributeItems<'a>(&'a mut SpanArena);

impl<'de> Items<'de> for AttributeItems<'_> {
    type Item<'s>
        = KeyValue<'s>
    where
        Self: 's;

    fn item(&mut self) -> KeyValue<'_> {
        KeyValue(self.0)
    }
}

/// One `KeyValue`, appended to the arena's attributes.
struct KeyValue<'a>(&'a mut SpanArena);

message_seed!(KeyValue, ());

impl<'de> Visitor<'de> for KeyValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct KeyValue")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const NAMES: &[&str] = &["key", "value", "keyStrindex"];
        let arena = self.0;
        let (mut key, mut value) = (None, None);
        fields(&mut map, NAMES, |map, i| {
            match i {
                0 => key = Some(map.next_value_seed(Str(arena))?),
                1 => value = map.next_value_seed(Nullable(AnyValueSeed(arena)))?,
                _ => {
                    map.next_value::<i32>()?;
                }
            }
            Ok(())
        })?;
        let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
        let value =
            value.unwrap_or_else(|| ArenaValue::Opaque(arena.push_str(&opaque_value(None))));
        arena.attributes.push(ArenaAttribute { key, value });
        Ok(())
    }
}

/// An `AnyValue`, its value in the arena.
struct AnyValueSeed<'a>(&'a mut SpanArena);

impl<'de> DeserializeSeed<'de> for AnyValueSeed<'_> {
    type Value = ArenaValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ArenaValue, D::Error> {
        d.deserialize_map(AnyValueVisitor(self.0))
    }
}

/// The value of an `AnyValue` as read so far: the last of its fields wins.
enum Any {
    /// No value field (or only nulls).
    Empty,
    /// A string, in the arena.
    Str(Slot),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A list, key/value list or byte string, as the structs decode it.
    Other(V),
}

/// An `AnyValue`'s fields.
struct AnyValueVisitor<'a>(&'a mut SpanArena);

impl<'de> Visitor<'de> for AnyValueVisitor<'_> {
    type Value = ArenaValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object for AnyValue")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ArenaValue, A::Error> {
        const NAMES: &[&str] = &[
            "stringValue",
            "boolValue",
            "intValue",
            "doubleValue",
            "arrayValue",
            "kvlistValue",
            "bytesValue",
        ];
        let arena = self.0;
        let mut any = Any::Empty;
        // Unlike a message, an AnyValue takes a field twice: the last one counts.
        while let Some(key) = map.next_key_seed(Field(NAMES))? {
            let Some(i) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = match i {
                0 => map.next_value_seed(Nullable(Str(arena)))?.map(Any::Str),
                1 => map.next_value::<Option<bool>>()?.map(Any::Bool),
                2 => map.next_value_seed(Nullable(I64))?.map(Any::Int),
                3 => map.next_value::<Option<f64>>()?.map(Any::Float),
                4 => map
                    .next_value::<Option<ArrayValue>>()?
                    .map(|a| Any::Other(V::ArrayValue(a))),
                5 => map
                    .next_value::<Option<KeyValueList>>()?
                    .map(|l| Any::Other(V::KvlistValue(l))),
                _ => match map.next_value::<Option<String>>()? {
                    // Decoded as the structs decode it.
                    Some(base64) => {
                        let any: AnyValue =
                            serde_json::from_value(serde_json::json!({ "bytesValue": base64 }))
                                .map_err(de::Error::custom)?;
                        any.value.map(Any::Other)
                    }
                    None => None,
                },
            };
            if let Some(value) = value {
                any = value;
            }
        }
        Ok(match any {
            Any::Str(slot) => ArenaValue::Str(slot),
            Any::Int(v) => ArenaValue::Int(v),
            Any::Float(v) => ArenaValue::Float(v),
            Any::Bool(v) => ArenaValue::Bool(v),
            Any::Other(v) => prost_value(&AnyValue { value: Some(v) }, arena),
            Any::Empty => prost_value(&AnyValue { value: None }, arena),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::spans_of;
    use crate::otlp::wire::tests::{
        Outcome, agrees_on_request_and_samples, mutations, reference, request,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    /// What this decoder and the OTLP structs' serde decoding make of `bytes`.
    fn both(bytes: &[u8]) -> (Outcome, Outcome) {
        let mut arena = SpanArena::default();
        let mut invalid = Vec::new();
        let direct = decode_json_request(bytes, &mut arena, &mut |m| invalid.push(m))
            .ok()
            .map(|()| (spans_of(&arena), invalid));
        if direct.is_none() {
            assert!(
                arena.spans.is_empty() && arena.attributes.is_empty(),
                "left as it was"
            );
        }
        let serde = reference(serde_json::from_slice::<ExportTraceServiceRequest>(bytes).ok());
        (direct, serde)
    }

    #[test]
    fn decodes_what_the_otlp_structs_decode() {
        let bytes = serde_json::to_vec(&request()).unwrap();
        agrees_on_request_and_samples(both, &bytes, "json");
    }

    /// A request of one span whose fields are `span` (JSON text inside the braces).
    fn one_span(span: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"a"}}}}]}},"scopeSpans":[{{"spans":[{{{span}}}]}}]}}]}}"#
        )
    }

    #[test]
    fn agrees_on_the_corners_of_otlp_json() {
        let ids = r#""traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708""#;
        let spans = [
            // Numbers as numbers or strings, ids in either case or with 0x.
            format!(r#"{ids},"startTimeUnixNano":5,"endTimeUnixNano":"7""#),
            r#""traceId":"0X0102030405060708090A0B0C0D0E0F10","spanId":"0x0102030405060708""#
                .to_string(),
            format!(r#"{ids},"startTimeUnixNano":-1"#),
            format!(r#"{ids},"startTimeUnixNano":1.5"#),
            format!(r#"{ids},"startTimeUnixNano":"x""#),
            format!(r#"{ids},"startTimeUnixNano":18446744073709551615"#),
            // Ids that are not hex, odd, long or empty.
            r#""traceId":"zz","spanId":"0102030405060708""#.to_string(),
            r#""traceId":"012","spanId":"0102030405060708""#.to_string(),
            r#""traceId":"0102030405060708090a0b0c0d0e0f1011","spanId":"0102030405060708""#
                .to_string(),
            r#""traceId":"","spanId":"""#.to_string(),
            format!(r#"{ids},"parentSpanId":"""#),
            // Nulls, unknown fields, a field twice, wrong types.
            format!(r#"{ids},"status":null,"unknown":{{"a":[1,2]}}"#),
            format!(r#"{ids},"name":null"#),
            format!(r#"{ids},"name":"a","name":"b""#),
            format!(r#"{ids},"kind":"SPAN_KIND_SERVER""#),
            format!(r#"{ids},"kind":2,"status":{{"code":2,"message":"m"}}"#),
            format!(r#"{ids},"status":{{"code":1,"code":2}}"#),
            format!(r#"{ids},"flags":-1"#),
            format!(r#"{ids},"attributes":null"#),
            format!(
                r#"{ids},"events":[{{"timeUnixNano":"3","name":"e","attributes":[]}}],"links":[]"#
            ),
            format!(r#"{ids},"links":[{{"traceId":"01","spanId":"0102030405060708"}}]"#),
            // Values: every kind, strings for ints, the last field winning, nulls.
            format!(
                r#"{ids},"attributes":[{{"key":"a","value":{{"intValue":"12"}}}},{{"key":"b","value":{{"intValue":12}}}},{{"key":"c","value":{{"doubleValue":3}}}},{{"key":"d","value":{{"boolValue":true}}}},{{"key":"e","value":{{"stringValue":"x","intValue":"5"}}}},{{"key":"f","value":{{"stringValue":null}}}},{{"key":"g","value":{{}}}},{{"key":"h"}},{{"key":"i","value":null}},{{"key":"j","value":{{"bytesValue":"AAEC"}}}},{{"key":"k","value":{{"arrayValue":{{"values":[{{"stringValue":"a"}},{{"stringValue":"b"}}]}}}}}},{{"key":"l","value":{{"kvlistValue":{{"values":[{{"key":"x","value":{{"intValue":1}}}}]}}}}}},{{"key":"m","value":{{"stringValue":"é\u00e9\n"}}}},{{"key":"n","value":{{"other":1,"stringValue":"s","stringValue":"t"}}}}]"#
            ),
            format!(r#"{ids},"attributes":[{{"key":"a","value":{{"intValue":1.5}}}}]"#),
            format!(r#"{ids},"attributes":[{{"key":"a","value":{{"intValue":"x"}}}}]"#),
            format!(
                r#"{ids},"attributes":[{{"key":"a","value":{{"intValue":9223372036854775808}}}}]"#
            ),
            format!(r#"{ids},"attributes":[{{"key":"a","value":{{"bytesValue":"***"}}}}]"#),
            format!(r#"{ids},"attributes":[{{"key":"a","value":{{"arrayValue":{{}}}}}}]"#),
            format!(r#"{ids},"attributes":[{{"value":{{"intValue":1}}}}]"#),
            format!(r#"{ids},"attributes":[{{"key":"a","key":"b"}}]"#),
            format!(r#"{ids},"attributes":[{{"key":"a","keyStrindex":"1"}}]"#),
            format!(r#"{ids},"attributes":[{{"key":"a","value":[1]}}]"#),
        ];
        let mut requests: Vec<String> = spans.iter().map(|s| one_span(s)).collect();
        requests.extend(
            [
                "{}",
                "null",
                r#"{"resourceSpans":null}"#,
                r#"{"resourceSpans":[{}],"resourceSpans":[]}"#,
                r#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"scope":null}]}]}"#,
                r#"{"resourceSpans":[{"resource":{"entityRefs":[{}]}}]}"#,
                r#"{"resourceSpans":[{"resource":{"entityRefs":[{"schemaUrl":"","type":"t","idKeys":[],"descriptionKeys":[]}]}}]}"#,
                r#"{"resourceSpans":[{"schemaUrl":"s","scopeSpans":[{"schemaUrl":"t","scope":{"name":"n","version":"v","droppedAttributesCount":2}}]}]}"#,
                r#"{"resourceSpans":[]} trailing"#,
                r#"{"resourceSpans":[]}   "#,
            ]
            .map(String::from),
        );
        let (mut refused, mut taken) = (0, 0);
        for json in &requests {
            let (direct, serde) = both(json.as_bytes());
            assert_eq!(direct, serde, "{json}");
            if direct.is_some() {
                taken += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            refused > 10 && taken > 10,
            "{refused} refused, {taken} taken"
        );
    }

    #[test]
    fn agrees_on_mutated_requests() {
        let bytes = serde_json::to_vec(&request()).unwrap();
        for end in (0..bytes.len()).step_by(11) {
            let (direct, serde) = both(&bytes[..end]);
            assert_eq!(direct, serde, "cut at {end}");
        }
        // Bytes changed at random (a fixed seed), often into other JSON.
        const ALPHABET: &[u8] = b"{}[]\",:0123456789abcdefx.-ntrul ";
        let (mut refused, mut taken) = (0, 0);
        for mutated in mutations(&bytes, 3000, 2, Some(ALPHABET)) {
            let (direct, serde) = both(&mutated);
            assert_eq!(direct, serde, "{}", String::from_utf8_lossy(&mutated));
            if direct.is_some() {
                taken += 1
            } else {
                refused += 1
            }
        }
        assert!(
            refused > 100 && taken > 100,
            "both kinds seen: {refused} refused, {taken} taken"
        );
    }
}
