//! [`Call`]: one recorded invocation, live (being recorded) or read back from the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::calls_iter::{CallsIter, CallsQuery};
use super::exception::Exception;
use super::WeaveClient;
use crate::error::Result;
use crate::ids::IdText;
use crate::refs::CallRef;
use crate::schema::summary::{
    op_display_name, sum_dict_leaves, TraceStatus, STATUS_COUNTS_KEY, USAGE_KEY, WEAVE_KEY,
};
use crate::schema::{CallSchema, CallsFilter, JsonMap};
use crate::server::sqlite::{parse_stored_json, stored_object, StoredCall, StoredJson};
use crate::time::Timestamp;

/// Children summaries are folded into one once this many are waiting, so a call with a
/// million children holds a bounded amount of memory.
const FOLD_CHILD_SUMMARIES_AT: usize = 64;

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
    inner: Arc<CallInner>,
    /// Kept beside the record, not in it: the writer's queue holds records, and a queued
    /// record must not keep the client (and so the writer itself) alive.
    client: WeaveClient,
}

// Ids, names and attributes are shared (`Arc`) with the client, the parent and the writer's
// queue, so that making a call copies none of them.
pub(crate) struct CallInner {
    pub(crate) id: IdText,
    pub(crate) trace_id: IdText,
    pub(crate) project_id: Arc<str>,
    pub(crate) parent_id: Option<IdText>,
    pub(crate) op_name: Arc<str>,
    pub(crate) inputs: Inputs,
    pub(crate) attributes: Arc<JsonMap>,
    pub(crate) started_at: Timestamp,
    pub(crate) thread_id: Option<String>,
    pub(crate) turn_id: Option<String>,
    /// Fields only calls read back from a store have (boxed: a live call's record stays
    /// small while it waits in the writer's queue).
    read: Option<Box<ReadSide>>,
    /// The live parent, to which this call's summary is reported when it finishes.
    parent: Option<Arc<CallInner>>,
    /// Set once the call has ended (read on every stack lookup, so without the lock).
    finished: AtomicBool,
    /// Made inside a sampled-out trace: current while it runs, never written.
    untraced: bool,
    state: Mutex<CallState>,
}

struct ReadSide {
    wb_user_id: Option<String>,
    wb_run_id: Option<String>,
    wb_run_step: Option<i64>,
    storage_size_bytes: Option<i64>,
    total_storage_size_bytes: Option<i64>,
}

impl ReadSide {
    /// Boxed, or `None` when every field is (as it is for most calls).
    fn boxed(self) -> Option<Box<ReadSide>> {
        (self.wb_user_id.is_some()
            || self.wb_run_id.is_some()
            || self.wb_run_step.is_some()
            || self.storage_size_bytes.is_some()
            || self.total_storage_size_bytes.is_some())
        .then(|| Box::new(self))
    }
}

/// A summary that is only `status_counts` (most calls: no usage, no user keys, no events),
/// kept as two numbers and made into JSON only when read.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub(crate) struct StatusCounts {
    pub(crate) success: i64,
    pub(crate) error: i64,
}

impl StatusCounts {
    pub(crate) fn to_map(self) -> JsonMap {
        let mut counts = JsonMap::new();
        counts.insert("success".into(), Value::from(self.success));
        counts.insert("error".into(), Value::from(self.error));
        let mut m = JsonMap::new();
        m.insert(STATUS_COUNTS_KEY.into(), Value::Object(counts));
        m
    }
}

#[derive(Default)]
pub(crate) struct CallState {
    pub(crate) display_name: Option<String>,
    pub(crate) output: Value,
    pub(crate) exception: Option<String>,
    /// The summary (see [`CallState::summary`]); `None` with `counts` set means exactly those
    /// status counts.
    pub(crate) summary: Option<Box<JsonMap>>,
    pub(crate) counts: Option<StatusCounts>,
    pub(crate) ended_at: Option<Timestamp>,
    pub(crate) deleted_at: Option<Timestamp>,
    pub(crate) wb_run_step_end: Option<i64>,
    /// How many children were created under this call (Python's `len(call._children)`).
    pub(crate) child_count: usize,
    /// Summaries of finished children, not yet folded.
    pub(crate) child_summaries: Vec<JsonMap>,
    /// The status counts of finished children whose summary was only that.
    pub(crate) child_counts: StatusCounts,
    /// The start, when it is written with the end ([`crate::CallOptions::defer_start`]).
    pub(crate) start_deferred: bool,
    /// Inputs added to a deferred start ([`Call::extend_deferred_inputs`]), merged over the
    /// call's inputs when the start is written.
    pub(crate) extra_inputs: Option<Box<JsonMap>>,
    /// Events kept with the call ([`Call::log_event`]).
    pub(crate) events: Vec<Value>,
    /// Events not kept because the call already had [`MAX_EVENTS`].
    pub(crate) events_dropped: u64,
    /// Set for a call read from the embedded store until its output and summary (kept as
    /// text with its inputs, [`Inputs::Stored`]) are parsed, and `summary.weave` derived:
    /// the first time the state is locked.
    pub(crate) stored: bool,
}

impl CallState {
    /// The summary as JSON.
    pub(crate) fn summary(&self) -> Option<std::borrow::Cow<'_, JsonMap>> {
        match (&self.summary, self.counts) {
            (Some(m), _) => Some(std::borrow::Cow::Borrowed(&**m)),
            (None, Some(c)) => Some(std::borrow::Cow::Owned(c.to_map())),
            (None, None) => None,
        }
    }
}

/// The most events kept with one call; later ones are counted in `summary.events_dropped`.
pub const MAX_EVENTS: usize = 1000;

/// A call's inputs: a JSON object, or an op's arguments as the JSON text of one, parsed only
/// when read (an op's arguments are written to text on the traced thread, which the
/// embedded store keeps as it is: no `Value` tree is built, hashed or dropped).
pub(crate) enum Inputs {
    Map(JsonMap),
    /// An op's arguments ([`crate::rt::ArgsWriter`]): an object's text, already capped in
    /// depth and redacted.
    Json(String, std::sync::OnceLock<Box<JsonMap>>),
    /// As the embedded store holds them (with the output's and summary's text, which
    /// [`CallInner::state`] parses), parsed when first read.
    Stored(StoredJson, std::sync::OnceLock<Box<JsonMap>>),
}

impl Inputs {
    pub(crate) fn json(text: String) -> Self {
        Inputs::Json(text, std::sync::OnceLock::new())
    }

    /// The inputs as an object (made once, for arguments and stored text).
    pub(crate) fn map(&self) -> &JsonMap {
        match self {
            Inputs::Map(m) => m,
            Inputs::Json(text, cell) => {
                cell.get_or_init(|| Box::new(stored_object(Some(text.as_bytes()))))
            }
            Inputs::Stored(json, cell) => {
                cell.get_or_init(|| Box::new(stored_object(json.inputs())))
            }
        }
    }

    /// A copy of the inputs as an object.
    pub(crate) fn to_map(&self) -> JsonMap {
        match self {
            Inputs::Map(m) => m.clone(),
            Inputs::Json(text, cell) => cell
                .get()
                .map(|m| (**m).clone())
                .unwrap_or_else(|| stored_object(Some(text.as_bytes()))),
            Inputs::Stored(json, cell) => cell
                .get()
                .map(|m| (**m).clone())
                .unwrap_or_else(|| stored_object(json.inputs())),
        }
    }

    pub(crate) fn into_map(self) -> JsonMap {
        match self {
            Inputs::Map(m) => m,
            Inputs::Json(text, cell) => match cell.into_inner() {
                Some(m) => *m,
                None => stored_object(Some(text.as_bytes())),
            },
            Inputs::Stored(json, cell) => match cell.into_inner() {
                Some(m) => *m,
                None => stored_object(json.inputs()),
            },
        }
    }

    /// Redacts [`super::REDACT_KEYS`] at any depth.
    pub(crate) fn redact(&mut self) {
        match self {
            Inputs::Map(m) => super::redact_inputs_in_place(m),
            Inputs::Stored(json, cell) => {
                // The text stays (the output's and summary's are read from it); the redacted
                // map is what is read from now on.
                let mut m = cell
                    .take()
                    .map_or_else(|| stored_object(json.inputs()), |m| *m);
                super::redact_inputs_in_place(&mut m);
                *cell = std::sync::OnceLock::from(Box::new(m));
            }
            // Redacted as it was written.
            Inputs::Json(..) => {}
        }
    }
}

/// The fields a live call is created with.
pub(crate) struct NewCall {
    pub(crate) id: IdText,
    pub(crate) trace_id: IdText,
    pub(crate) parent: Option<Call>,
    pub(crate) parent_id: Option<IdText>,
    pub(crate) op_name: Arc<str>,
    pub(crate) inputs: Inputs,
    pub(crate) attributes: Arc<JsonMap>,
    pub(crate) started_at: Timestamp,
    pub(crate) thread_id: Option<String>,
    pub(crate) turn_id: Option<String>,
    pub(crate) untraced: bool,
}

impl Call {
    pub(crate) fn new_live(client: WeaveClient, c: NewCall) -> Call {
        if let Some(p) = &c.parent {
            p.state().child_count += 1;
        }
        Call {
            client: client.clone(),
            inner: Arc::new(CallInner {
                project_id: client.project_id_arc(),
                id: c.id,
                trace_id: c.trace_id,
                parent_id: c.parent_id,
                op_name: c.op_name,
                inputs: c.inputs,
                attributes: c.attributes,
                started_at: c.started_at,
                thread_id: c.thread_id,
                turn_id: c.turn_id,
                read: None,
                parent: c.parent.map(|p| p.inner),
                finished: AtomicBool::new(false),
                untraced: c.untraced,
                state: Mutex::new(CallState::default()),
            }),
        }
    }

    pub(crate) fn from_schema(client: WeaveClient, s: CallSchema) -> Call {
        Call {
            client,
            inner: Arc::new(CallInner {
                id: s.id.into(),
                trace_id: s.trace_id.into(),
                project_id: s.project_id.into(),
                parent_id: s.parent_id.map(Into::into),
                op_name: s.op_name.into(),
                inputs: Inputs::Map(s.inputs),
                attributes: Arc::new(s.attributes),
                started_at: s.started_at,
                thread_id: s.thread_id,
                turn_id: s.turn_id,
                read: ReadSide {
                    wb_user_id: s.wb_user_id,
                    wb_run_id: s.wb_run_id,
                    wb_run_step: s.wb_run_step,
                    storage_size_bytes: s.storage_size_bytes,
                    total_storage_size_bytes: s.total_storage_size_bytes,
                }
                .boxed(),
                parent: None,
                finished: AtomicBool::new(s.ended_at.is_some()),
                untraced: false,
                state: Mutex::new(CallState {
                    display_name: s.display_name,
                    output: s.output,
                    exception: s.exception,
                    summary: s.summary.map(Box::new),
                    ended_at: s.ended_at,
                    deleted_at: s.deleted_at,
                    wb_run_step_end: s.wb_run_step_end,
                    ..CallState::default()
                }),
            }),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, CallState> {
        self.inner.state()
    }

    /// A call read through the embedded store's own path (its JSON parsed when read).
    pub(crate) fn from_stored(client: WeaveClient, s: StoredCall) -> Call {
        let read = ReadSide {
            wb_user_id: s.wb_user_id,
            wb_run_id: s.wb_run_id,
            wb_run_step: s.wb_run_step,
            storage_size_bytes: s.storage_size_bytes,
            total_storage_size_bytes: s.total_storage_size_bytes,
        }
        .boxed();
        let stored = s.json.output().is_some() || s.json.summary().is_some();
        Call {
            client,
            inner: Arc::new(CallInner {
                id: s.id,
                trace_id: s.trace_id,
                project_id: s.project_id,
                parent_id: s.parent_id,
                op_name: s.op_name,
                inputs: Inputs::Stored(s.json, std::sync::OnceLock::new()),
                attributes: s.attributes,
                started_at: s.started_at,
                thread_id: s.thread_id,
                turn_id: s.turn_id,
                read,
                parent: None,
                finished: AtomicBool::new(s.ended_at.is_some()),
                untraced: false,
                state: Mutex::new(CallState {
                    display_name: s.display_name,
                    exception: s.exception,
                    ended_at: s.ended_at,
                    deleted_at: s.deleted_at,
                    wb_run_step_end: s.wb_run_step_end,
                    stored,
                    ..CallState::default()
                }),
            }),
        }
    }

    /// The live parent's record.
    pub(crate) fn parent(&self) -> Option<&Arc<CallInner>> {
        self.inner.parent.as_ref()
    }

    /// The record, as the writer queues it.
    pub(crate) fn record(&self) -> Arc<CallInner> {
        self.inner.clone()
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
        let summaries = std::mem::take(&mut st.child_summaries);
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
        if st.events.len() < MAX_EVENTS {
            st.events.push(event);
        } else {
            st.events_dropped += 1;
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
        st.extra_inputs
            .get_or_insert_with(Default::default)
            .extend(super::redact_inputs(inputs));
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
        self.inner.thread_id.as_deref()
    }
    /// The turn id within the thread.
    pub fn turn_id(&self) -> Option<&str> {
        self.inner.turn_id.as_deref()
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
        self.state().wb_run_step_end
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
        self.state().display_name.clone()
    }
    /// The output (`null` while running or when the call failed).
    pub fn output(&self) -> Value {
        self.state().output.clone()
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
        self.state().deleted_at
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
            display_name: st.display_name.clone(),
            trace_id: self.inner.trace_id.to_string(),
            parent_id: self.inner.parent_id.as_deref().map(str::to_string),
            thread_id: self.inner.thread_id.clone(),
            turn_id: self.inner.turn_id.clone(),
            started_at: self.inner.started_at,
            attributes: (*self.inner.attributes).clone(),
            inputs: self.inner.inputs.to_map(),
            ended_at: st.ended_at,
            exception: st.exception.clone(),
            output: st.output.clone(),
            summary: st.summary().map(std::borrow::Cow::into_owned),
            wb_user_id: self.wb_user_id().map(str::to_string),
            wb_run_id: self.wb_run_id().map(str::to_string),
            wb_run_step: self.wb_run_step(),
            wb_run_step_end: st.wb_run_step_end,
            deleted_at: st.deleted_at,
            storage_size_bytes: self.storage_size_bytes(),
            total_storage_size_bytes: self.total_storage_size_bytes(),
        }
    }
}

impl CallInner {
    pub(crate) fn state(&self) -> MutexGuard<'_, CallState> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.stored {
            st.stored = false;
            if let Inputs::Stored(json, _) = &self.inputs {
                self.parse_stored(&mut st, json);
            }
        }
        st
    }

    /// Parses a stored call's output and summary into its state (once, under its lock).
    #[cold]
    fn parse_stored(&self, st: &mut CallState, json: &StoredJson) {
        if let Some(output) = json.output() {
            st.output = parse_stored_json(output);
        }
        if let Some(summary) = json.summary() {
            let mut summary = stored_object(summary);
            crate::schema::summary::derive_weave_summary(
                &mut summary,
                &self.op_name,
                st.display_name.as_deref(),
                self.started_at,
                st.ended_at,
                st.exception.as_deref(),
            );
            st.summary = Some(Box::new(summary));
        }
    }

    /// The inputs the start is written with: the call's, with a deferred start's added ones
    /// over them.
    pub(crate) fn start_inputs(&self) -> JsonMap {
        let mut inputs = self.inputs.to_map();
        if let Some(extra) = &self.state().extra_inputs {
            for (k, v) in extra.iter() {
                inputs.insert(k.clone(), v.clone());
            }
        }
        inputs
    }

    /// Records a finished child's summary for the roll-up.
    pub(crate) fn add_child_summary(&self, summary: JsonMap) {
        let mut st = self.state();
        st.child_summaries.push(summary);
        if st.child_summaries.len() >= FOLD_CHILD_SUMMARIES_AT {
            let folded = sum_dict_leaves(st.child_summaries.iter());
            st.child_summaries = vec![folded];
        }
    }

    /// Records a finished child whose summary was only status counts.
    pub(crate) fn add_child_counts(&self, counts: StatusCounts) {
        let mut st = self.state();
        st.child_counts.success += counts.success;
        st.child_counts.error += counts.error;
    }

    /// The start as written to the backend (on the writer's thread).
    pub(crate) fn start_schema(&self) -> crate::schema::StartedCallSchemaForInsert {
        let i = self;
        // (Each read of the state takes its lock on its own: the lock is not reentrant.)
        let display_name = self.state().display_name.clone();
        let inputs = i.start_inputs();
        crate::schema::StartedCallSchemaForInsert {
            project_id: i.project_id.to_string(),
            id: Some(i.id.to_string()),
            op_name: i.op_name.to_string(),
            display_name,
            trace_id: Some(i.trace_id.to_string()),
            parent_id: i.parent_id.as_deref().map(str::to_string),
            thread_id: i.thread_id.clone(),
            turn_id: i.turn_id.clone(),
            started_at: i.started_at,
            attributes: (*i.attributes).clone(),
            inputs,
            otel_dump: None,
            wb_user_id: None,
            wb_run_id: None,
            wb_run_step: None,
        }
    }

    /// The end as written to the backend (on the writer's thread): the summary without the
    /// server-side `weave` block.
    pub(crate) fn end_schema(&self) -> crate::schema::EndedCallSchemaForInsert {
        let st = self.state();
        crate::schema::EndedCallSchemaForInsert {
            project_id: self.project_id.to_string(),
            id: self.id.to_string(),
            ended_at: st.ended_at.unwrap_or(self.started_at),
            exception: st.exception.clone(),
            output: st.output.clone(),
            summary: st
                .summary()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            wb_run_step_end: None,
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
