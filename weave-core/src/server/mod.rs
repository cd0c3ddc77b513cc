//! Backends: the [`TraceServer`] trait and its implementations.
//!
//! [`TraceServer`] mirrors the Weave trace server protocol request for request
//! (`POST /call/start` is [`TraceServer::call_start`], and so on), so that every backend —
//! the embedded [`SqliteServer`] here, the remote HTTP server later, or a user's own — is
//! interchangeable and [`crate::WeaveClient`] never knows which one it talks to.
//!
//! Methods are synchronous: the client calls them from its background writer thread or, for
//! reads, from the caller's thread. A backend that speaks HTTP owns its own runtime.

pub mod http;
pub(crate) mod internal;
pub mod sqlite;

pub use http::{HttpServer, HttpServerConfig};
pub use sqlite::{SqliteServer, SqliteServerConfig};

use crate::error::Result;
use crate::schema::*;

/// A stream of calls, as `/calls/stream_query` returns them: consumed incrementally, never
/// all in memory at once.
pub type CallsStream = Box<dyn Iterator<Item = Result<CallSchema>> + Send>;

/// A Weave trace server: the protocol's routes as methods.
pub trait TraceServer: Send + Sync + std::fmt::Debug {
    /// `GET /server_info`.
    fn server_info(&self) -> Result<ServerInfoRes>;

    /// Makes sure `entity/project` exists, creating it if the backend needs that (the Python
    /// client's `ensure_project_exists`). The default does nothing.
    fn ensure_project_exists(&self, _entity: &str, _project: &str) -> Result<()> {
        Ok(())
    }

    /// `POST /call/start`.
    fn call_start(&self, req: CallStartReq) -> Result<CallStartRes>;

    /// `POST /call/end`.
    fn call_end(&self, req: CallEndReq) -> Result<CallEndRes>;

    /// `POST /call/upsert_batch`: starts and ends applied in order; an end may come before its
    /// start.
    fn call_start_batch(&self, req: CallCreateBatchReq) -> Result<CallCreateBatchRes>;

    /// The embedded store behind this backend, if it is one: the client's writer hands it
    /// call records directly. Not for use outside weave-core.
    #[doc(hidden)]
    fn as_embedded(&self) -> Option<&crate::SqliteServer> {
        None
    }

    /// Applies a batch as [`TraceServer::call_start_batch`] does, without taking it (the
    /// client's writer keeps a batch until it is written, to retry or split it). The default
    /// copies the batch; the embedded store writes from the borrowed items.
    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        self.call_start_batch(CallCreateBatchReq {
            batch: batch.to_vec(),
        })
        .map(drop)
    }

    /// Writes a `/call/upsert_batch` from its body (`{"batch": [...]}`) as it is: the
    /// background writer's path to a remote server (which serialises calls straight from
    /// their records), and `weave serve`'s to the embedded store (which stores the JSON
    /// fields as the body has them, without building them into values). `None`: this
    /// backend does not take this body (the caller parses it, or sends items with
    /// [`TraceServer::call_write_batch`]).
    fn call_upsert_batch_body(&self, _body: &[u8]) -> Option<Result<CallCreateBatchRes>> {
        None
    }

    /// The projects this backend holds calls of, with their call counts and latest
    /// activity, the most recently active first. A weave-rs extension (`GET
    /// /weave-rs/projects` on `weave serve`); the default says the backend cannot list them.
    fn projects(&self) -> Result<ProjectsRes> {
        Err(crate::WeaveError::InvalidInput(
            "this backend does not list its projects (name one)".into(),
        ))
    }

    /// `POST /call/read`: `call` is `None` when the id is unknown or deleted.
    fn call_read(&self, req: CallReadReq) -> Result<CallReadRes>;

    /// `POST /calls/stream_query`.
    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream>;

    /// `POST /calls/query_stats`.
    fn calls_query_stats(&self, req: CallsQueryStatsReq) -> Result<CallsQueryStatsRes>;

    /// `POST /calls/delete`: soft delete, cascading to all descendants.
    fn calls_delete(&self, req: CallsDeleteReq) -> Result<CallsDeleteRes>;

    /// `POST /call/update`: sets (or with `""` clears) the display name.
    fn call_update(&self, req: CallUpdateReq) -> Result<CallUpdateRes>;

    /// `POST /cost/create`: adds project-level prices.
    fn cost_create(&self, req: CostCreateReq) -> Result<CostCreateRes>;

    /// `POST /cost/query`.
    fn cost_query(&self, req: CostQueryReq) -> Result<CostQueryRes>;

    /// `POST /cost/purge`: deletes prices, by id only.
    fn cost_purge(&self, req: CostPurgeReq) -> Result<CostPurgeRes>;

    /// `POST /feedback/create`: validates the payload for its type (§4.9) and stores it;
    /// reactions get `alias`, `detoned` and `detoned_alias`.
    fn feedback_create(&self, req: FeedbackCreateReq) -> Result<FeedbackCreateRes>;

    /// `POST /feedback/batch/create`: every item is validated before any is stored.
    fn feedback_create_batch(&self, req: FeedbackCreateBatchReq) -> Result<FeedbackCreateBatchRes>;

    /// `POST /feedback/query`.
    fn feedback_query(&self, req: FeedbackQueryReq) -> Result<FeedbackQueryRes>;

    /// `POST /feedback/purge`: deletes feedback, by id only.
    fn feedback_purge(&self, req: FeedbackPurgeReq) -> Result<FeedbackPurgeRes>;

    /// `POST /feedback/replace`: purges `feedback_id` and creates the new feedback.
    fn feedback_replace(&self, req: FeedbackReplaceReq) -> Result<FeedbackReplaceRes>;

    /// `POST /obj/create`: a new version, or the existing one with the same digest.
    fn obj_create(&self, req: ObjCreateReq) -> Result<ObjCreateRes>;

    /// `POST /obj/read`: by digest, `latest` or `v<N>`; not found when missing or deleted.
    fn obj_read(&self, req: ObjReadReq) -> Result<ObjReadRes>;

    /// `POST /objs/query`.
    fn objs_query(&self, req: ObjQueryReq) -> Result<ObjQueryRes>;

    /// `POST /obj/delete`.
    fn obj_delete(&self, req: ObjDeleteReq) -> Result<ObjDeleteRes>;

    /// `POST /table/create`.
    fn table_create(&self, req: TableCreateReq) -> Result<TableCreateRes>;

    /// `POST /table/query`.
    fn table_query(&self, req: TableQueryReq) -> Result<TableQueryRes>;

    /// `POST /table/query_stats`.
    fn table_query_stats(&self, req: TableQueryStatsReq) -> Result<TableQueryStatsRes>;

    /// `POST /refs/read_batch`: resolves object refs, extra path edges included.
    fn refs_read_batch(&self, req: RefsReadBatchReq) -> Result<RefsReadBatchRes>;

    /// `POST /files/create`.
    fn file_create(&self, req: FileCreateReq) -> Result<FileCreateRes>;

    /// `POST /files/content`.
    fn file_content_read(&self, req: FileContentReadReq) -> Result<FileContentReadRes>;

    /// The base URL of the web UI for this backend, to which `/{entity}/{project}/r/call/{id}`
    /// is appended to make a call's link (PROTOCOL §9).
    fn app_url(&self) -> String;

    /// The largest request body the backend takes, if it has a limit; the writer splits
    /// batches to stay under it. `None` (the default) for the embedded store.
    fn max_request_bytes(&self) -> Option<usize> {
        None
    }

    /// How many `/call/upsert_batch` requests the client's background writer may have in
    /// flight at once. 1 (the default) sends them one after the other, in the order the calls
    /// were made — what a server that needs a call's start before its end (the weave
    /// package's SQLite server drops an end that comes first) requires. More only for a
    /// backend that merges a call's start and end whatever order they arrive in.
    fn concurrent_call_batches(&self) -> usize {
        1
    }

    /// Whether the client should queue feedback to its background writer (batched into
    /// `/feedback/batch/create`, retried like calls) rather than create it directly. True for
    /// remote servers, where a round trip per feedback is costly and an outage should not fail
    /// the caller; false (the default) for the embedded store, which answers at once with the
    /// stored row.
    fn queues_feedback(&self) -> bool {
        false
    }

    /// Whether [`TraceServer::calls_query_stream`] reads a query's calls lazily, as the
    /// stream is consumed, at a cost linear in what is read — so that a client may ask for the
    /// whole remaining range of a query (its `offset` and `limit`) in one stream. True for the
    /// embedded store, where [`crate::CallsIter`] then makes one request instead of paging
    /// with `offset`, which re-reads every skipped row per page. False (the default): the
    /// client pages, `page_size` calls per request, as the Python client does.
    fn streams_calls_lazily(&self) -> bool {
        false
    }
}
