//! Call and trace ids: lowercase UUIDv7 strings, as the Python and JS clients make them.
//!
//! Ids are made on the caller's thread for every traced call, so they are made without a
//! system call: the 74 random bits of each UUIDv7 come from a per-thread generator
//! (wyrand) seeded once from the operating system's randomness (through `RandomState`,
//! whose keys are drawn from the OS). Ids need to be unique, not secret; the Python client
//! likewise uses a non-cryptographic generator after seeding.

use std::cell::Cell;

thread_local! {
    static ID_RNG: Cell<u64> = Cell::new(seed());
    /// The millisecond and counter of the last id made on this thread.
    static ID_LAST: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    // Distinct per thread even when RandomState's per-thread keys coincide.
    h.write_usize(&h as *const _ as usize);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// wyrand: one 64-bit draw.
#[inline]
fn next_u64() -> u64 {
    let step = |s: u64| {
        let s = s.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (s, ((t >> 64) as u64) ^ (t as u64))
    };
    ID_RNG
        .try_with(|c| {
            let (s, out) = step(c.get());
            c.set(s);
            out
        })
        // During thread teardown: a fresh seed each time (a system call; rare).
        .unwrap_or_else(|_| step(seed()).1)
}

/// The text of a new UUIDv7, ordered after the previous one made on this thread (RFC 9562
/// §6.2, method 1): 48 bits of milliseconds, version 7, a 42-bit counter (12 bits, then
/// 30 bits after the variant) started at a random value each millisecond and incremented
/// within it, and 32 random bits. A clock that steps back keeps the last millisecond.
fn new_id_text() -> [u8; 36] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (a, b) = (next_u64(), next_u64());
    const COUNTER_BITS: u32 = 42;
    let (ms, counter) = ID_LAST
        .try_with(|last| {
            let (last_ms, last_counter) = last.get();
            let next = if now > last_ms {
                // A fresh start below half the range leaves room to count up.
                (now, a & ((1 << (COUNTER_BITS - 1)) - 1))
            } else if last_counter + 1 < (1 << COUNTER_BITS) {
                (last_ms, last_counter + 1)
            } else {
                (last_ms + 1, a & ((1 << (COUNTER_BITS - 1)) - 1))
            };
            last.set(next);
            next
        })
        .unwrap_or((now, a & ((1 << (COUNTER_BITS - 1)) - 1)));
    let hi: u64 = (ms << 16) | 0x7000 | (counter >> 30);
    let lo: u64 = 0x8000_0000_0000_0000 | ((counter & 0x3fff_ffff) << 32) | (b & 0xffff_ffff);
    let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    // Where each byte's two hex digits go in `8-4-4-4-12`.
    const POS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = *b"00000000-0000-0000-0000-000000000000";
    for (&b, &pos) in bytes.iter().zip(POS.iter()) {
        buf[pos] = HEX[usize::from(b >> 4)];
        buf[pos + 1] = HEX[usize::from(b & 0xf)];
    }
    buf
}

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
    let buf = new_id_text();
    std::str::from_utf8(&buf).unwrap_or_default().to_string()
}

/// A call's or trace's id as a live call keeps it: a UUID inline (making one allocates
/// nothing, copying one is a copy of 36 bytes), any other id shared.
#[derive(Clone)]
pub(crate) enum IdText {
    Uuid([u8; 36]),
    Other(std::sync::Arc<str>),
}

impl IdText {
    /// A new id ([`generate_id`]).
    pub(crate) fn generate() -> Self {
        IdText::Uuid(new_id_text())
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // SAFETY: a `Uuid` is only made by `new_id_text` (hex digits and dashes) or from
            // bytes checked to be a canonical UUID (`from`, `from_bytes`): always ASCII.
            IdText::Uuid(b) => unsafe { std::str::from_utf8_unchecked(b) },
            IdText::Other(s) => s,
        }
    }
}

impl From<String> for IdText {
    fn from(s: String) -> Self {
        match <[u8; 36]>::try_from(s.as_bytes()) {
            Ok(b) if is_canonical_uuid(&s) => IdText::Uuid(b),
            _ => IdText::Other(s.into()),
        }
    }
}

impl From<&str> for IdText {
    fn from(s: &str) -> Self {
        IdText::from_bytes(s.as_bytes())
    }
}

impl IdText {
    /// An id read as bytes (from a store): a UUID kept inline, other text shared (bytes
    /// that are not UTF-8 are replaced, as `String::from_utf8_lossy` does).
    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        match <[u8; 36]>::try_from(b) {
            Ok(a) if is_canonical_uuid_bytes(b) => IdText::Uuid(a),
            _ => IdText::Other(String::from_utf8_lossy(b).into()),
        }
    }
}

impl std::ops::Deref for IdText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for IdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
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

/// `8-4-4-4-12` lowercase hex digits.
fn is_canonical_uuid(s: &str) -> bool {
    is_canonical_uuid_bytes(s.as_bytes())
}

fn is_canonical_uuid_bytes(s: &[u8]) -> bool {
    // Called for every id read back from a store: the dashes first, then the digits through a
    // table (no per-position branches).
    const HEX: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            t[c] = matches!(c as u8, b'0'..=b'9' | b'a'..=b'f');
            c += 1;
        }
        t
    };
    s.len() == 36
        && s[8] == b'-'
        && s[13] == b'-'
        && s[18] == b'-'
        && s[23] == b'-'
        && [&s[..8], &s[9..13], &s[14..18], &s[19..23], &s[24..]]
            .iter()
            .all(|part| part.iter().fold(true, |ok, &b| ok & HEX[usize::from(b)]))
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
        assert_eq!(id, u.hyphenated().to_string());
        assert!(is_valid_call_id(&id) && is_valid_trace_id(&id));
        // The time prefix is now, in milliseconds.
        let ms = u.get_timestamp().unwrap().to_unix();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(ms.0.abs_diff(now) <= 1, "{ms:?} vs {now}");
    }

    #[test]
    fn ids_made_on_a_thread_are_ordered() {
        let ids: Vec<String> = (0..50_000).map(|_| generate_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_are_unique_across_threads() {
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..20_000).map(|_| generate_id()).collect::<Vec<_>>()))
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let set: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
    }

    #[test]
    fn validation() {
        assert!(is_valid_call_id("00f067aa0ba902b7"));
        assert!(!is_valid_call_id("00F067AA0BA902B7"));
        assert!(!is_valid_call_id("0193ABCD-0000-7000-8000-000000000000"));
        assert!(is_valid_call_id("0193abcd-0000-7000-8000-000000000000"));
        assert!(!is_valid_call_id("0193abcd-0000-7000-8000-00000000000g"));
        assert!(!is_valid_call_id("0193abcd0-000-7000-8000-000000000000"));
        assert!(is_valid_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!is_valid_call_id("not-an-id"));
    }

    #[test]
    fn ids_read_as_bytes() {
        let uuid = "0193abcd-0000-7000-8000-000000000000";
        assert!(matches!(
            IdText::from_bytes(uuid.as_bytes()),
            IdText::Uuid(_)
        ));
        assert_eq!(IdText::from_bytes(uuid.as_bytes()).as_str(), uuid);
        let upper = IdText::from_bytes(b"0193ABCD-0000-7000-8000-000000000000");
        assert!(matches!(upper, IdText::Other(_)));
        assert_eq!(upper.as_str(), "0193ABCD-0000-7000-8000-000000000000");
        assert_eq!(IdText::from_bytes(b"span-1").as_str(), "span-1");
        assert_eq!(IdText::from_bytes(b"bad\xff").as_str(), "bad\u{fffd}");
        assert_eq!(IdText::from_bytes(b"").as_str(), "");
    }
}
