//! [`Call`]: one recorded invocation, live (being recorded) or read back from the store.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::calls_iter::{CallsIter, CallsQuery};
use super::exception::Exception;
use super::WeaveClient;
use crate::error::Result;
use crate::ids::IdText;
use crate::record::stored::StoredCall;
use crate::record::{CallRecord, CallState, NewCall, StatusCounts, MAX_EVENTS};
use crate::refs::CallRef;
use crate::schema::summary::{op_display_name, sum_dict_leaves, TraceStatus, USAGE_KEY, WEAVE_KEY};
use crate::schema::{CallSchema, CallsFilter, JsonMap};
use crate::time::Timestamp;

/// The op name of the stand-in for another process's call ([`Call::is_remote`]); never
/// written.
const REMOTE_PARENT_OP: &str = "remote-parent";

/// A call: the record of one invocation of an op — its inputs, output or exception, timing,
/// place in the trace tree, and summary.
///
/// `Call` is a cheap handle (clones share one record). A call returned by
/// [`WeaveClient::create_call`] is *live*: [`WeaveClient::finish_call`] fills its output,
/// exception, end time and summary, and every clone sees them. Calls read back with
/// [`WeaveClient::get_call`] / [`WeaveClient::get_calls`] carry the server's view, including
/// the derived `summary.weave`.
///
/// The accessors mirror the fields of the Python SDK's `Call`.
#[derive(Clone)]
pub struct Call {
    inner: Arc<CallRecord>,
    /// Kept beside the record, not in it: the writer's queue holds records, and a queued
    /// record must not keep the client (and so the writer itself) alive.
    client: WeaveClient,
}

impl Call {
    /// A new call, recorded as it runs.
    pub(crate) fn new_live(client: WeaveClient, c: NewCall) -> Call {
        let record = CallRecord::live(client.project_id_arc(), c);
        Call {
            client,
            inner: Arc::new(record),
        }
    }

    /// The stand-in for a call of another process, continued here: calls made under it are
    /// its children (they carry its id and trace id); it is never written or finished
    /// ([`crate::propagation`]).
    pub(crate) fn remote(client: WeaveClient, trace_id: IdText, id: IdText) -> Call {
        let record = CallRecord::live(
            client.project_id_arc(),
            NewCall {
                id,
                trace_id,
                parent: None,
                parent_id: None,
                op_name: Arc::from(REMOTE_PARENT_OP),
                inputs: crate::record::Inputs::Map(Box::default()),
                attributes: client.attributes_arc().clone(),
                started_at: Timestamp::now(),
                thread_id: None,
                turn_id: None,
                untraced: false,
                remote: true,
            },
        );
        Call {
            client,
            inner: Arc::new(record),
        }
    }

    /// A call read back through the protocol.
    pub(crate) fn from_schema(client: WeaveClient, s: CallSchema) -> Call {
        Call {
            client,
            inner: Arc::new(CallRecord::from_schema(s)),
        }
    }

    /// A call read through a store's own path (its JSON parsed when read).
    pub(crate) fn from_stored(client: WeaveClient, s: StoredCall) -> Call {
        Call {
            client,
            inner: Arc::new(CallRecord::from_stored(s)),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, CallState> {
        self.inner.state()
    }

    /// The live parent's record.
    pub(crate) fn parent(&self) -> Option<&Arc<CallRecord>> {
        self.inner.parent.as_ref()
    }

    /// The record, as the writer queues it.
    /// The record, without the client.
    pub(crate) fn into_record(self) -> Arc<CallRecord> {
        self.inner
    }

    pub(crate) fn record(&self) -> Arc<CallRecord> {
        self.inner.clone()
    }

    /// The call's record, borrowed.
    pub(crate) fn record_ref(&self) -> &CallRecord {
        &self.inner
    }

    /// The client this call belongs to.
    pub fn client(&self) -> &WeaveClient {
        &self.client
    }

    /// Whether two handles are the same record.
    pub(crate) fn same_call(&self, other: &Call) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Takes the children's summaries rolled up (Python's `sum_dict_leaves` over
    /// `call._children`), and whether the call had any children at all.
    /// `None` when every child's summary was only status counts (then `counts` says them).
    pub(crate) fn take_children_summary(&self) -> (bool, Option<JsonMap>, StatusCounts) {
        let mut st = self.state();
        let summaries = match &mut st.rare {
            Some(r) => std::mem::take(&mut r.child_summaries),
            None => Vec::new(),
        };
        let counts = std::mem::take(&mut st.child_counts);
        let general = (!summaries.is_empty()).then(|| sum_dict_leaves(summaries.iter()));
        (st.child_count > 0, general, counts)
    }

    /// Keeps an event (a log line, a `tracing` event) with this live call. Events are
    /// written with the call's end, as the list `summary.events`, at most [`MAX_EVENTS`] per
    /// call (the rest are counted in `summary.events_dropped`). Unlike the rest of the
    /// summary, events are not rolled up into the parent. Ignored once the call is finished.
    pub fn log_event(&self, event: Value) {
        let mut st = self.state();
        if st.ended_at.is_some() {
            return;
        }
        let rare = st.rare_mut();
        if rare.events.len() < MAX_EVENTS {
            rare.events.push(event);
        } else {
            rare.events_dropped += 1;
        }
    }

    /// For a call created with [`crate::CallOptions::defer_start`] and not yet finished:
    /// adds `inputs` (replacing same-named ones, redacted like all inputs) to the inputs its
    /// start will be written with. Returns false (and does nothing) when the start was not
    /// deferred or the call has finished.
    pub fn extend_deferred_inputs(&self, inputs: JsonMap) -> bool {
        let mut st = self.state();
        if st.ended_at.is_some() {
            return false;
        }
        if !st.start_deferred {
            return false;
        }
        st.rare_mut()
            .extra_inputs
            .get_or_insert_with(Default::default)
            .extend(crate::redact::redact_inputs(inputs));
        true
    }

    /// The call id (UUIDv7).
    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub(crate) fn id_text(&self) -> &IdText {
        &self.inner.id
    }
    pub(crate) fn trace_id_text(&self) -> &IdText {
        &self.inner.trace_id
    }
    /// The trace id (the root call's trace).
    pub fn trace_id(&self) -> &str {
        &self.inner.trace_id
    }
    /// `"entity/project"`.
    pub fn project_id(&self) -> &str {
        &self.inner.project_id
    }
    /// The parent's id; `None` for a trace root.
    pub fn parent_id(&self) -> Option<&str> {
        self.inner.parent_id.as_deref()
    }
    /// The op: an op ref URI (`weave:///e/p/op/name:digest`) or a plain name.
    pub fn op_name(&self) -> &str {
        &self.inner.op_name
    }
    /// The function name: the name inside the op ref, or the plain op name.
    pub fn func_name(&self) -> &str {
        op_display_name(&self.inner.op_name)
    }
    /// The inputs, argument name → value.
    pub fn inputs(&self) -> &JsonMap {
        self.inner.inputs.map()
    }
    /// The attributes (including the SDK's `weave` block).
    pub fn attributes(&self) -> &JsonMap {
        &self.inner.attributes
    }
    /// When the call started.
    pub fn started_at(&self) -> Timestamp {
        self.inner.started_at
    }
    /// The thread id, if the call is part of a conversation thread.
    pub fn thread_id(&self) -> Option<&str> {
        self.inner.thread_id()
    }
    /// The turn id within the thread.
    pub fn turn_id(&self) -> Option<&str> {
        self.inner.turn_id()
    }
    /// The W&B user that logged the call (read-side).
    pub fn wb_user_id(&self) -> Option<&str> {
        self.inner.read.as_ref()?.wb_user_id.as_deref()
    }
    /// The W&B run of the call.
    pub fn wb_run_id(&self) -> Option<&str> {
        self.inner.read.as_ref()?.wb_run_id.as_deref()
    }
    /// The W&B run step at start.
    pub fn wb_run_step(&self) -> Option<i64> {
        self.inner.read.as_ref()?.wb_run_step
    }
    /// The W&B run step at end.
    pub fn wb_run_step_end(&self) -> Option<i64> {
        self.state().wb_run_step_end()
    }
    /// Storage size of the call, when queried with `include_storage_size`.
    pub fn storage_size_bytes(&self) -> Option<i64> {
        self.inner.read.as_ref()?.storage_size_bytes
    }
    /// Storage size of the trace, when queried with `include_total_storage_size`.
    pub fn total_storage_size_bytes(&self) -> Option<i64> {
        self.inner.read.as_ref()?.total_storage_size_bytes
    }
    /// The display name, if one is set.
    pub fn display_name(&self) -> Option<String> {
        self.state().display_name().cloned()
    }
    /// The output (`null` while running or when the call failed).
    pub fn output(&self) -> Value {
        self.state().output().into_owned()
    }
    /// The exception as stored: the Python SDK's JSON string. See [`Call::exception_info`].
    pub fn exception(&self) -> Option<String> {
        self.state().exception.clone()
    }
    /// The exception, parsed.
    pub fn exception_info(&self) -> Option<Exception> {
        self.state().exception.as_deref().map(Exception::parse)
    }
    /// The summary: usage, status_counts, user keys and (read-side) the derived `weave` block.
    pub fn summary(&self) -> Option<JsonMap> {
        self.state().summary().map(std::borrow::Cow::into_owned)
    }
    /// When the call ended; `None` while running.
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.state().ended_at
    }
    /// When the call was deleted.
    pub fn deleted_at(&self) -> Option<Timestamp> {
        self.state().deleted_at()
    }
    /// Whether the call has ended.
    pub fn is_finished(&self) -> bool {
        self.inner.finished.load(Ordering::Acquire)
    }

    /// Whether this call is not recorded: it was made with `create_call` inside a trace that
    /// was sampled out (an op's `sample_rate`), so it and everything below it stay untraced,
    /// as the rest of that trace. Finishing it writes nothing.
    pub fn is_untraced(&self) -> bool {
        self.inner.untraced
    }

    /// Whether this handle stands for a call of another process, continued here from its
    /// trace context ([`crate::propagation`]): its [`Call::id`] and [`Call::trace_id`] are
    /// that call's, calls made under it are its children, and it is never written or
    /// finished here (its inputs, output and summary are the other process's).
    pub fn is_remote(&self) -> bool {
        self.inner.remote
    }

    /// Marks the call finished; false when it already was (so only one finish wins).
    pub(crate) fn try_mark_finished(&self) -> bool {
        !self.inner.finished.swap(true, Ordering::AcqRel)
    }
    /// The status, derived as the server does (PROTOCOL §4.5).
    pub fn status(&self) -> TraceStatus {
        let st = self.state();
        TraceStatus::derive(
            st.exception.as_deref(),
            st.ended_at.is_some(),
            st.summary().as_deref(),
        )
    }
    /// Whole milliseconds from start to end; `None` while running.
    pub fn latency_ms(&self) -> Option<i64> {
        self.state()
            .ended_at
            .map(|e| e.millis_since(self.inner.started_at))
    }
    /// Token usage per model (`summary.usage`), empty when there is none.
    pub fn usage(&self) -> JsonMap {
        match self.state().summary.as_ref().and_then(|s| s.get(USAGE_KEY)) {
            // (A summary of only status counts has no usage.)
            Some(Value::Object(m)) => m.clone(),
            _ => JsonMap::new(),
        }
    }
    /// The server-derived `summary.weave` block (read-side calls).
    pub fn weave_summary(&self) -> Option<JsonMap> {
        match self.state().summary.as_ref()?.get(WEAVE_KEY)? {
            Value::Object(m) => Some(m.clone()),
            _ => None,
        }
    }
    /// Sets a user key of the summary; finishing the call merges the computed summary over it
    /// (as the Python SDK does with `call.summary[...] = ...`). Ignored once the call is
    /// finished: its summary was written with its end.
    pub fn set_summary_value(&self, key: impl Into<String>, value: impl Into<Value>) {
        let mut st = self.state();
        if st.ended_at.is_some() {
            return;
        }
        st.summary
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
    }
    /// The call's ref, `weave:///entity/project/call/<id>` (Python's `call.ref`).
    pub fn call_ref(&self) -> CallRef {
        let (entity, project) = self
            .inner
            .project_id
            .split_once('/')
            .unwrap_or((&self.inner.project_id, ""));
        CallRef::new(entity, project, self.inner.id.to_string())
    }
    /// The call's feedback (Python's `call.feedback`): add reactions, notes and custom
    /// feedback, list it (oldest first), purge it.
    pub fn feedback(&self) -> super::feedback::RefFeedback {
        super::feedback::RefFeedback::in_project(
            self.client.clone(),
            self.inner.project_id.to_string(),
            self.call_ref().to_string(),
        )
    }
    /// The link to the call in the UI (PROTOCOL §9): the W&B app for a remote server, the
    /// local viewer's URL for the embedded store.
    pub fn ui_url(&self) -> String {
        self.client.call_ui_url(&self.inner.id)
    }
    /// The direct children, oldest first, fetched lazily in pages.
    pub fn children(&self) -> CallsIter {
        self.client.get_calls(CallsQuery::from(CallsFilter {
            parent_ids: Some(vec![self.inner.id.to_string()]),
            ..Default::default()
        }))
    }
    /// Deletes the call and all its descendants (soft delete).
    pub fn delete(&self) -> Result<()> {
        self.client.delete_call(self)
    }
    /// Sets the display name. An empty name is an error; use [`Call::remove_display_name`].
    pub fn set_display_name(&self, name: impl Into<String>) -> Result<()> {
        let name = name.into();
        if name.is_empty() {
            return Err(crate::WeaveError::invalid_input(
                "display name cannot be empty; use remove_display_name() to remove it",
            ));
        }
        self.client.set_call_display_name(self, Some(name))
    }
    /// Removes the display name.
    pub fn remove_display_name(&self) -> Result<()> {
        self.client.set_call_display_name(self, None)
    }

    /// A snapshot of the call in the protocol's read-side form.
    pub fn to_schema(&self) -> CallSchema {
        let st = self.state();
        CallSchema {
            id: self.inner.id.to_string(),
            project_id: self.inner.project_id.to_string(),
            op_name: self.inner.op_name.to_string(),
            display_name: st.display_name().cloned(),
            trace_id: self.inner.trace_id.to_string(),
            parent_id: self.inner.parent_id.as_deref().map(str::to_string),
            thread_id: self.inner.thread_id().map(str::to_string),
            turn_id: self.inner.turn_id().map(str::to_string),
            started_at: self.inner.started_at,
            attributes: (*self.inner.attributes).clone(),
            inputs: self.inner.inputs.to_map(),
            ended_at: st.ended_at,
            exception: st.exception.clone(),
            output: st.output().into_owned(),
            summary: st.summary().map(std::borrow::Cow::into_owned),
            wb_user_id: self.wb_user_id().map(str::to_string),
            wb_run_id: self.wb_run_id().map(str::to_string),
            wb_run_step: self.wb_run_step(),
            wb_run_step_end: st.wb_run_step_end(),
            deleted_at: st.deleted_at(),
            storage_size_bytes: self.storage_size_bytes(),
            total_storage_size_bytes: self.total_storage_size_bytes(),
        }
    }
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.inner.id)
            .field("op_name", &self.inner.op_name)
            .field("parent_id", &self.inner.parent_id)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Serialize for Call {
    /// Serialises as the protocol's `CallSchema`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_schema().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn handles_are_send_and_sync() {
        // The tracing layer keeps calls in span extensions, which must be Send + Sync.
        assert_send_sync::<super::Call>();
        assert_send_sync::<crate::WeaveClient>();
        assert_send_sync::<crate::SqliteServer>();
        fn assert_send<T: Send>() {}
        assert_send::<crate::CallsIter>();
    }
}
