//! A call's lifecycle on the client: creating it (ids, parent, op version, inputs
//! postprocessed and redacted, pushed on the stack, its start queued), finishing or failing it
//! (output, exception, summary rolled up into the parent, its end queued).

use serde::Serialize;
use serde_json::{json, Value};

use std::borrow::Cow;
use std::sync::Arc;

use super::call::Call;
use super::exception::{Exception, IntoException};
use super::{
    context, guarded, objects, op_code, to_json, truncate_display_name, CallOptions, DisplayName,
    Op, WeaveClient, EVENTS_DROPPED_KEY, EVENTS_KEY,
};
use crate::error::{Result, WeaveError};
use crate::genai::usage_map;
use crate::ids::IdText;
use crate::record::{Inputs, NewCall, StatusCounts};
use crate::schema::summary::{deep_update, sum_dict_leaves, usage_from_output, STATUS_COUNTS_KEY};
use crate::schema::JsonMap;
use crate::time::Timestamp;

impl WeaveClient {
    /// Starts a call of `op` with `inputs` (anything serialising to a JSON object), as the
    /// current call's child; it becomes the current call until it finishes. See
    /// [`WeaveClient::create_call_with`] for the other parameters.
    pub fn create_call(&self, op: impl Into<Op>, inputs: impl Serialize) -> Result<Call> {
        self.create_call_with(op, inputs, CallOptions::default())
    }

    /// Starts a call (Python's `create_call(op, inputs, parent, attributes, display_name,
    /// use_stack)`). The start is queued for the backend; this never waits on I/O.
    ///
    /// Errors when `inputs` does not serialise to a JSON object, when the op name is not a
    /// plain name of 1 to 128 characters or an op ref, or when `attributes` uses the reserved
    /// key `weave`.
    pub fn create_call_with(
        &self,
        op: impl Into<Op>,
        inputs: impl Serialize,
        opts: CallOptions,
    ) -> Result<Call> {
        let op: Op = op.into();
        let op_name = self.resolve_op(&op)?;
        let inputs = match to_json(&inputs) {
            Value::Object(m) => m,
            Value::String(s) if s.starts_with("<unserializable") => {
                let mut m = JsonMap::new();
                m.insert("_unserializable".into(), Value::String(s));
                m
            }
            other => {
                return Err(WeaveError::invalid_input(format!(
                    "inputs must serialize to a JSON object (argument name → value), got {}",
                    crate::schema::json_kind(&other)
                )));
            }
        };
        self.create_call_inner(&op, op_name, Inputs::Map(Box::new(inputs)), opts)
    }

    /// [`WeaveClient::create_call_with`] for an op already resolved to `op_name` and inputs
    /// already captured as JSON (the path of `#[weave::op]`, which copies nothing here).
    pub(crate) fn create_call_inner(
        &self,
        op: &Op,
        op_name: Arc<str>,
        mut inputs: Inputs,
        opts: CallOptions,
    ) -> Result<Call> {
        inputs.redact();
        if let Some(f) = &op.postprocess_inputs {
            let map = inputs.into_map();
            inputs = Inputs::Map(Box::new(guarded(
                || f(map),
                |msg| {
                    let mut m = JsonMap::new();
                    m.insert(
                        "_weave_capture_error".into(),
                        Value::String(format!("postprocess_inputs panicked: {msg}")),
                    );
                    m
                },
            )));
        }
        if opts.attributes.contains_key("weave") {
            return Err(WeaveError::invalid_input(
                "attribute key \"weave\" is reserved for the SDK",
            ));
        }
        let attributes = if let Some(merged) = opts.merged_attributes {
            merged
        } else if op.kind.is_none() && opts.attributes.is_empty() {
            self.inner.attributes.clone()
        } else {
            let mut attributes = (*self.inner.attributes).clone();
            if let Some(kind) = &op.kind {
                if let Some(Value::Object(w)) = attributes.get_mut("weave") {
                    w.insert("kind".into(), Value::from(&**kind));
                }
            }
            for (k, v) in opts.attributes {
                attributes.insert(k, v);
            }
            Arc::new(attributes)
        };

        let use_stack = opts.use_stack.unwrap_or(true);
        // Below a sampled-out root (or an untraced call) nothing is recorded.
        let (parent, untraced) = match opts.parent {
            Some(p) => {
                let untraced = p.is_untraced();
                (Some(p), untraced)
            }
            None if use_stack => match context::current() {
                context::Current::Call(c) => (Some(c), false),
                context::Current::Suppressed => (None, true),
                context::Current::None => (None, false),
            },
            None => (None, false),
        };
        // One clock read for the start time and the ids' millisecond.
        let now = Timestamp::now();
        let ms = crate::ids::ms_of_nanos(now.as_nanos());
        let (mut id, mut trace_id, parent_id) = match &parent {
            Some(p) => {
                let [id] = IdText::generate_at(ms);
                (id, p.trace_id_text().clone(), Some(p.id_text().clone()))
            }
            None => {
                let [id, trace_id] = IdText::generate_at(ms);
                (id, trace_id, None)
            }
        };
        if let Some(given) = opts.id {
            if !crate::ids::is_valid_call_id(&given) {
                return Err(WeaveError::invalid_input(format!(
                    "call id {given:?} is not a lowercase UUID or 16-hex-digit span id"
                )));
            }
            id = IdText::from(given);
        }
        if let Some(given) = opts.trace_id {
            if !crate::ids::is_valid_trace_id(&given) {
                return Err(WeaveError::invalid_input(format!(
                    "trace id {given:?} is not a lowercase UUID or 32-hex-digit trace id"
                )));
            }
            if parent.is_some() && given != *trace_id {
                return Err(WeaveError::invalid_input(format!(
                    "trace id {given:?} is not the parent's ({:?}): a child is in its parent's trace",
                    &*trace_id
                )));
            }
            trace_id = IdText::from(given);
        }
        let thread_id = opts.thread_id.or_else(|| {
            parent
                .as_ref()
                .and_then(|p| p.thread_id().map(str::to_string))
        });
        let turn_id = match (&thread_id, &parent) {
            (None, _) => None,
            (Some(t), Some(p)) if p.thread_id() == Some(t.as_str()) => {
                p.turn_id().map(str::to_string)
            }
            (Some(_), _) => Some(id.to_string()),
        };
        let started_at = opts.started_at.unwrap_or(now);
        let call = Call::new_live(
            self.clone(),
            NewCall {
                id,
                trace_id,
                parent: parent.map(Call::into_record),
                parent_id,
                op_name,
                inputs,
                attributes,
                started_at,
                thread_id,
                turn_id,
                untraced,
                remote: false,
            },
        );
        let display_name = opts.display_name.and_then(|d| match d {
            DisplayName::Static(s) => Some(s),
            DisplayName::Fn(f) => guarded(|| Some(f(&call)), |_| None),
        });
        if let Some(d) = display_name.filter(|d| !d.is_empty()) {
            call.state().rare_mut().display_name = Some(truncate_display_name(d));
        }

        if untraced {
            // Inside a sampled-out trace: a call that is current (so that what runs below it
            // stays untraced) but is never written.
        } else if opts.defer_start {
            call.state().start_deferred = true;
        } else {
            if !self.inner.writer.enqueue_start(&call) {
                call.record_ref().start_not_queued();
            }
            self.print_call_link(&call);
        }
        if use_stack {
            context::offer_to_capture(&call);
            context::push_call(call.clone());
        }
        Ok(call)
    }

    fn print_call_link(&self, call: &Call) {
        if self.inner.print_call_link && call.parent_id().is_none() {
            eprintln!("🍩 {}", call.ui_url());
        }
    }

    /// The op ref an op's calls are recorded under: the op itself when it is a ref, else
    /// `weave:///entity/project/op/<sanitized name>:<digest of its code>`. The op object is
    /// queued for saving the first time this client meets it.
    pub(crate) fn resolve_op(&self, op: &Op) -> Result<Arc<str>> {
        if op.name.starts_with(crate::refs::WEAVE_SCHEME) {
            crate::refs::check_op_name(&op.name)?;
            return Ok(op.name.clone());
        }
        crate::refs::check_op_name(&op.name)?;
        let code = op
            .code
            .as_deref()
            .unwrap_or_else(|| op_code::OpCode::stub());
        {
            let ops = self.inner.ops.read().unwrap_or_else(|e| e.into_inner());
            if let Some(versions) = ops.get(&*op.name) {
                if let Some((_, r)) = versions.iter().find(|(d, _)| **d == *code.digest()) {
                    return Ok(r.clone());
                }
            }
        }
        let object_id = objects::sanitize_object_name(&op.name)?;
        let r: Arc<str> = Arc::from(
            crate::refs::ObjectRef {
                entity: self.inner.entity.clone(),
                project: self.inner.project.clone(),
                kind: crate::refs::ObjectKind::Op,
                name: object_id.clone(),
                digest: code.digest().to_string(),
                extra: Vec::new(),
            }
            .to_string(),
        );
        let mut ops = self.inner.ops.write().unwrap_or_else(|e| e.into_inner());
        let versions = ops.entry(op.name.to_string()).or_default();
        if let Some((_, r)) = versions.iter().find(|(d, _)| **d == *code.digest()) {
            return Ok(r.clone());
        }
        versions.push((Arc::from(code.digest()), r.clone()));
        drop(ops);
        self.inner
            .writer
            .enqueue_op(code.save_requests(&self.inner.project_id, &object_id));
        Ok(r)
    }

    /// Ends `call` successfully with `output` (Python's `finish_call(call, output)`).
    pub fn finish_call(&self, call: &Call, output: impl Serialize) -> Result<()> {
        self.finish_call_with(call, output, None, None)
    }

    /// Ends `call` as failed with `error`: an [`Exception`], a `String`, or `&e` for any
    /// `std::error::Error` (Python's `fail_call(call, exception)`).
    pub fn fail_call(&self, call: &Call, error: impl IntoException) -> Result<()> {
        self.finish_call_with(call, Value::Null, Some(error.into_exception()), None)
    }

    /// Ends `call` (Python's `finish_call(call, output, exception, op=op)`): applies the op's
    /// `postprocess_output`, computes the summary as the Weave client does (children's
    /// summaries deep-summed; else usage from an output carrying `usage` and `model`; plus
    /// `status_counts` of the subtree), and queues the end. Never waits on I/O.
    ///
    /// Finishing a call twice is an error.
    pub fn finish_call_with(
        &self,
        call: &Call,
        output: impl Serialize,
        exception: Option<Exception>,
        op: Option<&Op>,
    ) -> Result<()> {
        self.finish_call_value(call, to_json(&output), exception, op)
    }

    /// [`WeaveClient::finish_call_with`] for an output already captured as JSON.
    pub(crate) fn finish_call_value(
        &self,
        call: &Call,
        original: Value,
        exception: Option<Exception>,
        op: Option<&Op>,
    ) -> Result<()> {
        if call.is_remote() {
            return Err(WeaveError::invalid_input(format!(
                "call {} belongs to another process (continued from its trace context): \
                 it is finished there, not here",
                call.id()
            )));
        }
        if !call.try_mark_finished() {
            return Err(WeaveError::invalid_input(format!(
                "call {} is already finished",
                call.id()
            )));
        }
        let ended_at = Timestamp::now();
        // The summary reads the output as returned, before postprocessing (as in Python).
        let (has_children, children_summary, child_counts) = call.take_children_summary();
        let computed = if has_children {
            children_summary
        } else {
            usage_from_output(&original)
        };
        let output = match op.and_then(|o| o.postprocess_output.as_ref()) {
            Some(f) => guarded(
                || f(original),
                |msg| Value::String(format!("<postprocess_output panicked: {msg}>")),
            ),
            None => original,
        };
        let mut counts = child_counts;
        if exception.is_some() {
            counts.error += 1;
        } else {
            counts.success += 1;
        }
        let exception = exception.map(|e| e.to_json_string());
        // What the parent rolls up: only status counts (most calls), or a summary.
        enum Rollup {
            Counts(StatusCounts),
            Summary(JsonMap),
        }
        let (rollup, start_deferred) = {
            let mut st = call.state();
            // What an LLM library recorded on an op's span: usage by model, and the response
            // fields as `summary.gen_ai` (the op's output is what it returned).
            // Like events, the response fields are the call's own: not rolled up.
            let mut op_response = None;
            if let Some(op_genai) = st.rare.as_mut().and_then(|r| r.op_genai.take()) {
                let (usage, response) = op_genai.finish();
                st.rare_mut().genai_usage.extend(usage);
                if !response.is_empty() {
                    op_response = Some(response.nested());
                }
            }
            let rollup = if computed.is_none()
                && st.summary.is_none()
                && op_response.is_none()
                && !st.has_events()
            {
                st.counts = Some(counts);
                // Usage stays typed until the summary is written; a parent sums it now.
                if !st.genai_usage().is_empty() && call.parent().is_some() {
                    Rollup::Summary(st.summary().map(Cow::into_owned).unwrap_or_default())
                } else {
                    Rollup::Counts(counts)
                }
            } else {
                let mut computed = computed.unwrap_or_default();
                match computed.get_mut(STATUS_COUNTS_KEY) {
                    Some(Value::Object(c)) => {
                        for (key, n) in [("success", counts.success), ("error", counts.error)] {
                            let total = c.get(key).and_then(Value::as_i64).unwrap_or(0) + n;
                            c.insert(key.into(), json!(total));
                        }
                    }
                    Some(_) => {}
                    None => {
                        let own = json!({"success": counts.success, "error": counts.error});
                        computed.insert(STATUS_COUNTS_KEY.into(), own);
                    }
                }
                let mut merged = st.summary.take().map(|b| *b).unwrap_or_default();
                let own = st
                    .rare
                    .as_mut()
                    .map(|r| r.genai_usage.take())
                    .unwrap_or_default();
                // The call's own LLM usage adds to its children's.
                let computed = if own.is_empty() {
                    computed
                } else {
                    let mut usage = JsonMap::new();
                    usage.insert("usage".into(), Value::Object(usage_map(&own)));
                    sum_dict_leaves([&computed, &usage])
                };
                deep_update(&mut merged, computed);
                // What the parent rolls up excludes this call's own events and GenAI response.
                let rollup = call.parent().map(|_| merged.clone());
                if let Some(response) = op_response {
                    merged.insert("gen_ai".into(), Value::Object(response));
                }
                if let Some(rare) = &mut st.rare {
                    if !rare.events.is_empty() {
                        merged.insert(
                            EVENTS_KEY.into(),
                            Value::Array(std::mem::take(&mut rare.events)),
                        );
                    }
                    if rare.events_dropped > 0 {
                        merged.insert(EVENTS_DROPPED_KEY.into(), json!(rare.events_dropped));
                    }
                }
                st.summary = Some(Box::new(merged));
                Rollup::Summary(rollup.unwrap_or_default())
            };
            st.output = output;
            st.exception = exception;
            st.ended_at = Some(ended_at);
            (rollup, std::mem::take(&mut st.start_deferred))
        };
        if let Some(parent) = call.parent() {
            match rollup {
                Rollup::Counts(c) => parent.add_child_counts(c),
                Rollup::Summary(m) => parent.add_child_summary(m),
            }
        }
        context::pop_call(call);

        if call.is_untraced() {
            return Ok(());
        }
        if start_deferred {
            if !self.inner.writer.enqueue_start(call) {
                call.record_ref().start_not_queued();
            }
            self.print_call_link(call);
        }
        // A call that ends before the writer takes its start is written from that one
        // message; otherwise its end is queued on its own.
        if !call.record_ref().fold_end_into_start() {
            self.inner.writer.enqueue_end(call);
        }
        Ok(())
    }
}
