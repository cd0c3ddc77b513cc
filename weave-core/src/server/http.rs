//! [`HttpServer`]: a Weave trace server over HTTP (PROTOCOL.md) — W&B's, a self-managed one,
//! or anything speaking the protocol.
//!
//! The trait is synchronous; requests run on a small tokio runtime the SDK owns (its threads
//! are weave-internal, so nothing they do is ever traced), and the calling thread waits for the
//! answer without entering that runtime. So users never need tokio, and calling from inside
//! their own tokio runtime never panics (it blocks that worker while the request runs, as any
//! blocking call would).
//!
//! `/calls/stream_query` is consumed incrementally: the response body is read chunk by chunk
//! into a bounded channel that the [`CallsStream`] iterator drains, so iterating a large
//! result never holds it all in memory.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{CallsStream, TraceServer};
use crate::error::{Result, WeaveError};
use crate::schema::*;

/// The public W&B trace server.
pub const WANDB_TRACE_SERVER_URL: &str = "https://trace.wandb.ai";
/// W&B's public API, the default `WANDB_BASE_URL`.
pub const WANDB_PUBLIC_API_URL: &str = "https://api.wandb.ai";
/// The per-request timeout unless `WEAVE_HTTP_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body sent: the Weave server refuses more than 32 MiB.
pub const MAX_REQUEST_BYTES: usize = 31 * 1024 * 1024;
/// How many streamed calls may wait, parsed, for the iterator to take them.
const STREAM_BUFFER: usize = 256;

/// Where and how to reach a trace server.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpServerConfig {
    /// The base URL; route paths are appended to it (`{base}/call/start`).
    pub base_url: String,
    /// The W&B API key, sent as HTTP Basic `api:<key>`.
    pub api_key: Option<String>,
    /// Base of the UI links (`{app_url}/{entity}/{project}/r/call/{id}`).
    pub app_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The W&B API (`{wandb_api_url}/graphql`) that owns entities and projects: set by
    /// [`HttpServerConfig::from_env`] when an API key is known (`WANDB_BASE_URL`, else
    /// `https://api.wandb.ai`), so that `weave::init` can resolve a bare project's entity
    /// and create the project, as the Python SDK does. `None`: no W&B behind the server.
    pub wandb_api_url: Option<String>,
    /// How many `/call/upsert_batch` requests the background writer keeps in flight (see
    /// [`TraceServer::concurrent_call_batches`]). `None` (the default): asked of the server
    /// once — 2 when its `/server_info` says `call_batches_in_any_order` (`weave serve`
    /// does), else 1, in order.
    pub concurrent_call_batches: Option<usize>,
}

impl std::fmt::Debug for HttpServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("app_url", &self.app_url)
            .field("timeout", &self.timeout)
            .field("wandb_api_url", &self.wandb_api_url)
            .field("concurrent_call_batches", &self.concurrent_call_batches)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl HttpServerConfig {
    /// A server at `base_url`, without credentials.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        HttpServerConfig {
            app_url: app_url_for(&base_url),
            base_url,
            api_key: None,
            timeout: DEFAULT_HTTP_TIMEOUT,
            wandb_api_url: None,
            concurrent_call_batches: None,
        }
    }

    /// The remote server the environment configures, as the Python SDK reads it, or `None`
    /// when neither `WF_TRACE_SERVER_URL` nor an API key (`WANDB_API_KEY`) is set.
    ///
    /// - Base URL: `WF_TRACE_SERVER_URL`; else `<WANDB_BASE_URL>/traces` when `WANDB_BASE_URL`
    ///   is not W&B's public API; else `https://trace.wandb.ai`.
    /// - Key: `WANDB_API_KEY`, else the `~/.netrc` (`~/_netrc`) password of the
    ///   `WANDB_BASE_URL` host (`api.wandb.ai` by default).
    /// - UI links: `WANDB_APP_URL`, else derived from `WANDB_BASE_URL` (`api.` → app host).
    /// - Timeout: `WEAVE_HTTP_TIMEOUT` seconds (default 30).
    pub fn from_env() -> Option<Self> {
        let explicit = env("WF_TRACE_SERVER_URL");
        let key_env = env("WANDB_API_KEY");
        if explicit.is_none() && key_env.is_none() {
            return None;
        }
        let wandb_base = env("WANDB_BASE_URL")
            .unwrap_or_else(|| WANDB_PUBLIC_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let base_url = explicit.unwrap_or_else(|| {
            if wandb_base == WANDB_PUBLIC_API_URL {
                WANDB_TRACE_SERVER_URL.to_string()
            } else {
                format!("{wandb_base}/traces")
            }
        });
        let mut cfg = HttpServerConfig::new(base_url);
        cfg.api_key = key_env.or_else(|| netrc_password(host_of(&wandb_base)));
        cfg.wandb_api_url = cfg.api_key.as_ref().map(|_| wandb_base.clone());
        cfg.app_url = env("WANDB_APP_URL")
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                if env("WF_TRACE_SERVER_URL").is_some() && env("WANDB_BASE_URL").is_none() {
                    app_url_for(&cfg.base_url)
                } else {
                    app_url_for(&wandb_base)
                }
            });
        if let Some(t) = env("WEAVE_HTTP_TIMEOUT").and_then(|t| t.parse::<f64>().ok()) {
            if t.is_finite() && t > 0.0 {
                cfg.timeout = Duration::from_secs_f64(t);
            }
        }
        Some(cfg)
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.split(':').next().unwrap_or(host_port)
}

/// The UI base for a server or API URL, as the wandb SDK's `app_url` helper derives it.
fn app_url_for(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix("/traces").unwrap_or(url);
    if url == WANDB_TRACE_SERVER_URL {
        return "https://wandb.ai".to_string();
    }
    if url.contains("://api.wandb.") {
        return url.replacen("://api.", "://", 1);
    }
    if url.contains("://api.") {
        return url.replacen("://api.", "://app.", 1);
    }
    url.to_string()
}

/// The password of `machine` in `~/.netrc` (or `~/_netrc`).
fn netrc_password(machine: &str) -> Option<String> {
    let home = env("HOME").or_else(|| env("USERPROFILE"))?;
    let text = [".netrc", "_netrc"]
        .iter()
        .find_map(|f| std::fs::read_to_string(std::path::Path::new(&home).join(f)).ok())?;
    parse_netrc(&text, machine)
}

fn parse_netrc(text: &str, machine: &str) -> Option<String> {
    let mut tokens = text.split_whitespace();
    let mut in_machine = false;
    while let Some(t) = tokens.next() {
        match t {
            "machine" => in_machine = tokens.next() == Some(machine),
            "default" => in_machine = false,
            "password" if in_machine => return tokens.next().map(str::to_string),
            "login" | "account" | "password" => {
                tokens.next();
            }
            _ => {}
        }
    }
    None
}

/// A Weave trace server reached over HTTP. Cheap to clone.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use weave_core::server::http::{HttpServer, HttpServerConfig};
/// use weave_core::WeaveClient;
///
/// let server = HttpServer::new(HttpServerConfig::new("http://127.0.0.1:6345"))?;
/// let client = WeaveClient::new("acme", "agents", Arc::new(server), true)?;
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Clone)]
pub struct HttpServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: HttpServerConfig,
    auth: Option<String>,
    http: reqwest::Client,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks, so dropping the last handle inside an async context is fine.
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Waits for `fut` on this thread without a runtime: the futures waited on here (a oneshot
/// or channel receiver fed by the SDK's runtime) need none, so this works on any thread,
/// inside a user's async runtime too.
fn wait<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// The error a non-2xx answer means: a missing resource is `NotFound`; 413 `TooLarge`;
/// 408, 429, 502–504 [`WeaveError::Unavailable`] (retried until the server is back); other
/// 5xx [`WeaveError::Backend`]; a request refused on a query route (400/422 on
/// [`QUERY_ROUTES`]) [`WeaveError::InvalidQuery`], as the embedded store reports a bad query;
/// the rest [`WeaveError::InvalidInput`] naming the server's reason.
fn status_error(path: &str, status: u16, retry_after: Option<Duration>, body: &[u8]) -> WeaveError {
    let reason = error_message(body);
    match status {
        404 => WeaveError::NotFound {
            kind: kind_of_route(path),
            id: reason,
        },
        413 => WeaveError::TooLarge(format!("{path}: HTTP 413: {reason}")),
        // Overloaded, restarting or behind a gateway that cannot reach it: retry until it is
        // back.
        408 | 429 | 502 | 503 | 504 => WeaveError::Unavailable {
            message: format!("{path}: HTTP {status}: {reason}"),
            retry_after,
            // A gateway timeout may come after the server did the work.
            maybe_applied: status == 504,
        },
        // What this server does not implement is not worth retrying.
        501 => WeaveError::InvalidInput(format!("{path}: HTTP 501: {reason}")),
        // The server answered and failed: retried a few times, not forever (a request it
        // cannot process would otherwise block every write behind it).
        500..=599 => WeaveError::Backend(format!("{path}: HTTP {status}: {reason}")),
        400 | 422 if QUERY_ROUTES.contains(&path) => {
            WeaveError::InvalidQuery(format!("{path}: HTTP {status}: {reason}"))
        }
        _ => WeaveError::InvalidInput(format!("{path}: HTTP {status}: {reason}")),
    }
}

/// The routes whose requests are queries (filters, sorts, fields): what they refuse is the
/// query.
const QUERY_ROUTES: &[&str] = &[
    "/calls/stream_query",
    "/calls/query_stats",
    "/feedback/query",
    "/objs/query",
    "/cost/query",
    "/table/query",
    "/table/query_stats",
];

/// A `Retry-After` in seconds (the HTTP-date form is rare from API servers; ignored).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let secs = v.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

fn kind_of_route(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "obj" | "objs" => "object",
        "table" => "table",
        "file" | "files" => "file",
        "refs" => "ref",
        "call" | "calls" => "call",
        "feedback" => "feedback",
        "cost" => "cost",
        _ => "resource",
    }
}

/// The message of an error body: `message | error | detail | reason`, as the Python client
/// builds it, else the body's text.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error", "detail", "reason"] {
            match v.get(key) {
                Some(Value::String(s)) => return s.clone(),
                Some(Value::Null) | None => {}
                Some(other) => return other.to_string(),
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no details".to_string()
    } else {
        text.chars().take(2000).collect()
    }
}

/// A request that got no complete answer (refused, reset, timed out, cut mid-body): the
/// server may be down or restarting, so it is worth retrying.
fn transport_error(path: &str, e: reqwest::Error) -> WeaveError {
    let mut message = format!("{path}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    WeaveError::Unavailable {
        message,
        retry_after: None,
        // A refused connection sent nothing; anything later may have reached the server.
        maybe_applied: !e.is_connect(),
    }
}

impl HttpServer {
    /// A client for the server `config` names. Starts the SDK's I/O runtime (two threads).
    pub fn new(config: HttpServerConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weave-http")
            .enable_all()
            .on_thread_start(crate::own_work::mark_internal_thread)
            .build()
            .map_err(|e| WeaveError::Backend(format!("could not start the HTTP runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("weave-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WeaveError::Backend(format!("could not build the HTTP client: {e}")))?;
        let auth = config.api_key.as_ref().map(|k| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("api:{k}"))
            )
        });
        Ok(HttpServer {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Mutex::new(Some(runtime)),
                config,
                auth,
                http,
            }),
        })
    }

    /// The server [`HttpServerConfig::from_env`] configures, if any.
    pub fn from_env() -> Option<Result<Self>> {
        HttpServerConfig::from_env().map(Self::new)
    }

    /// The configuration.
    pub fn config(&self) -> &HttpServerConfig {
        &self.inner.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.config.base_url)
    }

    /// Runs `fut` on the SDK's runtime and waits for it here.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        wait(rx).map_err(|_| WeaveError::Shutdown)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.inner.http.request(method, self.url(path));
        if let Some(auth) = &self.inner.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, auth);
        }
        rb
    }

    /// Runs a W&B GraphQL request (`{wandb_api_url}/graphql`) and returns its `data`.
    fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let Some(api) = &self.inner.config.wandb_api_url else {
            return Err(WeaveError::invalid_input(
                "no W&B API is configured (HttpServerConfig::wandb_api_url; set WANDB_API_KEY)",
            ));
        };
        let mut rb = self
            .inner
            .http
            .post(format!("{api}/graphql"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(
                &serde_json::json!({"query": query, "variables": variables}),
            )?);
        if let Some(auth) = &self.inner.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, auth);
        }
        let body = self.run(send_once("/graphql", rb))??;
        let mut res: Value = serde_json::from_slice(&body)?;
        if let Some(errors) = res.get("errors").filter(|e| !e.is_null()) {
            return Err(WeaveError::invalid_input(format!(
                "W&B API at {api}: {}",
                errors
                    .get(0)
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map_or_else(|| errors.to_string(), str::to_string)
            )));
        }
        Ok(res.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// The API key's default entity (the W&B `viewer`'s), which `weave::init` uses for a
    /// bare project name, as the Python SDK does.
    pub fn wandb_default_entity(&self) -> Result<String> {
        let data = self.graphql(
            "query DefaultEntity { viewer { username defaultEntity { name } } }",
            Value::Null,
        )?;
        data.pointer("/viewer/defaultEntity/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                WeaveError::invalid_input(
                    "the W&B API names no default entity for this API key: use \"entity/project\"",
                )
            })
    }

    /// Creates the W&B project `entity/project` unless it exists (Python's
    /// `ensure_project_exists`): a W&B trace server stores calls only for existing projects.
    pub fn wandb_ensure_project(&self, entity: &str, project: &str) -> Result<()> {
        let vars = serde_json::json!({"entityName": entity, "name": project});
        let found = self.graphql(
            "query Project($name: String!, $entityName: String) { \
             project(name: $name, entityName: $entityName) { name } }",
            vars.clone(),
        )?;
        if found.pointer("/project/name").is_some_and(|n| !n.is_null()) {
            return Ok(());
        }
        self.graphql(
            "mutation UpsertModel($name: String!, $entityName: String) { \
             upsertModel(input: {name: $name, entityName: $entityName}) { model { name } } }",
            vars,
        )?;
        Ok(())
    }

    /// Sends `rb` and returns the whole body of a 2xx answer.
    fn send_bytes(&self, path: &str, mut rb: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let path = path.to_string();
        let retry = IDEMPOTENT_ROUTES.contains(&path.as_str());
        self.run(async move {
            let mut attempt = 0;
            loop {
                // A request whose body can be sent again is retried, as the Python client
                // retries every request (three attempts); writes of calls are retried by
                // the writer instead, which knows how to avoid writing twice.
                let again = if retry { rb.try_clone() } else { None };
                let res = send_once(&path, rb).await;
                match (res, again) {
                    (Err(e), Some(next)) if attempt + 1 < READ_ATTEMPTS && retryable(&e) => {
                        tokio::time::sleep(read_backoff(attempt, &e)).await;
                        attempt += 1;
                        rb = next;
                    }
                    (res, _) => return res,
                }
            }
        })?
    }

    /// `POST path` with `req` as its JSON body.
    fn json_request<Req: Serialize>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<reqwest::RequestBuilder> {
        Ok(self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(req)?))
    }

    /// `POST path` with `req` as JSON, the answer parsed as `Res`.
    fn post<Req: Serialize, Res: DeserializeOwned>(&self, path: &str, req: &Req) -> Result<Res> {
        let rb = self.json_request(path, req)?;
        let bytes = self.send_bytes(path, rb)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            WeaveError::Backend(format!(
                "{path}: the server's answer is not what the protocol says: {e}"
            ))
        })
    }
}

/// Routes that may be sent again without changing the outcome: reads, and creates addressed
/// by content.
const IDEMPOTENT_ROUTES: &[&str] = &[
    "/server_info",
    "/call/read",
    "/calls/query_stats",
    "/call/update",
    "/calls/delete",
    "/obj/read",
    "/objs/query",
    "/obj/create",
    "/table/create",
    "/table/query",
    "/table/query_stats",
    "/refs/read_batch",
    "/file/content",
    "/feedback/query",
    "/cost/query",
];
/// Attempts per request on those routes (Python's `WEAVE_RETRY_MAX_ATTEMPTS`).
const READ_ATTEMPTS: u32 = 3;

fn retryable(e: &WeaveError) -> bool {
    matches!(e, WeaveError::Unavailable { .. } | WeaveError::Backend(_))
}

fn read_backoff(attempt: u32, e: &WeaveError) -> Duration {
    let base = Duration::from_millis(500) * (1 << attempt.min(4));
    let after = match e {
        WeaveError::Unavailable {
            retry_after: Some(d),
            ..
        } => (*d).min(Duration::from_secs(10)),
        _ => Duration::ZERO,
    };
    base.max(after)
}

async fn send_once(path: &str, rb: reqwest::RequestBuilder) -> Result<Vec<u8>> {
    let resp = rb.send().await.map_err(|e| transport_error(path, e))?;
    let status = resp.status().as_u16();
    let after = retry_after(&resp);
    let body = resp.bytes().await.map_err(|e| transport_error(path, e))?;
    if (200..300).contains(&status) {
        Ok(body.to_vec())
    } else {
        Err(status_error(path, status, after, &body))
    }
}

/// The lines of a streamed JSONL body, parsed, as they arrive.
struct StreamIter {
    rx: tokio::sync::mpsc::Receiver<Result<CallSchema>>,
}

impl Iterator for StreamIter {
    type Item = Result<CallSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        wait(self.rx.recv())
    }
}

fn parse_line(path: &str, line: &[u8]) -> Option<Result<CallSchema>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(line)
            .map_err(|e| WeaveError::Backend(format!("{path}: a streamed call is not valid: {e}"))),
    )
}

/// Routes that are one JSON `POST` each.
macro_rules! json_routes {
    ($($name:ident($req:ty) -> $res:ty = $path:literal;)*) => {$(
        fn $name(&self, req: $req) -> Result<$res> {
            self.post($path, &req)
        }
    )*};
}

impl TraceServer for HttpServer {
    json_routes! {
        call_start(CallStartReq) -> CallStartRes = "/call/start";
        call_end(CallEndReq) -> CallEndRes = "/call/end";
        call_start_batch(CallCreateBatchReq) -> CallCreateBatchRes = "/call/upsert_batch";
        call_read(CallReadReq) -> CallReadRes = "/call/read";
        calls_query_stats(CallsQueryStatsReq) -> CallsQueryStatsRes = "/calls/query_stats";
        calls_delete(CallsDeleteReq) -> CallsDeleteRes = "/calls/delete";
        call_update(CallUpdateReq) -> CallUpdateRes = "/call/update";
        cost_create(CostCreateReq) -> CostCreateRes = "/cost/create";
        cost_query(CostQueryReq) -> CostQueryRes = "/cost/query";
        cost_purge(CostPurgeReq) -> CostPurgeRes = "/cost/purge";
        feedback_create(FeedbackCreateReq) -> FeedbackCreateRes = "/feedback/create";
        feedback_create_batch(FeedbackCreateBatchReq) -> FeedbackCreateBatchRes = "/feedback/batch/create";
        feedback_query(FeedbackQueryReq) -> FeedbackQueryRes = "/feedback/query";
        feedback_purge(FeedbackPurgeReq) -> FeedbackPurgeRes = "/feedback/purge";
        feedback_replace(FeedbackReplaceReq) -> FeedbackReplaceRes = "/feedback/replace";
        obj_create(ObjCreateReq) -> ObjCreateRes = "/obj/create";
        obj_read(ObjReadReq) -> ObjReadRes = "/obj/read";
        objs_query(ObjQueryReq) -> ObjQueryRes = "/objs/query";
        obj_delete(ObjDeleteReq) -> ObjDeleteRes = "/obj/delete";
        table_create(TableCreateReq) -> TableCreateRes = "/table/create";
        table_query(TableQueryReq) -> TableQueryRes = "/table/query";
        table_query_stats(TableQueryStatsReq) -> TableQueryStatsRes = "/table/query_stats";
        refs_read_batch(RefsReadBatchReq) -> RefsReadBatchRes = "/refs/read_batch";
    }

    /// The writer's batches as one `/call/upsert_batch`, serialised from the borrowed items
    /// (the default would copy every call into a request first).
    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        #[derive(Serialize)]
        struct Batch<'a> {
            batch: &'a [CallBatchItem],
        }
        self.post::<_, CallCreateBatchRes>("/call/upsert_batch", &Batch { batch })
            .map(drop)
    }

    fn call_upsert_batch_body(&self, body: &[u8]) -> Option<Result<CallCreateBatchRes>> {
        let path = "/call/upsert_batch";
        let rb = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        Some(self.send_bytes(path, rb).and_then(|bytes| {
            serde_json::from_slice::<CallCreateBatchRes>(&bytes).map_err(|e| {
                WeaveError::Backend(format!(
                    "{path}: the server's answer is not what the protocol says: {e}"
                ))
            })
        }))
    }

    fn server_info(&self) -> Result<ServerInfoRes> {
        let rb = self.request(reqwest::Method::GET, "/server_info");
        let bytes = self.send_bytes("/server_info", rb)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `GET /weave-rs/projects`, which `weave serve` answers; other servers do not list
    /// projects (a clear error, not a 404).
    fn projects(&self) -> Result<ProjectsRes> {
        let path = "/weave-rs/projects";
        let rb = self.request(reqwest::Method::GET, path);
        match self.send_bytes(path, rb) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.is_not_found() => Err(WeaveError::InvalidInput(format!(
                "{} does not list its projects (it is not weave serve): name the project",
                self.inner.config.base_url
            ))),
            Err(e) => Err(e),
        }
    }

    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream> {
        let path = "/calls/stream_query";
        let rb = self
            .json_request(path, &req)?
            .header(reqwest::header::ACCEPT, "application/jsonl");
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        // The status is known before the first item: an error answer is an error here, not a
        // stream that fails later.
        let (status_tx, status_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        self.inner.handle.spawn(async move {
            let mut resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let _ = status_tx.send(Err(transport_error(path, e)));
                    return;
                }
            };
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                let after = retry_after(&resp);
                let body = resp.bytes().await.unwrap_or_default();
                let _ = status_tx.send(Err(status_error(path, status, after, &body)));
                return;
            }
            let _ = status_tx.send(Ok(()));
            let mut pending: Vec<u8> = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        pending.extend_from_slice(&chunk);
                        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            if let Some(item) = parse_line(path, &line) {
                                if tx.send(item).await.is_err() {
                                    return; // the iterator was dropped
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        if let Some(item) = parse_line(path, &pending) {
                            let _ = tx.send(item).await;
                        }
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(transport_error(path, e))).await;
                        return;
                    }
                }
            }
        });
        wait(status_rx).map_err(|_| WeaveError::Shutdown)??;
        Ok(Box::new(StreamIter { rx }))
    }

    fn file_create(&self, req: FileCreateReq) -> Result<FileCreateRes> {
        let path = "/file/create";
        let part = reqwest::multipart::Part::bytes(req.content).file_name(req.name);
        let form = reqwest::multipart::Form::new()
            .text("project_id", req.project_id)
            .part("file", part);
        let rb = self.request(reqwest::Method::POST, path).multipart(form);
        let bytes = self.send_bytes(path, rb)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    fn file_content_read(&self, req: FileContentReadReq) -> Result<FileContentReadRes> {
        let path = "/file/content";
        let rb = self.json_request(path, &req)?;
        Ok(FileContentReadRes {
            content: self.send_bytes(path, rb)?,
        })
    }

    fn app_url(&self) -> String {
        self.inner.config.app_url.clone()
    }

    /// Requests of at most [`MAX_REQUEST_BYTES`], and feedback queued (a round trip each
    /// would be costly, and an outage should not fail the caller).
    fn capabilities(&self) -> super::Capabilities<'_> {
        super::Capabilities::default()
            .with_max_request_bytes(Some(MAX_REQUEST_BYTES))
            .with_queues_feedback(true)
    }

    /// The configured number, else 2 for a server that merges a call's start and end in any
    /// order (its `/server_info` says so), else 1 (also when it cannot be asked).
    fn concurrent_call_batches(&self) -> usize {
        self.inner
            .config
            .concurrent_call_batches
            .unwrap_or_else(|| match self.server_info() {
                Ok(info) if info.call_batches_in_any_order == Some(true) => 2,
                _ => 1,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_urls_follow_the_wandb_helper() {
        assert_eq!(app_url_for("https://trace.wandb.ai"), "https://wandb.ai");
        assert_eq!(app_url_for("https://api.wandb.ai"), "https://wandb.ai");
        assert_eq!(
            app_url_for("https://api.acme.example/traces"),
            "https://app.acme.example"
        );
        assert_eq!(
            app_url_for("http://127.0.0.1:6345"),
            "http://127.0.0.1:6345"
        );
    }

    #[test]
    fn netrc_passwords_are_found_by_machine() {
        let text = "machine example.com login x password nope\n\
                    machine api.wandb.ai\n  login user\n  password KEY123\n";
        assert_eq!(parse_netrc(text, "api.wandb.ai").as_deref(), Some("KEY123"));
        assert_eq!(parse_netrc(text, "other"), None);
        assert_eq!(host_of("https://api.wandb.ai:443/x"), "api.wandb.ai");
    }

    #[test]
    fn error_bodies_give_the_servers_reason() {
        assert_eq!(
            error_message(br#"{"reason": "Obj x:latest not found"}"#),
            "Obj x:latest not found"
        );
        assert_eq!(
            error_message(br#"{"detail": [{"msg": "bad"}]}"#),
            r#"[{"msg":"bad"}]"#
        );
        assert_eq!(error_message(b"plain text"), "plain text");
        assert!(matches!(
            status_error("/obj/read", 404, None, b"{}"),
            WeaveError::NotFound { kind: "object", .. }
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 503, None, b""),
            WeaveError::Unavailable { .. }
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 500, None, b""),
            WeaveError::Backend(_)
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 429, Some(Duration::from_secs(2)), b""),
            WeaveError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            status_error("/call/upsert_batch", 413, None, b""),
            WeaveError::TooLarge(_)
        ));
        assert!(matches!(
            status_error("/call/update", 400, None, b""),
            WeaveError::InvalidInput(_)
        ));
    }
}
