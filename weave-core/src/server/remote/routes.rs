//! The route table: [`TraceServer`] for [`RemoteServer`], one protocol route per method. Most
//! routes are one JSON `POST` each (`json_routes!`); the rest — `GET`s, the writer's
//! batches sent as they are, the multipart file upload, the streamed query — say how they
//! differ.

use serde::Serialize;

use super::transport::MAX_REQUEST_BYTES;
use super::RemoteServer;
use crate::error::{Result, WeaveError};
use crate::schema::*;
use crate::server::{CallsStream, Capabilities, TraceServer};

/// Routes that are one JSON `POST` each.
macro_rules! json_routes {
    ($($name:ident($req:ty) -> $res:ty = $path:literal;)*) => {$(
        fn $name(&self, req: $req) -> Result<$res> {
            self.post($path, &req)
        }
    )*};
}

impl TraceServer for RemoteServer {
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
                WeaveError::backend_caused_by(
                    format!("{path}: the server's answer is not what the protocol says: {e}"),
                    e,
                )
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
        self.stream_query(req)
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
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::default()
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
