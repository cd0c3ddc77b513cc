//! Backends: the [`TraceServer`] trait and its implementations.
//!
//! [`TraceServer`] mirrors the Weave trace server protocol request for request
//! (`POST /call/start` is [`TraceServer::call_start`], and so on), so that every backend —
//! the embedded [`SqliteServer`], a [`RemoteServer`] over HTTP, or a user's own — is
//! interchangeable and [`crate::WeaveClient`] never knows which one it talks to. What a
//! backend can do beyond the routes it says in [`TraceServer::capabilities`]; the client
//! asks, it never downcasts. `sqlite` and `remote` do not know each other.
//!
//! Methods are synchronous: the client calls them from its background writer thread or, for
//! reads, from the caller's thread. A backend that speaks HTTP owns its own runtime.

pub mod otlp;
pub mod remote;
pub mod sqlite;
pub(crate) mod untraced;

/// The remote backend's former module path: [`remote`], re-exported with the old names.
#[doc(hidden)]
pub mod http {
    pub use super::remote::*;
    #[allow(deprecated)]
    pub use super::{HttpServer, HttpServerConfig};
}

pub use remote::{RemoteServer, RemoteServerConfig};
pub use sqlite::{SqliteServer, SqliteServerConfig};

/// The remote backend's former name: [`RemoteServer`].
#[deprecated(since = "0.1.1", note = "renamed `RemoteServer`")]
pub type HttpServer = RemoteServer;

/// The remote backend's configuration's former name: [`RemoteServerConfig`].
#[deprecated(since = "0.1.1", note = "renamed `RemoteServerConfig`")]
pub type HttpServerConfig = RemoteServerConfig;

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

    /// What this backend offers the client beyond the protocol's routes: how the client
    /// should use it ([`Capabilities`]). The default: none of it, which is right for any
    /// server that speaks the protocol.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::default()
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

    /// How many `/call/upsert_batch` requests the client's background writer may have in
    /// flight at once. 1 (the default) sends them one after the other, in the order the calls
    /// were made — what a server that needs a call's start before its end (the weave
    /// package's SQLite server drops an end that comes first) requires. More only for a
    /// backend that merges a call's start and end whatever order they arrive in.
    fn concurrent_call_batches(&self) -> usize {
        1
    }

    /// The largest request body the backend takes: [`Capabilities::max_request_bytes`].
    #[deprecated(since = "0.1.1", note = "read `capabilities().max_request_bytes`")]
    fn max_request_bytes(&self) -> Option<usize> {
        self.capabilities().max_request_bytes
    }

    /// Whether the client queues feedback: [`Capabilities::queues_feedback`].
    #[deprecated(since = "0.1.1", note = "read `capabilities().queues_feedback`")]
    fn queues_feedback(&self) -> bool {
        self.capabilities().queues_feedback
    }

    /// Whether calls are streamed lazily: [`Capabilities::streams_calls_lazily`].
    #[deprecated(since = "0.1.1", note = "read `capabilities().streams_calls_lazily`")]
    fn streams_calls_lazily(&self) -> bool {
        self.capabilities().streams_calls_lazily
    }
}

/// What a backend offers the client beyond the protocol's routes, asked for with
/// [`TraceServer::capabilities`]. Hints about how to use it, and, for a store in the client's
/// own process, the path that hands it call records as they are ([`RecordStore`]) instead of
/// protocol items. The client never asks which backend it talks to — only what it can do.
///
/// `#[non_exhaustive]`: build one with [`Capabilities::default`] and the `with_` methods.
#[non_exhaustive]
#[derive(Clone, Copy, Default)]
pub struct Capabilities<'a> {
    /// The largest request body the backend takes, if it has a limit; the writer splits
    /// batches to stay under it. `None` for a store in this process.
    pub max_request_bytes: Option<usize>,
    /// Whether the client should queue feedback to its background writer (batched into
    /// `/feedback/batch/create`, retried like calls) rather than create it directly. True for
    /// remote servers, where a round trip per feedback is costly and an outage should not fail
    /// the caller; false for the embedded store, which answers at once with the stored row.
    pub queues_feedback: bool,
    /// Whether [`TraceServer::calls_query_stream`] reads a query's calls lazily, as the
    /// stream is consumed, at a cost linear in what is read — so that a client may ask for the
    /// whole remaining range of a query (its `offset` and `limit`) in one stream. True for the
    /// embedded store, where [`crate::CallsIter`] then makes one request instead of paging
    /// with `offset`, which re-reads every skipped row per page. False: the client pages,
    /// `page_size` calls per request, as the Python client does.
    pub streams_calls_lazily: bool,
    /// A store in this process that takes the client's call records as they are and gives
    /// stored calls back parsed lazily. Only weave-core's own stores can offer it.
    pub records: Option<&'a dyn RecordStore>,
}

impl<'a> Capabilities<'a> {
    /// Sets [`Capabilities::max_request_bytes`].
    pub fn with_max_request_bytes(mut self, max: Option<usize>) -> Self {
        self.max_request_bytes = max;
        self
    }

    /// Sets [`Capabilities::queues_feedback`].
    pub fn with_queues_feedback(mut self, on: bool) -> Self {
        self.queues_feedback = on;
        self
    }

    /// Sets [`Capabilities::streams_calls_lazily`].
    pub fn with_streams_calls_lazily(mut self, on: bool) -> Self {
        self.streams_calls_lazily = on;
        self
    }

    /// Sets [`Capabilities::records`].
    pub fn with_records(mut self, records: &'a dyn RecordStore) -> Self {
        self.records = Some(records);
        self
    }
}

impl std::fmt::Debug for Capabilities<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities")
            .field("max_request_bytes", &self.max_request_bytes)
            .field("queues_feedback", &self.queues_feedback)
            .field("streams_calls_lazily", &self.streams_calls_lazily)
            .field("records", &self.records.is_some())
            .finish()
    }
}

/// A store in the client's own process, written and read through the call records the
/// client keeps (no protocol items are built): the background writer hands it a batch of
/// starts and ends in one transaction, and the client's queries read calls whose JSON is
/// parsed only when a field is read. Sealed: its arguments are weave-core's own records, so
/// only weave-core's stores implement it.
pub trait RecordStore: Send + Sync {
    /// Writes `batch` (starts and ends, in order) in one transaction: all or nothing.
    fn write_records(&self, batch: &[RecordWrite<'_>]) -> Result<()>;

    /// A query's calls as stored. `None` when the query needs what only the protocol's
    /// answers carry (costs, feedback, expanded refs): read those through
    /// [`TraceServer::calls_query_stream`].
    fn query_records(&self, req: &CallsQueryReq) -> Result<Option<StoredCalls>>;
}

pub use crate::record::RecordWrite;
/// Calls as a [`RecordStore`] reads them.
pub type StoredCalls = Box<dyn Iterator<Item = Result<crate::record::stored::StoredCall>> + Send>;
