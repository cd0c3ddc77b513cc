//! [`Untraced`]: the backend as the client uses it — every request runs as weave-internal
//! work ([`crate::internal`]), so that a backend which emits `tracing` spans or events (an
//! instrumented HTTP client, a user's own logging backend) is never traced as the user's
//! calls, whichever thread it runs on.

use std::sync::Arc;

use super::{CallsStream, TraceServer};
use crate::error::Result;
use crate::own_work::internal;
use crate::schema::*;

/// A backend whose every method runs inside [`crate::internal`]; streams too, item by item.
#[derive(Debug)]
pub(crate) struct Untraced(pub(crate) Arc<dyn TraceServer>);

macro_rules! delegate {
    ($($name:ident($req:ty) -> $res:ty;)*) => {$(
        fn $name(&self, req: $req) -> Result<$res> {
            internal(|| self.0.$name(req))
        }
    )*};
}

impl TraceServer for Untraced {
    fn server_info(&self) -> Result<ServerInfoRes> {
        internal(|| self.0.server_info())
    }

    fn ensure_project_exists(&self, entity: &str, project: &str) -> Result<()> {
        internal(|| self.0.ensure_project_exists(entity, project))
    }

    fn calls_query_stream(&self, req: CallsQueryReq) -> Result<CallsStream> {
        let inner = internal(|| self.0.calls_query_stream(req))?;
        Ok(Box::new(UntracedIter(inner)))
    }

    fn projects(&self) -> Result<ProjectsRes> {
        internal(|| self.0.projects())
    }

    fn app_url(&self) -> String {
        internal(|| self.0.app_url())
    }

    /// The backend's own: a [`super::RecordStore`] is reached directly (the writer's thread
    /// is weave-internal already, and reading records emits no spans).
    fn capabilities(&self) -> super::Capabilities<'_> {
        self.0.capabilities()
    }

    fn concurrent_call_batches(&self) -> usize {
        internal(|| self.0.concurrent_call_batches())
    }

    fn call_write_batch(&self, batch: &[CallBatchItem]) -> Result<()> {
        internal(|| self.0.call_write_batch(batch))
    }

    fn call_upsert_batch_body(&self, body: &[u8]) -> Option<Result<CallCreateBatchRes>> {
        internal(|| self.0.call_upsert_batch_body(body))
    }

    delegate! {
        call_start(CallStartReq) -> CallStartRes;
        call_end(CallEndReq) -> CallEndRes;
        call_start_batch(CallCreateBatchReq) -> CallCreateBatchRes;
        call_read(CallReadReq) -> CallReadRes;
        calls_query_stats(CallsQueryStatsReq) -> CallsQueryStatsRes;
        calls_delete(CallsDeleteReq) -> CallsDeleteRes;
        call_update(CallUpdateReq) -> CallUpdateRes;
        cost_create(CostCreateReq) -> CostCreateRes;
        cost_query(CostQueryReq) -> CostQueryRes;
        cost_purge(CostPurgeReq) -> CostPurgeRes;
        feedback_create(FeedbackCreateReq) -> FeedbackCreateRes;
        feedback_create_batch(FeedbackCreateBatchReq) -> FeedbackCreateBatchRes;
        feedback_query(FeedbackQueryReq) -> FeedbackQueryRes;
        feedback_purge(FeedbackPurgeReq) -> FeedbackPurgeRes;
        feedback_replace(FeedbackReplaceReq) -> FeedbackReplaceRes;
        obj_create(ObjCreateReq) -> ObjCreateRes;
        obj_read(ObjReadReq) -> ObjReadRes;
        objs_query(ObjQueryReq) -> ObjQueryRes;
        obj_delete(ObjDeleteReq) -> ObjDeleteRes;
        table_create(TableCreateReq) -> TableCreateRes;
        table_query(TableQueryReq) -> TableQueryRes;
        table_query_stats(TableQueryStatsReq) -> TableQueryStatsRes;
        refs_read_batch(RefsReadBatchReq) -> RefsReadBatchRes;
        file_create(FileCreateReq) -> FileCreateRes;
        file_content_read(FileContentReadReq) -> FileContentReadRes;
    }
}

struct UntracedIter(CallsStream);

impl Iterator for UntracedIter {
    type Item = Result<CallSchema>;
    fn next(&mut self) -> Option<Self::Item> {
        internal(|| self.0.next())
    }
}
