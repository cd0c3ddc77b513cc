//! Call and trace ids: lowercase UUIDv7 strings, as the Python and JS clients make them.

/// A new lowercase UUIDv7 (`8-4-4-4-12`), time-ordered, as used for call and trace ids.
///
/// # Examples
///
/// ```
/// let id = weave_core::generate_id();
/// assert_eq!(id.len(), 36);
/// assert_eq!(&id[14..15], "7");
/// ```
pub fn generate_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Whether `s` is a valid call id on a Weave server: a canonical lowercase UUID (any version)
/// or a 16-character lowercase hex OpenTelemetry span id.
pub fn is_valid_call_id(s: &str) -> bool {
    is_canonical_uuid(s) || (s.len() == 16 && is_lower_hex(s))
}

/// Whether `s` is a valid trace id: a canonical lowercase UUID or a 32-character lowercase hex
/// OpenTelemetry trace id.
pub fn is_valid_trace_id(s: &str) -> bool {
    is_canonical_uuid(s) || (s.len() == 32 && is_lower_hex(s))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_canonical_uuid(s: &str) -> bool {
    matches!(uuid::Uuid::try_parse(s), Ok(u) if u.hyphenated().to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_layout() {
        let id = generate_id();
        let u = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(u.as_bytes()[8] >> 6, 0b10);
        assert_eq!(id, id.to_lowercase());
        assert!(is_valid_call_id(&id) && is_valid_trace_id(&id));
        assert!(generate_id() > id || generate_id() != id);
    }

    #[test]
    fn validation() {
        assert!(is_valid_call_id("00f067aa0ba902b7"));
        assert!(!is_valid_call_id("00F067AA0BA902B7"));
        assert!(!is_valid_call_id("0193ABCD-0000-7000-8000-000000000000"));
        assert!(is_valid_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!is_valid_call_id("not-an-id"));
    }
}
