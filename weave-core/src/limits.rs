//! Size limits of the Weave server, applied the same way by every backend.
//!
//! A Weave server (ClickHouse) refuses rows over its limits; it keeps the row and replaces
//! each oversized JSON field with a marker (PROTOCOL §4.2). weave-rs does the same before
//! storing or sending, so an enormous input or output never takes the store, the queue or the
//! request down with it.

use serde_json::{json, Value};

/// A row (all JSON fields together) over this many bytes has its large fields replaced.
pub const ROW_BYTES_LIMIT: usize = 3 * 1024 * 1024 + 512 * 1024;
/// A JSON field over this many bytes, in a row over [`ROW_BYTES_LIMIT`], is replaced.
pub const FIELD_BYTES_LIMIT: usize = 1024 * 1024;
/// The error text of the marker, as the Weave server writes it.
pub const EXCEEDS_LIMITS: &str = "<EXCEEDS_LIMITS>";
/// Values nested deeper than this are replaced by [`too_deep_marker`]: JSON parsers (the
/// server's and serde_json's) refuse deeper documents, so storing them would lose the call.
pub const MAX_DEPTH: usize = 100;

/// The marker that replaces an oversized field: `{"_weave": {"error": "<EXCEEDS_LIMITS>"}}`.
pub fn exceeds_limits_marker() -> Value {
    json!({"_weave": {"error": EXCEEDS_LIMITS}})
}

/// The marker that replaces a value nested deeper than [`MAX_DEPTH`].
pub fn too_deep_marker() -> Value {
    json!({"_weave": {"error": "<EXCEEDS_MAX_DEPTH>"}})
}

/// Replaces every value nested deeper than [`MAX_DEPTH`] levels with [`too_deep_marker`].
/// Works without recursion, so arbitrarily deep values cannot overflow the stack here.
pub fn cap_depth(value: &mut Value) {
    let mut stack: Vec<(&mut Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
                drop_iteratively(std::mem::replace(v, too_deep_marker()))
            }
            Value::Array(items) => stack.extend(items.iter_mut().map(|x| (x, depth + 1))),
            Value::Object(m) => stack.extend(m.values_mut().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
}

/// Drops a value without recursion (a deep value's default drop recurses once per level).
fn drop_iteratively(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Whether `value` nests arrays or objects more than `max` levels deep. Recursion is
/// bounded by `max` (callers pass at most [`MAX_DEPTH`]), so a deep value cannot overflow
/// the stack here, and nothing is allocated.
pub fn depth_exceeds(value: &Value, max: usize) -> bool {
    match value {
        Value::Array(_) | Value::Object(_) if max == 0 => true,
        Value::Array(items) => items.iter().any(|v| depth_exceeds(v, max - 1)),
        Value::Object(m) => m.values().any(|v| depth_exceeds(v, max - 1)),
        _ => false,
    }
}

/// Serialises each field, and when their total is over [`ROW_BYTES_LIMIT`], replaces each
/// field over [`FIELD_BYTES_LIMIT`] by the marker. Returns the JSON texts, in order.
pub fn serialize_row_fields(fields: &[&Value]) -> Vec<String> {
    limit_row_texts(
        fields
            .iter()
            .map(|v| {
                serde_json::to_string(v).unwrap_or_else(|_| exceeds_limits_marker().to_string())
            })
            .collect(),
    )
}

/// [`serialize_row_fields`] for fields already serialised.
pub fn limit_row_texts(mut texts: Vec<String>) -> Vec<String> {
    let total: usize = texts.iter().map(String::len).sum();
    if total > ROW_BYTES_LIMIT {
        for t in texts.iter_mut() {
            if t.len() > FIELD_BYTES_LIMIT {
                *t = exceeds_limits_marker().to_string();
            }
        }
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_values_are_capped_without_recursion() {
        let mut v = Value::Null;
        for _ in 0..20_000 {
            v = Value::Array(vec![v]);
        }
        cap_depth(&mut v);
        let mut depth = 0;
        let mut cur = &v;
        while let Value::Array(items) = cur {
            cur = &items[0];
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(cur, &too_deep_marker());
    }

    #[test]
    fn oversized_fields_get_the_marker() {
        let big = Value::String("x".repeat(2 * 1024 * 1024));
        let small = json!({"a": 1});
        let texts = serialize_row_fields(&[&big, &big, &small]);
        assert_eq!(texts[0], exceeds_limits_marker().to_string());
        assert_eq!(texts[2], "{\"a\":1}");
        let texts = serialize_row_fields(&[&Value::String("x".repeat(1024 * 1024 + 10))]);
        assert!(
            texts[0].len() > FIELD_BYTES_LIMIT,
            "a row under the row limit is kept whole"
        );
    }
}
