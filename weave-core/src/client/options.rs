//! [`CallOptions`]: the optional parameters of a call (parent, attributes, display name,
//! stack use, thread and turn, start time, deferred start).

use std::sync::Arc;

use serde_json::Value;

use super::call::Call;
use super::op::DisplayName;
use crate::schema::JsonMap;
use crate::time::Timestamp;

/// The optional parameters of [`WeaveClient::create_call_with`](crate::WeaveClient::create_call_with): Python's `parent`,
/// `attributes`, `display_name` and `use_stack` (default true), plus thread/turn ids and a
/// start time.
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// use weave_core::CallOptions;
/// use serde_json::json;
/// let root = client.create_call("agent", json!({"q": "hi"})).unwrap();
/// let child = client
///     .create_call_with(
///         "llm",
///         json!({"prompt": "hi"}),
///         CallOptions::new()
///             .parent(&root)
///             .attribute("env", "test")
///             .display_name_fn(|c| format!("llm #{}", &c.id()[..8]))
///             .use_stack(false),
///     )
///     .unwrap();
/// assert_eq!(child.parent_id(), Some(root.id()));
/// assert!(child.display_name().unwrap().starts_with("llm #"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// The parent; default: the current call when `use_stack`, else none.
    pub parent: Option<Call>,
    /// Per-call attributes, merged over the client's.
    pub attributes: JsonMap,
    /// The display name.
    pub display_name: Option<DisplayName>,
    /// Whether the call becomes the current call until it finishes (`None` = true).
    pub use_stack: Option<bool>,
    /// The conversation thread (default: the parent's).
    pub thread_id: Option<String>,
    /// Override the start time (default: now).
    pub started_at: Option<Timestamp>,
    /// Write the start together with the end, when the call finishes, instead of now (see
    /// [`CallOptions::defer_start`]).
    pub defer_start: bool,
    /// The call's id (default: a new UUIDv7); see [`CallOptions::id`].
    pub id: Option<String>,
    /// A root call's trace id (default: a new UUIDv7); see [`CallOptions::trace_id`].
    pub trace_id: Option<String>,
    /// The call's whole attributes, the client's included, made once for many calls (the
    /// tracing layer's per-callsite attributes); replaces the merge of `attributes`.
    pub(crate) merged_attributes: Option<Arc<JsonMap>>,
}

impl CallOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the parent.
    pub fn parent(mut self, parent: &Call) -> Self {
        self.parent = Some(parent.clone());
        self
    }
    /// Adds one attribute.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
    /// Sets all attributes.
    pub fn attributes(mut self, attributes: JsonMap) -> Self {
        self.attributes = attributes;
        self
    }
    /// A fixed display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(DisplayName::Static(name.into()));
        self
    }
    /// A display name computed from the new call.
    pub fn display_name_fn(mut self, f: impl Fn(&Call) -> String + Send + Sync + 'static) -> Self {
        self.display_name = Some(DisplayName::Fn(Arc::new(f)));
        self
    }
    /// Whether the call becomes the current call on this thread until it finishes.
    pub fn use_stack(mut self, yes: bool) -> Self {
        self.use_stack = Some(yes);
        self
    }
    /// Puts the call in a conversation thread.
    pub fn thread_id(mut self, id: impl Into<String>) -> Self {
        self.thread_id = Some(id.into());
        self
    }
    /// Overrides the start time.
    pub fn started_at(mut self, t: Timestamp) -> Self {
        self.started_at = Some(t);
        self
    }
    /// Writes the call's start only when it finishes, together with its end, so that its
    /// inputs can still grow ([`Call::extend_deferred_inputs`]) — the way OpenTelemetry
    /// exports spans. The tracing layer does this for spans. Until then the call is not in
    /// the store; a call that never finishes is never written.
    pub fn defer_start(mut self, yes: bool) -> Self {
        self.defer_start = yes;
        self
    }
    /// Gives the call this id — a lowercase UUID or a 16-hex-digit OpenTelemetry span id —
    /// instead of a new one: for calls that mirror another tracing system's spans, so that
    /// what refers to the span (a `traceparent` header, a child span) refers to the call.
    /// `create_call` fails on an id of another form.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Gives a root call this trace id — a lowercase UUID or a 32-hex-digit OpenTelemetry
    /// trace id — instead of a new one. A child's trace is always its parent's: with a
    /// parent, `create_call` fails when the two differ.
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }
}
