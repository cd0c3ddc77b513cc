//! The GenAI conventions Weave reads token usage, the model and the response from —
//! OpenTelemetry GenAI (current and older names), OpenInference, the Vercel AI SDK — in one
//! place: [`USAGE_KEYS`] and [`MODEL_KEYS`] for the tracing layer's spans (and the spans the
//! Rust GenAI crates make), [`WEAVE_SERVER_USAGE_KEYS`] for `weave serve`'s OTLP ingest, which
//! maps spans exactly as the Weave server does (its `trace_server/opentelemetry/constants.py`).
//!
//! - [`field_role`]: whether a field is an input, a GenAI result, or the requested model;
//! - [`GenAiFields`]: a span's GenAI fields as recorded → [`ModelUsage`] (`summary.usage[model]`)
//!   and [`ResponseFields`] (the output, when the span returned none);
//! - [`OpGenAi`]: the same fields recorded on an op's span by an LLM library called inside
//!   the op (`Span::current().record(…)`), one response after another, summed by model
//!   ([`usage_map`]);
//! - [`usage_by_model`], [`response_output`]: the same from a map of attributes.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::JsonMap;

/// A usage field of Weave's `LLMUsage` and the attribute keys it is read from, in order: the
/// first key present wins.
pub type UsageConvention = (&'static str, &'static [&'static str]);

/// Weave's usage keys and the span fields (or attributes) they come from: every name in use
/// today — OpenTelemetry GenAI in its current and older names, OpenInference, the Vercel AI
/// SDK — read by the tracing layer (and so by spans of the Rust GenAI crates).
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
        &[
            "gen_ai.usage.total_tokens",
            "llm.usage.total_tokens",
            "llm.token_count.total",
        ],
    ),
    (
        "cache_creation_input_tokens",
        &[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ],
    ),
    (
        "cache_read_input_tokens",
        &[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ],
    ),
    (
        "reasoning_tokens",
        &[
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ],
    ),
];

/// The usage keys exactly as the Weave server reads them from OTLP spans (its
/// `trace_server/opentelemetry/constants.py`): what `weave serve`'s `/otel/v1/traces` reads,
/// so that a span sent to it becomes the call the Weave server would make of it.
pub const WEAVE_SERVER_USAGE_KEYS: &[UsageConvention] = &[
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
    "langfuse.observation.model.name",
];

/// The attribute keys that name the requested model: inputs of the call that are also kept
/// for [`usage_by_model`] (see [`FieldRole::InputAndRead`]).
const REQUEST_MODEL_KEYS: &[&str] = &[
    "gen_ai.request.model",
    "llm.model_name",
    "langfuse.observation.model.name",
];

/// The key prefixes of GenAI results (token usage, response fields): not inputs of the call.
const RESULT_PREFIXES: &[&str] = &[
    "gen_ai.usage.",
    "gen_ai.response.",
    "llm.token_count.",
    "llm.usage.",
    "ai.usage.",
    "llm.cost.",
    LANGFUSE_USAGE,
    "langfuse.observation.cost_details",
];

/// Langfuse's usage field: one JSON object (`{"input": 10, "output": 5, "total": 15}`, or its
/// text), read into [`USAGE_KEYS`] by [`LANGFUSE_USAGE_NAMES`].
const LANGFUSE_USAGE: &str = "langfuse.observation.usage_details";

/// Langfuse's usage names → Weave's (a count an OpenTelemetry GenAI name also gives wins).
const LANGFUSE_USAGE_NAMES: &[(&str, &str)] = &[
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("total", "total_tokens"),
    ("input_cached_tokens", "cache_read_input_tokens"),
    ("cache_read_input_tokens", "cache_read_input_tokens"),
    ("cache_creation_input_tokens", "cache_creation_input_tokens"),
    ("output_reasoning_tokens", "reasoning_tokens"),
];

/// The key prefixes of the GenAI response fields that are a call's output when it has no
/// other (see [`response_output`]): the response's id, model, finish reasons; the cost an
/// OpenInference library reports (`llm.cost.total`, in USD — kept as reported; Weave's own
/// costs come from its prices and the usage).
const RESPONSE_PREFIXES: &[&str] = &[
    "gen_ai.response.",
    "llm.cost.",
    "langfuse.observation.cost_details",
];

/// A property of the call that a span field sets, by the conventions in use: `otel.*` (as
/// tracing-opentelemetry reads them), OpenTelemetry GenAI, OpenInference, Langfuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallProp {
    /// `otel.name`: the call's display name.
    DisplayName,
    /// `gen_ai.operation.name`, `openinference.span.kind`, `langfuse.observation.type`: the
    /// op's kind ([`kind_of`]), when given as the span is made. Still an input.
    Kind,
    /// `otel.status_code`: `ERROR` fails the call.
    Status,
    /// `error.type`: fails the call, named so.
    ErrorType,
    /// `otel.status_message`, `error.message`: the failure's message.
    ErrorMessage,
    /// `gen_ai.output.messages`, `output.value`, `langfuse.observation.output`: the output,
    /// when the span returned none (`#[instrument(ret)]`).
    Output,
    /// `gen_ai.conversation.id`, `session.id`, `langfuse.session.id`: the call's thread,
    /// when given as the span is made.
    Thread,
    /// `otel.kind`: read by OpenTelemetry exporters; not an input, no effect on the call.
    SpanKind,
}

/// Field names → the call property they set.
const CALL_PROPS: &[(&str, CallProp)] = &[
    ("otel.name", CallProp::DisplayName),
    ("gen_ai.operation.name", CallProp::Kind),
    ("openinference.span.kind", CallProp::Kind),
    ("langfuse.observation.type", CallProp::Kind),
    ("otel.status_code", CallProp::Status),
    ("error.type", CallProp::ErrorType),
    ("otel.status_message", CallProp::ErrorMessage),
    ("error.message", CallProp::ErrorMessage),
    ("gen_ai.output.messages", CallProp::Output),
    ("output.value", CallProp::Output),
    ("langfuse.observation.output", CallProp::Output),
    ("gen_ai.conversation.id", CallProp::Thread),
    ("session.id", CallProp::Thread),
    ("langfuse.session.id", CallProp::Thread),
    ("otel.kind", CallProp::SpanKind),
];

/// The call property the field `name` sets, if any.
pub fn call_prop(name: &str) -> Option<CallProp> {
    CALL_PROPS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The Weave op kind (`llm`, `tool`, `agent`, `search`, `guardrail`, `scorer`) of a span's
/// operation as the conventions name it: `gen_ai.operation.name` (`chat`, `execute_tool`,
/// `invoke_agent`, …), `openinference.span.kind` (`LLM`, `TOOL`, `RETRIEVER`, …),
/// `langfuse.observation.type` (`generation`, `tool`, …). `None` for one with no Weave kind
/// (a chain, a reranker).
pub fn kind_of(operation: &str) -> Option<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        ("chat", "llm"),
        ("text_completion", "llm"),
        ("generate_content", "llm"),
        ("completion", "llm"),
        ("embeddings", "llm"),
        ("embedding", "llm"),
        ("llm", "llm"),
        ("generation", "llm"),
        ("execute_tool", "tool"),
        ("tool", "tool"),
        ("invoke_agent", "agent"),
        ("create_agent", "agent"),
        ("agent", "agent"),
        ("retriever", "search"),
        ("retrieval", "search"),
        ("guardrail", "guardrail"),
        ("evaluator", "scorer"),
    ];
    KINDS
        .iter()
        .find(|(name, _)| operation.eq_ignore_ascii_case(name))
        .map(|(_, kind)| *kind)
}

/// What a span field (or attribute) is to the Weave call made of the span, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    /// An input of the call: any name the GenAI conventions do not claim.
    Input,
    /// An input that the conventions also read: the requested model (`gen_ai.request.model`,
    /// `llm.model_name`: usage is reported under it when the response names none), the
    /// operation (its kind, [`CallProp::Kind`]).
    InputAndRead,
    /// A GenAI result (`gen_ai.usage.*`, `gen_ai.response.*`, `llm.token_count.*`, …) or a
    /// call property ([`CallProp`]) other than the kind: not an input; read when the call
    /// ends.
    Result,
}

impl FieldRole {
    /// Whether the field is an input of the call.
    pub fn is_input(self) -> bool {
        matches!(self, FieldRole::Input | FieldRole::InputAndRead)
    }
    /// Whether the field is a GenAI field, kept for when the call ends.
    pub fn is_genai(self) -> bool {
        matches!(self, FieldRole::Result | FieldRole::InputAndRead)
    }
}

/// The role of the span field or attribute `name` (see [`FieldRole`]).
pub fn field_role(name: &str) -> FieldRole {
    if RESULT_PREFIXES.iter().any(|p| name.starts_with(p)) {
        FieldRole::Result
    } else if REQUEST_MODEL_KEYS.contains(&name) {
        FieldRole::InputAndRead
    } else if let Some(prop) = call_prop(name) {
        if prop == CallProp::Kind {
            FieldRole::InputAndRead
        } else {
            FieldRole::Result
        }
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

/// What a GenAI field feeds when the call ends, by its name: a usage count (which of
/// [`USAGE_KEYS`], and the rank of the name among its sources), the model usage is reported
/// under (the rank among [`MODEL_KEYS`]), the output (`gen_ai.response.*`). Worked out once
/// per name ([`GenAiRole::of`]); the tracing layer keeps it per callsite field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenAiRole {
    usage: Option<(u8, u8)>,
    /// Langfuse's `usage_details` object ([`LANGFUSE_USAGE`]).
    usage_details: bool,
    model: Option<u8>,
    response: bool,
    prop: Option<CallProp>,
}

impl GenAiRole {
    /// The role of the field or attribute `name` (all empty for a name the conventions do
    /// not claim).
    pub fn of(name: &str) -> Self {
        let usage = USAGE_KEYS
            .iter()
            .enumerate()
            .find_map(|(slot, (_, sources))| {
                let rank = sources.iter().position(|s| *s == name)?;
                Some((slot as u8, rank as u8))
            });
        GenAiRole {
            usage,
            usage_details: name == LANGFUSE_USAGE,
            model: MODEL_KEYS
                .iter()
                .position(|k| *k == name)
                .map(|rank| rank as u8),
            response: RESPONSE_PREFIXES.iter().any(|p| name.starts_with(p)),
            prop: call_prop(name),
        }
    }

    /// Whether the field feeds nothing.
    pub fn is_empty(&self) -> bool {
        self.usage.is_none()
            && !self.usage_details
            && self.model.is_none()
            && !self.response
            && self.prop.is_none()
    }

    /// Whether the field names the operation's kind and nothing else ([`CallProp::Kind`]):
    /// its text is all that is read.
    pub fn is_kind(&self) -> bool {
        self.prop == Some(CallProp::Kind)
    }
}

/// A model's name: one of the names seen so far in the process ([`model_name`]), or its own
/// text once there are too many.
type ModelName = Cow<'static, str>;

/// The most model names kept for the life of the process ([`model_name`]), and the longest.
const MAX_KEPT_MODEL_NAMES: usize = 256;
const MAX_KEPT_MODEL_NAME_LEN: usize = 256;

/// `name` as a [`ModelName`]. A program calls a handful of models, millions of times: their
/// names are kept (leaked, at most [`MAX_KEPT_MODEL_NAMES`] of them, each at most
/// [`MAX_KEPT_MODEL_NAME_LEN`] bytes: 64 KiB at worst) and shared, so that a span's usage
/// carries no text of its own to the writer's thread, where it would be freed on another core.
/// Each thread looks in its own list first (no lock), then in the process's.
fn model_name(name: &str) -> ModelName {
    use std::cell::RefCell;
    use std::sync::Mutex;
    thread_local! {
        static SEEN: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }
    static KEPT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let find = |names: &[&'static str]| names.iter().find(|n| **n == name).copied();
    if let Ok(Some(kept)) = SEEN.try_with(|seen| find(&seen.borrow())) {
        return Cow::Borrowed(kept);
    }
    let kept = {
        let mut all = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        match find(&all) {
            Some(kept) => kept,
            None if all.len() < MAX_KEPT_MODEL_NAMES && name.len() <= MAX_KEPT_MODEL_NAME_LEN => {
                let kept: &'static str = Box::leak(name.into());
                all.push(kept);
                kept
            }
            None => return Cow::Owned(name.to_string()),
        }
    };
    let _ = SEEN.try_with(|seen| seen.borrow_mut().push(kept));
    Cow::Borrowed(kept)
}

/// A span's GenAI fields as they are recorded, kept by what they feed ([`GenAiRole`]):
/// the usage counts and the model found so far (the best-ranked source wins; a later value
/// of the same source replaces an earlier one), and the response fields in the order first
/// recorded. Read when the call ends: [`GenAiFields::usage`], [`GenAiFields::response_output`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GenAiFields {
    counts: [Option<(u8, i64)>; USAGE_KEYS.len()],
    model: Option<(u8, ModelName)>,
    response: Vec<(Cow<'static, str>, Value)>,
    /// The op kind the fields name ([`CallProp::Kind`]; kept inline: most GenAI spans
    /// name their operation).
    kind: Option<&'static str>,
    /// The other call properties ([`CallProp`]), for the few spans that set any.
    props: Option<Box<CallProps>>,
}

/// The call properties a span's fields set ([`CallProp`]).
#[derive(Debug, Default, Clone, PartialEq)]
struct CallProps {
    display_name: Option<String>,
    /// `Some(true)`: `otel.status_code` was `ERROR`; `Some(false)`: `OK`.
    error_status: Option<bool>,
    error_type: Option<String>,
    error_message: Option<String>,
    output: Option<Value>,
    thread: Option<String>,
}

/// A field's value as text: a string as it is, anything else as its JSON.
fn as_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

impl GenAiFields {
    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(Option::is_none)
            && self.model.is_none()
            && self.response.is_empty()
            && self.kind.is_none()
            && self.props.is_none()
    }

    /// Keeps the kind the operation `operation` names ([`kind_of`]), unless it names none.
    pub fn keep_kind(&mut self, operation: &str) {
        self.kind = kind_of(operation).or(self.kind);
    }

    fn keep_prop(&mut self, prop: CallProp, value: Value) {
        if prop == CallProp::Kind {
            if let Value::String(op) = &value {
                self.keep_kind(op);
            }
            return;
        }
        let props = self.props.get_or_insert_with(Default::default);
        match prop {
            CallProp::DisplayName => props.display_name = Some(as_text(value)),
            CallProp::Kind => {}
            CallProp::Status => {
                let status = as_text(value);
                props.error_status = if status.eq_ignore_ascii_case("error") {
                    Some(true)
                } else if status.eq_ignore_ascii_case("ok") {
                    Some(false)
                } else {
                    props.error_status
                };
            }
            CallProp::ErrorType => props.error_type = Some(as_text(value)),
            CallProp::ErrorMessage => props.error_message = Some(as_text(value)),
            CallProp::Output => props.output = Some(value),
            CallProp::Thread => props.thread = Some(as_text(value)),
            CallProp::SpanKind => {}
        }
    }

    /// The op kind the fields name ([`CallProp::Kind`]).
    pub fn kind(&self) -> Option<&'static str> {
        self.kind
    }

    /// The thread the fields name ([`CallProp::Thread`]).
    pub fn thread(&self) -> Option<&str> {
        self.props.as_ref()?.thread.as_deref()
    }

    /// The display name the fields give (`otel.name`), taken.
    pub fn take_display_name(&mut self) -> Option<String> {
        self.props.as_mut()?.display_name.take()
    }

    /// The output the fields give ([`CallProp::Output`]), taken.
    pub fn take_output(&mut self) -> Option<Value> {
        self.props.as_mut()?.output.take()
    }

    /// `(type, message)` of the failure the fields report: `otel.status_code = ERROR` or an
    /// `error.type` (unless the status is `OK`), typed by `error.type` (else `Error`) with
    /// the status or error message.
    pub fn failure(&self) -> Option<(String, String)> {
        let p = self.props.as_ref()?;
        let failed = match p.error_status {
            Some(error) => error,
            None => p.error_type.is_some(),
        };
        failed.then(|| {
            (
                p.error_type.clone().unwrap_or_else(|| "Error".to_string()),
                p.error_message.clone().unwrap_or_default(),
            )
        })
    }

    /// Keeps the field `name` (whose role is `role`) with `value`. A `&'static str` name (a
    /// tracing field's) is kept without a copy.
    pub fn add(&mut self, name: impl Into<Cow<'static, str>>, role: GenAiRole, value: Value) {
        if let Some(prop) = role.prop {
            // A property's name is nothing else.
            return self.keep_prop(prop, value);
        }
        if let Some((slot, rank)) = role.usage {
            if let Some(n) = as_count(&value) {
                self.keep_count(slot as usize, rank, n);
            }
        }
        if role.usage_details {
            self.keep_usage_details(&value);
        }
        if let (Some(rank), Value::String(model)) = (role.model, &value) {
            self.keep_model(rank, model);
        }
        if role.response {
            self.keep_response(name.into(), value);
        }
    }

    /// Langfuse's usage object (or its JSON text): each count it names, ranked after every
    /// OpenTelemetry GenAI source of the same key.
    fn keep_usage_details(&mut self, value: &Value) {
        let parsed;
        let details = match value {
            Value::Object(m) => m,
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => {
                    parsed = m;
                    &parsed
                }
                _ => return,
            },
            _ => return,
        };
        for (theirs, ours) in LANGFUSE_USAGE_NAMES {
            let (Some(n), Some(slot)) = (
                details.get(*theirs).and_then(as_count),
                USAGE_KEYS.iter().position(|(k, _)| k == ours),
            ) else {
                continue;
            };
            self.keep_count(slot, u8::MAX, n);
        }
    }

    /// A count for the usage key in `slot` from a source of rank `rank`: kept unless a
    /// better-ranked source gave one.
    fn keep_count(&mut self, slot: usize, rank: u8, n: i64) {
        let kept = &mut self.counts[slot];
        if kept.is_none_or(|(r, _)| rank <= r) {
            *kept = Some((rank, n));
        }
    }

    /// The model from a source of rank `rank`: kept unless a better-ranked source gave one.
    fn keep_model(&mut self, rank: u8, model: &str) {
        if self.model.as_ref().is_none_or(|(r, _)| rank <= *r) {
            self.model = Some((rank, model_name(model)));
        }
    }

    /// A response field: replaces an earlier value of the same field in its place.
    fn keep_response(&mut self, name: Cow<'static, str>, value: Value) {
        match self.response.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.response.push((name, value)),
        }
    }

    /// `(model, usage)` for `summary.usage[model]`: the [`USAGE_KEYS`] found, with
    /// `total_tokens` filled in and `requests: 1`, as the Weave server and the Python SDK do.
    /// The model is the best-ranked of [`MODEL_KEYS`] found, else `"unknown"`. `None`
    /// without usage.
    pub fn usage(&self) -> Option<(String, JsonMap)> {
        self.model_usage()
            .map(|u| (u.model.to_string(), u.to_map()))
    }

    /// [`GenAiFields::usage`], typed: made into JSON where it is written (the writer's
    /// thread), not where the span ends.
    pub fn model_usage(&self) -> Option<ModelUsage> {
        Self::usage_of(&self.counts, || self.model.as_ref().map(|(_, m)| m.clone()))
    }

    /// [`GenAiFields::model_usage`], taking the model's name (nothing copied).
    pub fn take_model_usage(&mut self) -> Option<ModelUsage> {
        let model = &mut self.model;
        let counts = &self.counts;
        Self::usage_of(counts, || model.take().map(|(_, m)| m))
    }

    /// The counts kept, under the model `model` names (else `"unknown"`); `None` without any.
    fn usage_of(
        kept: &[Option<(u8, i64)>; USAGE_KEYS.len()],
        model: impl FnOnce() -> Option<ModelName>,
    ) -> Option<ModelUsage> {
        if kept.iter().all(Option::is_none) {
            return None;
        }
        let counts = kept.map(|c| c.map(|(_, n)| n));
        let model = model().unwrap_or(Cow::Borrowed("unknown"));
        Some(ModelUsage { model, counts })
    }

    /// The `gen_ai.response.*` fields (id, model, finish reasons), as the call's output when
    /// it has no other: they are results, not inputs. `None` without any.
    pub fn response_output(&self) -> Option<Value> {
        self.clone().into_response_output()
    }

    /// The response fields, in the order first recorded, taken (see
    /// [`ResponseFields::to_value`]).
    pub fn take_response(&mut self) -> ResponseFields {
        ResponseFields::of(&std::mem::take(&mut self.response))
    }

    /// [`GenAiFields::response_output`], taking the fields (nothing copied).
    pub fn into_response_output(self) -> Option<Value> {
        (!self.response.is_empty()).then(|| {
            let mut m = Map::with_capacity(self.response.len());
            for (k, v) in self.response {
                m.insert(k.into_owned(), v);
            }
            Value::Object(m)
        })
    }

    fn of_map(genai: &JsonMap) -> Self {
        let mut g = GenAiFields::default();
        for (k, v) in genai {
            let role = GenAiRole::of(k);
            if !role.is_empty() {
                g.add(k.clone(), role, v.clone());
            }
        }
        g
    }
}

/// A span's `gen_ai.response.*` fields as the JSON text of an object (empty when there is
/// none), written where the span ends ([`GenAiFields::take_response`]). Text, not a map of
/// values: a call's end crosses to the writer's thread, where every allocation it carries is
/// freed on another core (measured: BENCHMARKS.md), and the store keeps the text as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseFields(String);

impl ResponseFields {
    /// The fields' object text, each value capped in depth as any output is.
    fn of(fields: &[(Cow<'static, str>, Value)]) -> Self {
        if fields.is_empty() {
            return ResponseFields::default();
        }
        if fields
            .iter()
            .any(|(_, v)| crate::limits::depth_exceeds(v, crate::limits::MAX_DEPTH - 1))
        {
            let mut object = Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            );
            crate::limits::cap_depth(&mut object);
            return ResponseFields(object.to_string());
        }
        let room: usize = fields
            .iter()
            .map(|(k, v)| k.len() + 4 + v.as_str().map_or(24, |s| s.len() + 2))
            .sum();
        let mut out = Vec::with_capacity(room + 2);
        out.push(b'{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // A `str` and a `Value` always serialise.
            let _ = serde_json::to_writer(&mut out, &**k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, v);
        }
        out.push(b'}');
        // serde_json writes UTF-8 only.
        ResponseFields(
            String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()),
        )
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The object's JSON text (empty when there is none).
    pub fn as_text(&self) -> &str {
        &self.0
    }

    /// The fields nested by the dots of their names, without the `gen_ai.` prefix:
    /// `{"response": {"id": …, "model": …}}` (for an op's `summary.gen_ai`, where they are
    /// not the output).
    pub fn nested(&self) -> JsonMap {
        let mut root = JsonMap::new();
        let Value::Object(fields) = self.to_value() else {
            return root;
        };
        'fields: for (k, v) in fields {
            let path: Vec<&str> = k.strip_prefix("gen_ai.").unwrap_or(&k).split('.').collect();
            let Some((last, parents)) = path.split_last() else {
                continue;
            };
            let mut map = &mut root;
            for p in parents {
                let entry = map
                    .entry((*p).to_string())
                    .or_insert_with(|| Value::Object(JsonMap::new()));
                if !entry.is_object() {
                    *entry = Value::Object(JsonMap::new());
                }
                let Value::Object(inner) = entry else {
                    continue 'fields;
                };
                map = inner;
            }
            map.insert((*last).to_string(), v);
        }
        root
    }

    /// The fields as a JSON object (`null` when there is none).
    pub fn to_value(&self) -> Value {
        if self.0.is_empty() {
            return Value::Null;
        }
        // Written by `of`: always an object's text.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

/// One model's token usage from a span's GenAI fields ([`GenAiFields::model_usage`]): the
/// counts of [`USAGE_KEYS`] found, kept as numbers until the summary is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelUsage {
    model: ModelName,
    counts: [Option<i64>; USAGE_KEYS.len()],
}

impl ModelUsage {
    /// The model the usage is for.
    pub fn model(&self) -> &str {
        &self.model
    }

    fn count(&self, key: &str) -> Option<i64> {
        let slot = USAGE_KEYS.iter().position(|(k, _)| *k == key)?;
        self.counts[slot]
    }

    /// `total_tokens` when no source gave it: prompt + completion, else input + output.
    fn derived_total(&self) -> Option<i64> {
        if self.count("total_tokens").is_some() {
            return None;
        }
        match (self.count("prompt_tokens"), self.count("completion_tokens")) {
            (Some(p), Some(c)) => Some(p.saturating_add(c)),
            _ => match (self.count("input_tokens"), self.count("output_tokens")) {
                (Some(i), Some(o)) => Some(i.saturating_add(o)),
                _ => None,
            },
        }
    }

    /// The `(key, count)` pairs of `summary.usage[model]`, in order, `requests: 1` last.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        USAGE_KEYS
            .iter()
            .zip(&self.counts)
            .filter_map(|((key, _), n)| Some((*key, (*n)?)))
            .chain(self.derived_total().map(|t| ("total_tokens", t)))
            .chain(std::iter::once(("requests", 1)))
    }

    /// `summary.usage[model]` as JSON.
    pub fn to_map(&self) -> JsonMap {
        self.entries()
            .map(|(k, n)| (k.to_string(), Value::from(n)))
            .collect()
    }

    /// Appends the JSON text of `summary.usage` for this usage alone (`{"<model>": {...}}`,
    /// [`usage_map`] of it) to `out`.
    pub fn write_usage_text(&self, out: &mut String) {
        use std::fmt::Write;
        out.push('{');
        // A `str` always serialises.
        out.push_str(&serde_json::to_string(&self.model).unwrap_or_default());
        out.push_str(":{");
        for (i, (k, n)) in self.entries().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{k}\":{n}");
        }
        out.push_str("}}");
    }
}

/// `summary.usage` of several responses: each model's counts summed, `requests` counting
/// the responses.
pub fn usage_map(usages: &[ModelUsage]) -> JsonMap {
    let mut by_model: Vec<(&str, JsonMap)> = Vec::new();
    for u in usages {
        let i = match by_model.iter().position(|(m, _)| *m == u.model) {
            Some(i) => i,
            None => {
                by_model.push((&u.model, JsonMap::new()));
                by_model.len() - 1
            }
        };
        let counts = &mut by_model[i].1;
        for (k, n) in u.entries() {
            let sum = counts
                .get(k)
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .saturating_add(n);
            counts.insert(k.to_string(), Value::from(sum));
        }
    }
    by_model
        .into_iter()
        .map(|(m, counts)| (m.to_string(), Value::Object(counts)))
        .collect()
}

/// GenAI fields recorded on an op's span (`Span::current().record(…)` by an LLM library
/// called inside the op), possibly by several LLM calls in turn: a token count recorded for
/// a key that already has one starts the next response (its usage is kept apart and summed
/// by model), and the model recorded last stays until another is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpGenAi {
    done: Vec<ModelUsage>,
    current: GenAiFields,
}

impl OpGenAi {
    /// Keeps the field `name` (whose role is `role`) with `value`.
    pub fn add(&mut self, name: &'static str, role: GenAiRole, value: Value) {
        if let Some((slot, _)) = role.usage {
            if self.current.counts[slot as usize].is_some() && as_count(&value).is_some() {
                let model = self.current.model.clone();
                if let Some(u) = self.current.take_model_usage() {
                    self.done.push(u);
                }
                self.current.counts = Default::default();
                self.current.model = model;
            }
        }
        self.current.add(name, role, value);
    }

    /// The usage of each response, and the response fields recorded last.
    pub fn finish(mut self) -> (Vec<ModelUsage>, ResponseFields) {
        self.done.extend(self.current.take_model_usage());
        (self.done, self.current.take_response())
    }
}

/// `(model, usage)` from a span's GenAI fields, for `summary.usage[model]` (see
/// [`GenAiFields::usage`]). `None` without usage.
pub fn usage_by_model(genai: &JsonMap) -> Option<(String, JsonMap)> {
    GenAiFields::of_map(genai).usage()
}

/// The `gen_ai.response.*` fields of a span's GenAI fields, as the call's output when it has
/// no other (see [`GenAiFields::response_output`]). `None` without any.
pub fn response_output(genai: &JsonMap) -> Option<Value> {
    GenAiFields::of_map(genai).into_response_output()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn genai_field_roles_split_results_from_inputs() {
        assert_eq!(field_role("gen_ai.usage.input_tokens"), FieldRole::Result);
        assert_eq!(field_role("gen_ai.response.model"), FieldRole::Result);
        assert_eq!(field_role("llm.token_count.prompt"), FieldRole::Result);
        assert_eq!(field_role("llm.usage.total_tokens"), FieldRole::Result);
        assert_eq!(field_role("ai.usage.promptTokens"), FieldRole::Result);
        assert_eq!(field_role("gen_ai.request.model"), FieldRole::InputAndRead);
        assert_eq!(field_role("llm.model_name"), FieldRole::InputAndRead);
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
    fn reported_costs_are_response_fields_and_langfuse_names_the_model() {
        assert_eq!(field_role("llm.cost.total"), FieldRole::Result);
        assert_eq!(
            field_role("langfuse.observation.model.name"),
            FieldRole::InputAndRead
        );
        let mut g = Map::new();
        g.insert("llm.token_count.prompt".into(), json!(3));
        g.insert(
            "langfuse.observation.model.name".into(),
            json!("claude-3-5"),
        );
        g.insert("llm.cost.total".into(), json!(0.0021));
        g.insert("llm.cost.prompt".into(), json!(0.0009));
        let (model, _) = usage_by_model(&g).unwrap();
        assert_eq!(model, "claude-3-5");
        // Kept as reported, with the response (not an input, not lost).
        assert_eq!(
            response_output(&g),
            Some(json!({"llm.cost.total": 0.0021, "llm.cost.prompt": 0.0009}))
        );
    }

    #[test]
    fn langfuse_usage_details_are_read() {
        assert_eq!(field_role(LANGFUSE_USAGE), FieldRole::Result);
        let mut g = Map::new();
        g.insert("langfuse.observation.model.name".into(), json!("gpt-4o"));
        g.insert(
            LANGFUSE_USAGE.into(),
            json!(r#"{"input": 7, "output": 2, "input_cached_tokens": 4}"#),
        );
        g.insert(
            "langfuse.observation.cost_details".into(),
            json!(r#"{"total": 0.001}"#),
        );
        let (model, u) = usage_by_model(&g).unwrap();
        assert_eq!(model, "gpt-4o");
        assert_eq!(u["input_tokens"], 7);
        assert_eq!(u["output_tokens"], 2);
        assert_eq!(u["cache_read_input_tokens"], 4);
        assert_eq!(u["total_tokens"], 9);
        // An OpenTelemetry GenAI count of the same key wins; a malformed object is ignored.
        g.insert("gen_ai.usage.input_tokens".into(), json!(8));
        assert_eq!(usage_by_model(&g).unwrap().1["input_tokens"], 8);
        let mut bad = Map::new();
        bad.insert(LANGFUSE_USAGE.into(), json!("not json"));
        assert!(usage_by_model(&bad).is_none());
        assert_eq!(
            response_output(&g),
            Some(json!({"langfuse.observation.cost_details": r#"{"total": 0.001}"#}))
        );
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
    fn the_best_ranked_source_wins_whatever_the_order_and_later_values_replace() {
        let add = |g: &mut GenAiFields, k: &'static str, v: Value| g.add(k, GenAiRole::of(k), v);
        let mut g = GenAiFields::default();
        add(&mut g, "llm.token_count.prompt", json!(7));
        add(&mut g, "gen_ai.usage.prompt_tokens", json!(5));
        add(&mut g, "llm.token_count.prompt", json!(9));
        add(
            &mut g,
            "gen_ai.usage.completion_tokens",
            json!("not a count"),
        );
        add(&mut g, "llm.model_name", json!("m-requested"));
        add(&mut g, "gen_ai.response.id", json!("r1"));
        add(&mut g, "gen_ai.usage.completion_tokens", json!(2));
        add(&mut g, "gen_ai.response.model", json!("m-served"));
        add(&mut g, "gen_ai.response.id", json!("r2"));
        let (model, u) = g.usage().unwrap();
        assert_eq!(model, "m-served");
        assert_eq!(
            Value::Object(u),
            json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "requests": 1})
        );
        // Replaced in place: the first position, the last value.
        assert_eq!(
            g.response_output(),
            Some(json!({"gen_ai.response.id": "r2", "gen_ai.response.model": "m-served"}))
        );
        assert!(GenAiRole::of("url").is_empty());
        assert!(GenAiFields::default().is_empty());
    }

    #[test]
    fn spans_read_every_name_the_weave_servers_ingest_reads_for_the_same_key() {
        for (key, sources) in WEAVE_SERVER_USAGE_KEYS {
            let (_, ours) = USAGE_KEYS
                .iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("{key} missing from USAGE_KEYS"));
            for source in *sources {
                assert!(ours.contains(source), "{key}: {source}");
            }
        }
    }

    #[test]
    fn typed_usage_writes_the_same_json_as_its_map() {
        let add = |g: &mut GenAiFields, k: &'static str, v: Value| g.add(k, GenAiRole::of(k), v);
        let mut g = GenAiFields::default();
        add(&mut g, "gen_ai.usage.input_tokens", json!(7));
        add(&mut g, "gen_ai.usage.output_tokens", json!(2));
        add(&mut g, "gen_ai.usage.cache_read.input_tokens", json!(1));
        add(&mut g, "gen_ai.response.model", json!("m \"quoted\" \\ é"));
        let u = g.model_usage().unwrap();
        assert_eq!(u.model(), "m \"quoted\" \\ é");
        let mut text = String::from("[");
        u.write_usage_text(&mut text);
        let parsed: Value = serde_json::from_str(&text[1..]).unwrap();
        assert_eq!(parsed, Value::Object(usage_map(std::slice::from_ref(&u))));
        assert_eq!(
            parsed,
            json!({"m \"quoted\" \\ é": {"input_tokens": 7, "output_tokens": 2,
                "cache_read_input_tokens": 1, "total_tokens": 9, "requests": 1}})
        );
        assert_eq!(g.usage().unwrap().1, u.to_map());
        // Counts near the limit saturate instead of overflowing.
        let mut big = GenAiFields::default();
        add(&mut big, "gen_ai.usage.input_tokens", json!(i64::MAX));
        add(&mut big, "gen_ai.usage.output_tokens", json!(5));
        assert_eq!(big.usage().unwrap().1["total_tokens"], json!(i64::MAX));
    }

    #[test]
    fn response_fields_nest_by_their_dots_and_a_later_parent_wins_over_a_leaf() {
        let mut g = GenAiFields::default();
        let add = |g: &mut GenAiFields, k: &'static str, v: Value| g.add(k, GenAiRole::of(k), v);
        add(&mut g, "gen_ai.response.id", json!("r1"));
        add(&mut g, "gen_ai.response.finish_reasons", json!(["stop"]));
        add(&mut g, "gen_ai.response.id.extra", json!(1));
        assert_eq!(
            Value::Object(g.take_response().nested()),
            json!({"response": {"id": {"extra": 1}, "finish_reasons": ["stop"]}})
        );
    }

    #[test]
    fn model_names_are_kept_once_for_every_thread_and_long_ones_are_not() {
        let a = model_name("gpt-test-kept");
        let Cow::Borrowed(a) = a else {
            panic!("not kept: {a:?}")
        };
        let b = std::thread::spawn(|| model_name("gpt-test-kept"))
            .join()
            .unwrap();
        assert!(matches!(b, Cow::Borrowed(b) if std::ptr::eq(a, b)));
        assert!(matches!(model_name("gpt-test-kept"), Cow::Borrowed(c) if std::ptr::eq(a, c)));
        let long = "m".repeat(MAX_KEPT_MODEL_NAME_LEN + 1);
        assert_eq!(model_name(&long), Cow::<str>::Owned(long.clone()));
        assert!(matches!(model_name(&long), Cow::Owned(_)));
    }

    #[test]
    fn response_fields_are_object_text_in_recorded_order_capped_in_depth() {
        let add = |g: &mut GenAiFields, k: &'static str, v: Value| g.add(k, GenAiRole::of(k), v);
        let mut g = GenAiFields::default();
        add(&mut g, "gen_ai.response.model", json!("m\"1"));
        add(&mut g, "gen_ai.response.id", json!("r1"));
        // A later value replaces the earlier one in its place.
        add(&mut g, "gen_ai.response.model", json!("m\"2"));
        let r = g.take_response();
        assert_eq!(
            r.as_text(),
            r#"{"gen_ai.response.model":"m\"2","gen_ai.response.id":"r1"}"#
        );
        assert_eq!(
            r.to_value(),
            json!({"gen_ai.response.model": "m\"2", "gen_ai.response.id": "r1"})
        );

        let mut deep = json!("leaf");
        for _ in 0..crate::limits::MAX_DEPTH + 5 {
            deep = json!([deep]);
        }
        let mut g = GenAiFields::default();
        add(&mut g, "gen_ai.response.id", json!("r1"));
        add(&mut g, "gen_ai.response.finish_reasons", deep.clone());
        // Capped as any output is: what is nested too deep becomes the marker.
        let mut capped =
            json!({"gen_ai.response.id": "r1", "gen_ai.response.finish_reasons": deep});
        crate::limits::cap_depth(&mut capped);
        assert!(capped.to_string().contains("EXCEEDS_MAX_DEPTH"));
        assert_eq!(g.take_response().to_value(), capped);

        let none = GenAiFields::default().take_response();
        assert!(none.is_empty());
        assert_eq!(none.to_value(), Value::Null);
        assert!(none.nested().is_empty());
    }

    #[test]
    fn an_ops_repeated_counts_start_new_responses_summed_by_model() {
        let mut op = OpGenAi::default();
        let add = |op: &mut OpGenAi, k: &'static str, v: Value| op.add(k, GenAiRole::of(k), v);
        add(&mut op, "gen_ai.request.model", json!("m"));
        add(&mut op, "gen_ai.usage.input_tokens", json!(3));
        add(&mut op, "gen_ai.usage.output_tokens", json!(1));
        add(&mut op, "gen_ai.usage.input_tokens", json!(4));
        add(&mut op, "gen_ai.response.model", json!("m2"));
        add(&mut op, "gen_ai.usage.input_tokens", json!("not a count"));
        let (usages, response) = op.finish();
        assert_eq!(
            Value::Object(usage_map(&usages)),
            json!({"m": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4, "requests": 1},
                   "m2": {"input_tokens": 4, "requests": 1}})
        );
        assert_eq!(response.to_value(), json!({"gen_ai.response.model": "m2"}));
        assert!(OpGenAi::default().finish().0.is_empty());
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
