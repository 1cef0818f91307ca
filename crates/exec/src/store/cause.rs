//! One-line causes of object store failures.
//!
//! object_store's messages are long: the request URL, retry counts and a server's XML
//! body. Users need what went wrong and what to check: "the bucket does not exist",
//! "the credentials were refused", "the endpoint cannot be reached".

use std::error::Error as _;
use std::fmt;

use super::StoreErrorKind;

/// Why an object store request failed: its kind, and what to tell the user.
pub(crate) struct Cause {
    /// What kind of failure it is.
    pub kind: StoreErrorKind,
    /// One line.
    pub text: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The cause of `e`, in one line.
pub(crate) fn cause(e: &object_store::Error) -> Cause {
    let text = describe(e);
    let kind = match e {
        object_store::Error::NotFound { .. } => StoreErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StoreErrorKind::AccessDenied,
        _ if text.starts_with("the bucket does not exist") => StoreErrorKind::NotFound,
        _ if text.starts_with("access denied") || text.starts_with("no credentials") => {
            StoreErrorKind::AccessDenied
        }
        _ if text.starts_with("cannot reach the endpoint") => StoreErrorKind::Unreachable,
        _ => StoreErrorKind::Other,
    };
    Cause { kind, text }
}

/// The cause of `e` in one line.
fn describe(e: &object_store::Error) -> String {
    use object_store::Error as E;
    let chain = chain(e);
    let code = xml_tag(&chain, "Code");
    let message = xml_tag(&chain, "Message");
    let server_says = || match (&code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        (None, Some(message)) => message.clone(),
        (None, None) => String::new(),
    };
    match code.as_deref() {
        Some("NoSuchBucket" | "ContainerNotFound") => {
            return format!("the bucket does not exist ({})", server_says());
        }
        Some(
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "ExpiredToken"
            | "InvalidToken"
            | "AuthenticationFailed"
            | "AuthorizationFailure",
        ) => {
            return format!(
                "access denied ({}); check the credentials (AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
                server_says()
            );
        }
        Some("PermanentRedirect" | "AuthorizationHeaderMalformed") => {
            return format!(
                "the bucket is in another region ({}); set AWS_REGION",
                server_says()
            );
        }
        _ => {}
    }
    if chain.contains("169.254.169.254") || chain.contains("169.254.170.2") {
        return "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                AWS_PROFILE (no instance or container credentials are available here)"
            .to_string();
    }
    match e {
        E::NotFound { path, .. } => format!("{path} does not exist"),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => format!(
            "access denied{}; check the credentials",
            paren(&server_says())
        ),
        _ => {
            if let Some(reason) = unreachable(&chain) {
                return format!("cannot reach the endpoint: {reason}{}", retries(&chain));
            }
            let said = server_says();
            if !said.is_empty() {
                return said;
            }
            if let Some(status) = status(&chain) {
                return format!(
                    "the server answered HTTP {status} without an S3 error; is the endpoint an \
                     S3 service?"
                );
            }
            first_line(&e.to_string())
        }
    }
}

fn paren(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// The messages of `e` and all its sources, joined.
fn chain(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" | ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The text of the first `<tag>…</tag>` in `text`.
fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_string()).filter(|t| !t.is_empty())
}

/// Why a connection failed, if it did.
fn unreachable(chain: &str) -> Option<String> {
    const REASONS: &[(&str, &str)] = &[
        ("Connection refused", "connection refused"),
        ("dns error", "the host name does not resolve"),
        ("failed to lookup address", "the host name does not resolve"),
        ("timed out", "timed out"),
        ("Timeout", "timed out"),
        ("Connection reset", "connection reset"),
        ("certificate", "TLS certificate rejected"),
        (
            "HTTP not allowed",
            "plain http:// is not allowed; set AWS_ALLOW_HTTP=true",
        ),
        ("error sending request", "the request could not be sent"),
    ];
    REASONS
        .iter()
        .find(|(needle, _)| chain.contains(needle))
        .map(|(_, reason)| reason.to_string())
}

/// The HTTP status a failed request got, as `404 Not Found`.
fn status(chain: &str) -> Option<String> {
    let at = chain.find("status code: ")? + "status code: ".len();
    let rest = &chain[at..];
    let end = rest.find(':').unwrap_or(rest.len());
    Some(rest[..end].trim().to_string()).filter(|s| !s.is_empty())
}

/// ", after N retries" when the message says retries happened.
fn retries(chain: &str) -> String {
    let Some(at) = chain.find("after ") else {
        return String::new();
    };
    let rest = &chain[at + "after ".len()..];
    match rest.split_once(" retries") {
        Some((n, _)) if n.chars().all(|c| c.is_ascii_digit()) && n != "0" => {
            format!(" (after {n} retries)")
        }
        _ => String::new(),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xml_codes() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\
                    <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_tag(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_tag(body, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_tag(body, "Resource"), None);
    }

    #[test]
    fn reads_http_status() {
        assert_eq!(
            status("Error performing GET x in 2ms - Server returned non-2xx status code: 404 Not Found: ")
                .as_deref(),
            Some("404 Not Found")
        );
        assert_eq!(status("connection refused"), None);
    }

    #[test]
    fn counts_retries() {
        assert_eq!(
            retries("Error after 3 retries, max_retries: 3"),
            " (after 3 retries)"
        );
        assert_eq!(retries("Error after 0 retries"), "");
        assert_eq!(retries("nothing"), "");
    }
}
