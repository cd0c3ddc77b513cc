//! The route table: every route of the Weave trace server protocol that the Rust SDK's
//! remote backend and the Python SDK (`weave==0.54`) send, served the same at `/` and under
//! `/traces` (where W&B's dedicated installs put them), and the pages weave-rs links to.
//!
//! Each JSON route is one line: its path and the backend method it calls (see [`respond`]).
//! Streams (`/calls/stream_query`, `/table/query_stream`, `/threads/stream_query`) are JSON
//! lines written as the backend yields them, through a bounded channel, so a slow reader
//! holds at most a few chunks in memory whatever the result's size.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use weave_core::schema::*;
use weave_core::{TraceServer, WeaveError};

use crate::body::{parse, RawBody};
use crate::{auth, compose, graphql, ApiError, AppState};

/// The application: the API at `/` and `/traces`, the link pages, JSON 404s.
pub fn router(state: AppState) -> Router {
    let api = api();
    Router::new()
        .merge(api.clone())
        .nest("/traces", api)
        .route("/", get(crate::viewer::page))
        .route("/_viewer/viewer.js", get(crate::viewer::script))
        .route("/_viewer/viewer.css", get(crate::viewer::style))
        .route("/{entity}/{project}/weave", get(project_page))
        .route("/{entity}/{project}/weave/calls", get(crate::viewer::page))
        .route(
            "/{entity}/{project}/weave/objects",
            get(crate::viewer::page),
        )
        .route("/{entity}/{project}/r/call/{id}", get(call_page))
        .route(
            "/{entity}/{project}/weave/objects/{name}/versions/{digest}",
            get(object_page),
        )
        .route(
            "/{entity}/{project}/weave/ops/{name}/versions/{digest}",
            get(object_page),
        )
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::wrong_method() })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .with_state(state)
}

/// A JSON route calling `$method` of the backend with the parsed body.
macro_rules! backend_route {
    ($method:ident) => {
        post(
            |State(s): State<AppState>, RawBody(body): RawBody| async move {
                respond(&s, &body, |b: &dyn TraceServer, req| b.$method(req)).await
            },
        )
    };
}

fn api() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/server_info", get(server_info))
        .route("/weave-rs/projects", get(projects))
        // Calls.
        .route("/call/start", backend_route!(call_start))
        .route("/call/end", backend_route!(call_end))
        .route("/call/upsert_batch", post(call_upsert_batch))
        .route("/call/read", backend_route!(call_read))
        .route("/calls/query_stats", backend_route!(calls_query_stats))
        .route("/calls/delete", backend_route!(calls_delete))
        .route("/call/update", backend_route!(call_update))
        .route("/calls/stream_query", post(calls_stream_query))
        .route("/calls/query", post(calls_query))
        .route(
            "/v2/{entity}/{project}/calls/complete",
            post(calls_complete),
        )
        .route(
            "/v2/{entity}/{project}/call/start",
            backend_route!(call_start),
        )
        .route("/v2/{entity}/{project}/call/end", backend_route!(call_end))
        // Objects and tables.
        .route("/obj/create", backend_route!(obj_create))
        .route("/obj/read", backend_route!(obj_read))
        .route("/objs/query", backend_route!(objs_query))
        .route("/obj/delete", backend_route!(obj_delete))
        .route("/table/create", backend_route!(table_create))
        .route("/table/query", backend_route!(table_query))
        .route("/table/query_stats", backend_route!(table_query_stats))
        .route("/table/update", composed(compose::table_update))
        .route(
            "/table/query_stats_batch",
            composed(compose::table_query_stats_batch),
        )
        .route("/table/query_stream", post(table_query_stream))
        .route("/refs/read_batch", backend_route!(refs_read_batch))
        // Files.
        .route("/file/create", post(compose::file_create))
        .route("/files/create", post(compose::file_create))
        .route("/file/content", post(file_content))
        .route("/files/content", post(file_content))
        // Feedback and costs.
        .route("/feedback/create", backend_route!(feedback_create))
        .route(
            "/feedback/batch/create",
            backend_route!(feedback_create_batch),
        )
        .route("/feedback/query", backend_route!(feedback_query))
        .route("/feedback/purge", backend_route!(feedback_purge))
        .route("/feedback/replace", backend_route!(feedback_replace))
        .route("/cost/create", backend_route!(cost_create))
        .route("/cost/query", backend_route!(cost_query))
        .route("/cost/purge", backend_route!(cost_purge))
        // Threads.
        .route("/threads/stream_query", post(threads_stream_query))
        // W&B's API, as much as `weave.init` needs.
        .route("/graphql", post(graphql::graphql))
        .route("/otel/v1/traces", post(crate::otel::export))
}

/// Runs `f` on the backend on a blocking thread (the backends are synchronous). A panic in
/// the backend is a 500 for this request; the server goes on.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn TraceServer) -> weave_core::Result<T> + Send + 'static,
{
    let backend = state.backend.clone();
    match tokio::task::spawn_blocking(move || f(&*backend)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("the backend panicked: {e}"))),
    }
}

/// Parses `body` as `Req`, calls `f` with it, answers `Res` as JSON.
pub async fn respond<Req, Res, F>(state: &AppState, body: &[u8], f: F) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Res: Serialize + Send + 'static,
    F: FnOnce(&dyn TraceServer, Req) -> weave_core::Result<Res> + Send + 'static,
{
    let req: Req = match parse(body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match blocking(state, move |b| f(b, req)).await {
        Ok(res) => Json(res).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A JSON route made of several backend calls (see [`compose`]).
fn composed<Req, Res>(
    f: fn(&dyn TraceServer, Req) -> weave_core::Result<Res>,
) -> MethodRouter<AppState>
where
    Req: DeserializeOwned + Send + 'static,
    Res: Serialize + Send + 'static,
{
    post(
        move |State(s): State<AppState>, RawBody(body): RawBody| async move {
            respond(&s, &body, f).await
        },
    )
}

/// `/call/upsert_batch`: the body handed to the backend as it is when the backend takes it
/// that way (the embedded store stores its JSON fields as text), else parsed in full — also
/// what answers a body the text path refuses, with the exact 422.
async fn call_upsert_batch(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let raw = body.clone();
    match blocking(&s, move |b| b.call_upsert_batch_body(&raw).transpose()).await {
        Ok(Some(res)) => Json(res).into_response(),
        Ok(None) => {
            respond(&s, &body, |b: &dyn TraceServer, req| {
                b.call_start_batch(req)
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /weave-rs/projects` (a weave-rs extension): the store's projects.
async fn projects(State(s): State<AppState>) -> Response {
    match blocking(&s, |b| b.projects()).await {
        Ok(res) => Json(res).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn server_info(State(s): State<AppState>) -> Response {
    match blocking(&s, |b| b.server_info()).await {
        Ok(res) => Json(res).into_response(),
        Err(e) => e.into_response(),
    }
}

/// How many bytes of JSON lines are gathered before they are handed to the connection.
const CHUNK_BYTES: usize = 64 * 1024;
/// How many chunks may wait for a slow reader.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Answers the items of `open`'s iterator as JSON lines. The iterator is opened and its first
/// item read before the answer starts, so that an invalid query is a 400, not a cut stream.
/// A failure after that ends the stream early (the client sees a truncated body).
pub async fn json_lines<T, I, F>(state: &AppState, open: F) -> Response
where
    T: Serialize + Send + 'static,
    I: Iterator<Item = weave_core::Result<T>> + Send + 'static,
    F: FnOnce(&dyn TraceServer) -> weave_core::Result<I> + Send + 'static,
{
    let first = blocking(state, move |b| {
        let mut it = open(b)?;
        let first = it.next().transpose()?;
        Ok((first, it))
    })
    .await;
    let (first, rest) = match first {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        let items = first.into_iter().map(Ok).chain(rest);
        for item in items {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    eprintln!("weave serve: a stream failed midway: {e}");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            if let Err(e) = serde_json::to_writer(&mut buf, &item) {
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                return;
            }
            buf.push(b'\n');
            if buf.len() >= CHUNK_BYTES {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
                if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                    return; // the client went away
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(buf)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "application/jsonl")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn calls_stream_query(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let req: CallsQueryReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    json_lines(&s, move |b| b.calls_query_stream(req)).await
}

/// `/calls/query` (deprecated, still sent by some clients): the whole result as one JSON
/// object. Without a limit it is capped, so it cannot make the server hold a whole store.
async fn calls_query(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let mut req: CallsQueryReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    const MAX: u64 = 10_000;
    req.limit = Some(req.limit.unwrap_or(MAX).min(MAX));
    match blocking(&s, move |b| {
        b.calls_query_stream(req)?.collect::<Result<Vec<_>, _>>()
    })
    .await
    {
        Ok(calls) => Json(json!({ "calls": calls })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn calls_complete(
    State(s): State<AppState>,
    Path((entity, project)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Response {
    let project_id = format!("{entity}/{project}");
    respond(&s, &body, move |b, req| {
        compose::calls_complete(b, &project_id, req)
    })
    .await
}

async fn table_query_stream(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let req: TableQueryReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    json_lines(&s, move |b| {
        Ok(b.table_query(req)?
            .rows
            .into_iter()
            .map(Ok::<_, WeaveError>))
    })
    .await
}

async fn threads_stream_query(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let req: compose::ThreadsQueryReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    json_lines(&s, move |b| {
        Ok(compose::threads(b, req)?
            .into_iter()
            .map(Ok::<_, WeaveError>))
    })
    .await
}

async fn file_content(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let req: FileContentReadReq = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match blocking(&s, move |b| b.file_content_read(req)).await {
        Ok(res) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            res.content,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page of a call, the link weave-rs and the Python SDK print
/// (`/{entity}/{project}/r/call/{id}`): the viewer's trace page for a browser, else the
/// call as JSON.
async fn call_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((entity, project, id)): Path<(String, String, String)>,
) -> Response {
    if crate::viewer::wants_html(&headers) {
        return crate::viewer::page().await;
    }
    let project_id = format!("{entity}/{project}");
    let id2 = id.clone();
    let read = blocking(&s, move |b| {
        b.call_read(CallReadReq {
            project_id,
            id: id2,
            include_costs: true,
            include_storage_size: false,
            include_total_storage_size: false,
        })
    })
    .await;
    match read {
        Ok(CallReadRes { call: Some(call) }) => Json(call).into_response(),
        Ok(CallReadRes { call: None }) => ApiError::reason(
            StatusCode::NOT_FOUND,
            format!("call not found: {id} in {entity}/{project}"),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page of a project, the link the Python SDK prints at `weave.init`
/// (`/{entity}/{project}/weave`): the viewer's calls page for a browser, else the project's
/// call count as JSON.
async fn project_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((entity, project)): Path<(String, String)>,
) -> Response {
    if crate::viewer::wants_html(&headers) {
        return crate::viewer::page().await;
    }
    let project_id = format!("{entity}/{project}");
    let pid = project_id.clone();
    let stats = blocking(&s, move |b| {
        b.calls_query_stats(CallsQueryStatsReq {
            project_id: pid,
            filter: None,
            query: None,
            limit: None,
            include_total_storage_size: false,
            expand_columns: None,
        })
    })
    .await;
    match stats {
        Ok(st) => Json(json!({ "project_id": project_id, "calls": st.count })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page of an object or op version, the links the Python SDK prints when it publishes:
/// the viewer's page for a browser, else the object as JSON.
async fn object_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((entity, project, name, digest)): Path<(String, String, String, String)>,
) -> Response {
    if crate::viewer::wants_html(&headers) {
        return crate::viewer::page().await;
    }
    let req = ObjReadReq {
        project_id: format!("{entity}/{project}"),
        object_id: name,
        digest,
        metadata_only: false,
    };
    match blocking(&s, move |b| b.obj_read(req)).await {
        Ok(res) => Json(res.obj).into_response(),
        Err(e) => e.into_response(),
    }
}
