//! Reading an OTLP export request's body: its encoding (`Content-Encoding` gzip, zstd or
//! none) and format (`Content-Type` protobuf or JSON), within a size limit, into the
//! spans it holds and the protobuf record the write-ahead log keeps.

use std::io::Read;

use axum::body::Bytes;

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use traceql_exec::otlp::{arena_from_request, decode_request};
use traceql_format::arena::SpanArena;

/// The format of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// A body that cannot be taken: the status to answer with and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400, 413 or 415.
    pub status: StatusCode,
    /// Why, for the sender.
    pub message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

/// A decoded request.
#[derive(Debug)]
pub struct Decoded {
    /// Its spans.
    pub spans: SpanArena,
    /// The request in protobuf, as the log keeps it.
    pub protobuf: Bytes,
}

/// The format a `Content-Type` names, or a 415.
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, Rejection> {
    let essence = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(BodyFormat::Protobuf),
        "application/json" => Ok(BodyFormat::Json),
        "" => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no Content-Type: send application/x-protobuf or application/json",
        )),
        other => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type `{other}` is not OTLP: send application/x-protobuf or \
                 application/json"
            ),
        )),
    }
}

/// `body` decompressed as `encoding` says, at most `limit` bytes of it.
pub fn decompress(body: &Bytes, encoding: Option<&str>, limit: usize) -> Result<Bytes, Rejection> {
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request is larger than {limit} bytes uncompressed; send smaller batches"),
        )
    };
    let encoding = encoding.unwrap_or("").trim().to_ascii_lowercase();
    let mut reader: Box<dyn Read + '_> = match encoding.as_str() {
        "" | "identity" => {
            if body.len() > limit {
                return Err(too_large());
            }
            return Ok(body.clone());
        }
        "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(&body[..])),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(&body[..]).map_err(|e| {
            Rejection::new(StatusCode::BAD_REQUEST, format!("invalid zstd body: {e}"))
        })?),
        other => {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding `{other}` is not supported: send gzip, zstd or none"),
            ));
        }
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid {encoding}: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(out.into())
}

/// The spans of `bytes`, an `ExportTraceServiceRequest` in `format`; any invalid span
/// rejects the whole request, which then changes nothing. Protobuf is decoded straight
/// into the spans' arena, and is what the log keeps.
pub fn decode(bytes: Bytes, format: BodyFormat) -> Result<Decoded, Rejection> {
    let bad = |message: String| Rejection::new(StatusCode::BAD_REQUEST, message);
    match format {
        BodyFormat::Protobuf => {
            let mut spans = SpanArena::default();
            let mut invalid = None;
            decode_request(&bytes, &mut spans, &mut |m| {
                invalid.get_or_insert(m);
            })
            .map_err(|e| {
                bad(format!(
                    "the body is not an OTLP ExportTraceServiceRequest: {e}"
                ))
            })?;
            match invalid {
                Some(e) => Err(invalid_span(e)),
                None => Ok(Decoded {
                    spans,
                    protobuf: bytes,
                }),
            }
        }
        BodyFormat::Json => {
            let request: ExportTraceServiceRequest =
                serde_json::from_slice(&bytes).map_err(|e| {
                    bad(format!(
                        "the body is not an OTLP/JSON ExportTraceServiceRequest: {e}"
                    ))
                })?;
            let protobuf = request.encode_to_vec().into();
            from_request(&request, protobuf)
        }
    }
}

/// The spans of `request`, whose protobuf encoding is `protobuf`; any invalid span
/// rejects the whole request.
fn from_request(
    request: &ExportTraceServiceRequest,
    protobuf: Bytes,
) -> Result<Decoded, Rejection> {
    let mut spans = SpanArena::default();
    let mut invalid = None;
    arena_from_request(request, &mut spans, &mut |m| {
        invalid.get_or_insert(m);
    });
    match invalid {
        Some(e) => Err(invalid_span(e)),
        None => Ok(Decoded { spans, protobuf }),
    }
}

fn invalid_span(message: String) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        format!("invalid span at {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            body_format(Some("application/x-protobuf")),
            Ok(BodyFormat::Protobuf)
        );
        assert_eq!(
            body_format(Some("application/json; charset=utf-8")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some("text/plain")).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            decompress(&Bytes::from_static(b"abc"), Some("br"), 10)
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            decompress(&Bytes::from_static(b"abc"), None, 10).unwrap(),
            &b"abc"[..]
        );
        assert_eq!(
            decompress(&Bytes::from_static(b"abcdef"), None, 3)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let zipped = Bytes::from(zstd::encode_all(&[7u8; 1000][..], 3).unwrap());
        assert_eq!(
            decompress(&zipped, Some("zstd"), 1000).unwrap(),
            vec![7u8; 1000]
        );
        assert_eq!(
            decompress(&zipped, Some("zstd"), 999).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            decompress(&Bytes::from_static(b"not gzip"), Some("gzip"), 100)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }
}
