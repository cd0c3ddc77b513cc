//! The [`WeaveLayer`] itself: its settings and the span lifecycle that turns spans into calls.
//!
//! - `on_new_span` places the span (a child of the current call, of an explicit parent's call,
//!   or a root) and makes its call, deferred, with the span's fields as inputs — what depends
//!   only on the callsite is worked out once per callsite (`sites`);
//! - `on_record` adds fields recorded later;
//! - `on_enter` / `on_exit` make the call current on the thread and undo it;
//! - `on_event` takes `#[instrument(ret/err)]` events as the output / exception, and logs any
//!   other event in `summary.events` of the current call;
//! - `on_close` maps the GenAI fields ([`weave_core::genai`]) and finishes the call.
//!
//! Turning field values into JSON is in `fields`, what is kept per span in `span_entry`.

use serde_json::{json, Map, Value};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use weave_core::rt::{self, Placement};
use weave_core::{Exception, Timestamp, WeaveClient};

use crate::fields::{EventFields, SingleValue, SpanValues};
use crate::metadata::{instrument_event_kind, is_own_target, InstrumentEvent};
use crate::report::report_once;
use crate::sites;
use crate::span_entry::{explicit_parent, nearest_call, OwnedCall, PerThreadSaved, SpanEntry};

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
        let site = sites::site(meta);
        if site.op_span {
            if let Some(call) = rt::op_span_call() {
                span.extensions_mut()
                    .insert(SpanEntry::Op(call, PerThreadSaved::default()));
            }
            return;
        }
        if *meta.level() > self.max_level || site.own {
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
            rt::placement_of_child()
        };
        let (client, parent) = match placement {
            Placement::Disabled => return,
            Placement::Suppressed => {
                span.extensions_mut()
                    .insert(SpanEntry::Suppressed(PerThreadSaved::default()));
                return;
            }
            Placement::Child(p) => (p.client().clone(), Some(p)),
            // The layer's own client first, else the process-wide one (looked up only then).
            Placement::Root(_) => match self.client.clone().or_else(rt::root_client) {
                Some(c) => (c, None),
                None => return,
            },
        };
        let mut inputs = site.span.inputs();
        attrs.record(&mut SpanValues(&mut inputs));
        match site.span.start_call(&client, parent, inputs) {
            Ok((call, genai)) => {
                span.extensions_mut().insert(SpanEntry::Owned(OwnedCall {
                    call,
                    site,
                    genai,
                    output: None,
                    error: None,
                    entered: 0,
                    saved: PerThreadSaved::default(),
                }));
            }
            Err(e) => report_once(&e),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let entry = match span.extensions().get::<SpanEntry>() {
            Some(SpanEntry::Owned(o)) => Ok(o.site),
            Some(SpanEntry::Op(call, _)) => Err(call.clone()),
            _ => return,
        };
        let site = match entry {
            Ok(site) => site,
            // An LLM library recording on the current span inside an op: its GenAI fields
            // (declared by the op's span) go to the op's call. Formatted with no lock held.
            Err(op_call) => {
                let mut record = crate::sites::site(span.metadata()).span.record();
                values.record(&mut SpanValues(&mut record));
                let (_, genai) = record.into_parts();
                rt::record_op_genai(&op_call, genai);
                return;
            }
        };
        // Format the values (user Debug/Display code) before taking the extensions lock.
        let mut record = site.span.record();
        values.record(&mut SpanValues(&mut record));
        let (inputs, genai) = record.into_parts();
        let mut ext = span.extensions_mut();
        if let Some(SpanEntry::Owned(o)) = ext.get_mut::<SpanEntry>() {
            if !inputs.is_empty() {
                o.call.extend_deferred_inputs(inputs);
            }
            genai.add_to(&mut o.genai);
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
                let mut v = SingleValue(None);
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
        let OwnedCall {
            call,
            genai,
            output,
            error,
            entered,
            site: _,
            saved: _,
        } = o;
        if entered > 0 {
            weave_core::pop_call(&call);
        }
        let _ = match genai {
            // Usage by model; without a `ret` value, the GenAI response fields (id, model,
            // finish reasons) are the output: they are results, not inputs.
            Some(genai) => rt::finish_genai_span_call(&call, *genai, output, error),
            None => rt::finish_span_call(&call, output.unwrap_or(Value::Null), error),
        };
    }
}

thread_local! {
    /// Op spans this layer pushed on this thread (entered away from their op), to pop on exit.
    static OP_SPANS_PUSHED: std::cell::RefCell<Vec<Id>> = const { std::cell::RefCell::new(Vec::new()) };
}
