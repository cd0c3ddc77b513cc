//! The OpenTelemetry GenAI (and OpenInference, Vercel AI) conventions Weave reads token usage
//! from, in one table shared by the tracing layer (span fields → `summary.usage`) and the
//! server's OTLP ingest (span attributes → `summary.usage`), as the Weave server maps
//! OpenTelemetry spans (its `trace_server/opentelemetry/constants.py`) — and how a span's
//! fields become the call's fields under these conventions, as plain functions over field
//! names and JSON values:
//!
//! - [`field_role`]: whether a field is an input, a GenAI result, or the requested model;
//! - [`usage_by_model`]: the GenAI fields → `summary.usage[model]`;
//! - [`response_output`]: the `gen_ai.response.*` fields → `output` (when there is no other).

use serde_json::{json, Map, Value};

use crate::JsonMap;

/// A usage field of Weave's `LLMUsage` and the attribute keys it is read from, in order: the
/// first key present wins.
pub type UsageConvention = (&'static str, &'static [&'static str]);

/// Weave's usage keys and the span attributes they come from.
pub const USAGE_KEYS: &[UsageConvention] = &[
    ("input_tokens", &["gen_ai.usage.input_tokens"]),
    (
        "prompt_tokens",
        &[
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
            "ai.usage.promptTokens",
        ],
    ),
    (
        "completion_tokens",
        &[
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
            "ai.usage.completionTokens",
        ],
    ),
    ("output_tokens", &["gen_ai.usage.output_tokens"]),
    (
        "total_tokens",
        &["llm.usage.total_tokens", "llm.token_count.total"],
    ),
    (
        "cache_creation_input_tokens",
        &["gen_ai.usage.cache_creation.input_tokens"],
    ),
    (
        "cache_read_input_tokens",
        &["gen_ai.usage.cache_read.input_tokens"],
    ),
];

/// The attribute keys naming the model a span's usage is for, in order: the response's model,
/// else the request's.
pub const MODEL_KEYS: &[&str] = &[
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
];

/// The attribute keys that name the requested model: inputs of the call that are also kept
/// for [`usage_by_model`] (see [`FieldRole::InputAndModel`]).
const REQUEST_MODEL_KEYS: &[&str] = &["gen_ai.request.model", "llm.model_name"];

/// The key prefixes of GenAI results (token usage, response fields): not inputs of the call.
const RESULT_PREFIXES: &[&str] = &[
    "gen_ai.usage.",
    "gen_ai.response.",
    "llm.token_count.",
    "llm.usage.",
    "ai.usage.",
];

/// The key prefix of the GenAI response fields (id, model, finish reasons) that are a call's
/// output when it has no other (see [`response_output`]).
const RESPONSE_PREFIX: &str = "gen_ai.response.";

/// What a span field (or attribute) is to the Weave call made of the span, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    /// An input of the call: any name the GenAI conventions do not claim.
    Input,
    /// The requested model (`gen_ai.request.model`, `llm.model_name`): an input, and also a
    /// GenAI field, naming the model usage is reported under when the response names none.
    InputAndModel,
    /// A GenAI result (`gen_ai.usage.*`, `gen_ai.response.*`, `llm.token_count.*`, …): not an
    /// input; read by [`usage_by_model`] and [`response_output`] when the call ends.
    Result,
}

/// The role of the span field or attribute `name` (see [`FieldRole`]).
pub fn field_role(name: &str) -> FieldRole {
    if RESULT_PREFIXES.iter().any(|p| name.starts_with(p)) {
        FieldRole::Result
    } else if REQUEST_MODEL_KEYS.contains(&name) {
        FieldRole::InputAndModel
    } else {
        FieldRole::Input
    }
}

/// An integer count: a JSON integer, or text holding one.
fn as_count(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `(model, usage)` from a span's GenAI fields (those whose [`field_role`] is not
/// [`FieldRole::Input`]), for `summary.usage[model]`: the [`USAGE_KEYS`] found, with
/// `total_tokens` filled in and `requests: 1`, as the Weave server and the Python SDK do. The
/// model is the first of [`MODEL_KEYS`] present, else `"unknown"`. `None` without usage.
pub fn usage_by_model(genai: &JsonMap) -> Option<(String, JsonMap)> {
    let mut usage = Map::new();
    for (key, sources) in USAGE_KEYS {
        if let Some(n) = sources
            .iter()
            .find_map(|s| genai.get(*s).and_then(as_count))
        {
            usage.insert((*key).to_string(), json!(n));
        }
    }
    if usage.is_empty() {
        return None;
    }
    let get = |k: &str| usage.get(k).and_then(Value::as_i64);
    if !usage.contains_key("total_tokens") {
        if let (Some(p), Some(c)) = (get("prompt_tokens"), get("completion_tokens")) {
            usage.insert("total_tokens".into(), json!(p + c));
        } else if let (Some(i), Some(o)) = (get("input_tokens"), get("output_tokens")) {
            usage.insert("total_tokens".into(), json!(i + o));
        }
    }
    usage.insert("requests".into(), json!(1));
    let model = MODEL_KEYS
        .iter()
        .find_map(|k| genai.get(*k).and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_string();
    Some((model, usage))
}

/// The `gen_ai.response.*` fields (id, model, finish reasons) of a span's GenAI fields, as the
/// call's output when it has no other: they are results, not inputs. `None` without any.
pub fn response_output(genai: &JsonMap) -> Option<Value> {
    let response: JsonMap = genai
        .iter()
        .filter(|(k, _)| k.starts_with(RESPONSE_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!response.is_empty()).then_some(Value::Object(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genai_field_roles_split_results_from_inputs() {
        assert_eq!(field_role("gen_ai.usage.input_tokens"), FieldRole::Result);
        assert_eq!(field_role("gen_ai.response.model"), FieldRole::Result);
        assert_eq!(field_role("llm.token_count.prompt"), FieldRole::Result);
        assert_eq!(field_role("llm.usage.total_tokens"), FieldRole::Result);
        assert_eq!(field_role("ai.usage.promptTokens"), FieldRole::Result);
        assert_eq!(field_role("gen_ai.request.model"), FieldRole::InputAndModel);
        assert_eq!(field_role("llm.model_name"), FieldRole::InputAndModel);
        assert_eq!(field_role("gen_ai.request.temperature"), FieldRole::Input);
        assert_eq!(field_role("url"), FieldRole::Input);
    }

    #[test]
    fn genai_usage_follows_the_server_mapping() {
        let mut g = Map::new();
        g.insert("gen_ai.usage.input_tokens".into(), json!(10));
        g.insert("gen_ai.usage.output_tokens".into(), json!("5"));
        g.insert("gen_ai.request.model".into(), json!("gpt-4o"));
        g.insert("gen_ai.response.model".into(), json!("gpt-4o-2024-08-06"));
        let (model, u) = usage_by_model(&g).unwrap();
        assert_eq!(model, "gpt-4o-2024-08-06");
        assert_eq!(
            Value::Object(u),
            json!({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "requests": 1})
        );
        assert!(usage_by_model(&Map::new()).is_none());
    }

    #[test]
    fn genai_usage_without_a_model_is_unknown_and_keeps_a_given_total() {
        let mut g = Map::new();
        g.insert("llm.token_count.prompt".into(), json!(3));
        g.insert("llm.token_count.completion".into(), json!(4));
        g.insert("llm.token_count.total".into(), json!(9));
        let (model, u) = usage_by_model(&g).unwrap();
        assert_eq!(model, "unknown");
        assert_eq!(
            Value::Object(u),
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9, "requests": 1})
        );
    }

    #[test]
    fn genai_response_fields_are_the_output() {
        let mut g = Map::new();
        g.insert("gen_ai.usage.input_tokens".into(), json!(10));
        g.insert("gen_ai.request.model".into(), json!("gpt-4o"));
        assert_eq!(response_output(&g), None);
        g.insert("gen_ai.response.id".into(), json!("r1"));
        assert_eq!(
            response_output(&g),
            Some(json!({"gen_ai.response.id": "r1"}))
        );
    }
}
