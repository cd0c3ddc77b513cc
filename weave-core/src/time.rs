//! Timestamps as the protocol writes them: RFC 3339, UTC.
//!
//! [`Timestamp`] keeps nanoseconds since the Unix epoch. It parses `Z` and `+00:00` (and any
//! other offset, converted to UTC) with 0 to 9 fractional digits, and formats like the Python
//! client: `2025-01-02T03:04:05.123456Z` (microseconds), or nine digits when the value has
//! sub-microsecond precision.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::WeaveError;

/// A UTC instant with nanosecond precision, serialised as an RFC 3339 string.
///
/// # Examples
///
/// ```
/// use weave_core::Timestamp;
/// let t: Timestamp = "2025-01-02T03:04:05.5+00:00".parse().unwrap();
/// assert_eq!(t.to_string(), "2025-01-02T03:04:05.500000Z");
/// assert_eq!(t, "2025-01-02T03:04:05.500Z".parse().unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Nanoseconds since the Unix epoch, from the system clock (a vDSO read on Linux), not
/// through a calendar date. On Linux straight from `clock_gettime`: `SystemTime::now` and
/// `duration_since` take three times the instructions, which a traced call pays twice.
#[cfg(target_os = "linux")]
fn now_nanos() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid `timespec` to write into, and CLOCK_REALTIME always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } == 0 {
        #[allow(clippy::unnecessary_cast)] // `time_t` and `c_long` are not i64 everywhere
        return (ts.tv_sec as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as i64);
    }
    system_now_nanos()
}

#[cfg(not(target_os = "linux"))]
fn now_nanos() -> i64 {
    system_now_nanos()
}

fn system_now_nanos() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

impl Timestamp {
    /// The current time, at microsecond precision (as Python's `datetime` records it).
    pub fn now() -> Self {
        let ns = now_nanos();
        Timestamp(ns - ns.rem_euclid(1000))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// From nanoseconds since the Unix epoch.
    pub fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// From a chrono UTC datetime (saturating outside the years 1677..2262).
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_nanos_opt().unwrap_or(if dt.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        }))
    }

    /// As a chrono UTC datetime.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.0)
    }

    /// Whole milliseconds from `earlier` to `self`, rounded down (the protocol's `latency_ms`).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        (self.0 as i128 - earlier.0 as i128).div_euclid(1_000_000) as i64
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if self.0.rem_euclid(1000) == 0 {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Nanos
        };
        f.write_str(&self.to_datetime().to_rfc3339_opts(format, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = WeaveError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s_trim = s.trim();
        DateTime::parse_from_rfc3339(s_trim)
            .map(|dt| Timestamp::from_datetime(dt.with_timezone(&Utc)))
            .or_else(|e| {
                // The Weave reference server returns calls ingested through OpenTelemetry
                // with naive datetimes (`2026-11-24T12:30:31.885867`); servers store UTC.
                chrono::NaiveDateTime::parse_from_str(s_trim, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|n| Timestamp::from_datetime(n.and_utc()))
                    .map_err(|_| e)
            })
            .map_err(|e| {
                WeaveError::invalid_input(format!(
                    "invalid timestamp {s:?}: {e} (expected RFC 3339, e.g. 2025-01-02T03:04:05.123456Z)"
                ))
            })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Timestamp::from_datetime(dt)
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        Timestamp::from_datetime(DateTime::<Utc>::from(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_precisions_and_offsets() {
        let base: Timestamp = "2025-01-02T03:04:05Z".parse().unwrap();
        for (s, extra) in [
            ("2025-01-02T03:04:05+00:00", 0),
            ("2025-01-02T03:04:05.1Z", 100_000_000),
            ("2025-01-02T03:04:05.123456789Z", 123_456_789),
            ("2025-01-02T05:04:05.000001+02:00", 1_000),
        ] {
            let t: Timestamp = s.parse().unwrap();
            assert_eq!(t.as_nanos() - base.as_nanos(), extra, "{s}");
        }
        assert!("2025-01-02 nope".parse::<Timestamp>().is_err());
        assert!("".parse::<Timestamp>().is_err());
    }

    #[test]
    fn formats_like_python() {
        let t: Timestamp = "2025-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(t.to_string(), "2025-01-02T03:04:05.000000Z");
        let t: Timestamp = "2025-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(t.to_string(), "2025-01-02T03:04:05.123456789Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-01-02T03:04:05.123456789Z\""
        );
    }

    #[test]
    fn latency_floors() {
        let a: Timestamp = "2025-01-02T03:04:05.0009Z".parse().unwrap();
        let b: Timestamp = "2025-01-02T03:04:06.0008Z".parse().unwrap();
        assert_eq!(b.millis_since(a), 999);
    }
}
