use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JsonMap;
use crate::query::Query;
use crate::time::Timestamp;

/// The body of a call start (`StartedCallSchemaForInsert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedCallSchemaForInsert {
    /// `"entity/project"`.
    pub project_id: String,
    /// The call id (UUIDv7); the server generates one when `None`.
    pub id: Option<String>,
    /// The op ref URI (`weave:///e/p/op/name:digest`) or a plain name.
    pub op_name: String,
    /// A display name overriding the op name in the UI.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The trace id; the server generates one when `None`.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The parent call's id, `None` for a trace root.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Thread id (conversation threads).
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Turn id within a thread.
    #[serde(default)]
    pub turn_id: Option<String>,
    /// When the call started.
    pub started_at: Timestamp,
    /// Attributes, set once at start.
    #[serde(default)]
    pub attributes: JsonMap,
    /// The call's inputs, argument name → value.
    #[serde(default)]
    pub inputs: JsonMap,
    /// The raw OpenTelemetry span, for calls ingested through OTLP.
    #[serde(default)]
    pub otel_dump: Option<JsonMap>,
    /// Set by the server from auth; clients send `null`.
    #[serde(default)]
    pub wb_user_id: Option<String>,
    /// The W&B run (`entity/project/run_id`) the call belongs to.
    #[serde(default)]
    pub wb_run_id: Option<String>,
    /// The W&B run step at start.
    #[serde(default)]
    pub wb_run_step: Option<i64>,
}

/// The body of a call end (`EndedCallSchemaForInsert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedCallSchemaForInsert {
    /// `"entity/project"`.
    pub project_id: String,
    /// The id of the call being ended.
    pub id: String,
    /// When the call ended.
    pub ended_at: Timestamp,
    /// The exception as a JSON string (see [`crate::Exception`]); any non-empty value marks
    /// the call as failed.
    #[serde(default)]
    pub exception: Option<String>,
    /// The call's output.
    #[serde(default)]
    pub output: Value,
    /// The client-computed summary (usage, status_counts, user keys). Always sent, may be `{}`.
    #[serde(default)]
    pub summary: JsonMap,
    /// The W&B run step at end.
    #[serde(default)]
    pub wb_run_step_end: Option<i64>,
}

/// A call with start and end in one object (`CompletedCallSchemaForInsert`, the v2
/// `calls/complete` path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedCallSchemaForInsert {
    /// `"entity/project"`.
    pub project_id: String,
    /// The call id.
    pub id: String,
    /// The trace id.
    pub trace_id: String,
    /// The op ref URI or name.
    pub op_name: String,
    /// When the call started.
    pub started_at: Timestamp,
    /// When the call ended.
    pub ended_at: Timestamp,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Parent call id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Thread id.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Turn id.
    #[serde(default)]
    pub turn_id: Option<String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: JsonMap,
    /// Inputs.
    #[serde(default)]
    pub inputs: JsonMap,
    /// Output.
    #[serde(default)]
    pub output: Value,
    /// Summary, may be `null`.
    #[serde(default)]
    pub summary: Option<JsonMap>,
    /// OpenTelemetry span dump.
    #[serde(default)]
    pub otel_dump: Option<JsonMap>,
    /// Exception JSON string.
    #[serde(default)]
    pub exception: Option<String>,
    /// Server-set user id.
    #[serde(default)]
    pub wb_user_id: Option<String>,
    /// W&B run id.
    #[serde(default)]
    pub wb_run_id: Option<String>,
    /// W&B run step at start.
    #[serde(default)]
    pub wb_run_step: Option<i64>,
    /// W&B run step at end.
    #[serde(default)]
    pub wb_run_step_end: Option<i64>,
}

impl CompletedCallSchemaForInsert {
    /// Splits into the start and end halves the `/call/upsert_batch` path sends.
    pub fn into_start_end(self) -> (StartedCallSchemaForInsert, EndedCallSchemaForInsert) {
        (
            StartedCallSchemaForInsert {
                project_id: self.project_id.clone(),
                id: Some(self.id.clone()),
                op_name: self.op_name,
                display_name: self.display_name,
                trace_id: Some(self.trace_id),
                parent_id: self.parent_id,
                thread_id: self.thread_id,
                turn_id: self.turn_id,
                started_at: self.started_at,
                attributes: self.attributes,
                inputs: self.inputs,
                otel_dump: self.otel_dump,
                wb_user_id: self.wb_user_id,
                wb_run_id: self.wb_run_id,
                wb_run_step: self.wb_run_step,
            },
            EndedCallSchemaForInsert {
                project_id: self.project_id,
                id: self.id,
                ended_at: self.ended_at,
                exception: self.exception,
                output: self.output,
                summary: self.summary.unwrap_or_default(),
                wb_run_step_end: self.wb_run_step_end,
            },
        )
    }
}

/// A call as read back from the server (`CallSchema`). Unselected columns (see
/// [`CallsQueryReq::columns`]) read back as `null` or `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSchema {
    /// The call id.
    pub id: String,
    /// `"entity/project"`.
    pub project_id: String,
    /// Op ref URI or name.
    pub op_name: String,
    /// Display name, if one is set.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Trace id.
    pub trace_id: String,
    /// Parent call id; `None` for a trace root.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Thread id.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Turn id.
    #[serde(default)]
    pub turn_id: Option<String>,
    /// Start time.
    pub started_at: Timestamp,
    /// Attributes.
    #[serde(default)]
    pub attributes: JsonMap,
    /// Inputs.
    #[serde(default)]
    pub inputs: JsonMap,
    /// End time; `None` while the call is running.
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// Exception JSON string, if the call failed.
    #[serde(default)]
    pub exception: Option<String>,
    /// Output.
    #[serde(default)]
    pub output: Value,
    /// Summary, with the server-derived `weave` key.
    #[serde(default)]
    pub summary: Option<JsonMap>,
    /// The W&B user that logged the call.
    #[serde(default)]
    pub wb_user_id: Option<String>,
    /// W&B run id.
    #[serde(default)]
    pub wb_run_id: Option<String>,
    /// W&B run step at start.
    #[serde(default)]
    pub wb_run_step: Option<i64>,
    /// W&B run step at end.
    #[serde(default)]
    pub wb_run_step_end: Option<i64>,
    /// When the call was deleted (deleted calls are not returned by queries).
    #[serde(default)]
    pub deleted_at: Option<Timestamp>,
    /// Storage size of this call, with `include_storage_size`.
    #[serde(default)]
    pub storage_size_bytes: Option<i64>,
    /// Storage size of the whole trace, with `include_total_storage_size` (trace roots only).
    #[serde(default)]
    pub total_storage_size_bytes: Option<i64>,
}

/// `POST /call/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStartReq {
    /// The start.
    pub start: StartedCallSchemaForInsert,
}

/// Response of `/call/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStartRes {
    /// The call id.
    pub id: String,
    /// The trace id.
    pub trace_id: String,
}

/// `POST /call/end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEndReq {
    /// The end.
    pub end: EndedCallSchemaForInsert,
}

/// Response of `/call/end` (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallEndRes {}

/// One item of `/call/upsert_batch`: `{"mode":"start","req":{...}}` or
/// `{"mode":"end","req":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "req", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // a wire type: its shape follows the protocol, not size
pub enum CallBatchItem {
    /// A start.
    Start(CallStartReq),
    /// An end.
    End(CallEndReq),
}

/// `POST /call/upsert_batch`: starts and ends applied in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCreateBatchReq {
    /// The items, applied in order.
    pub batch: Vec<CallBatchItem>,
}

/// One result of `/call/upsert_batch`, aligned with the request's items: a start's ids, or
/// `{}` for an end (read as an end whenever it lacks either id).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CallBatchItemRes {
    /// The result of a start.
    Start(CallStartRes),
    /// The result of an end (`{}`).
    End(CallEndRes),
}

// Written by hand: serde's untagged enums buffer each item and try the variants in turn,
// which cost a client reading a 1,000-item answer more than the rest of the request.
impl<'de> Deserialize<'de> for CallBatchItemRes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Either {
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            trace_id: Option<String>,
        }
        let e = Either::deserialize(d)?;
        Ok(match (e.id, e.trace_id) {
            (Some(id), Some(trace_id)) => CallBatchItemRes::Start(CallStartRes { id, trace_id }),
            _ => CallBatchItemRes::End(CallEndRes {}),
        })
    }
}

/// Response of `/call/upsert_batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCreateBatchRes {
    /// One entry per request item, in order.
    pub res: Vec<CallBatchItemRes>,
}

/// `POST /call/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReadReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The call id.
    pub id: String,
    /// Fill `summary.weave.costs`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_costs: bool,
    /// Fill `storage_size_bytes`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_storage_size: bool,
    /// Fill `total_storage_size_bytes`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_total_storage_size: bool,
}

/// Response of `/call/read`: `call` is `null` when not found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReadRes {
    /// The call, if it exists and is not deleted.
    pub call: Option<CallSchema>,
}

/// The `filter` of a calls query (`CallsFilter`). Every set condition must hold; each list
/// holds at most 1000 values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallsFilter {
    /// Op ref URIs; `weave:///e/p/op/name:*` matches every version of that op.
    #[serde(default)]
    pub op_names: Option<Vec<String>>,
    /// Calls whose inputs contain any of these refs.
    #[serde(default)]
    pub input_refs: Option<Vec<String>>,
    /// Calls whose output contains any of these refs.
    #[serde(default)]
    pub output_refs: Option<Vec<String>>,
    /// Calls whose parent is one of these.
    #[serde(default)]
    pub parent_ids: Option<Vec<String>>,
    /// Calls in one of these traces.
    #[serde(default)]
    pub trace_ids: Option<Vec<String>>,
    /// These calls.
    #[serde(default)]
    pub call_ids: Option<Vec<String>>,
    /// Calls in one of these threads.
    #[serde(default)]
    pub thread_ids: Option<Vec<String>>,
    /// Calls in one of these turns.
    #[serde(default)]
    pub turn_ids: Option<Vec<String>>,
    /// Only trace roots (`parent_id IS NULL`).
    #[serde(default)]
    pub trace_roots_only: Option<bool>,
    /// Calls logged by one of these users.
    #[serde(default)]
    pub wb_user_ids: Option<Vec<String>>,
    /// Calls of one of these W&B runs.
    #[serde(default)]
    pub wb_run_ids: Option<Vec<String>>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// One sort key: `{"field": "started_at", "direction": "desc"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortBy {
    /// A column, a dotted JSON path or a computed `summary.weave.*` field.
    pub field: String,
    /// The direction.
    pub direction: SortDirection,
}

impl SortBy {
    /// Ascending on `field`.
    pub fn asc(field: impl Into<String>) -> Self {
        SortBy {
            field: field.into(),
            direction: SortDirection::Asc,
        }
    }
    /// Descending on `field`.
    pub fn desc(field: impl Into<String>) -> Self {
        SortBy {
            field: field.into(),
            direction: SortDirection::Desc,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `null` reads as `true`, as a missing field does (pydantic's `Optional[bool] = True`).
fn null_as_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// `POST /calls/stream_query` (`CallsQueryReq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Structured filter.
    #[serde(default)]
    pub filter: Option<CallsFilter>,
    /// At most this many calls; `None` = unlimited.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many calls.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Sort keys; `None` = `started_at asc`, `Some([])` = unordered.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
    /// Query expression.
    #[serde(default)]
    pub query: Option<Query>,
    /// Fill `summary.weave.costs`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_costs: bool,
    /// Fill `summary.weave.feedback`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_feedback: bool,
    /// Fill `storage_size_bytes`.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_storage_size: bool,
    /// Fill `total_storage_size_bytes` on trace roots.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_total_storage_size: bool,
    /// Columns to return; `None` = all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Ref-valued paths to expand in place.
    #[serde(default)]
    pub expand_columns: Option<Vec<String>>,
    /// Whether expanded values are returned (else expansion serves filter and sort only).
    #[serde(default = "default_true", deserialize_with = "null_as_true")]
    pub return_expanded_column_values: bool,
}

impl CallsQueryReq {
    /// A query of every call of `project_id`, with the protocol's defaults.
    pub fn new(project_id: impl Into<String>) -> Self {
        CallsQueryReq {
            project_id: project_id.into(),
            filter: None,
            limit: None,
            offset: None,
            sort_by: None,
            query: None,
            include_costs: false,
            include_feedback: false,
            include_storage_size: false,
            include_total_storage_size: false,
            columns: None,
            expand_columns: None,
            return_expanded_column_values: true,
        }
    }
}

/// `POST /calls/query_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsQueryStatsReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Structured filter.
    #[serde(default)]
    pub filter: Option<CallsFilter>,
    /// Query expression.
    #[serde(default)]
    pub query: Option<Query>,
    /// Count at most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Also sum the storage size.
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub include_total_storage_size: bool,
    /// Ref-valued paths to expand for filtering.
    #[serde(default)]
    pub expand_columns: Option<Vec<String>>,
}

/// Response of `/calls/query_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsQueryStatsRes {
    /// How many calls match.
    pub count: u64,
    /// Total storage size, with `include_total_storage_size`.
    #[serde(default)]
    pub total_storage_size_bytes: Option<i64>,
}

/// `POST /calls/delete`: soft-deletes the calls and all their descendants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsDeleteReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// At most 1000 ids.
    pub call_ids: Vec<String>,
    /// Server-set.
    #[serde(default)]
    pub wb_user_id: Option<String>,
}

/// Response of `/calls/delete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallsDeleteRes {
    /// How many calls were deleted, descendants included (older servers omit it).
    #[serde(default)]
    pub num_deleted: u64,
}

/// `POST /call/update`: sets the display name; `""` clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallUpdateReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The call id.
    pub call_id: String,
    /// The new display name; `""` removes it.
    pub display_name: String,
    /// Server-set.
    #[serde(default)]
    pub wb_user_id: Option<String>,
}

/// Response of `/call/update` (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallUpdateRes {}

/// One project of a store, as [`crate::TraceServer::projects`] lists it (a weave-rs
/// extension: the Weave protocol has no route listing projects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStats {
    /// `"entity/project"`.
    pub project_id: String,
    /// Its calls that have started and are not deleted.
    pub calls: u64,
    /// When its latest call started.
    #[serde(default)]
    pub last_call_at: Option<Timestamp>,
}

/// Response of `GET /weave-rs/projects` (weave-rs extension).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectsRes {
    /// The projects, the most recently active first.
    pub projects: Vec<ProjectStats>,
}

/// Response of `GET /server_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfoRes {
    /// The oldest Python client the server accepts.
    pub min_required_weave_python_version: String,
    /// The server's version.
    #[serde(default)]
    pub trace_server_version: Option<String>,
    /// A weave-rs extension: `true` when the server merges a call's start and end whatever
    /// order they arrive in (as `weave serve` does; the weave package's SQLite server drops an
    /// end that comes before its start), so a client may send call batches
    /// concurrently. Absent from other servers' answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_batches_in_any_order: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_results_read_as_starts_and_ends() {
        let res: CallCreateBatchRes = serde_json::from_str(
            r#"{"res":[{"id":"a","trace_id":"t"},{},{"id":"a"},{"extra":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            res.res,
            vec![
                CallBatchItemRes::Start(CallStartRes {
                    id: "a".into(),
                    trace_id: "t".into()
                }),
                CallBatchItemRes::End(CallEndRes {}),
                CallBatchItemRes::End(CallEndRes {}),
                CallBatchItemRes::End(CallEndRes {}),
            ]
        );
        assert_eq!(
            serde_json::to_string(&res.res[..2]).unwrap(),
            r#"[{"id":"a","trace_id":"t"},{}]"#
        );
        assert!(serde_json::from_str::<CallBatchItemRes>("null").is_err());
    }
}
