//! Trace and span ids, and their hexadecimal forms.

/// A 16-byte trace id.
pub type TraceId = [u8; 16];
/// An 8-byte span id.
pub type SpanId = [u8; 8];

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends the lowercase hex of `bytes` to `out`, two digits a byte. Digits are made
/// on the stack, 16 bytes at a time, and appended at once: this runs for every id of
/// a large answer.
pub fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    let mut buf = [0u8; 32];
    for chunk in bytes.chunks(16) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[(b >> 4) as usize];
            buf[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        out.extend_from_slice(&buf[..2 * chunk.len()]);
    }
}

/// The lowercase hex of span id `id`, written into `buf` rather than a new string (one
/// per span adds up when millions are shown).
pub fn span_id_hex<'a>(id: &SpanId, buf: &'a mut [u8; 16]) -> &'a str {
    for (i, b) in id.iter().enumerate() {
        buf[2 * i] = DIGITS[(b >> 4) as usize];
        buf[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    // Hex digits are ASCII.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// Lowercase hex of `bytes`, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut out);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends a trace id as Tempo's search results print it to `out`: hex without leading
/// zeros (`0` for an id of zeros).
pub fn push_trace_id_hex(bytes: &[u8], out: &mut Vec<u8>) {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let Some((&first, rest)) = bytes[zeros..].split_first() else {
        out.push(b'0');
        return;
    };
    if first < 16 {
        out.push(DIGITS[first as usize]);
        push_hex(rest, out);
    } else {
        push_hex(&bytes[zeros..], out);
    }
}

/// A trace id as Tempo's search results print it: hex without leading zeros.
pub fn trace_id_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_trace_id_hex(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// A trace id from hex: up to 32 digits, left-padded with zeros. The error says what
/// was expected.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a trace id: expected up to 32 hexadecimal digits");
    if text.is_empty() || text.len() > 32 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let padded = format!("{text:0>32}");
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_back() {
        let id: TraceId = [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 255];
        assert_eq!(hex(&id), "0000000102030405060708090a0b0cff");
        assert_eq!(trace_id_hex(&id), "102030405060708090a0b0cff");
        assert_eq!(parse_trace_id(&trace_id_hex(&id)), Ok(id));
        assert_eq!(parse_trace_id(&hex(&id)), Ok(id));
        assert_eq!(trace_id_hex(&[0; 16]), "0");
        let whole_byte: TraceId = [0, 0xab, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert_eq!(trace_id_hex(&whole_byte), format!("ab{}10", "0".repeat(26)));
        assert_eq!(hex(&[7; 20]), "07".repeat(20), "longer than one chunk");
        assert!(
            parse_trace_id("xyz")
                .unwrap_err()
                .contains("not a trace id")
        );
        assert!(parse_trace_id(&"1".repeat(33)).is_err());
    }
}
