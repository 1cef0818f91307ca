//! The OTLP codes of span status and span kind, as the `status_code` and `kind` columns
//! store them, and the TraceQL keywords for them.

/// Span status codes.
pub mod status {
    use traceql_parser::ast::Status;

    /// OTLP `STATUS_CODE_UNSET`.
    pub const UNSET: i8 = 0;
    /// OTLP `STATUS_CODE_OK`.
    pub const OK: i8 = 1;
    /// OTLP `STATUS_CODE_ERROR`.
    pub const ERROR: i8 = 2;

    /// Every code OTLP defines, in order.
    pub const CODES: [i8; 3] = [UNSET, OK, ERROR];

    /// The code of a status.
    pub fn code(status: Status) -> i8 {
        match status {
            Status::Unset => UNSET,
            Status::Ok => OK,
            Status::Error => ERROR,
        }
    }

    /// The status of a code; codes OTLP does not define read as unset.
    pub fn of_code(code: i8) -> Status {
        match code {
            OK => Status::Ok,
            ERROR => Status::Error,
            _ => Status::Unset,
        }
    }

    /// The TraceQL keyword of a code (`unset`, `ok`, `error`).
    pub fn name(code: i8) -> &'static str {
        of_code(code).as_str()
    }
}

/// Span kind codes.
pub mod kind {
    use traceql_parser::ast::SpanKind;

    /// OTLP `SPAN_KIND_UNSPECIFIED`.
    pub const UNSPECIFIED: i8 = 0;
    /// OTLP `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: i8 = 1;
    /// OTLP `SPAN_KIND_SERVER`.
    pub const SERVER: i8 = 2;
    /// OTLP `SPAN_KIND_CLIENT`.
    pub const CLIENT: i8 = 3;
    /// OTLP `SPAN_KIND_PRODUCER`.
    pub const PRODUCER: i8 = 4;
    /// OTLP `SPAN_KIND_CONSUMER`.
    pub const CONSUMER: i8 = 5;

    /// Every code OTLP defines, in order.
    pub const CODES: [i8; 6] = [UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER];

    /// The code of a kind.
    pub fn code(kind: SpanKind) -> i8 {
        match kind {
            SpanKind::Unspecified => UNSPECIFIED,
            SpanKind::Internal => INTERNAL,
            SpanKind::Server => SERVER,
            SpanKind::Client => CLIENT,
            SpanKind::Producer => PRODUCER,
            SpanKind::Consumer => CONSUMER,
        }
    }

    /// The kind of a code; codes OTLP does not define read as unspecified.
    pub fn of_code(code: i8) -> SpanKind {
        SpanKind::ALL
            .into_iter()
            .find(|k| self::code(*k) == code)
            .unwrap_or(SpanKind::Unspecified)
    }

    /// The TraceQL keyword of a code (`server`, `client`, …).
    pub fn name(code: i8) -> &'static str {
        of_code(code).as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traceql_parser::ast::{SpanKind, Status};

    #[test]
    fn codes_and_keywords_agree() {
        for s in Status::ALL {
            assert_eq!(status::of_code(status::code(s)), s);
        }
        for k in SpanKind::ALL {
            assert_eq!(kind::of_code(kind::code(k)), k);
        }
        assert_eq!(status::name(status::ERROR), "error");
        assert_eq!(status::name(9), "unset");
        assert_eq!(kind::name(kind::CONSUMER), "consumer");
        assert_eq!(kind::name(-1), "unspecified");
    }
}
