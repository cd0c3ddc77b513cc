//! [`WeaveClient`]: the call API of the Python `WeaveClient`, over any [`TraceServer`].
//!
//! Writes (`create_call`, `finish_call`) are queued to a background writer and never wait on
//! I/O. Reads (`get_call`, `get_calls`, …) first wait for the writer to drain (flush-on-read),
//! so a read always sees this client's earlier writes.

pub(crate) mod call;
pub(crate) mod calls_iter;
pub(crate) mod capture;
pub(crate) mod context;
pub(crate) mod costs;
pub(crate) mod exception;
pub(crate) mod feedback;
pub(crate) mod global;
pub(crate) mod objects;
mod op_code;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use self::call::Call;
use self::calls_iter::{CallsIter, CallsQuery};
use self::exception::{Exception, IntoException};
use self::writer::Writer;
use crate::config::Settings;
use crate::error::{Result, WeaveError};
use crate::ids::IdText;
use crate::record::{Inputs, NewCall, StatusCounts};
use crate::schema::summary::{deep_update, usage_from_output, STATUS_COUNTS_KEY};
use crate::schema::*;
use crate::server::sqlite::MAX_FILTER_LIST;
use crate::server::TraceServer;
use crate::time::Timestamp;

pub use crate::redact::{REDACTED_VALUE, REDACT_KEYS};
/// Display names longer than this are truncated (to 1021 characters and `"..."`).
pub const MAX_DISPLAY_NAME_CHARS: usize = 1024;
/// The summary key under which a call's events are written ([`Call::log_event`]).
pub const EVENTS_KEY: &str = "events";
/// The summary key counting events beyond [`crate::MAX_EVENTS`].
pub const EVENTS_DROPPED_KEY: &str = "events_dropped";
/// How long `flush()` waits at most.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// An op version this client has met: (object digest, op ref).
type OpVersion = (Arc<str>, Arc<str>);
type InputsFn = dyn Fn(JsonMap) -> JsonMap + Send + Sync;
type OutputFn = dyn Fn(Value) -> Value + Send + Sync;
type DisplayNameFn = dyn Fn(&Call) -> String + Send + Sync;

/// What a call is a call *of*: Python's `str | Op` argument of `create_call`.
///
/// A plain name (`&str` / `String`) converts into an `Op`. Every call's `op_name` is an op
/// ref (`weave:///entity/project/op/<name>:<digest>`), as in Python: the op object is saved
/// once per client, with the op's source text as its code ([`Op::code`]; `#[weave::op]`
/// captures it), or a stub for a plain name. An `Op` may also carry a `kind` and
/// `postprocess_inputs` / `postprocess_output` functions (e.g. redaction), applied before
/// anything is recorded.
///
/// # Examples
///
/// ```
/// use weave_core::Op;
/// let op = Op::new("llm").kind("llm").postprocess_inputs(|mut inputs| {
///     inputs.remove("prompt");
///     inputs
/// });
/// assert_eq!(op.name(), "llm");
/// ```
#[derive(Clone)]
pub struct Op {
    name: Arc<str>,
    code: Option<Arc<op_code::OpCode>>,
    kind: Option<Arc<str>>,
    postprocess_inputs: Option<Arc<InputsFn>>,
    postprocess_output: Option<Arc<OutputFn>>,
}

impl Op {
    /// An op named `name` (a plain name or an op ref URI).
    pub fn new(name: impl Into<String>) -> Self {
        Op {
            name: Arc::from(name.into()),
            code: None,
            kind: None,
            postprocess_inputs: None,
            postprocess_output: None,
        }
    }
    /// The op's name or ref.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn renamed(mut self, name: String) -> Self {
        self.name = Arc::from(name);
        self
    }
    /// Sets the op's source text: it is saved as the op object's code (`obj.py`), so that
    /// changed code makes a new op version.
    pub fn code(mut self, source: impl Into<String>) -> Self {
        self.code = Some(Arc::new(op_code::OpCode::new(source.into())));
        self
    }
    /// Sets the op's kind (`"llm"`, `"agent"`, `"tool"`, …), stored in its calls'
    /// `attributes.weave.kind` as the Python SDK stores it.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(Arc::from(kind.into()));
        self
    }
    /// The op's kind, if set.
    pub fn get_kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
    /// Transforms the inputs before they are recorded.
    pub fn postprocess_inputs(
        mut self,
        f: impl Fn(JsonMap) -> JsonMap + Send + Sync + 'static,
    ) -> Self {
        self.postprocess_inputs = Some(Arc::new(f));
        self
    }
    /// Transforms the output before it is recorded.
    pub fn postprocess_output(
        mut self,
        f: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) -> Self {
        self.postprocess_output = Some(Arc::new(f));
        self
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl From<&str> for Op {
    fn from(name: &str) -> Self {
        Op::new(name)
    }
}
impl From<String> for Op {
    fn from(name: String) -> Self {
        Op::new(name)
    }
}
impl From<&Op> for Op {
    fn from(op: &Op) -> Self {
        op.clone()
    }
}

/// A display name: fixed, or computed from the new call.
#[derive(Clone)]
pub enum DisplayName {
    /// A fixed name.
    Static(String),
    /// A function of the call (it sees the id, inputs, op, …).
    Fn(Arc<DisplayNameFn>),
}

impl std::fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisplayName::Static(s) => f.debug_tuple("Static").field(s).finish(),
            DisplayName::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// The optional parameters of [`WeaveClient::create_call_with`]: Python's `parent`,
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
}

/// The client: records calls and queries them back, on any [`TraceServer`].
///
/// Cheap to clone; clones share the backend and the background writer. The writer is flushed
/// and stopped when the last clone (and the last [`Call`] made by it) is dropped.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use weave_core::{SqliteServer, WeaveClient};
///
/// let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), true)?;
/// let agent = client.create_call("agent", json!({"question": "2+2?"}))?;
/// let llm = client.create_call("llm", json!({"prompt": "2+2?"}))?; // child of `agent`
/// client.finish_call(&llm, json!({"model": "gpt-4o", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}))?;
/// client.finish_call(&agent, "4")?;
///
/// let back = client.get_call(agent.id())?;
/// assert_eq!(back.output(), json!("4"));
/// assert_eq!(back.usage()["gpt-4o"]["prompt_tokens"], 5);
/// assert_eq!(back.children().count(), 1);
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Clone)]
pub struct WeaveClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    /// Unique in the process (keys the op sites' caches of resolved op refs).
    serial: u64,
    entity: String,
    project: String,
    project_id: Arc<str>,
    server: Arc<dyn TraceServer>,
    writer: Writer,
    page_size: u64,
    /// The SDK's attributes, shared by every call that adds none.
    attributes: Arc<JsonMap>,
    app_url: String,
    print_call_link: bool,
    /// Op refs resolved so far: sanitized name → (object digest, ref), saved once each.
    ops: RwLock<HashMap<String, Vec<OpVersion>>>,
}

impl std::fmt::Debug for WeaveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeaveClient")
            .field("project_id", &self.inner.project_id)
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.contains('/') || s.chars().any(char::is_control) {
        return Err(WeaveError::invalid_input(format!(
            "{what} {s:?} must be non-empty, without '/' or control characters"
        )));
    }
    Ok(())
}

/// Runs user code given to the SDK (postprocess functions, display-name functions): a panic in
/// it must not break the traced program, so it is caught and `fallback` gets its message.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T, fallback: impl FnOnce(String) -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| fallback(panic_message(&*p)))
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

pub(crate) use crate::redact::{is_redacted_key, redact_inputs, redact_inputs_in_place};

/// A value as JSON, nesting capped at [`crate::limits::MAX_DEPTH`]; a value whose `Serialize`
/// fails is recorded as a readable placeholder.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Value {
    capture::to_value_capped(value).unwrap_or_else(|e| {
        Value::String(format!(
            "<unserializable {}: {e}>",
            std::any::type_name::<T>()
        ))
    })
}

fn truncate_display_name(name: String) -> String {
    if name.chars().count() <= MAX_DISPLAY_NAME_CHARS {
        return name;
    }
    let mut s: String = name.chars().take(MAX_DISPLAY_NAME_CHARS - 3).collect();
    s.push_str("...");
    s
}

impl WeaveClient {
    /// A client for `entity/project` on `server` (Python's `WeaveClient(entity, project,
    /// server, ensure_project_exists)`). With `ensure_project_exists`, asks the backend to
    /// create the project first.
    pub fn new(
        entity: impl Into<String>,
        project: impl Into<String>,
        server: Arc<dyn TraceServer>,
        ensure_project_exists: bool,
    ) -> Result<Self> {
        Self::with_settings(
            entity,
            project,
            server,
            ensure_project_exists,
            &Settings::from_env(),
        )
    }

    /// Like [`WeaveClient::new`], with explicit [`Settings`] instead of the environment's.
    pub fn with_settings(
        entity: impl Into<String>,
        project: impl Into<String>,
        server: Arc<dyn TraceServer>,
        ensure_project_exists: bool,
        settings: &Settings,
    ) -> Result<Self> {
        let (entity, project) = (entity.into(), project.into());
        check_name("entity", &entity)?;
        check_name("project", &project)?;
        // Every request the client makes runs as weave-internal work (never traced).
        let server: Arc<dyn TraceServer> = Arc::new(crate::server::internal::Internal(server));
        if ensure_project_exists {
            server.ensure_project_exists(&entity, &project)?;
        }
        let writer = Writer::new(server.clone(), settings.max_calls_queue_size);
        let mut weave = JsonMap::new();
        weave.insert("client_version".into(), json!(env!("CARGO_PKG_VERSION")));
        weave.insert("source".into(), json!("rust-sdk"));
        weave.insert("os_name".into(), json!(std::env::consts::OS));
        weave.insert("arch".into(), json!(std::env::consts::ARCH));
        let mut attributes = JsonMap::new();
        attributes.insert("weave".into(), Value::Object(weave));
        let print_call_link = settings.print_call_link.unwrap_or(false);
        Ok(WeaveClient {
            inner: Arc::new(ClientInner {
                serial: {
                    static NEXT: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
                project_id: format!("{entity}/{project}").into(),
                app_url: server.app_url().trim_end_matches('/').to_string(),
                print_call_link,
                ops: RwLock::new(HashMap::new()),
                entity,
                project,
                server,
                writer,
                page_size: settings.calls_page_size,
                attributes: Arc::new(attributes),
            }),
        })
    }

    /// A client for `"entity/project"` on the embedded store at its default location
    /// ([`crate::SqliteServer::default_path`]).
    pub fn embedded(project_path: &str) -> Result<Self> {
        let (entity, project) = project_path.split_once('/').ok_or_else(|| {
            WeaveError::invalid_input(format!(
                "project {project_path:?} must be \"entity/project\""
            ))
        })?;
        Self::new(
            entity,
            project,
            Arc::new(crate::SqliteServer::open_default()?),
            true,
        )
    }

    /// Whether `other` is a clone of this client (same backend handle and writer).
    pub fn same_client(&self, other: &WeaveClient) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
    /// The entity.
    pub fn entity(&self) -> &str {
        &self.inner.entity
    }
    /// The project.
    pub fn project(&self) -> &str {
        &self.inner.project
    }
    /// `"entity/project"`.
    pub fn project_id(&self) -> &str {
        &self.inner.project_id
    }
    pub(crate) fn project_id_arc(&self) -> Arc<str> {
        self.inner.project_id.clone()
    }
    /// Unique among the clients of this process.
    pub(crate) fn serial(&self) -> u64 {
        self.inner.serial
    }
    /// The backend.
    pub fn server(&self) -> &Arc<dyn TraceServer> {
        &self.inner.server
    }
    pub(crate) fn page_size(&self) -> u64 {
        self.inner.page_size
    }
    /// How many queued writes (call starts and ends, op versions, feedback on a remote
    /// server) were dropped because the queue was full or the backend refused them (reported
    /// once on stderr when it first happens).
    pub fn dropped(&self) -> u64 {
        self.inner.writer.dropped()
    }

    /// Queues validated feedback for the writer; a full queue is an error for the caller
    /// (who asked for this write explicitly), unlike calls, which are dropped silently.
    pub(crate) fn enqueue_feedback(&self, req: FeedbackCreateReq) -> Result<()> {
        if self.inner.writer.enqueue_feedback(req) {
            Ok(())
        } else {
            Err(WeaveError::Unavailable {
                message: "feedback not queued: the write queue is full or the client is shut down"
                    .into(),
                retry_after: None,
                maybe_applied: false,
            })
        }
    }

    /// How many times the background writer retried a request because the backend was
    /// unavailable or failed (diagnostics: a remote server that is down or throttling).
    pub fn write_retries(&self) -> u64 {
        self.inner.writer.retries()
    }

    /// Waits until every call write queued so far is durable in the backend.
    pub fn flush(&self) {
        self.inner.writer.flush(FLUSH_TIMEOUT);
    }

    /// Like [`WeaveClient::flush`], waiting at most `timeout`; returns whether it finished.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        self.inner.writer.flush(timeout)
    }

    pub(crate) fn call_ui_url(&self, id: &str) -> String {
        let mut project = String::new();
        crate::refs::percent_encode(&self.inner.project, &mut project);
        format!(
            "{}/{}/{project}/r/call/{id}",
            self.inner.app_url, self.inner.entity
        )
    }

    /// Starts a call of `op` with `inputs` (anything serialising to a JSON object), as the
    /// current call's child; it becomes the current call until it finishes. See
    /// [`WeaveClient::create_call_with`] for the other parameters.
    pub fn create_call(&self, op: impl Into<Op>, inputs: impl Serialize) -> Result<Call> {
        self.create_call_with(op, inputs, CallOptions::default())
    }

    /// Starts a call (Python's `create_call(op, inputs, parent, attributes, display_name,
    /// use_stack)`). The start is queued for the backend; this never waits on I/O.
    ///
    /// Errors when `inputs` does not serialise to a JSON object, when the op name is not a
    /// plain name of 1 to 128 characters or an op ref, or when `attributes` uses the reserved
    /// key `weave`.
    pub fn create_call_with(
        &self,
        op: impl Into<Op>,
        inputs: impl Serialize,
        opts: CallOptions,
    ) -> Result<Call> {
        let op: Op = op.into();
        let op_name = self.resolve_op(&op)?;
        let inputs = match to_json(&inputs) {
            Value::Object(m) => m,
            Value::String(s) if s.starts_with("<unserializable") => {
                let mut m = JsonMap::new();
                m.insert("_unserializable".into(), Value::String(s));
                m
            }
            other => {
                return Err(WeaveError::invalid_input(format!(
                    "inputs must serialize to a JSON object (argument name → value), got {}",
                    crate::schema::json_kind(&other)
                )));
            }
        };
        self.create_call_inner(&op, op_name, Inputs::Map(inputs), opts)
    }

    /// [`WeaveClient::create_call_with`] for an op already resolved to `op_name` and inputs
    /// already captured as JSON (the path of `#[weave::op]`, which copies nothing here).
    pub(crate) fn create_call_inner(
        &self,
        op: &Op,
        op_name: Arc<str>,
        mut inputs: Inputs,
        opts: CallOptions,
    ) -> Result<Call> {
        inputs.redact();
        if let Some(f) = &op.postprocess_inputs {
            let map = inputs.into_map();
            inputs = Inputs::Map(guarded(
                || f(map),
                |msg| {
                    let mut m = JsonMap::new();
                    m.insert(
                        "_weave_capture_error".into(),
                        Value::String(format!("postprocess_inputs panicked: {msg}")),
                    );
                    m
                },
            ));
        }
        if opts.attributes.contains_key("weave") {
            return Err(WeaveError::invalid_input(
                "attribute key \"weave\" is reserved for the SDK",
            ));
        }
        let attributes = if op.kind.is_none() && opts.attributes.is_empty() {
            self.inner.attributes.clone()
        } else {
            let mut attributes = (*self.inner.attributes).clone();
            if let Some(kind) = &op.kind {
                if let Some(Value::Object(w)) = attributes.get_mut("weave") {
                    w.insert("kind".into(), Value::from(&**kind));
                }
            }
            for (k, v) in opts.attributes {
                attributes.insert(k, v);
            }
            Arc::new(attributes)
        };

        let use_stack = opts.use_stack.unwrap_or(true);
        // Below a sampled-out root (or an untraced call) nothing is recorded.
        let (parent, untraced) = match opts.parent {
            Some(p) => {
                let untraced = p.is_untraced();
                (Some(p), untraced)
            }
            None if use_stack => match context::current() {
                context::Current::Call(c) => (Some(c), false),
                context::Current::Suppressed => (None, true),
                context::Current::None => (None, false),
            },
            None => (None, false),
        };
        // One clock read for the start time and the ids' millisecond.
        let now = Timestamp::now();
        let ms = crate::ids::ms_of_nanos(now.as_nanos());
        let (id, trace_id, parent_id) = match &parent {
            Some(p) => {
                let [id] = IdText::generate_at(ms);
                (id, p.trace_id_text().clone(), Some(p.id_text().clone()))
            }
            None => {
                let [id, trace_id] = IdText::generate_at(ms);
                (id, trace_id, None)
            }
        };
        let thread_id = opts.thread_id.or_else(|| {
            parent
                .as_ref()
                .and_then(|p| p.thread_id().map(str::to_string))
        });
        let turn_id = match (&thread_id, &parent) {
            (None, _) => None,
            (Some(t), Some(p)) if p.thread_id() == Some(t.as_str()) => {
                p.turn_id().map(str::to_string)
            }
            (Some(_), _) => Some(id.to_string()),
        };
        let started_at = opts.started_at.unwrap_or(now);
        let call = Call::new_live(
            self.clone(),
            NewCall {
                id,
                trace_id,
                parent: parent.map(Call::into_record),
                parent_id,
                op_name,
                inputs,
                attributes,
                started_at,
                thread_id,
                turn_id,
                untraced,
            },
        );
        let display_name = opts.display_name.and_then(|d| match d {
            DisplayName::Static(s) => Some(s),
            DisplayName::Fn(f) => guarded(|| Some(f(&call)), |_| None),
        });
        if let Some(d) = display_name.filter(|d| !d.is_empty()) {
            call.state().display_name = Some(truncate_display_name(d));
        }

        if untraced {
            // Inside a sampled-out trace: a call that is current (so that what runs below it
            // stays untraced) but is never written.
        } else if opts.defer_start {
            call.state().start_deferred = true;
        } else {
            self.inner.writer.enqueue_start(&call);
            self.print_call_link(&call);
        }
        if use_stack {
            context::offer_to_capture(&call);
            context::push_call(call.clone());
        }
        Ok(call)
    }

    fn print_call_link(&self, call: &Call) {
        if self.inner.print_call_link && call.parent_id().is_none() {
            eprintln!("🍩 {}", call.ui_url());
        }
    }

    /// The op ref an op's calls are recorded under: the op itself when it is a ref, else
    /// `weave:///entity/project/op/<sanitized name>:<digest of its code>`. The op object is
    /// queued for saving the first time this client meets it.
    pub(crate) fn resolve_op(&self, op: &Op) -> Result<Arc<str>> {
        if op.name.starts_with(crate::refs::WEAVE_SCHEME) {
            crate::refs::check_op_name(&op.name)?;
            return Ok(op.name.clone());
        }
        crate::refs::check_op_name(&op.name)?;
        let code = op
            .code
            .as_deref()
            .unwrap_or_else(|| op_code::OpCode::stub());
        {
            let ops = self.inner.ops.read().unwrap_or_else(|e| e.into_inner());
            if let Some(versions) = ops.get(&*op.name) {
                if let Some((_, r)) = versions.iter().find(|(d, _)| **d == *code.digest()) {
                    return Ok(r.clone());
                }
            }
        }
        let object_id = objects::sanitize_object_name(&op.name)?;
        let r: Arc<str> = Arc::from(
            crate::refs::ObjectRef {
                entity: self.inner.entity.clone(),
                project: self.inner.project.clone(),
                kind: crate::refs::ObjectKind::Op,
                name: object_id.clone(),
                digest: code.digest().to_string(),
                extra: Vec::new(),
            }
            .to_string(),
        );
        let mut ops = self.inner.ops.write().unwrap_or_else(|e| e.into_inner());
        let versions = ops.entry(op.name.to_string()).or_default();
        if let Some((_, r)) = versions.iter().find(|(d, _)| **d == *code.digest()) {
            return Ok(r.clone());
        }
        versions.push((Arc::from(code.digest()), r.clone()));
        drop(ops);
        self.inner
            .writer
            .enqueue_op(code.save_requests(&self.inner.project_id, &object_id));
        Ok(r)
    }

    /// Ends `call` successfully with `output` (Python's `finish_call(call, output)`).
    pub fn finish_call(&self, call: &Call, output: impl Serialize) -> Result<()> {
        self.finish_call_with(call, output, None, None)
    }

    /// Ends `call` as failed with `error`: an [`Exception`], a `String`, or `&e` for any
    /// `std::error::Error` (Python's `fail_call(call, exception)`).
    pub fn fail_call(&self, call: &Call, error: impl IntoException) -> Result<()> {
        self.finish_call_with(call, Value::Null, Some(error.into_exception()), None)
    }

    /// Ends `call` (Python's `finish_call(call, output, exception, op=op)`): applies the op's
    /// `postprocess_output`, computes the summary as the Weave client does (children's
    /// summaries deep-summed; else usage from an output carrying `usage` and `model`; plus
    /// `status_counts` of the subtree), and queues the end. Never waits on I/O.
    ///
    /// Finishing a call twice is an error.
    pub fn finish_call_with(
        &self,
        call: &Call,
        output: impl Serialize,
        exception: Option<Exception>,
        op: Option<&Op>,
    ) -> Result<()> {
        self.finish_call_value(call, to_json(&output), exception, op)
    }

    /// [`WeaveClient::finish_call_with`] for an output already captured as JSON.
    pub(crate) fn finish_call_value(
        &self,
        call: &Call,
        original: Value,
        exception: Option<Exception>,
        op: Option<&Op>,
    ) -> Result<()> {
        if !call.try_mark_finished() {
            return Err(WeaveError::invalid_input(format!(
                "call {} is already finished",
                call.id()
            )));
        }
        let ended_at = Timestamp::now();
        // The summary reads the output as returned, before postprocessing (as in Python).
        let (has_children, children_summary, child_counts) = call.take_children_summary();
        let computed = if has_children {
            children_summary
        } else {
            usage_from_output(&original)
        };
        let output = match op.and_then(|o| o.postprocess_output.as_ref()) {
            Some(f) => guarded(
                || f(original),
                |msg| Value::String(format!("<postprocess_output panicked: {msg}>")),
            ),
            None => original,
        };
        let mut counts = child_counts;
        if exception.is_some() {
            counts.error += 1;
        } else {
            counts.success += 1;
        }
        let exception = exception.map(|e| e.to_json_string());
        // What the parent rolls up: only status counts (most calls), or a summary.
        enum Rollup {
            Counts(StatusCounts),
            Summary(JsonMap),
        }
        let (rollup, start_deferred) = {
            let mut st = call.state();
            let rollup = if computed.is_none()
                && st.summary.is_none()
                && st.events.is_empty()
                && st.events_dropped == 0
            {
                st.counts = Some(counts);
                Rollup::Counts(counts)
            } else {
                let mut computed = computed.unwrap_or_default();
                let entry = computed
                    .entry(STATUS_COUNTS_KEY)
                    .or_insert_with(|| json!({"success": 0, "error": 0}));
                if let Value::Object(c) = entry {
                    for (key, n) in [("success", counts.success), ("error", counts.error)] {
                        let total = c.get(key).and_then(Value::as_i64).unwrap_or(0) + n;
                        c.insert(key.into(), json!(total));
                    }
                }
                let mut merged = st.summary.take().map(|b| *b).unwrap_or_default();
                deep_update(&mut merged, computed);
                // What the parent rolls up excludes this call's own events.
                let rollup = call.parent().map(|_| merged.clone());
                if !st.events.is_empty() {
                    merged.insert(
                        EVENTS_KEY.into(),
                        Value::Array(std::mem::take(&mut st.events)),
                    );
                }
                if st.events_dropped > 0 {
                    merged.insert(EVENTS_DROPPED_KEY.into(), json!(st.events_dropped));
                }
                st.summary = Some(Box::new(merged));
                Rollup::Summary(rollup.unwrap_or_default())
            };
            st.output = output;
            st.exception = exception;
            st.ended_at = Some(ended_at);
            (rollup, std::mem::take(&mut st.start_deferred))
        };
        if let Some(parent) = call.parent() {
            match rollup {
                Rollup::Counts(c) => parent.add_child_counts(c),
                Rollup::Summary(m) => parent.add_child_summary(m),
            }
        }
        context::pop_call(call);

        if call.is_untraced() {
            return Ok(());
        }
        if start_deferred {
            self.inner.writer.enqueue_start(call);
            self.print_call_link(call);
        }
        self.inner.writer.enqueue_end(call);
        Ok(())
    }

    /// Deletes `call` and all its descendants (soft delete; Python's `delete_call`).
    pub fn delete_call(&self, call: &Call) -> Result<()> {
        self.delete_calls([call.id()])?;
        call.state().deleted_at = Some(Timestamp::now());
        Ok(())
    }

    /// Deletes calls by id, with all their descendants; returns how many calls were deleted.
    /// Any number of ids is accepted (sent 1000 at a time).
    pub fn delete_calls<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<u64> {
        self.flush();
        let ids: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_string()).collect();
        let mut n = 0;
        for chunk in ids.chunks(MAX_FILTER_LIST) {
            n += self
                .inner
                .server
                .calls_delete(CallsDeleteReq {
                    project_id: self.inner.project_id.to_string(),
                    call_ids: chunk.to_vec(),
                    wb_user_id: None,
                })?
                .num_deleted;
        }
        Ok(n)
    }

    pub(crate) fn set_call_display_name(&self, call: &Call, name: Option<String>) -> Result<()> {
        let name = name.map(truncate_display_name);
        if call.display_name() == name {
            return Ok(());
        }
        self.flush();
        self.inner.server.call_update(CallUpdateReq {
            project_id: call.project_id().to_string(),
            call_id: call.id().to_string(),
            display_name: name.clone().unwrap_or_default(),
            wb_user_id: None,
        })?;
        call.state().display_name = name;
        Ok(())
    }

    /// Reads one call by id; a typed [`WeaveError::NotFound`] when it does not exist or was
    /// deleted.
    pub fn get_call(&self, id: &str) -> Result<Call> {
        self.get_call_with(id, false)
    }

    /// Reads one call, with `summary.weave.costs` when `include_costs`.
    pub fn get_call_with(&self, id: &str, include_costs: bool) -> Result<Call> {
        self.flush();
        let res = self.inner.server.call_read(CallReadReq {
            project_id: self.inner.project_id.to_string(),
            id: id.to_string(),
            include_costs,
            include_storage_size: false,
            include_total_storage_size: false,
        })?;
        match res.call {
            Some(c) => Ok(Call::from_schema(self.clone(), c)),
            None => Err(WeaveError::NotFound {
                kind: "call",
                id: id.to_string(),
            }),
        }
    }

    /// Alias of [`WeaveClient::get_call`], as in Python.
    pub fn call(&self, id: &str) -> Result<Call> {
        self.get_call(id)
    }

    /// Queries calls: a [`CallsQuery`], a [`CallsFilter`], a [`crate::query::Query`] or a
    /// query expression. The result is fetched lazily in pages.
    pub fn get_calls(&self, query: impl Into<CallsQuery>) -> CallsIter {
        CallsIter::new(self.clone(), query.into())
    }

    /// Alias of [`WeaveClient::get_calls`], as in Python.
    pub fn calls(&self, query: impl Into<CallsQuery>) -> CallsIter {
        self.get_calls(query)
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.writer.shutdown();
    }
}
