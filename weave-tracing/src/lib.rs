//! [`WeaveLayer`]: a `tracing-subscriber` [`Layer`] that turns spans into Weave calls.
//!
//! Depend on the `weave` facade (`weave::layer()`), not on this crate directly.
//!
//! # What becomes what
//!
//! | `tracing` | Weave call |
//! |---|---|
//! | a span (`#[instrument]`, `info_span!`, …) at or above the layer's level | a call of the op named after the span |
//! | the span's fields, including those recorded later with `Span::record` | `inputs` |
//! | the `return` event of `#[instrument(ret)]` | `output` |
//! | the `error` event of `#[instrument(err)]` | `exception` (the call fails) |
//! | `gen_ai.usage.*` / `gen_ai.response.model` / `gen_ai.request.model` fields | `summary.usage[model]` |
//! | other `gen_ai.response.*` fields (without `ret`) | `output` |
//! | other events inside a call (any call: op, span or `create_call`) | `summary.events`, in order |
//! | the span's target, level, file and line | `attributes.tracing` |
//!
//! A span's call is written when the span closes, start and end together — the way
//! OpenTelemetry exports spans — so that fields recorded after creation are part of its
//! inputs. `#[weave::op]` functions make their own calls (their spans carry a
//! `weave.call_id` field and are recognised here), so ops are traced whether or not this
//! layer is installed.
//!
//! # Filtering
//!
//! By default spans and events at `INFO` or more severe become calls and call events; the
//! `DEBUG`/`TRACE` spans that libraries (hyper, h2, tower, …) emit do not. Widen the level with
//! [`WeaveLayer::with_max_level`]; narrow what is recorded with any per-layer filter, e.g.
//! `weave::layer().with_filter(EnvFilter::new("my_app=info"))`. Both apply: to record
//! `my_app`'s debug spans, use `with_max_level(Level::DEBUG)` and `"my_app=debug"`.
//!
//! Field values given as `Debug` or `Display` text (`?x`, `%x`) that is valid JSON are stored
//! as that JSON (`ret` of a `u32` is a number, `?"text"` is the string `text`); other text is
//! stored as a string.
//!
//! Known limits: an event whose explicit `parent:` is a span a per-layer filter hides from
//! this layer cannot be placed, and is not kept (tracing-subscriber does not expose the
//! span). A span whose explicit parent is hidden from *every* layer is a root to tracing
//! itself, so it becomes a root call.
//!
//! One `WeaveLayer` per subscriber: if two are stacked (say, one per project), the first one
//! records each span and the second leaves it alone.
//!
//! Whatever the filter, nothing weave does itself is traced: spans and events on the SDK's
//! own threads (the background writer, a backend's I/O) and from its own crates are ignored.
//!
//! # The call stack
//!
//! Entering a call span makes its call the current call of the thread (and exiting undoes
//! it), on the same stack that `#[weave::op]` and `WeaveClient::create_call` use, so the three
//! nest in any order. Calls made directly with `create_call` inside a span that is exited
//! before they finish (an instrumented future at an `.await`) are kept with the span and put
//! back when it is entered again. A span's parent call is the current call where the span is created (or,
//! for a span with an explicit `parent:`, the nearest call among that span's ancestors).

use std::fmt;

use serde_json::{json, Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use weave_core::rt::{self, Placement, SavedFrames};

use weave_core::{Call, CallOptions, Exception, JsonMap, Op, Timestamp, WeaveClient};

/// The field an op's span carries (set by `#[weave::op]`).
pub const OP_SPAN_FIELD: &str = "weave.call_id";

/// The layer. See the [crate docs](crate).
///
/// # Examples
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use weave_core::{SqliteServer, WeaveClient};
///
/// let client = WeaveClient::new("acme", "demo", std::sync::Arc::new(SqliteServer::in_memory()?), false)?;
/// let subscriber = tracing_subscriber::registry().with(weave_tracing::WeaveLayer::with_client(client.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("fetch", url = "https://example.com");
///     span.in_scope(|| tracing::info!(status = 200, "fetched"));
/// });
/// let call = client.get_calls(weave_core::CallsQuery::new()).next().unwrap()?;
/// assert_eq!(call.func_name(), "fetch");
/// assert_eq!(call.inputs()["url"], "https://example.com");
/// assert_eq!(call.summary().unwrap()["events"][0]["fields"]["status"], 200);
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeaveLayer {
    client: Option<WeaveClient>,
    max_level: Level,
}

impl Default for WeaveLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl WeaveLayer {
    /// A layer recording root calls with the process-wide client (`weave::init`); before one
    /// is set, root spans are not recorded. Child spans use their parent call's client.
    pub fn new() -> Self {
        WeaveLayer {
            client: None,
            max_level: Level::INFO,
        }
    }

    /// A layer recording root calls with `client`.
    pub fn with_client(client: WeaveClient) -> Self {
        WeaveLayer {
            client: Some(client),
            max_level: Level::INFO,
        }
    }

    /// Records spans and events up to `level` in verbosity (default `INFO`; `Level::TRACE`
    /// records everything the other filters let through).
    pub fn with_max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }

    fn wanted(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max_level && !is_own_target(meta.target())
    }
}

/// Whether a target is one of weave's own crates.
fn is_own_target(target: &str) -> bool {
    ["weave_core", "weave_tracing", "weave_macros", "weave"]
        .iter()
        .any(|own| {
            target
                .strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// Frames saved when a span is exited, per thread: a span entered on two threads at once
/// (rare, but allowed) must not hand one thread's direct calls to the other.
#[derive(Default)]
struct PerThreadSaved(Vec<(std::thread::ThreadId, SavedFrames)>);

impl PerThreadSaved {
    fn take(&mut self) -> SavedFrames {
        let me = std::thread::current().id();
        match self.0.iter().position(|(t, _)| *t == me) {
            Some(i) => self.0.swap_remove(i).1,
            None => SavedFrames::default(),
        }
    }
    fn put(&mut self, saved: SavedFrames) {
        if !saved.is_empty() {
            self.0.push((std::thread::current().id(), saved));
        }
    }
    fn enter(&mut self, call: Option<&Call>) {
        let mut saved = self.take();
        rt::enter_span_segment(call, &mut saved);
    }
    fn exit(&mut self, call: Option<&Call>) {
        let mut saved = SavedFrames::default();
        rt::exit_span_segment(call, &mut saved);
        self.put(saved);
    }
}

/// What the layer keeps in a span's extensions.
enum SpanEntry {
    /// A call this layer made for the span, finished when the span closes.
    Owned(Box<Owned>),
    /// An op's span: the op makes and finishes the call. Kept for explicit-parent lookups,
    /// and pushed when the span is entered where the op's call is not already current (a
    /// task spawned with `fut.in_current_span()` inside the op).
    Op(Call, PerThreadSaved),
    /// Made inside a sampled-out trace: entering it keeps its subtree untraced.
    Suppressed(PerThreadSaved),
}

struct Owned {
    call: Call,
    genai: JsonMap,
    output: Option<Value>,
    error: Option<Exception>,
    /// Depth of enters on the current thread(s), to pop what was pushed.
    entered: usize,
    /// Direct calls made inside the span, kept while it is exited (see [`SavedFrames`]).
    saved: PerThreadSaved,
}

impl<S> Layer<S> for WeaveLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if weave_core::is_internal_thread() || rt::is_disabled() {
            return;
        }
        let meta = attrs.metadata();
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanEntry>().is_some() {
            // Another WeaveLayer in the same subscriber has this span: one layer records it.
            return;
        }
        if meta.fields().field(OP_SPAN_FIELD).is_some() {
            if let Some(call) = rt::op_span_call() {
                span.extensions_mut()
                    .insert(SpanEntry::Op(call, PerThreadSaved::default()));
            }
            return;
        }
        if !self.wanted(meta) {
            return;
        }
        let placement = if attrs.is_root() {
            Placement::Root(None)
        } else if attrs.parent().is_some() {
            // The span's registry parent is the explicit parent or, when a per-layer filter
            // hides that one from this layer, its nearest ancestor this layer sees.
            match span.parent() {
                Some(parent) => nearest_call(parent.scope()),
                None => Placement::Root(None),
            }
        } else {
            rt::placement()
        };
        let (client, parent) = match placement {
            Placement::Disabled => return,
            Placement::Suppressed => {
                span.extensions_mut()
                    .insert(SpanEntry::Suppressed(PerThreadSaved::default()));
                return;
            }
            Placement::Child(p) => (p.client().clone(), Some(p)),
            Placement::Root(global) => {
                match self.client.clone().or(global).or_else(rt::root_client) {
                    Some(c) => (c, None),
                    None => return,
                }
            }
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let mut opts = CallOptions::new()
            .use_stack(false)
            .defer_start(true)
            .attribute("tracing", tracing_attributes(meta));
        opts.parent = parent;
        match client.create_call_with(Op::new(meta.name()), &fields.inputs, opts) {
            Ok(call) => {
                span.extensions_mut()
                    .insert(SpanEntry::Owned(Box::new(Owned {
                        call,
                        genai: fields.genai,
                        output: None,
                        error: None,
                        entered: 0,
                        saved: PerThreadSaved::default(),
                    })));
            }
            Err(e) => report_once(&e),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if !matches!(
            span.extensions().get::<SpanEntry>(),
            Some(SpanEntry::Owned(_))
        ) {
            return;
        }
        // Format the values (user Debug/Display code) before taking the extensions lock.
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut ext = span.extensions_mut();
        if let Some(SpanEntry::Owned(o)) = ext.get_mut::<SpanEntry>() {
            o.call.extend_deferred_inputs(fields.inputs);
            o.genai.extend(fields.genai);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanEntry>() {
            Some(SpanEntry::Owned(o)) => {
                o.entered += 1;
                o.saved.enter(Some(&o.call));
            }
            Some(SpanEntry::Suppressed(saved)) => saved.enter(None),
            // The op pushes its own call where it runs; elsewhere the span carries it.
            Some(SpanEntry::Op(call, saved)) if !rt::is_on_stack(call) => {
                saved.enter(Some(call));
                let _ = OP_SPANS_PUSHED.try_with(|p| p.borrow_mut().push(id.clone()));
            }
            Some(SpanEntry::Op(..)) | None => {}
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanEntry>() {
            Some(SpanEntry::Owned(o)) => {
                o.entered = o.entered.saturating_sub(1);
                o.saved.exit(Some(&o.call));
            }
            Some(SpanEntry::Suppressed(saved)) => saved.exit(None),
            Some(SpanEntry::Op(call, saved)) => {
                let pushed = OP_SPANS_PUSHED
                    .try_with(|p| {
                        let mut p = p.borrow_mut();
                        match p.iter().rposition(|x| x == id) {
                            Some(i) => {
                                p.remove(i);
                                true
                            }
                            None => false,
                        }
                    })
                    .unwrap_or(false);
                if pushed {
                    saved.exit(Some(call));
                }
            }
            None => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if weave_core::is_internal_thread() || rt::is_disabled() {
            return;
        }
        let meta = event.metadata();
        if !self.wanted(meta) {
            return;
        }
        // `#[instrument(ret)]` / `#[instrument(err)]`: one field named `return` / `error`, no
        // message, inside the instrumented span, emitted from the span's own source location
        // (the attribute), so that `warn!(error = %e)` in the body is an ordinary event.
        if let Some(kind) = instrument_event_kind(meta) {
            let span = ctx.event_span(event).filter(|span| {
                let sm = span.metadata();
                sm.file() == meta.file()
                    && sm.line() == meta.line()
                    && matches!(
                        span.extensions().get::<SpanEntry>(),
                        Some(SpanEntry::Owned(_))
                    )
            });
            if let Some(span) = span {
                // Format the value (user code) before taking the extensions lock.
                let mut v = OneValue(None);
                event.record(&mut v);
                let value = v.0.unwrap_or(Value::Null);
                let mut ext = span.extensions_mut();
                if let Some(SpanEntry::Owned(o)) = ext.get_mut::<SpanEntry>() {
                    match kind {
                        InstrumentEvent::Return => o.output = Some(value),
                        InstrumentEvent::Error => {
                            let message = match value {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            o.error = Some(Exception::new("Error", message));
                        }
                    }
                    return;
                }
            }
        }
        let call = match event.parent() {
            Some(parent) => match explicit_parent(&ctx, parent) {
                Placement::Child(c) => Some(c),
                _ => None,
            },
            None if event.is_root() => None,
            None => weave_core::current_call(),
        };
        if let Some(call) = call {
            let mut fields = EventFields::default();
            event.record(&mut fields);
            let mut e = Map::new();
            e.insert("time".into(), json!(Timestamp::now().to_string()));
            e.insert("level".into(), json!(meta.level().as_str()));
            e.insert("target".into(), json!(meta.target()));
            if let Some(m) = fields.message {
                e.insert("message".into(), Value::String(m));
            }
            if !fields.fields.is_empty() {
                e.insert("fields".into(), Value::Object(fields.fields));
            }
            call.log_event(Value::Object(e));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let entry = span.extensions_mut().remove::<SpanEntry>();
        let Some(SpanEntry::Owned(o)) = entry else {
            return;
        };
        let Owned {
            call,
            genai,
            output,
            error,
            entered,
            saved: _,
        } = *o;
        if entered > 0 {
            weave_core::pop_call(&call);
        }
        if let Some((model, usage)) = usage_from_genai(&genai) {
            let mut by_model = Map::new();
            by_model.insert(model, Value::Object(usage));
            call.set_summary_value("usage", Value::Object(by_model));
        }
        // Without a `ret` value, the GenAI response fields (id, model, finish reasons) are the
        // output: they are results, not inputs.
        let output = output.or_else(|| {
            let response: Map<String, Value> = genai
                .iter()
                .filter(|(k, _)| k.starts_with("gen_ai.response."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!response.is_empty()).then_some(Value::Object(response))
        });
        let client = call.client().clone();
        let _ = client.finish_call_with(&call, output.unwrap_or(Value::Null), error, None);
    }
}

thread_local! {
    /// Op spans this layer pushed on this thread (entered away from their op), to pop on exit.
    static OP_SPANS_PUSHED: std::cell::RefCell<Vec<Id>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cold]
fn report_once(e: &weave_core::WeaveError) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!("weave: a span could not be traced ({e}); further such errors are not reported.");
    }
}

/// The nearest call among `parent` and its ancestors.
fn explicit_parent<S>(ctx: &Context<'_, S>, parent: &Id) -> Placement
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match ctx.span_scope(parent) {
        Some(scope) => nearest_call(scope),
        None => Placement::Root(None),
    }
}

/// The first call among `scope` (a span and its ancestors).
fn nearest_call<'a, R: LookupSpan<'a>>(
    scope: tracing_subscriber::registry::Scope<'a, R>,
) -> Placement {
    for span in scope {
        match span.extensions().get::<SpanEntry>() {
            Some(SpanEntry::Owned(o)) => return Placement::Child(o.call.clone()),
            Some(SpanEntry::Op(c, _)) => return Placement::Child(c.clone()),
            Some(SpanEntry::Suppressed(_)) => return Placement::Suppressed,
            None => {}
        }
    }
    Placement::Root(None)
}

fn tracing_attributes(meta: &Metadata<'_>) -> Value {
    let mut m = Map::new();
    m.insert("target".into(), json!(meta.target()));
    m.insert("level".into(), json!(meta.level().as_str()));
    if let Some(f) = meta.file() {
        m.insert("file".into(), json!(f));
    }
    if let Some(l) = meta.line() {
        m.insert("line".into(), json!(l));
    }
    Value::Object(m)
}

enum InstrumentEvent {
    Return,
    Error,
}

fn instrument_event_kind(meta: &Metadata<'_>) -> Option<InstrumentEvent> {
    let mut fields = meta.fields().iter();
    let f = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    match f.name() {
        "return" => Some(InstrumentEvent::Return),
        "error" => Some(InstrumentEvent::Error),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Field visitors

/// A `Debug` text that is valid JSON is kept as that JSON (numbers, strings, lists of them);
/// anything else stays text.
fn debug_value(text: String) -> Value {
    let t = text.trim_start();
    if t.starts_with(['"', '[', '{', '-'])
        || t.starts_with(|c: char| c.is_ascii_digit())
        || t == "true"
        || t == "false"
        || t == "null"
    {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return v;
        }
    }
    Value::String(text)
}

/// Keys of span fields that are GenAI results, not inputs.
fn is_genai_result(name: &str) -> bool {
    name.starts_with("gen_ai.usage.")
        || name.starts_with("gen_ai.response.")
        || name.starts_with("llm.token_count.")
        || name.starts_with("llm.usage.")
        || name.starts_with("ai.usage.")
}

#[derive(Default)]
struct Fields {
    inputs: JsonMap,
    genai: JsonMap,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        let name = field.name();
        if is_genai_result(name) {
            self.genai.insert(name.to_string(), v);
        } else {
            if matches!(name, "gen_ai.request.model" | "llm.model_name") {
                self.genai.insert(name.to_string(), v.clone());
            }
            self.inputs.insert(name.to_string(), v);
        }
    }
}

macro_rules! visit_all {
    ($put:ident) => {
        fn record_f64(&mut self, field: &Field, value: f64) {
            let v = serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or(Value::Null);
            self.$put(field, v);
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.$put(field, json!(value));
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.$put(field, json!(value));
        }
        fn record_i128(&mut self, field: &Field, value: i128) {
            self.$put(
                field,
                i64::try_from(value)
                    .map(|v| json!(v))
                    .unwrap_or_else(|_| json!(value.to_string())),
            );
        }
        fn record_u128(&mut self, field: &Field, value: u128) {
            self.$put(
                field,
                u64::try_from(value)
                    .map(|v| json!(v))
                    .unwrap_or_else(|_| json!(value.to_string())),
            );
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.$put(field, json!(value));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.$put(field, json!(value));
        }
        fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
            self.$put(field, json!(value.to_string()));
        }
    };
}

impl Visit for Fields {
    visit_all!(put);
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, debug_value(format!("{value:?}")));
    }
}

#[derive(Default)]
struct EventFields {
    message: Option<String>,
    fields: JsonMap,
}

impl EventFields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), v);
        }
    }
}

impl Visit for EventFields {
    visit_all!(put);
    // A message is text as written, even when it looks like JSON.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.fields
                .insert(field.name().to_string(), debug_value(format!("{value:?}")));
        }
    }
}

struct OneValue(Option<Value>);

impl OneValue {
    fn put(&mut self, _field: &Field, v: Value) {
        self.0 = Some(v);
    }
}

impl Visit for OneValue {
    visit_all!(put);
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, debug_value(format!("{value:?}")));
    }
}

// ---------------------------------------------------------------------------------------
// GenAI conventions → summary.usage

// Weave's usage keys and the span attributes they come from: one table with the server's
// OTLP ingest (`weave_core::genai::USAGE_KEYS`).
use weave_core::genai::USAGE_KEYS;

/// The model the usage is for: the response's model, else the request's.
const MODEL_KEYS: &[&str] = &[
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
];

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `(model, usage)` from GenAI span fields, with `requests: 1` and `total_tokens` filled in
/// as the Weave server and the Python SDK do.
fn usage_from_genai(genai: &JsonMap) -> Option<(String, JsonMap)> {
    let mut usage = Map::new();
    for (key, sources) in USAGE_KEYS {
        if let Some(n) = sources.iter().find_map(|s| genai.get(*s).and_then(as_int)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_targets_are_recognised_exactly() {
        assert!(is_own_target("weave_core::client::writer"));
        assert!(is_own_target("weave"));
        assert!(is_own_target("weave::x"));
        assert!(!is_own_target("weaver"));
        assert!(!is_own_target("weave_app::main"));
    }

    #[test]
    fn debug_text_that_is_json_stays_json() {
        assert_eq!(debug_value("4".into()), json!(4));
        assert_eq!(debug_value("\"hi\"".into()), json!("hi"));
        assert_eq!(debug_value("[1, 2]".into()), json!([1, 2]));
        assert_eq!(debug_value("Foo { a: 1 }".into()), json!("Foo { a: 1 }"));
        assert_eq!(debug_value("Some(3)".into()), json!("Some(3)"));
    }

    #[test]
    fn genai_usage_follows_the_server_mapping() {
        let mut g = Map::new();
        g.insert("gen_ai.usage.input_tokens".into(), json!(10));
        g.insert("gen_ai.usage.output_tokens".into(), json!("5"));
        g.insert("gen_ai.request.model".into(), json!("gpt-4o"));
        g.insert("gen_ai.response.model".into(), json!("gpt-4o-2024-08-06"));
        let (model, u) = usage_from_genai(&g).unwrap();
        assert_eq!(model, "gpt-4o-2024-08-06");
        assert_eq!(
            Value::Object(u),
            json!({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "requests": 1})
        );
        assert!(usage_from_genai(&Map::new()).is_none());
    }
}
