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
mod guard;
mod lifecycle;
pub(crate) mod objects;
mod op;
mod op_code;
mod options;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{json, Value};

use self::call::Call;
use self::calls_iter::{CallsIter, CallsQuery};
use self::writer::Writer;
use crate::config::Settings;
use crate::error::{Result, WeaveError};
use crate::schema::*;
use crate::server::sqlite::MAX_FILTER_LIST;
use crate::server::TraceServer;
use crate::time::Timestamp;

pub(crate) use self::capture::to_json;
pub(crate) use self::guard::{guarded, panic_message};
pub use self::op::{DisplayName, Op};
pub use self::options::CallOptions;
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

pub(crate) fn truncate_display_name(name: String) -> String {
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
        let server: Arc<dyn TraceServer> = Arc::new(crate::server::untraced::Untraced(server));
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
    /// The attributes every call of this client carries.
    pub(crate) fn attributes_arc(&self) -> &Arc<JsonMap> {
        &self.inner.attributes
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
            Err(WeaveError::unavailable(
                "feedback not queued: the write queue is full or the client is shut down",
            ))
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

    /// Deletes `call` and all its descendants (soft delete; Python's `delete_call`).
    pub fn delete_call(&self, call: &Call) -> Result<()> {
        self.delete_calls([call.id()])?;
        call.state().rare_mut().deleted_at = Some(Timestamp::now());
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
        call.state().rare_mut().display_name = name;
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
