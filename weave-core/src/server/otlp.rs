//! [`OtlpExporter`]: a backend that writes calls to another backend and also sends each
//! finished call as an OpenTelemetry span to an OTLP/HTTP endpoint — a Weave server's
//! `/otel/v1/traces` (W&B's, `weave serve`), an OpenTelemetry collector, Langfuse, Phoenix,
//! any tool that takes OTLP.
//!
//! Spans are encoded as OTLP protobuf (`application/x-protobuf`, what every OTLP/HTTP
//! receiver takes), one request per project with the `project_id: entity/project` header the
//! Weave server reads, and the project also as the resource attributes `wandb.entity` and
//! `wandb.project`. A call becomes the span the Weave server's OTLP ingest turns back into
//! the same call:
//!
//! | call | span |
//! |---|---|
//! | `id`, `parent_id` | span ids: a UUID's last 16 hex digits (a 16-hex id as it is), as in `traceparent` |
//! | `trace_id` | trace id: the UUID's 32 hex digits |
//! | `op_name` | name: the op's name (not its versioned ref, which the Weave server would keep as a name it cannot read back) |
//! | `inputs`, `output` | `input`, `output` (JSON text, which the ingest parses) |
//! | `summary.usage` of one model | `gen_ai.response.model` and `gen_ai.usage.*` counts |
//! | `display_name`, `thread_id`, turn | `wandb.display_name`, `wandb.thread_id`, `wandb.is_turn` |
//! | `attributes` | `wandb.attributes` (JSON text) |
//! | `exception` | status `ERROR` with the exception as its message |
//! | start, end | the span's times |
//!
//! No key is a prefix of another (`a` beside `a.b`): the Weave server rejects such a span.
//! Usage of several models (a parent's roll-up) cannot be one span's: the span carries the
//! model with the most tokens, and each LLM call's own span carries its own. `requests` is
//! not carried (no convention names it), nor are `status_counts`: a call whose descendants
//! failed reads back as a success, not `descendant_error`, and no output (`null`) as `{}`. A call read back from the Weave
//! server has a span id where this one has a UUID, and an op name where this one has a ref.
//!
//! Calls are exported once the backend has written them (the client's writer retries a
//! failed write; nothing is exported twice). A start waits here for its end, up to
//! [`MAX_PENDING_CALLS`] calls. An export that fails is retried (a connection error, 429,
//! 5xx: three more times, backing off); then its spans are dropped, counted in
//! [`OtlpExporter::dropped_spans`] and reported once on stderr — tracing goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{CallsStream, Capabilities, TraceServer};
use crate::error::{Result, WeaveError};
use crate::genai::WEAVE_SERVER_USAGE_KEYS;
use crate::ids::{is_valid_call_id, is_valid_trace_id, otel_hex};
use crate::report::ReportOnce;
use crate::schema::*;

/// The most calls whose start waits for its end; past it a start is not kept (its call is
/// not exported, and counted as dropped).
pub const MAX_PENDING_CALLS: usize = 100_000;

/// A span name the Weave server takes as an op name as it is (a longer one it shortens).
const MAX_SPAN_NAME_CHARS: usize = 128;

/// Spans per request, at most.
const MAX_SPANS_PER_REQUEST: usize = 512;

/// Where and how [`OtlpExporter`] sends spans.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    endpoint: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl OtlpConfig {
    /// Spans go to `endpoint`, the full URL of the traces route (e.g.
    /// `http://127.0.0.1:6346/otel/v1/traces`, `http://collector:4318/v1/traces`).
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Adds a header to every request (`Authorization`, a vendor's key).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The time one request may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A backend that writes to `inner` and exports every finished call as an OTLP span (see
/// the [module docs](self)).
///
/// ```no_run
/// use std::sync::Arc;
/// use weave_core::server::otlp::{OtlpConfig, OtlpExporter};
/// use weave_core::{SqliteServer, WeaveClient};
///
/// let store = Arc::new(SqliteServer::open_default()?);
/// let export = OtlpExporter::new(store, OtlpConfig::new("http://127.0.0.1:4318/v1/traces"))?;
/// let client = WeaveClient::new("acme", "agents", Arc::new(export), false)?;
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
pub struct OtlpExporter {
    inner: Arc<dyn TraceServer>,
    sender: Sender,
    pending: Mutex<Pending>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("inner", &self.inner)
            .field("endpoint", &self.sender.config.endpoint)
            .field("dropped", &self.dropped_spans())
            .finish()
    }
}

/// Starts waiting for their ends, and ends that came before their starts.
#[derive(Default)]
struct Pending {
    starts: HashMap<String, StartedCallSchemaForInsert>,
    ends: HashMap<String, EndedCallSchemaForInsert>,
}

/// A failed export (reported once).
static EXPORT_FAILED: ReportOnce = ReportOnce::new();

impl OtlpExporter {
    /// Writes to `inner`, exports to `config`'s endpoint. Errors when the endpoint is not an
    /// `http(s)` URL or a header is not valid.
    pub fn new(inner: Arc<dyn TraceServer>, config: OtlpConfig) -> Result<Self> {
        let url = reqwest::Url::parse(&config.endpoint).map_err(|e| {
            WeaveError::invalid_input(format!("OTLP endpoint {:?}: {e}", config.endpoint))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WeaveError::invalid_input(format!(
                "OTLP endpoint {:?}: not an http(s) URL",
                config.endpoint
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                WeaveError::invalid_input(format!("OTLP header name {k:?} is not valid"))
            })?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                WeaveError::invalid_input(format!("the value of OTLP header {k:?} is not valid"))
            })?;
            headers.insert(name, value);
        }
        Ok(OtlpExporter {
            inner,
            sender: Sender::start(config, headers)?,
            pending: Mutex::new(Pending::default()),
            dropped: AtomicU64::new(0),
        })
    }

    /// How many calls were not exported (the endpoint refused or did not answer; too many
    /// starts waiting for their ends).
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn drop_spans(&self, n: u64, why: &str) {
        if n == 0 {
            return;
        }
        self.dropped.fetch_add(n, Ordering::Relaxed);
        EXPORT_FAILED.report(format_args!(
            "weave: {n} call(s) not exported over OTLP to {}: {why} (further failures are \
             counted in OtlpExporter::dropped_spans, not reported)",
            self.sender.config.endpoint
        ));
    }

    /// Takes the written items and exports the calls they complete.
    fn export<'a>(&self, items: impl Iterator<Item = ItemRef<'a>>) {
        let mut done = Vec::new();
        let mut overflow = 0;
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for item in items {
                match item {
                    ItemRef::Start(s) => {
                        let Some(id) = s.id.clone() else { continue };
                        match p.ends.remove(&id) {
                            Some(end) => done.push((s.clone(), end)),
                            None if p.starts.len() >= MAX_PENDING_CALLS => overflow += 1,
                            None => {
                                p.starts.insert(id, s.clone());
                            }
                        }
                    }
                    ItemRef::End(e) => match p.starts.remove(&e.id) {
                        Some(start) => done.push((start, e.clone())),
                        None if p.ends.len() >= MAX_PENDING_CALLS => overflow += 1,
                        None => {
                            p.ends.insert(e.id.clone(), e.clone());
                        }
                    },
                }
            }
        }
        self.drop_spans(overflow, "too many calls waiting for their end");
        if done.is_empty() {
            return;
        }
        let mut by_project: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        let mut unexportable = 0;
        for (start, end) in &done {
            match encode_span(start, end) {
                Some(span) => by_project
                    .entry(start.project_id.clone())
                    .or_default()
                    .push(span),
                None => unexportable += 1,
            }
        }
        self.drop_spans(unexportable, "ids that are not UUIDs or OpenTelemetry ids");
        for (project, spans) in by_project {
            for chunk in spans.chunks(MAX_SPANS_PER_REQUEST) {
                let body = encode_request(&project, chunk);
                if let Err(why) = self.sender.send(&project, body) {
                    self.drop_spans(chunk.len() as u64, &why);
                }
            }
        }
    }
}

enum ItemRef<'a> {
    Start(&'a StartedCallSchemaForInsert),
    End(&'a EndedCallSchemaForInsert),
}

fn item_ref(item: &CallBatchItem) -> ItemRef<'_> {
    match item {
        CallBatchItem::Start(s) => ItemRef::Start(&s.start),
        CallBatchItem::End(e) => ItemRef::End(&e.end),
    }
}

impl TraceServer for OtlpExporter {
    fn server_info(&self) -> Result<ServerInfoRes> {
        self.inner.server_info()
    }
    fn ensure_project_exists(&self, entity: &str, project: &str) -> Result<()> {
        self.inner.ensure_project_exists(entity, project)
    }
    fn call_start(&self, req: CallStartReq) -> Result<CallStartRes> {
        let res = self.inner.call_start(req.clone())?;
        let mut start = req.start;
        start.id = Some(res.id.clone());
        start.trace_id = Some(res.trace_id.clone());
        self.export(std::iter::once(ItemRef::Start(&start)));
        Ok(res)
    }
    fn call_end(&self, req: CallEndReq) -> Result<CallEndRes> {
        let res = self.inner.call_end(req.clone())?;
        self.export(std::iter::once(ItemRef::End(&req.end)));
        Ok(res)
    }
    fn call_start_batch(&self, req: CallCreateBatchReq) -> Result<CallCreateBatchRes> {
        let res = self.inner.call_start_batch(req.clone())?;
        self.export(req.batch.iter().map(item_ref));
        Ok(res)
    }
    fn capabilities(&self) -> Capabilities<'_> {
        // The client's writer hands the items over (not the records straight to a store in
        // this process), so that they pass through here.
        let mut c = self.inner.capabilities();
        c.records = None;
        c
    }
    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        self.inner.call_write_batch(batch)?;
        self.export(batch.iter().map(item_ref));
        Ok(())
    }
    fn projects(&self) -> Result<ProjectsRes> {
        self.inner.projects()
    }
    fn call_read(&self, req: CallReadReq) -> Result<CallReadRes> {
        self.inner.call_read(req)
    }
    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream> {
        self.inner.calls_query_stream(req)
    }
    fn calls_query_stats(&self, req: CallsQueryStatsReq) -> Result<CallsQueryStatsRes> {
        self.inner.calls_query_stats(req)
    }
    fn calls_delete(&self, req: CallsDeleteReq) -> Result<CallsDeleteRes> {
        self.inner.calls_delete(req)
    }
    fn call_update(&self, req: CallUpdateReq) -> Result<CallUpdateRes> {
        self.inner.call_update(req)
    }
    fn cost_create(&self, req: CostCreateReq) -> Result<CostCreateRes> {
        self.inner.cost_create(req)
    }
    fn cost_query(&self, req: CostQueryReq) -> Result<CostQueryRes> {
        self.inner.cost_query(req)
    }
    fn cost_purge(&self, req: CostPurgeReq) -> Result<CostPurgeRes> {
        self.inner.cost_purge(req)
    }
    fn feedback_create(&self, req: FeedbackCreateReq) -> Result<FeedbackCreateRes> {
        self.inner.feedback_create(req)
    }
    fn feedback_create_batch(&self, req: FeedbackCreateBatchReq) -> Result<FeedbackCreateBatchRes> {
        self.inner.feedback_create_batch(req)
    }
    fn feedback_query(&self, req: FeedbackQueryReq) -> Result<FeedbackQueryRes> {
        self.inner.feedback_query(req)
    }
    fn feedback_purge(&self, req: FeedbackPurgeReq) -> Result<FeedbackPurgeRes> {
        self.inner.feedback_purge(req)
    }
    fn feedback_replace(&self, req: FeedbackReplaceReq) -> Result<FeedbackReplaceRes> {
        self.inner.feedback_replace(req)
    }
    fn obj_create(&self, req: ObjCreateReq) -> Result<ObjCreateRes> {
        self.inner.obj_create(req)
    }
    fn obj_read(&self, req: ObjReadReq) -> Result<ObjReadRes> {
        self.inner.obj_read(req)
    }
    fn objs_query(&self, req: ObjQueryReq) -> Result<ObjQueryRes> {
        self.inner.objs_query(req)
    }
    fn obj_delete(&self, req: ObjDeleteReq) -> Result<ObjDeleteRes> {
        self.inner.obj_delete(req)
    }
    fn table_create(&self, req: TableCreateReq) -> Result<TableCreateRes> {
        self.inner.table_create(req)
    }
    fn table_query(&self, req: TableQueryReq) -> Result<TableQueryRes> {
        self.inner.table_query(req)
    }
    fn table_query_stats(&self, req: TableQueryStatsReq) -> Result<TableQueryStatsRes> {
        self.inner.table_query_stats(req)
    }
    fn refs_read_batch(&self, req: RefsReadBatchReq) -> Result<RefsReadBatchRes> {
        self.inner.refs_read_batch(req)
    }
    fn file_create(&self, req: FileCreateReq) -> Result<FileCreateRes> {
        self.inner.file_create(req)
    }
    fn file_content_read(&self, req: FileContentReadReq) -> Result<FileContentReadRes> {
        self.inner.file_content_read(req)
    }
    fn app_url(&self) -> String {
        self.inner.app_url()
    }
    fn concurrent_call_batches(&self) -> usize {
        1
    }
}

// ---- sending ---------------------------------------------------------------------------

/// One request: its project, its body, and where the outcome goes.
type Job = (
    String,
    Vec<u8>,
    std::sync::mpsc::SyncSender<std::result::Result<(), String>>,
);

/// The thread that sends requests (its own small tokio runtime, so that the exporter works
/// from any thread, inside a user's runtime too, and is dropped where it runs).
struct Sender {
    config: OtlpConfig,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Sender {
    fn start(config: OtlpConfig, headers: reqwest::header::HeaderMap) -> Result<Sender> {
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .build()
            .map_err(|e| WeaveError::backend(format!("OTLP HTTP client: {e}")))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let endpoint = config.endpoint.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| WeaveError::backend(format!("OTLP exporter runtime: {e}")))?;
        std::thread::Builder::new()
            .name("weave-otlp".into())
            .spawn(move || {
                crate::own_work::mark_internal_thread();
                runtime.block_on(async move {
                    while let Some((project, body, reply)) = rx.recv().await {
                        let outcome = post(&http, &endpoint, &project, body).await;
                        let _ = reply.send(outcome);
                    }
                });
            })
            .map_err(|e| WeaveError::backend(format!("OTLP exporter thread: {e}")))?;
        Ok(Sender { config, jobs: tx })
    }

    /// Sends one request and waits for its outcome.
    fn send(&self, project: &str, body: Vec<u8>) -> std::result::Result<(), String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send((project.to_string(), body, tx))
            .map_err(|_| "the exporter stopped".to_string())?;
        rx.recv()
            .unwrap_or_else(|_| Err("the exporter stopped".to_string()))
    }
}

/// Posts `body`, retrying what may pass on a second try.
async fn post(
    http: &reqwest::Client,
    endpoint: &str,
    project: &str,
    body: Vec<u8>,
) -> std::result::Result<(), String> {
    let mut attempt = 0u32;
    loop {
        let sent = http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header("project_id", project)
            .body(body.clone())
            .send()
            .await;
        let (retry, why) = match sent {
            Ok(res) if res.status().is_success() => {
                let answer = res.bytes().await.unwrap_or_default();
                return match rejected_spans(&answer) {
                    Some((n, message)) if n > 0 => Err(format!("{n} span(s) rejected: {message}")),
                    _ => Ok(()),
                };
            }
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                let retry = status.as_u16() == 429 || status.is_server_error();
                (retry, format!("HTTP {status}: {}", text.trim()))
            }
            Err(e) => (true, format!("{e}")),
        };
        if !retry || attempt >= 3 {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(100 << (2 * attempt))).await;
        attempt += 1;
    }
}

// ---- encoding (OTLP protobuf, written by hand: a dozen fields) ------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// A `KeyValue` with a string, bool, int or double `AnyValue`.
enum Attr<'a> {
    Str(&'a str),
    Text(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: Attr<'_>) {
    let mut any = Vec::new();
    match value {
        Attr::Str(s) => bytes_field(&mut any, 1, s.as_bytes()),
        Attr::Text(s) => bytes_field(&mut any, 1, s.as_bytes()),
        Attr::Bool(b) => varint_field(&mut any, 2, u64::from(b)),
        Attr::Int(n) => varint_field(&mut any, 3, n as u64),
        Attr::Double(d) => fixed64_field(&mut any, 4, d.to_bits()),
    }
    let mut kv = Vec::new();
    bytes_field(&mut kv, 1, key.as_bytes());
    bytes_field(&mut kv, 2, &any);
    bytes_field(out, field, &kv);
}

/// A JSON value as an attribute: scalars as they are, objects and arrays as JSON text.
fn attr_of(v: &Value) -> Option<Attr<'_>> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => Attr::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Attr::Int(i),
            None => Attr::Double(n.as_f64()?),
        },
        Value::String(s) => Attr::Str(s),
        other => Attr::Text(other.to_string()),
    })
}

/// An id as the `len` bytes of an OpenTelemetry id, as `traceparent` writes it
/// ([`otel_hex`]).
fn id_bytes(id: &str, len: usize) -> Option<Vec<u8>> {
    let hex = otel_hex(id, len * 2)?;
    (0..len)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The `gen_ai`/`llm` attribute the Weave server reads a usage key from.
fn usage_attribute(key: &str) -> Option<&'static str> {
    WEAVE_SERVER_USAGE_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, sources)| sources.first().copied())
}

/// One call as an encoded `Span`; `None` when its ids are not UUIDs or OpenTelemetry ids.
fn encode_span(
    start: &StartedCallSchemaForInsert,
    end: &EndedCallSchemaForInsert,
) -> Option<Vec<u8>> {
    let id = start.id.as_deref()?;
    let trace = start.trace_id.as_deref()?;
    if !is_valid_call_id(id) || !is_valid_trace_id(trace) {
        return None;
    }
    let mut span = Vec::with_capacity(512);
    bytes_field(&mut span, 1, &id_bytes(trace, 16)?);
    bytes_field(&mut span, 2, &id_bytes(id, 8)?);
    if let Some(parent) = start.parent_id.as_deref() {
        if is_valid_call_id(parent) {
            bytes_field(&mut span, 4, &id_bytes(parent, 8)?);
        }
    }
    // The op's name, not its versioned ref: the Weave server keeps a span's name as a
    // plain op name (a `weave:///` ref there is one it cannot read back).
    let name = crate::schema::summary::op_display_name(&start.op_name);
    let name: String = name.chars().take(MAX_SPAN_NAME_CHARS - 1).collect();
    bytes_field(&mut span, 5, name.as_bytes());
    varint_field(&mut span, 6, 1); // SPAN_KIND_INTERNAL
    let nanos = |t: crate::Timestamp| u64::try_from(t.as_nanos()).unwrap_or(0);
    fixed64_field(&mut span, 7, nanos(start.started_at));
    fixed64_field(&mut span, 8, nanos(end.ended_at));

    if !start.inputs.is_empty() {
        let text = Value::Object(start.inputs.clone()).to_string();
        key_value(&mut span, 9, "input", Attr::Text(text));
    }
    if !end.output.is_null() {
        if let Some(a) = attr_of(&end.output) {
            key_value(&mut span, 9, "output", a);
        }
    }
    if let Some(Value::Object(usage)) = end.summary.get("usage") {
        // The model with the most tokens (a span has one).
        let total = |u: &Value| -> i64 {
            u.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.ends_with("_tokens") && *k != "total_tokens")
                        .filter_map(|(_, v)| v.as_i64())
                        .sum()
                })
                .unwrap_or(0)
        };
        if let Some((model, Value::Object(counts))) = usage.iter().max_by_key(|(_, u)| total(u)) {
            key_value(&mut span, 9, "gen_ai.response.model", Attr::Str(model));
            for (k, v) in counts {
                if let (Some(attr), Some(n)) = (usage_attribute(k), v.as_i64()) {
                    key_value(&mut span, 9, attr, Attr::Int(n));
                }
            }
        }
    }
    if let Some(d) = start.display_name.as_deref().filter(|d| !d.is_empty()) {
        key_value(&mut span, 9, "wandb.display_name", Attr::Str(d));
    }
    if let Some(t) = start.thread_id.as_deref() {
        key_value(&mut span, 9, "wandb.thread_id", Attr::Str(t));
        if start.turn_id.as_deref() == Some(id) {
            key_value(&mut span, 9, "wandb.is_turn", Attr::Bool(true));
        }
    }
    if !start.attributes.is_empty() {
        let text = Value::Object(start.attributes.clone()).to_string();
        key_value(&mut span, 9, "wandb.attributes", Attr::Text(text));
    }
    if let Some(e) = end.exception.as_deref() {
        let mut status = Vec::new();
        bytes_field(&mut status, 2, e.as_bytes());
        varint_field(&mut status, 3, 2); // STATUS_CODE_ERROR
        bytes_field(&mut span, 15, &status);
    }
    Some(span)
}

/// An `ExportTraceServiceRequest` of `spans` (encoded) in `project`.
fn encode_request(project: &str, spans: &[Vec<u8>]) -> Vec<u8> {
    let mut resource = Vec::new();
    key_value(&mut resource, 1, "service.name", Attr::Str("weave-rs"));
    if let Some((entity, name)) = project.split_once('/') {
        key_value(&mut resource, 1, "wandb.entity", Attr::Str(entity));
        key_value(&mut resource, 1, "wandb.project", Attr::Str(name));
    }
    let mut scope = Vec::new();
    bytes_field(&mut scope, 1, b"weave-rs");
    bytes_field(&mut scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
    let mut scope_spans = Vec::new();
    bytes_field(&mut scope_spans, 1, &scope);
    for s in spans {
        bytes_field(&mut scope_spans, 2, s);
    }
    let mut resource_spans = Vec::new();
    bytes_field(&mut resource_spans, 1, &resource);
    bytes_field(&mut resource_spans, 2, &scope_spans);
    let mut req = Vec::new();
    bytes_field(&mut req, 1, &resource_spans);
    req
}

/// Reads a protobuf message's fields: (number, varint value or bytes).
fn fields(mut b: &[u8]) -> Option<Vec<(u64, u64, &[u8])>> {
    fn read_varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = read_varint(&mut b)?;
        match key & 7 {
            0 => out.push((key >> 3, read_varint(&mut b)?, &[][..])),
            1 => {
                let (v, rest) = b.split_at_checked(8)?;
                b = rest;
                out.push((key >> 3, 0, v));
            }
            2 => {
                let len = usize::try_from(read_varint(&mut b)?).ok()?;
                let (v, rest) = b.split_at_checked(len)?;
                b = rest;
                out.push((key >> 3, 0, v));
            }
            5 => {
                let (v, rest) = b.split_at_checked(4)?;
                b = rest;
                out.push((key >> 3, 0, v));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// `partial_success.rejected_spans` and `.error_message` of an `ExportTraceServiceResponse`.
fn rejected_spans(answer: &[u8]) -> Option<(u64, String)> {
    let partial = fields(answer)?.into_iter().find(|f| f.0 == 1)?.2;
    let mut n = 0;
    let mut message = String::new();
    for (field, v, bytes) in fields(partial)? {
        match field {
            1 => n = v,
            2 => message = String::from_utf8_lossy(bytes).into_owned(),
            _ => {}
        }
    }
    Some((n, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_otel_ids() {
        let uuid = "019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f";
        assert_eq!(
            id_bytes(uuid, 8).unwrap(),
            [0x8e, 0x9f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]
        );
        assert_eq!(id_bytes(uuid, 16).unwrap().len(), 16);
        assert_eq!(id_bytes("00f067aa0ba902b7", 8).unwrap()[7], 0xb7);
        assert_eq!(id_bytes("0000000000000000", 8), None);
        assert_eq!(id_bytes("abc", 8), None);
    }

    #[test]
    fn varints_and_the_answer_are_read_back() {
        let mut partial = Vec::new();
        varint_field(&mut partial, 1, 300);
        bytes_field(&mut partial, 2, b"bad key");
        let mut answer = Vec::new();
        bytes_field(&mut answer, 1, &partial);
        assert_eq!(rejected_spans(&answer), Some((300, "bad key".to_string())));
        assert_eq!(rejected_spans(&[]), None);
        assert_eq!(rejected_spans(&[0x0a, 0x05, 0x08]), None, "truncated");
    }

    #[test]
    fn every_usage_key_has_an_attribute() {
        for key in [
            "input_tokens",
            "output_tokens",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ] {
            assert!(usage_attribute(key).is_some(), "{key}");
        }
    }

    #[test]
    fn no_attribute_key_is_another_keys_prefix() {
        let mut usage = JsonMap::new();
        for (key, _) in WEAVE_SERVER_USAGE_KEYS {
            usage.insert(key.to_string(), Value::from(1));
        }
        let start = StartedCallSchemaForInsert {
            project_id: "e/p".into(),
            id: Some("019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f".into()),
            op_name: "weave:///e/p/op/llm:abc".into(),
            display_name: Some("d".into()),
            trace_id: Some("019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e50".into()),
            parent_id: None,
            thread_id: Some("t".into()),
            turn_id: Some("019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f".into()),
            started_at: crate::Timestamp::from_nanos(1),
            attributes: serde_json::from_str(r#"{"weave": {"kind": "llm"}}"#).unwrap(),
            inputs: serde_json::from_str(r#"{"a": 1}"#).unwrap(),
            otel_dump: None,
            wb_user_id: None,
            wb_run_id: None,
            wb_run_step: None,
        };
        let mut summary = JsonMap::new();
        summary.insert("usage".into(), serde_json::json!({ "gpt-4o": usage }));
        let end = EndedCallSchemaForInsert {
            project_id: "e/p".into(),
            id: start.id.clone().unwrap(),
            ended_at: crate::Timestamp::from_nanos(2),
            exception: Some("boom".into()),
            output: serde_json::json!({"text": "hi"}),
            summary,
            wb_run_step_end: None,
        };
        let span = encode_span(&start, &end).unwrap();
        let keys: Vec<String> = fields(&span)
            .unwrap()
            .into_iter()
            .filter(|f| f.0 == 9)
            .map(|f| {
                let key = fields(f.2)
                    .unwrap()
                    .into_iter()
                    .find(|k| k.0 == 1)
                    .unwrap()
                    .2;
                String::from_utf8(key.to_vec()).unwrap()
            })
            .collect();
        assert!(keys.len() >= 12, "{keys:?}");
        for a in &keys {
            for b in &keys {
                assert!(!b.starts_with(&format!("{a}.")), "{a} is a prefix of {b}");
            }
            assert_eq!(keys.iter().filter(|k| *k == a).count(), 1, "{a} twice");
        }
    }
}
