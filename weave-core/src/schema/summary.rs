//! Call summaries: the client-side roll-up sent with a call's end (PROTOCOL §4.4) and the
//! `summary.weave` block a server derives on every read (§4.5).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::JsonMap;
use crate::time::Timestamp;

/// The key of per-model token usage in a summary.
pub const USAGE_KEY: &str = "usage";
/// The key of the subtree's success/error counts in a summary.
pub const STATUS_COUNTS_KEY: &str = "status_counts";
/// The key of the server-derived block in a read-side summary.
pub const WEAVE_KEY: &str = "weave";

/// The status of a call as the server derives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStatus {
    /// Ended without an exception, and so did every descendant.
    Success,
    /// Ended with an exception.
    Error,
    /// Not ended yet.
    Running,
    /// Ended without an exception, but a descendant failed.
    DescendantError,
}

impl TraceStatus {
    /// The wire spelling: `"success"`, `"error"`, `"running"`, `"descendant_error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Success => "success",
            TraceStatus::Error => "error",
            TraceStatus::Running => "running",
            TraceStatus::DescendantError => "descendant_error",
        }
    }

    /// Derives the status from a call's stored fields, as the server does.
    pub fn derive(exception: Option<&str>, ended: bool, summary: Option<&JsonMap>) -> Self {
        if exception.is_some_and(|e| !e.is_empty()) {
            TraceStatus::Error
        } else if !ended {
            TraceStatus::Running
        } else if summary
            .and_then(|s| s.get(STATUS_COUNTS_KEY))
            .and_then(|c| c.get("error"))
            .and_then(Value::as_f64)
            .is_some_and(|n| n > 0.0)
        {
            TraceStatus::DescendantError
        } else {
            TraceStatus::Success
        }
    }
}

/// The function name inside an op ref (`weave:///e/p/op/name:digest` → `name`), or the raw
/// op name when it is not a ref. This is `summary.weave.trace_name` and `Call::func_name`.
pub fn op_display_name(op_name: &str) -> &str {
    match crate::refs::parse_op_name(op_name) {
        Some(name) => name,
        None => op_name,
    }
}

/// Builds the server-derived `summary.weave` block (status, latency_ms, display_name or
/// trace_name) and inserts it into `summary`, replacing any stored `weave` key.
pub fn derive_weave_summary(
    summary: &mut JsonMap,
    op_name: &str,
    display_name: Option<&str>,
    started_at: Timestamp,
    ended_at: Option<Timestamp>,
    exception: Option<&str>,
) {
    let status = TraceStatus::derive(exception, ended_at.is_some(), Some(summary));
    let mut weave = Map::new();
    weave.insert("status".into(), Value::from(status.as_str()));
    match display_name {
        Some(name) => weave.insert("display_name".into(), Value::from(name)),
        None => weave.insert("trace_name".into(), Value::from(op_display_name(op_name))),
    };
    if let Some(ended_at) = ended_at {
        weave.insert(
            "latency_ms".into(),
            Value::from(ended_at.millis_since(started_at)),
        );
    }
    summary.insert(WEAVE_KEY.into(), Value::Object(weave));
}

/// Python's `sum_dict_leaves`: combines summaries by merging dicts recursively; for each
/// non-dict key the non-null values are collected (lists are flattened), and summed when they
/// are all numbers, else kept as a list.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use weave_core::schema::summary::sum_dict_leaves;
/// let a = json!({"usage": {"gpt-4o": {"prompt_tokens": 10, "requests": 1}}});
/// let b = json!({"usage": {"gpt-4o": {"prompt_tokens": 5, "requests": 1}}});
/// let sum = sum_dict_leaves([a.as_object().unwrap(), b.as_object().unwrap()]);
/// assert_eq!(serde_json::Value::Object(sum), json!({"usage": {"gpt-4o": {"prompt_tokens": 15, "requests": 2}}}));
/// ```
pub fn sum_dict_leaves<'a>(dicts: impl IntoIterator<Item = &'a JsonMap>) -> JsonMap {
    let mut nested: Vec<(String, Vec<&'a JsonMap>)> = Vec::new();
    let mut leaves: Vec<(String, Vec<&'a Value>)> = Vec::new();
    fn slot<'v, T>(v: &'v mut Vec<(String, Vec<T>)>, k: &str) -> &'v mut Vec<T> {
        let i = match v.iter().position(|(key, _)| key == k) {
            Some(i) => i,
            None => {
                v.push((k.to_string(), Vec::new()));
                v.len() - 1
            }
        };
        &mut v[i].1
    }
    // Key order follows Python: leaf keys in first-seen order, then nested keys.
    let mut order: Vec<String> = Vec::new();
    for d in dicts {
        for (k, v) in d {
            if !order.iter().any(|o| o == k) {
                order.push(k.clone());
            }
            match v {
                Value::Object(m) => slot(&mut nested, k).push(m),
                Value::Null => {}
                Value::Array(items) => slot(&mut leaves, k).extend(items.iter()),
                other => slot(&mut leaves, k).push(other),
            }
        }
    }
    let mut out = Map::new();
    for (k, values) in &leaves {
        if nested.iter().any(|(n, _)| n == k) {
            continue;
        }
        let summed = if values.iter().all(|v| is_number(v)) {
            sum_numbers(values)
        } else {
            Value::Array(values.iter().map(|v| (*v).clone()).collect())
        };
        out.insert(k.clone(), summed);
    }
    for (k, maps) in nested {
        out.insert(k, Value::Object(sum_dict_leaves(maps)));
    }
    // Restore first-seen key order.
    let mut ordered = Map::new();
    for k in order {
        if let Some(v) = out.remove(&k) {
            ordered.insert(k, v);
        }
    }
    ordered
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Number(_) | Value::Bool(_))
}

fn sum_numbers(values: &[&Value]) -> Value {
    let mut int_sum: i64 = 0;
    let mut float_sum: f64 = 0.0;
    let mut is_float = false;
    let mut overflow = false;
    for v in values {
        let (i, f) = match v {
            Value::Bool(b) => (Some(*b as i64), *b as i64 as f64),
            Value::Number(n) => (n.as_i64(), n.as_f64().unwrap_or(0.0)),
            _ => (Some(0), 0.0),
        };
        match i {
            Some(i) if !is_float => match int_sum.checked_add(i) {
                Some(s) => int_sum = s,
                None => overflow = true,
            },
            _ => is_float = true,
        }
        float_sum += f;
    }
    if is_float || overflow {
        Number::from_f64(float_sum)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    } else {
        Value::from(int_sum)
    }
}

/// Python's `_deep_update`: writes `src` into `dst`, merging nested objects and letting `src`
/// win on every other key.
pub fn deep_update(dst: &mut JsonMap, src: JsonMap) {
    for (k, v) in src {
        match (dst.get_mut(&k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => deep_update(d, s),
            (_, v) => {
                dst.insert(k, v);
            }
        }
    }
}

/// The usage summary of a call whose output is an object carrying `usage` (an object) and
/// `model` (a string): `{"usage": {<model>: {"requests": 1, ...usage}}}`.
pub fn usage_from_output(output: &Value) -> Option<JsonMap> {
    let obj = output.as_object()?;
    let usage = obj.get(USAGE_KEY)?.as_object()?;
    let model = obj.get("model")?.as_str()?;
    let mut entry = Map::new();
    entry.insert("requests".into(), Value::from(1));
    for (k, v) in usage {
        entry.insert(k.clone(), v.clone());
    }
    let mut per_model = Map::new();
    per_model.insert(model.to_string(), Value::Object(entry));
    let mut summary = Map::new();
    summary.insert(USAGE_KEY.into(), Value::Object(per_model));
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonMap {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn sums_like_python() {
        let a = obj(
            json!({"status_counts": {"success": 5, "error": 1}, "x": 1.5, "s": "a", "n": null}),
        );
        let b = obj(
            json!({"status_counts": {"success": 3, "error": 2, "pending": 1}, "x": 1, "s": "b"}),
        );
        let sum = sum_dict_leaves([&a, &b]);
        assert_eq!(
            Value::Object(sum),
            json!({"status_counts": {"success": 8, "error": 3, "pending": 1}, "x": 2.5, "s": ["a", "b"]})
        );
    }

    #[test]
    fn status_derivation() {
        let s = obj(json!({"status_counts": {"success": 1, "error": 1}}));
        assert_eq!(
            TraceStatus::derive(Some("boom"), true, None),
            TraceStatus::Error
        );
        assert_eq!(
            TraceStatus::derive(Some(""), false, None),
            TraceStatus::Running
        );
        assert_eq!(
            TraceStatus::derive(None, true, Some(&s)),
            TraceStatus::DescendantError
        );
        assert_eq!(TraceStatus::derive(None, true, None), TraceStatus::Success);
    }

    #[test]
    fn usage_needs_usage_and_model() {
        assert!(usage_from_output(&json!({"usage": {"a": 1}})).is_none());
        let s = usage_from_output(&json!({"model": "m", "usage": {"prompt_tokens": 3}})).unwrap();
        assert_eq!(
            Value::Object(s),
            json!({"usage": {"m": {"requests": 1, "prompt_tokens": 3}}})
        );
    }
}
