//! The call record: one call's fields and state, beneath both the client (whose [`Call`]
//! handles share it) and the backends (a store in this process writes it as it is, and reads
//! calls back as records whose JSON is parsed when read, [`stored`]). It knows neither: no
//! client, no backend, no `tracing`.
//!
//! [`Call`]: crate::Call

pub(crate) mod stored;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use self::stored::{parse_stored_json, stored_object, StoredCall, StoredJson};
use crate::genai::{usage_map, ModelUsage, OpGenAi, ResponseFields};
use crate::ids::IdText;
use crate::schema::summary::{sum_dict_leaves, STATUS_COUNTS_KEY};
use crate::schema::{CallSchema, JsonMap};
use crate::time::Timestamp;

/// Children summaries are folded into one once this many are waiting, so a call with a
/// million children holds a bounded amount of memory.
const FOLD_CHILD_SUMMARIES_AT: usize = 64;

/// A call's start or end as the client's writer hands it to a [`crate::server::RecordStore`].
#[derive(Clone, Copy, Debug)]
pub enum RecordWrite<'a> {
    /// The call's start.
    Start(&'a CallRecord),
    /// The call's end (the record holds its output, exception and summary).
    End(&'a CallRecord),
}

/// One call's record: what [`crate::Call`] handles share, the client's writer queues and a
/// store in this process writes from. Ids, names and attributes are shared (`Arc`) with the
/// client, the parent and the writer's queue, so that making a call copies none of them.
pub struct CallRecord {
    pub(crate) id: IdText,
    pub(crate) trace_id: IdText,
    pub(crate) project_id: Arc<str>,
    pub(crate) parent_id: Option<IdText>,
    pub(crate) op_name: Arc<str>,
    pub(crate) inputs: Inputs,
    pub(crate) attributes: Arc<JsonMap>,
    pub(crate) started_at: Timestamp,
    /// The conversation thread and turn, when the call has them (boxed: most calls have
    /// neither, and every line of the record costs the traced thread).
    thread: Option<Box<ThreadTurn>>,
    /// Fields only calls read back from a store have (boxed: a live call's record stays
    /// small while it waits in the writer's queue).
    pub(crate) read: Option<Box<ReadSide>>,
    /// The live parent, to which this call's summary is reported when it finishes.
    pub(crate) parent: Option<Arc<CallRecord>>,
    /// Set once the call has ended (read on every stack lookup, so without the lock).
    pub(crate) finished: AtomicBool,
    /// Made inside a sampled-out trace: current while it runs, never written.
    pub(crate) untraced: bool,
    /// A call of another process, continued here ([`crate::propagation`]): the parent of
    /// the calls made under it, never written, never finished, and no child's summary is
    /// rolled up into it.
    pub(crate) remote: bool,
    /// Where the call's queued start stands ([`CallRecord::fold_end_into_start`]).
    start: AtomicU8,
    state: Mutex<CallState>,
}

/// The call's start is queued and the writer has not taken it yet.
const START_QUEUED: u8 = 0;
/// The writer took the start (or it was never queued): the end needs a message of its own.
const START_TAKEN: u8 = 1;
/// The call ended before the writer took its start: the start's message brings the end too.
const START_WITH_END: u8 = 2;

pub(crate) struct ReadSide {
    pub(crate) wb_user_id: Option<String>,
    pub(crate) wb_run_id: Option<String>,
    pub(crate) wb_run_step: Option<i64>,
    pub(crate) storage_size_bytes: Option<i64>,
    pub(crate) total_storage_size_bytes: Option<i64>,
}

impl ReadSide {
    /// Boxed, or `None` when every field is (as it is for most calls).
    pub(crate) fn boxed(self) -> Option<Box<ReadSide>> {
        (self.wb_user_id.is_some()
            || self.wb_run_id.is_some()
            || self.wb_run_step.is_some()
            || self.storage_size_bytes.is_some()
            || self.total_storage_size_bytes.is_some())
        .then(|| Box::new(self))
    }
}

/// A call's conversation thread and turn ([`CallRecord::thread_id`], [`CallRecord::turn_id`]).
struct ThreadTurn {
    thread_id: Option<String>,
    turn_id: Option<String>,
}

impl ThreadTurn {
    /// Boxed, or `None` when neither is set (as for most calls).
    fn boxed(thread_id: Option<String>, turn_id: Option<String>) -> Option<Box<ThreadTurn>> {
        (thread_id.is_some() || turn_id.is_some())
            .then(|| Box::new(ThreadTurn { thread_id, turn_id }))
    }
}

impl CallRecord {
    /// The conversation thread.
    pub(crate) fn thread_id(&self) -> Option<&str> {
        self.thread.as_ref()?.thread_id.as_deref()
    }
    /// The turn in the conversation thread.
    pub(crate) fn turn_id(&self) -> Option<&str> {
        self.thread.as_ref()?.turn_id.as_deref()
    }

    /// At the call's end: when the writer has not taken the call's start yet, marks the end
    /// as coming with it and returns true — the traced thread then queues nothing more (one
    /// queue push per call instead of two, and one message less for the writer). False when
    /// the start is taken or was never queued: the end needs its own message.
    pub(crate) fn fold_end_into_start(&self) -> bool {
        self.start
            .compare_exchange(
                START_QUEUED,
                START_WITH_END,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The writer takes the call's start: returns whether the call's end comes with it
    /// ([`CallRecord::fold_end_into_start`]). The end's fields were set before the fold, so
    /// they are read after this.
    pub(crate) fn take_start(&self) -> bool {
        self.start.swap(START_TAKEN, Ordering::AcqRel) == START_WITH_END
    }

    /// The call's start could not be queued (the queue was full or closed): its end gets a
    /// message of its own, so that it is written, or dropped and counted, on its own.
    pub(crate) fn start_not_queued(&self) {
        self.start.store(START_TAKEN, Ordering::Release);
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
    pub(crate) output: Value,
    pub(crate) exception: Option<String>,
    /// The summary (see [`CallState::summary`]); `None` with `counts` set means exactly those
    /// status counts.
    pub(crate) summary: Option<Box<JsonMap>>,
    pub(crate) counts: Option<StatusCounts>,
    pub(crate) ended_at: Option<Timestamp>,
    /// How many children were created under this call (Python's `len(call._children)`).
    pub(crate) child_count: usize,
    /// The status counts of finished children whose summary was only that.
    pub(crate) child_counts: StatusCounts,
    /// The start, when it is written with the end ([`crate::CallOptions::defer_start`]).
    pub(crate) start_deferred: bool,
    /// Set for a call read from the embedded store until its output and summary (kept as
    /// text with its inputs, [`Inputs::Stored`]) are parsed, and `summary.weave` derived:
    /// the first time the state is locked.
    pub(crate) stored: bool,
    /// What most calls never have ([`RareState`]).
    pub(crate) rare: Option<Box<RareState>>,
}

/// The parts of a call's state most calls never use, in a box made when one is first set:
/// every call allocates its record on the traced thread and the writer frees it on another
/// core, so each cache line the record spans costs the traced thread (measured: ~25 ns a
/// line, BENCHMARKS.md).
#[derive(Default)]
pub(crate) struct RareState {
    pub(crate) display_name: Option<String>,
    pub(crate) deleted_at: Option<Timestamp>,
    pub(crate) wb_run_step_end: Option<i64>,
    /// Summaries of finished children, not yet folded.
    pub(crate) child_summaries: Vec<JsonMap>,
    /// Inputs added to a deferred start ([`Call::extend_deferred_inputs`]), merged over the
    /// call's inputs when the start is written.
    pub(crate) extra_inputs: Option<Box<JsonMap>>,
    /// Events kept with the call ([`Call::log_event`]).
    pub(crate) events: Vec<Value>,
    /// Events not kept because the call already had [`MAX_EVENTS`].
    pub(crate) events_dropped: u64,
    /// Token usage of the LLM responses of a GenAI span (one) or an op (any number), set
    /// when it ends and kept as numbers beside the status counts until the summary is
    /// written ([`CallState::summary`]).
    pub(crate) genai_usage: Usages,
    /// GenAI fields recorded on an op's span while it runs ([`OpGenAi`]).
    pub(crate) op_genai: Option<Box<OpGenAi>>,
    /// A GenAI span's response fields, its output when it has no other: the JSON text the
    /// store keeps ([`CallState::output`], [`CallState::genai_output_text`]).
    pub(crate) genai_output: ResponseFields,
}

/// Token usage by model: most calls that have any have one (a GenAI span), kept inline so
/// that it costs no allocation of its own; an op may have any number.
#[derive(Default)]
pub(crate) struct Usages {
    /// The only one, while `more` is empty.
    one: Option<ModelUsage>,
    /// All of them, once there are two or more (then `one` is `None`).
    more: Vec<ModelUsage>,
}

impl Usages {
    pub(crate) fn as_slice(&self) -> &[ModelUsage] {
        if self.more.is_empty() {
            self.one.as_slice()
        } else {
            &self.more
        }
    }

    pub(crate) fn push(&mut self, usage: ModelUsage) {
        if self.more.is_empty() {
            let Some(first) = self.one.take() else {
                self.one = Some(usage);
                return;
            };
            self.more.push(first);
        }
        self.more.push(usage);
    }

    pub(crate) fn extend(&mut self, usages: impl IntoIterator<Item = ModelUsage>) {
        for u in usages {
            self.push(u);
        }
    }

    /// All of them, taken.
    pub(crate) fn take(&mut self) -> Vec<ModelUsage> {
        let mut all = std::mem::take(&mut self.more);
        all.extend(self.one.take());
        all
    }
}

impl RareState {
    /// Boxed, or `None` when it holds nothing.
    fn boxed_if_any(
        display_name: Option<String>,
        deleted_at: Option<Timestamp>,
        wb_run_step_end: Option<i64>,
    ) -> Option<Box<RareState>> {
        (display_name.is_some() || deleted_at.is_some() || wb_run_step_end.is_some()).then(|| {
            Box::new(RareState {
                display_name,
                deleted_at,
                wb_run_step_end,
                ..RareState::default()
            })
        })
    }
}

impl CallState {
    /// The summary as JSON.
    pub(crate) fn summary(&self) -> Option<std::borrow::Cow<'_, JsonMap>> {
        match (&self.summary, self.counts) {
            (Some(m), _) => Some(std::borrow::Cow::Borrowed(&**m)),
            (None, Some(c)) => {
                let mut m = JsonMap::new();
                let usage = self.genai_usage();
                if !usage.is_empty() {
                    m.insert("usage".into(), Value::Object(usage_map(usage)));
                }
                m.extend(c.to_map());
                Some(std::borrow::Cow::Owned(m))
            }
            (None, None) => None,
        }
    }

    /// The JSON text of a summary that is only status counts and GenAI usage (`counts` set,
    /// `summary` not), written without building a map (see [`CallState::summary`]).
    pub(crate) fn compact_summary_text(&self, n: StatusCounts) -> String {
        let mut text = String::with_capacity(64);
        text.push('{');
        match self.genai_usage() {
            [] => {}
            [one] => {
                text.push_str("\"usage\":");
                one.write_usage_text(&mut text);
                text.push(',');
            }
            several => {
                text.push_str("\"usage\":");
                text.push_str(&Value::Object(usage_map(several)).to_string());
                text.push(',');
            }
        }
        use std::fmt::Write;
        let _ = write!(
            text,
            "\"status_counts\":{{\"success\":{},\"error\":{}}}}}",
            n.success, n.error
        );
        text
    }

    /// The output: `output`, or a GenAI span's response fields when it has no other
    /// ([`RareState::genai_output`]).
    pub(crate) fn output(&self) -> std::borrow::Cow<'_, Value> {
        match self.genai_output() {
            Some(response) => std::borrow::Cow::Owned(response.to_value()),
            None => std::borrow::Cow::Borrowed(&self.output),
        }
    }

    /// The output's JSON text when it is a GenAI span's response fields (written where the
    /// span ended), for a store to keep as it is; `None` for any other output.
    pub(crate) fn genai_output_text(&self) -> Option<&str> {
        self.genai_output().map(ResponseFields::as_text)
    }

    /// A GenAI span's response fields when they are its output (it has no other).
    fn genai_output(&self) -> Option<&ResponseFields> {
        self.rare
            .as_ref()
            .map(|r| &r.genai_output)
            .filter(|r| self.output.is_null() && !r.is_empty())
    }

    /// A GenAI span's token usage, kept typed ([`RareState::genai_usage`]).
    pub(crate) fn genai_usage(&self) -> &[ModelUsage] {
        self.rare.as_ref().map_or(&[], |r| r.genai_usage.as_slice())
    }

    /// The rare parts, made when first needed.
    pub(crate) fn rare_mut(&mut self) -> &mut RareState {
        self.rare.get_or_insert_with(Default::default)
    }

    pub(crate) fn display_name(&self) -> Option<&String> {
        self.rare.as_ref()?.display_name.as_ref()
    }
    pub(crate) fn deleted_at(&self) -> Option<Timestamp> {
        self.rare.as_ref()?.deleted_at
    }
    pub(crate) fn wb_run_step_end(&self) -> Option<i64> {
        self.rare.as_ref()?.wb_run_step_end
    }
    pub(crate) fn extra_inputs(&self) -> Option<&JsonMap> {
        self.rare.as_ref()?.extra_inputs.as_deref()
    }
    /// Whether events were logged (kept or dropped).
    pub(crate) fn has_events(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| !r.events.is_empty() || r.events_dropped > 0)
    }
}

/// The most events kept with one call; later ones are counted in `summary.events_dropped`.
pub const MAX_EVENTS: usize = 1000;

/// A call's inputs: a JSON object, or an op's arguments as the JSON text of one, parsed only
/// when read (an op's arguments are written to text on the traced thread, which the
/// embedded store keeps as it is: no `Value` tree is built, hashed or dropped).
pub(crate) enum Inputs {
    /// Boxed: an object is rarer than text on the traced path, and keeps the record small.
    Map(Box<JsonMap>),
    /// An op's arguments ([`crate::rt::ArgsWriter`]): an object's text, already capped in
    /// depth and redacted.
    Json(String, std::sync::OnceLock<Box<JsonMap>>),
    /// As the embedded store holds them (with the output's and summary's text, which
    /// [`CallRecord::state`] parses), parsed when first read.
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
            Inputs::Map(m) => (**m).clone(),
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
            Inputs::Map(m) => *m,
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

    /// Redacts [`crate::REDACT_KEYS`] at any depth.
    pub(crate) fn redact(&mut self) {
        match self {
            Inputs::Map(m) => crate::redact::redact_inputs_in_place(m),
            Inputs::Stored(json, cell) => {
                // The text stays (the output's and summary's are read from it); the redacted
                // map is what is read from now on.
                let mut m = cell
                    .take()
                    .map_or_else(|| stored_object(json.inputs()), |m| *m);
                crate::redact::redact_inputs_in_place(&mut m);
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
    pub(crate) parent: Option<Arc<CallRecord>>,
    pub(crate) parent_id: Option<IdText>,
    pub(crate) op_name: Arc<str>,
    pub(crate) inputs: Inputs,
    pub(crate) attributes: Arc<JsonMap>,
    pub(crate) started_at: Timestamp,
    pub(crate) thread_id: Option<String>,
    pub(crate) turn_id: Option<String>,
    pub(crate) untraced: bool,
    pub(crate) remote: bool,
}

impl CallRecord {
    pub(crate) fn live(project_id: Arc<str>, c: NewCall) -> CallRecord {
        // A remote parent's summary is its own process's: nothing is rolled up into it.
        let parent = c.parent.filter(|p| !p.remote);
        if let Some(p) = &parent {
            p.state().child_count += 1;
        }
        CallRecord {
            project_id,
            id: c.id,
            trace_id: c.trace_id,
            parent_id: c.parent_id,
            op_name: c.op_name,
            inputs: c.inputs,
            attributes: c.attributes,
            started_at: c.started_at,
            thread: ThreadTurn::boxed(c.thread_id, c.turn_id),
            read: None,
            parent,
            finished: AtomicBool::new(false),
            untraced: c.untraced,
            remote: c.remote,
            start: AtomicU8::new(START_QUEUED),
            state: Mutex::new(CallState::default()),
        }
    }

    pub(crate) fn from_schema(s: CallSchema) -> CallRecord {
        CallRecord {
            id: s.id.into(),
            trace_id: s.trace_id.into(),
            project_id: s.project_id.into(),
            parent_id: s.parent_id.map(Into::into),
            op_name: s.op_name.into(),
            inputs: Inputs::Map(Box::new(s.inputs)),
            attributes: Arc::new(s.attributes),
            started_at: s.started_at,
            thread: ThreadTurn::boxed(s.thread_id, s.turn_id),
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
            remote: false,
            start: AtomicU8::new(START_TAKEN),
            state: Mutex::new(CallState {
                output: s.output,
                exception: s.exception,
                summary: s.summary.map(Box::new),
                ended_at: s.ended_at,
                rare: RareState::boxed_if_any(s.display_name, s.deleted_at, s.wb_run_step_end),
                ..CallState::default()
            }),
        }
    }

    /// A call read through the embedded store's own path (its JSON parsed when read).
    pub(crate) fn from_stored(s: StoredCall) -> CallRecord {
        let read = ReadSide {
            wb_user_id: s.wb_user_id,
            wb_run_id: s.wb_run_id,
            wb_run_step: s.wb_run_step,
            storage_size_bytes: s.storage_size_bytes,
            total_storage_size_bytes: s.total_storage_size_bytes,
        }
        .boxed();
        let stored = s.json.output().is_some() || s.json.summary().is_some();
        CallRecord {
            id: s.id,
            trace_id: s.trace_id,
            project_id: s.project_id,
            parent_id: s.parent_id,
            op_name: s.op_name,
            inputs: Inputs::Stored(s.json, std::sync::OnceLock::new()),
            attributes: s.attributes,
            started_at: s.started_at,
            thread: ThreadTurn::boxed(s.thread_id, s.turn_id),
            read,
            parent: None,
            finished: AtomicBool::new(s.ended_at.is_some()),
            untraced: false,
            remote: false,
            start: AtomicU8::new(START_TAKEN),
            state: Mutex::new(CallState {
                exception: s.exception,
                ended_at: s.ended_at,
                stored,
                rare: RareState::boxed_if_any(s.display_name, s.deleted_at, s.wb_run_step_end),
                ..CallState::default()
            }),
        }
    }

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
                st.display_name().map(String::as_str),
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
        if let Some(extra) = self.state().extra_inputs() {
            for (k, v) in extra.iter() {
                inputs.insert(k.clone(), v.clone());
            }
        }
        inputs
    }

    /// Records a finished child's summary for the roll-up.
    pub(crate) fn add_child_summary(&self, summary: JsonMap) {
        let mut st = self.state();
        let rare = st.rare_mut();
        rare.child_summaries.push(summary);
        if rare.child_summaries.len() >= FOLD_CHILD_SUMMARIES_AT {
            let folded = sum_dict_leaves(rare.child_summaries.iter());
            rare.child_summaries = vec![folded];
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
        let display_name = self.state().display_name().cloned();
        let inputs = i.start_inputs();
        crate::schema::StartedCallSchemaForInsert {
            project_id: i.project_id.to_string(),
            id: Some(i.id.to_string()),
            op_name: i.op_name.to_string(),
            display_name,
            trace_id: Some(i.trace_id.to_string()),
            parent_id: i.parent_id.as_deref().map(str::to_string),
            thread_id: i.thread_id().map(str::to_string),
            turn_id: i.turn_id().map(str::to_string),
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
            output: st.output().into_owned(),
            summary: st
                .summary()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            wb_run_step_end: None,
        }
    }
}

impl std::fmt::Debug for CallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecord")
            .field("id", &self.id)
            .field("op_name", &self.op_name)
            .field("parent_id", &self.parent_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genai::{GenAiFields, GenAiRole};

    fn usage(model: &'static str, tokens: i64) -> ModelUsage {
        let mut g = GenAiFields::default();
        for (k, v) in [
            ("gen_ai.response.model", Value::from(model)),
            ("gen_ai.usage.input_tokens", Value::from(tokens)),
        ] {
            g.add(k, GenAiRole::of(k), v);
        }
        g.take_model_usage().unwrap()
    }

    #[test]
    fn usages_keep_one_inline_and_all_in_order_once_there_are_more() {
        let mut u = Usages::default();
        assert!(u.as_slice().is_empty());
        u.push(usage("a", 1));
        assert_eq!(u.as_slice(), [usage("a", 1)]);
        u.extend([usage("b", 2), usage("c", 3)]);
        assert_eq!(u.as_slice(), [usage("a", 1), usage("b", 2), usage("c", 3)]);
        assert_eq!(u.take(), [usage("a", 1), usage("b", 2), usage("c", 3)]);
        assert!(u.as_slice().is_empty());
        u.push(usage("d", 4));
        assert_eq!(u.take(), [usage("d", 4)]);
        assert!(u.take().is_empty());
    }
}
