//! OpenTelemetry attributes as the Weave server reads them: flat dotted keys expanded into a
//! tree, looked up by dotted path, and the conventions tables that say which keys hold a
//! call's inputs, outputs, usage and attributes.
//!
//! The rules follow `weave/trace_server/opentelemetry/helpers.py`, `attributes.py` and
//! `constants.py` of the `weave` package (0.52):
//!
//! - a string value that starts with `[` or `{` and parses as JSON is stored parsed;
//! - `a.b.c = v` is stored as `{"a": {"b": {"c": v}}}`; a key that would hold both a value
//!   and nested keys (`a = 1` and `a.b = 2`) makes the span invalid;
//! - a lookup by dotted path walks objects by key and arrays by index;
//! - a value found by a convention is taken only when truthy (Python's truth: not `null`,
//!   `false`, `0`, `""`, `[]` or `{}`), and objects whose keys are exactly `"0"…"n-1"` below
//!   it become arrays, in the span's attribute tree too (the Weave server converts them in
//!   place, so the dump under `otel_span` shows the arrays).

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::{Map, Number, Value};
use weave_core::JsonMap;

/// The most dot-separated parts an attribute key may have: deeper keys would nest values
/// past what the store reads back.
pub const MAX_KEY_PARTS: usize = 64;

/// Where a call's inputs may be, in order of preference: the first truthy one is kept, under
/// its own key (`{"input.value": …}`).
pub const INPUT_KEYS: &[&str] = &[
    "ai.prompt",                       // Vercel AI SDK
    "gen_ai.prompt",                   // OpenTelemetry GenAI (legacy)
    "input.value",                     // OpenInference
    "mlflow.spanInputs",               // MLflow
    "gen_ai.input.messages",           // OpenTelemetry GenAI / Logfire
    "pydantic_ai.all_messages",        // Pydantic AI
    "traceloop.entity.input",          // Traceloop
    "gcp.vertex.agent.tool_call_args", // Google ADK
    "gcp.vertex.agent.llm_request",    // Google ADK
    "input",
    "inputs",
];

/// Where a call's output may be, in order of preference.
pub const OUTPUT_KEYS: &[&str] = &[
    "ai.response",
    "gen_ai.completion",
    "output.value",
    "gen_ai.output.messages",
    "mlflow.spanOutputs",
    "final_result",
    "gen_ai.content.completion",
    "traceloop.entity.output",
    "gcp.vertex.agent.tool_response",
    "gcp.vertex.agent.llm_response",
    "output",
    "outputs",
];

/// A field of a call and the attribute keys it is read from, first truthy wins.
pub type Convention = (&'static str, &'static [&'static str]);

/// Token usage: each value is read as an integer where it can be (the table the tracing
/// layer reads too).
pub use weave_core::genai::WEAVE_SERVER_USAGE_KEYS as USAGE_KEYS;

/// The call's `attributes` (model, provider, …).
pub const ATTRIBUTE_KEYS: &[Convention] = &[
    (
        "system",
        &["gen_ai.system_instructions", "gen_ai.system", "llm.system"],
    ),
    (
        "kind",
        &[
            "weave.span.kind",
            "traceloop.span.kind",
            "openinference.span.kind",
        ],
    ),
    (
        "model",
        &[
            "gen_ai.response.model",
            "gen_ai.request.model",
            "llm.model_name",
            "ai.model.id",
        ],
    ),
    (
        "provider",
        &["gen_ai.provider.name", "llm.provider", "ai.model.provider"],
    ),
    (
        "model_parameters",
        &["gen_ai.request", "llm.invocation_parameters"],
    ),
    ("operation_name", &["gen_ai.operation.name"]),
    ("response_id", &["gen_ai.response.id"]),
    ("finish_reasons", &["gen_ai.response.finish_reasons"]),
    ("agent_name", &["gen_ai.agent.name"]),
    ("agent_id", &["gen_ai.agent.id"]),
];

/// W&B's own fields: display name, thread and turn, user attributes, run.
pub const WANDB_KEYS: &[Convention] = &[
    ("display_name", &["wandb.display_name"]),
    (
        "thread_id",
        &[
            "gen_ai.conversation.id",
            "gcp.vertex.agent.session_id",
            "wandb.thread_id",
        ],
    ),
    ("attributes", &["wandb.attributes"]),
    ("wb_run_id", &["wandb.wb_run_id"]),
    ("wb_run_step", &["wandb.wb_run_step"]),
    ("wb_run_step_end", &["wandb.wb_run_step_end"]),
    (
        "is_turn",
        &[
            "gen_ai.conversation.id",
            "gcp.vertex.agent.session_id",
            "wandb.is_turn",
        ],
    ),
];

/// Times that replace the span's own (Langfuse sends the real ones there).
pub const TIME_OVERRIDE_KEYS: &[Convention] = &[
    ("start_time", &["langfuse.startTime"]),
    ("end_time", &["langfuse.endTime"]),
];

/// An attribute value as JSON: bytes as standard base64, a non-finite double as Python
/// spells it (`"nan"`, `"inf"`, `"-inf"`), a value that is not set as `null`.
pub fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => double(*d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let mut m = Map::new();
            for pair in &kv.values {
                m.insert(
                    pair.key.clone(),
                    pair.value.as_ref().map_or(Value::Null, any_value),
                );
            }
            Value::Object(m)
        }
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

/// A double as JSON; NaN and the infinities as Python's `str()` of them.
pub fn double(d: f64) -> Value {
    match Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None if d.is_nan() => Value::from("nan"),
        None if d > 0.0 => Value::from("inf"),
        None => Value::from("-inf"),
    }
}

/// Expands flat `key = value` pairs into a tree (see the module doc). Fails, naming the key,
/// when the keys do not form a tree or a key is too deep.
pub fn expand(pairs: &[KeyValue]) -> Result<JsonMap, String> {
    let mut root = Map::new();
    for kv in pairs {
        let mut value = kv.value.as_ref().map_or(Value::Null, any_value);
        if let Value::String(s) = &value {
            if s.starts_with('[') || s.starts_with('{') {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    value = parsed;
                }
            }
        }
        set_path(&mut root, &kv.key, value)?;
    }
    Ok(root)
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

fn conflict(key: &str, with: &str) -> String {
    format!(
        "attribute {key:?} conflicts with {with:?}: one key cannot hold both a value and \
         nested keys (send either {with:?} or {with:?}.*, not both)"
    )
}

/// Sets `value` at the dotted `key` of `root`, refusing to replace a nested object or array
/// with a plain value or to nest under a plain value.
fn set_path(root: &mut JsonMap, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() > MAX_KEY_PARTS {
        return Err(format!(
            "attribute key {:?}… has {} dot-separated parts, more than {MAX_KEY_PARTS}",
            key.chars().take(64).collect::<String>(),
            parts.len()
        ));
    }
    let (leaf, parents) = parts.split_last().expect("split yields at least one part");
    let mut node = root;
    for (i, part) in parents.iter().enumerate() {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        node = match entry {
            Value::Object(m) => m,
            _ => return Err(conflict(key, &parts[..=i].join("."))),
        };
    }
    if node.get(*leaf).is_some_and(is_container) && !is_container(&value) {
        return Err(conflict(key, key));
    }
    node.insert(leaf.to_string(), value);
    Ok(())
}

/// The value at the dotted `key` of `root`: a top-level key as is, else walked part by part
/// through objects (by key) and arrays (by decimal index).
pub fn lookup<'a>(root: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let top_level = root.as_object().is_some_and(|m| m.contains_key(key));
    if top_level || !key.contains('.') {
        return root.as_object_mut()?.get_mut(key);
    }
    let mut node = root;
    for part in key.split('.') {
        node = match node {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                a.get_mut(part.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(node)
}

/// Python's truth of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// `m`'s values in index order when its keys are exactly `"0"`, `"1"`, … `"n-1"` (an empty
/// object included).
fn as_indexed(m: &JsonMap) -> Option<Vec<Value>> {
    let mut slots: Vec<Option<&Value>> = vec![None; m.len()];
    for (k, v) in m {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i: usize = k.parse().ok()?;
        if i >= slots.len() || k != &i.to_string() || slots[i].is_some() {
            return None;
        }
        slots[i] = Some(v);
    }
    slots.into_iter().map(|v| v.cloned()).collect()
}

/// Turns every object below `v` reached through objects only (not through arrays) whose
/// keys are indices into an array, in place, then `v` itself.
fn index_objects_to_arrays(v: &mut Value) {
    if let Value::Object(m) = v {
        for child in m.values_mut() {
            index_objects_to_arrays(child);
        }
        if let Some(list) = as_indexed(m) {
            *v = Value::Array(list);
        }
    }
}

/// The value a convention finds at `key`: `None` unless truthy. Index-keyed objects below it
/// become arrays in `root` too; the value itself only in the copy returned.
fn found(root: &mut Value, key: &str) -> Option<Value> {
    let v = lookup(root, key)?;
    if !truthy(v) {
        return None;
    }
    if let Value::Object(m) = v {
        for child in m.values_mut() {
            index_objects_to_arrays(child);
        }
    }
    let mut copy = v.clone();
    if let Value::Object(m) = &copy {
        if let Some(list) = as_indexed(m) {
            copy = Value::Array(list);
        }
    }
    Some(copy)
}

/// The first of `keys` with a truthy value in `root`: `(key, value)`.
pub fn first_found(root: &mut Value, keys: &[&'static str]) -> Option<(&'static str, Value)> {
    keys.iter()
        .find_map(|key| found(root, key).map(|v| (*key, v)))
}

/// Each convention's field with the value of its first truthy key, passed through `read`;
/// fields with no value are left out.
pub fn fields(
    root: &mut Value,
    conventions: &[Convention],
    read: impl Fn(Value) -> Value,
) -> JsonMap {
    let mut out = Map::new();
    for (field, keys) in conventions {
        if let Some((_, v)) = first_found(root, keys) {
            out.insert(field.to_string(), read(v));
        }
    }
    out
}

/// Python's `int(value)` where it succeeds, else the value unchanged: booleans as 0 or 1,
/// finite numbers truncated, strings of decimal digits (with sign, surrounding whitespace
/// and `_` between digits).
pub fn python_int(v: Value) -> Value {
    match &v {
        Value::Bool(b) => Value::from(i64::from(*b)),
        Value::Number(n) if n.is_i64() || n.is_u64() => v,
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() && f.trunc().abs() < 9.2e18 => Value::from(f.trunc() as i64),
            _ => v,
        },
        Value::String(s) => int_literal(s).map_or(v, Value::from),
        _ => v,
    }
}

fn int_literal(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let bytes = digits.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_digit()
        || !bytes[bytes.len() - 1].is_ascii_digit()
        || digits.contains("__")
        || !bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
    {
        return None;
    }
    let plain: String = digits.chars().filter(|c| *c != '_').collect();
    let n: i64 = plain.parse().ok()?;
    Some(if negative { -n } else { n })
}

/// The integer in `v`, if it holds one.
pub fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    fn s(x: &str) -> any_value::Value {
        any_value::Value::StringValue(x.into())
    }

    #[test]
    fn keys_expand_into_a_tree_and_json_strings_parse() {
        let m = expand(&[
            kv("a.b", any_value::Value::IntValue(1)),
            kv("a.c", s("[1, 2]")),
            kv("d", s("{not json")),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"a": {"b": 1, "c": [1, 2]}, "d": "{not json"})
        );
    }

    #[test]
    fn a_value_and_nested_keys_conflict() {
        assert!(expand(&[kv("a", s("x")), kv("a.b", s("y"))]).is_err());
        assert!(expand(&[kv("a.b", s("y")), kv("a", s("x"))]).is_err());
        assert!(expand(&[kv("a.b.c", s("y")), kv("a.b", s("x"))]).is_err());
        // An object replacing an object is fine.
        assert!(expand(&[kv("a.b", s("y")), kv("a", s("{\"c\": 1}"))]).is_ok());
        let deep = vec!["k"; MAX_KEY_PARTS + 1].join(".");
        assert!(expand(&[kv(&deep, s("x"))]).is_err());
    }

    #[test]
    fn lookups_walk_objects_and_arrays() {
        let mut v = json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "x": 0});
        assert_eq!(lookup(&mut v, "a.b.1.c"), Some(&mut json!(2)));
        assert_eq!(lookup(&mut v, "a.b.2.c"), None);
        assert_eq!(lookup(&mut v, "a.z"), None);
        assert_eq!(
            first_found(&mut v, &["x", "a.b.0.c"]),
            Some(("a.b.0.c", json!(1)))
        );
    }

    #[test]
    fn index_keyed_objects_become_arrays() {
        let mut v = json!({"p": {"0": {"r": "u"}, "1": {"r": "a"}}, "q": {"m": {"0": 1}, "e": {}}});
        assert_eq!(
            first_found(&mut v, &["p"]),
            Some(("p", json!([{"r": "u"}, {"r": "a"}])))
        );
        // Only the value found is an array; in the tree it stays an object.
        assert_eq!(v["p"], json!({"0": {"r": "u"}, "1": {"r": "a"}}));
        assert_eq!(
            first_found(&mut v, &["q"]),
            Some(("q", json!({"m": [1], "e": []})))
        );
        // Below it, the tree changes too.
        assert_eq!(v["q"], json!({"m": [1], "e": []}));
        assert_eq!(
            as_indexed(json!({"0": 1, "2": 2}).as_object().unwrap()),
            None
        );
        assert_eq!(as_indexed(json!({"00": 1}).as_object().unwrap()), None);
    }

    #[test]
    fn ints_as_python_reads_them() {
        assert_eq!(python_int(json!("12")), json!(12));
        assert_eq!(python_int(json!(" -1_000 ")), json!(-1000));
        assert_eq!(python_int(json!("1__0")), json!("1__0"));
        assert_eq!(python_int(json!("3.5")), json!("3.5"));
        assert_eq!(python_int(json!(3.9)), json!(3));
        assert_eq!(python_int(json!(true)), json!(1));
        assert_eq!(python_int(json!([1])), json!([1]));
    }
}
