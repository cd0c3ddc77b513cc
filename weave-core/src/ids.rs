//! Call and trace ids: lowercase UUIDv7 strings, as the Python and JS clients make them.
//!
//! Ids are made on the caller's thread for every traced call, so they are made without a
//! system call: the 74 random bits of each UUIDv7 come from a per-thread generator
//! ([`crate::rand::Wyrand`]) seeded once from the operating system's randomness. Ids need to
//! be unique, not secret; the Python client likewise uses a non-cryptographic generator after
//! seeding.

use std::cell::Cell;

use crate::rand::Wyrand;

thread_local! {
    /// This thread's generator and the millisecond and counter of its last id.
    static ID_STATE: Cell<IdState> = Cell::new(IdState::seeded());
}

/// Bits of the UUIDv7 counter (RFC 9562 §6.2, method 1): 12 after the version, 30 after the
/// variant.
const COUNTER_BITS: u32 = 42;
/// A counter starts at a random value below half its range, leaving room to count up.
const COUNTER_SEED_MASK: u64 = (1 << (COUNTER_BITS - 1)) - 1;

/// A thread's id generator: wyrand, and the last id's millisecond and counter.
#[derive(Clone, Copy)]
struct IdState {
    rng: Wyrand,
    last_ms: u64,
    counter: u64,
}

impl IdState {
    fn seeded() -> Self {
        IdState {
            rng: Wyrand::seeded(),
            last_ms: 0,
            counter: 0,
        }
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next UUIDv7 at `now_ms`, as a 128-bit number: 48 bits of milliseconds, version
    /// 7, a 42-bit counter (12 bits, then 30 after the variant) started at a random value
    /// each millisecond and incremented within it, and 32 random bits. A clock that steps
    /// back keeps the last millisecond, so a thread's ids stay ordered.
    #[inline]
    fn next_id(&mut self, now_ms: u64) -> u128 {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            self.counter = self.next_u64() & COUNTER_SEED_MASK;
        } else if self.counter + 1 < (1 << COUNTER_BITS) {
            self.counter += 1;
        } else {
            self.last_ms += 1;
            self.counter = self.next_u64() & COUNTER_SEED_MASK;
        }
        let random = self.next_u64() & 0xffff_ffff;
        let hi: u64 = (self.last_ms << 16) | 0x7000 | (self.counter >> 30);
        let lo: u64 = 0x8000_0000_0000_0000 | ((self.counter & 0x3fff_ffff) << 32) | random;
        (u128::from(hi) << 64) | u128::from(lo)
    }
}

/// The milliseconds since the Unix epoch of a time in nanoseconds (0 before the epoch).
pub(crate) fn ms_of_nanos(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000).unwrap_or(0)
}

/// The texts of `N` new UUIDv7s made at `now_ms` (milliseconds since the Unix epoch), each
/// ordered after the previous one made on this thread. The caller reads the clock (once per
/// call, for its start time and its ids alike).
pub(crate) fn new_id_texts<const N: usize>(now_ms: u64) -> [[u8; 36]; N] {
    let ids: [u128; N] = ID_STATE
        .try_with(|cell| {
            let mut state = cell.get();
            let ids = std::array::from_fn(|_| state.next_id(now_ms));
            cell.set(state);
            ids
        })
        // During thread teardown: a fresh seed (a system call; rare).
        .unwrap_or_else(|_| {
            let mut state = IdState::seeded();
            std::array::from_fn(|_| state.next_id(now_ms))
        });
    ids.map(uuid_text)
}

/// The 8 lowercase hex digits of `x`, most significant first, computed 8 at a time in one
/// `u64` (each nibble spread into a byte, then made ASCII without a branch or a table).
fn hex8(x: u32) -> [u8; 8] {
    let x = u64::from(x);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more, which then goes to 'a'..'f', not past '9'.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * (b'a' - b'9' - 1) as u64).to_be_bytes()
}

/// A UUID's `8-4-4-4-12` lowercase text.
fn uuid_text(id: u128) -> [u8; 36] {
    let mut digits = [0u8; 32];
    for (i, chunk) in digits.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&hex8((id >> (96 - 32 * i)) as u32));
    }
    let mut buf = [b'-'; 36];
    buf[0..8].copy_from_slice(&digits[0..8]);
    buf[9..13].copy_from_slice(&digits[8..12]);
    buf[14..18].copy_from_slice(&digits[12..16]);
    buf[19..23].copy_from_slice(&digits[16..20]);
    buf[24..36].copy_from_slice(&digits[20..32]);
    buf
}

/// The text of one new UUIDv7, now ([`new_id_texts`]).
fn new_id_text() -> [u8; 36] {
    let [id] = new_id_texts::<1>(ms_of_nanos(crate::time::Timestamp::now().as_nanos()));
    id
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
    /// `N` new ids made at `now_ms` ([`new_id_texts`]).
    pub(crate) fn generate_at<const N: usize>(now_ms: u64) -> [Self; N] {
        new_id_texts::<N>(now_ms).map(IdText::Uuid)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // SAFETY: a `Uuid` is only made by `uuid_text` (hex digits and dashes) or from
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

/// An id as OpenTelemetry writes it: the last `digits` hex digits of a call id (16, a span
/// id) or a trace id (32) — a UUID without its dashes, a hex id as it is. `None` for an id
/// that is neither a valid call id nor trace id, is too short, or would be all zeros (which
/// OpenTelemetry reads as no id). `traceparent` and the OTLP exporter both write ids this
/// way, so that the same call has the same OpenTelemetry id in both.
pub(crate) fn otel_hex(id: &str, digits: usize) -> Option<String> {
    if !(is_valid_call_id(id) || is_valid_trace_id(id)) {
        return None;
    }
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let tail = &hex[hex.len().checked_sub(digits)?..];
    tail.bytes().any(|c| c != b'0').then(|| tail.to_string())
}

pub(crate) fn is_lower_hex(s: &str) -> bool {
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
    fn ids_made_at_a_given_millisecond() {
        // On a thread of its own, whose last id is older than `ms` (and which no other test
        // shares: its generator then remembers a millisecond in 2100).
        let ms = 4_102_444_800_123; // 2100-01-01T00:00:00.123Z
        let [a, b, c] = std::thread::spawn(move || {
            let [a, b] = new_id_texts::<2>(ms);
            let [c] = new_id_texts::<1>(ms - 5); // the clock stepped back
            [a, b, c]
        })
        .join()
        .unwrap();
        for id in [a, b, c] {
            let u = uuid::Uuid::parse_str(std::str::from_utf8(&id).unwrap()).unwrap();
            assert_eq!(u.get_version_num(), 7);
            assert_eq!(
                u.get_timestamp().unwrap().to_unix(),
                (ms / 1000, (ms % 1000) as u32 * 1_000_000)
            );
        }
        assert!(
            a < b && b < c,
            "not ordered: {:?}",
            [a, b, c].map(|x| String::from_utf8(x.to_vec()))
        );
    }

    #[test]
    fn uuid_text_is_the_canonical_form() {
        let mut state = IdState::seeded();
        let edges = [0, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210];
        for i in 0..1003 {
            let n = match edges.get(i) {
                Some(n) => *n,
                None => (u128::from(state.next_u64()) << 64) | u128::from(state.next_u64()),
            };
            let text = uuid_text(n);
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                uuid::Uuid::from_u128(n).hyphenated().to_string()
            );
        }
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
