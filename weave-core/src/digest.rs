//! Content digests, byte for byte as the Python `weave` package computes them (PROTOCOL §7.2).
//!
//! - [`canonical_json`] is Python's `json.dumps(value, sort_keys=True)`: separators `", "` and
//!   `": "`, keys sorted by code point, `ensure_ascii` escapes (`\u00e9`, surrogate pairs for
//!   astral characters), floats in Python's `repr` (`1.0`, `1e-05`, `1e+21`).
//! - [`bytes_digest`] is sha256, url-safe base64 with `-` → `X` and `_` → `Y`, unpadded: 43
//!   characters of `[A-Za-z0-9]`.
//! - Objects, table rows and files use [`bytes_digest`]; a table's digest is the hex sha256 of
//!   its row digests concatenated.
//!
//! ```
//! use serde_json::json;
//! use weave_core::digest::{canonical_json, object_digest};
//! assert_eq!(canonical_json(&json!({"b": 1.0, "a": [1e-5, "é"]})), r#"{"a": [1e-05, "\u00e9"], "b": 1.0}"#);
//! assert_eq!(object_digest(&json!({"a": 1, "b": 2})), "2El9nYJ3CnBykmEJWqmPfvUVTXr0mfgDe2yiUClnhaY");
//! ```

use std::fmt::Write;

use base64::Engine;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// Python's `json.dumps(value, sort_keys=True)` (with its default `ensure_ascii=True`).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// sha256 of `bytes`, url-safe base64 without padding, `-` → `X`, `_` → `Y`.
pub fn bytes_digest(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(bytes))
        .replace('-', "X")
        .replace('_', "Y")
}

/// The digest of an object's value (`bytes_digest(canonical_json(val))`).
pub fn object_digest(value: &Value) -> String {
    bytes_digest(canonical_json(value).as_bytes())
}

/// The digest of a table row (as [`object_digest`]).
pub fn row_digest(row: &Value) -> String {
    object_digest(row)
}

/// The digest of a table: hex sha256 of its row digests concatenated in order.
pub fn table_digest<S: AsRef<str>>(row_digests: &[S]) -> String {
    let mut h = Sha256::new();
    for d in row_digests {
        h.update(d.as_ref().as_bytes());
    }
    let mut hex = String::with_capacity(64);
    for b in h.finalize() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The digest of a file's raw content.
pub fn file_digest(content: &[u8]) -> String {
    bytes_digest(content)
}

// Iterative over containers would avoid deep recursion, but values reaching here are capped
// at `limits::MAX_DEPTH` by the client, so recursion depth is bounded.
fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            // UTF-8 byte order is code point order, which is how Python sorts str keys.
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        out.push_str(&python_float_repr(n.as_f64().unwrap_or(f64::NAN)));
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in `-4 < decpt <= 16`, else scientific with a signed exponent of at
/// least two digits; fixed notation always has a fractional part (`1.0`).
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // Rust's `{:e}` prints the shortest round-trip digits: `-1.2345e-7`.
    let sci = format!("{x:e}");
    let (sign, sci) = match sci.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", sci.as_str()),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let n = digits.len() as i32;
    let body = if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt < n {
            format!(
                "{}.{}",
                &digits[..decpt as usize],
                &digits[decpt as usize..]
            )
        } else {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        }
    } else {
        let m = if n > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let e = decpt - 1;
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (x, py) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e21, "1e+21"),
            (123456789.125, "123456789.125"),
            (-0.0, "-0.0"),
            (1.4168064702669491e-08, "1.4168064702669491e-08"),
            (52870173.98867132, "52870173.98867132"),
            (1.5e300, "1.5e+300"),
            (-2.5e-300, "-2.5e-300"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(python_float_repr(x), py, "{x:e}");
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let v = serde_json::json!("a\"b\\c\n\t\u{1}\u{7f}é😀");
        assert_eq!(
            canonical_json(&v),
            r#""a\"b\\c\n\t\u0001\u007f\u00e9\ud83d\ude00""#
        );
    }
}
