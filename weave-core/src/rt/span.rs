//! The tracing layer's calls, with what can be worked out once per callsite done once
//! ([`SpanSite`]: the op and its ref, the attributes its calls carry, each field's key text,
//! redaction and GenAI role), and a span's fields written straight into its inputs' JSON text
//! ([`SpanInputs`]), as an op's arguments are: no map per span, no attributes copied per span.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tracing::field::Field;

use super::capture::{is_quoted_key, ArgsWriter};
use super::per_client::PerClient;
use crate::genai::{field_role, FieldRole, GenAiFields, GenAiRole};
use crate::record::Inputs;
use crate::redact::is_redacted_key;
use crate::{Call, CallOptions, Exception, JsonMap, Op, Result, WeaveClient};

/// One `tracing` callsite whose spans become calls: its op (named after the span), the
/// attributes its calls carry beside the client's, and its fields' keys. Made once per
/// callsite by the tracing layer; each span then costs what its own values cost.
#[derive(Debug)]
pub struct SpanSite {
    op: Op,
    fields: Box<[SiteField]>,
    attributes: JsonMap,
    /// The op's ref and the merged attributes, by client serial.
    resolved: PerClient<u64, (Arc<str>, Arc<JsonMap>)>,
    /// The merged attributes with a kind the span's fields named, by (client serial, kind).
    kinded: std::sync::RwLock<Vec<KindedAttributes>>,
    /// The longest inputs' text of the site's spans so far (up to [`MAX_INPUTS_ROOM`]): the
    /// room a span's inputs get, so that writing them does not grow the buffer.
    inputs_room: AtomicUsize,
}

/// The most room given to a span's inputs up front: a longer text grows its buffer as
/// before. Kept small because the room stays with the text until the writer has stored it:
/// one long input must not make every later span of its site hold kilobytes in the queue.
const MAX_INPUTS_ROOM: usize = 512;

/// Attributes with a kind, by (client serial, kind) ([`SpanSite::with_kind`]).
type KindedAttributes = ((u64, &'static str), Arc<JsonMap>);

#[derive(Debug)]
struct SiteField {
    name: &'static str,
    /// `"name":`, when that is the name's JSON text (no character in it to escape).
    quoted: Option<Box<str>>,
    redacted: bool,
    role: FieldRole,
    genai: GenAiRole,
}

impl SiteField {
    fn new(name: &'static str) -> Self {
        let quoted = format!("\"{name}\":");
        SiteField {
            name,
            quoted: is_quoted_key(name.as_bytes(), quoted.as_bytes()).then(|| quoted.into()),
            redacted: is_redacted_key(name),
            role: field_role(name),
            genai: GenAiRole::of(name),
        }
    }
}

impl SpanSite {
    /// The site of spans named `name` with the fields `fields` (in the callsite's order, so
    /// that a field's index finds it), whose calls carry `attributes` over the client's.
    pub fn new(
        name: &str,
        fields: impl IntoIterator<Item = &'static str>,
        attributes: JsonMap,
    ) -> Self {
        SpanSite {
            op: Op::new(name),
            fields: fields.into_iter().map(SiteField::new).collect(),
            attributes,
            resolved: PerClient::new(),
            kinded: Default::default(),
            inputs_room: AtomicUsize::new(64),
        }
    }

    /// The op the site's calls are of.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// An empty set of inputs for a span of this site.
    pub fn inputs(&self) -> SpanInputs<'_> {
        SpanInputs {
            site: self,
            args: ArgsWriter::with_capacity(self.inputs_room.load(Ordering::Relaxed)),
            genai: None,
        }
    }

    /// The op's ref on `client` and the attributes of its calls there (the client's, with
    /// this site's over them), worked out once per client.
    fn resolve(&self, client: &WeaveClient) -> Result<(Arc<str>, Arc<JsonMap>)> {
        self.resolved.get_or_try_init(client.serial(), || {
            let op_ref = client.resolve_op(&self.op)?;
            let mut attributes = (**client.attributes_arc()).clone();
            for (k, v) in &self.attributes {
                attributes.insert(k.clone(), v.clone());
            }
            Ok((op_ref, Arc::new(attributes)))
        })
    }

    /// `attributes` (this site's on `client`) with `weave.kind` set to `kind`: one map per
    /// (client, kind), kept.
    fn with_kind(
        &self,
        client: &WeaveClient,
        attributes: &Arc<JsonMap>,
        kind: &'static str,
    ) -> Arc<JsonMap> {
        let key = (client.serial(), kind);
        if let Some((_, a)) = self
            .kinded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(k, _)| *k == key)
        {
            return a.clone();
        }
        let mut with = (**attributes).clone();
        if let Some(Value::Object(w)) = with.get_mut("weave") {
            w.insert("kind".into(), Value::from(kind));
        }
        let with = Arc::new(with);
        self.kinded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, with.clone()));
        with
    }

    /// An empty set of fields recorded on a span of this site after it was made.
    pub fn record(&self) -> SpanRecord<'_> {
        SpanRecord {
            site: self,
            inputs: JsonMap::new(),
            genai: GenAiRecorded::default(),
        }
    }

    /// The site's field `field` (made on the spot for a field of another callsite, which
    /// `tracing` never hands over).
    fn field<R>(&self, field: &Field, f: impl FnOnce(&SiteField) -> R) -> R {
        match self.fields.get(field.index()) {
            Some(known) if known.name == field.name() => f(known),
            _ => f(&SiteField::new(field.name())),
        }
    }

    /// Starts a call of this site on `client` under `parent` (a root without), with
    /// `inputs`: not made current (entering the span does that), and written when it
    /// finishes, start and end together, so that fields recorded later join its inputs
    /// ([`Call::extend_deferred_inputs`]). Returns the call and the span's GenAI fields (see
    /// [`crate::genai::field_role`]), for when it ends.
    pub fn start_call(
        &self,
        client: &WeaveClient,
        parent: Option<Call>,
        inputs: SpanInputs<'_>,
    ) -> Result<(Call, Option<Box<GenAiFields>>)> {
        let (op_ref, mut attributes) = self.resolve(client)?;
        let mut opts = CallOptions::new().use_stack(false).defer_start(true);
        if let Some(genai) = &inputs.genai {
            // The kind and thread its fields name when the span is made (`gen_ai.*`,
            // OpenInference, Langfuse): the kind goes with the attributes, made once per kind.
            if let Some(kind) = genai.kind() {
                attributes = self.with_kind(client, &attributes, kind);
            }
            opts.thread_id = genai.thread().map(str::to_string);
        }
        opts.parent = parent;
        opts.merged_attributes = Some(attributes);
        let text = inputs.args.finish();
        // Written only when the room grows: a site's spans do not share a written line.
        let wanted = text.len().min(MAX_INPUTS_ROOM);
        if wanted > self.inputs_room.load(Ordering::Relaxed) {
            self.inputs_room.fetch_max(wanted, Ordering::Relaxed);
        }
        let call = client.create_call_inner(&self.op, op_ref, Inputs::json(text), opts)?;
        Ok((call, inputs.genai))
    }
}

/// Ends a span's call with `output` and, when it failed, `exception` (see
/// [`WeaveClient::finish_call_with`]).
pub fn finish_span_call(call: &Call, output: Value, exception: Option<Exception>) -> Result<()> {
    // Capped in depth like any output (most spans have none: nothing to copy).
    let output = match output {
        Value::Null => Value::Null,
        other => crate::client::to_json(&other),
    };
    call.client()
        .finish_call_value(call, output, exception, None)
}

/// Ends a GenAI span's call (one with fields of [`crate::genai`]'s conventions): its token
/// usage becomes `summary.usage[model]` — kept as numbers until the summary is written, on
/// the writer's thread — and, without `ret` (a value the span returned), its response fields
/// are the output (flat, so not capped again).
pub fn finish_genai_span_call(
    call: &Call,
    mut genai: GenAiFields,
    ret: Option<Value>,
    exception: Option<Exception>,
) -> Result<()> {
    let usage = genai.take_model_usage();
    let display_name = genai.take_display_name();
    // The output: `ret`, else an output field (`gen_ai.output.messages`, `output.value`),
    // else the response fields — kept as recorded, made into JSON where they are written.
    let ret = ret.or_else(|| genai.take_output());
    let response = match ret {
        None => genai.take_response(),
        Some(_) => Default::default(),
    };
    let exception = exception.or_else(|| {
        genai
            .failure()
            .map(|(kind, message)| Exception::new(kind, message))
    });
    if usage.is_some() || !response.is_empty() || display_name.is_some() {
        let mut st = call.state();
        if st.ended_at.is_none() {
            let rare = st.rare_mut();
            rare.genai_usage.extend(usage);
            rare.genai_output = response;
            if let Some(d) = display_name.filter(|d| !d.is_empty()) {
                rare.display_name = Some(crate::client::truncate_display_name(d));
            }
        }
    }
    let output = match ret {
        None | Some(Value::Null) => Value::Null,
        Some(other) => crate::client::to_json(&other),
    };
    call.client()
        .finish_call_value(call, output, exception, None)
}

/// Adds GenAI fields recorded on an op's span to the op's call (see [`crate::genai::OpGenAi`]): its
/// usage by model and response fields when the op ends. Ignored once the call has ended.
pub fn record_op_genai(call: &Call, genai: GenAiRecorded) {
    let Some(first) = genai.first else { return };
    let mut st = call.state();
    if st.ended_at.is_some() {
        return;
    }
    let op = st.rare_mut().op_genai.get_or_insert_with(Default::default);
    for (name, role, value) in std::iter::once(first).chain(genai.more) {
        op.add(name, role, value);
    }
}

/// An op's `tracing` span: `weave.call_id` (how the layer knows it is an op's), and the GenAI
/// fields an LLM library may record on the current span (`Span::current().record(…)`),
/// declared empty — `tracing` keeps a recorded value only for a field its span declared, so
/// without them the usage of an LLM call made inside an op would be lost. Recording nothing
/// costs nothing: an empty field is never visited. The layer adds what is recorded to the
/// op's call ([`record_op_genai`]). The names are [`crate::genai`]'s conventions (a test
/// checks each is one); `tracing` allows 32 fields a span.
#[doc(hidden)]
#[macro_export]
macro_rules! __weave_op_span {
    ($name:expr, $id:expr) => {
        $crate::rt::tracing::info_span!(
            $name,
            weave.call_id = $id,
            gen_ai.usage.input_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.output_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.prompt_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.completion_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.total_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.cache_read.input_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.cache_creation.input_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.reasoning.output_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.usage.reasoning_tokens = $crate::rt::tracing::field::Empty,
            gen_ai.request.model = $crate::rt::tracing::field::Empty,
            gen_ai.response.model = $crate::rt::tracing::field::Empty,
            gen_ai.response.id = $crate::rt::tracing::field::Empty,
            gen_ai.response.finish_reasons = $crate::rt::tracing::field::Empty,
            llm.model_name = $crate::rt::tracing::field::Empty,
            llm.token_count.prompt = $crate::rt::tracing::field::Empty,
            llm.token_count.completion = $crate::rt::tracing::field::Empty,
            llm.token_count.total = $crate::rt::tracing::field::Empty,
        )
    };
}

/// A field's value, as the tracing layer's visitor hands it over.
#[derive(Debug)]
pub enum FieldValue<'a> {
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
    /// Any other value, as JSON.
    Json(Value),
}

/// Written as its JSON: scalars straight into the text (see [`SpanInputs`]).
impl Serialize for FieldValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            FieldValue::U64(v) => s.serialize_u64(*v),
            FieldValue::I64(v) => s.serialize_i64(*v),
            FieldValue::Bool(v) => s.serialize_bool(*v),
            FieldValue::Str(v) => s.serialize_str(v),
            FieldValue::Json(v) => v.serialize(s),
        }
    }
}

impl FieldValue<'_> {
    fn into_json(self) -> Value {
        match self {
            FieldValue::U64(v) => Value::from(v),
            FieldValue::I64(v) => Value::from(v),
            FieldValue::Bool(v) => Value::Bool(v),
            FieldValue::Str(v) => Value::String(v.to_string()),
            FieldValue::Json(v) => v,
        }
    }
}

/// Where a span's field values go: the tracing layer's visitor hands each to one of these.
pub trait FieldSink {
    /// Takes the field `field` with `value`.
    fn put(&mut self, field: &Field, value: FieldValue<'_>);
}

fn keep_genai(genai: &mut Option<Box<GenAiFields>>, f: &SiteField, value: Value) {
    if !f.genai.is_empty() {
        genai
            .get_or_insert_with(Default::default)
            .add(f.name, f.genai, value);
    }
}

/// A span's fields as they are recorded when it is made: its inputs written as JSON text
/// (redacted and capped in depth as they are written), its GenAI fields kept aside.
#[derive(Debug)]
pub struct SpanInputs<'s> {
    site: &'s SpanSite,
    args: ArgsWriter,
    genai: Option<Box<GenAiFields>>,
}

impl FieldSink for SpanInputs<'_> {
    fn put(&mut self, field: &Field, value: FieldValue<'_>) {
        let site = self.site;
        site.field(field, |f| {
            if !f.role.is_genai() {
                // Most fields: written as they are, no `Value` made.
                return self.write(f, &value);
            }
            if f.genai.is_kind() {
                // The operation's name: an input, and its text names the kind.
                self.write(f, &value);
                let op = match &value {
                    FieldValue::Str(op) => *op,
                    FieldValue::Json(Value::String(op)) => op.as_str(),
                    _ => return,
                };
                self.genai
                    .get_or_insert_with(Default::default)
                    .keep_kind(op);
                return;
            }
            let v = value.into_json();
            if f.role.is_input() {
                self.write(f, &v);
            }
            keep_genai(&mut self.genai, f, v);
        })
    }
}

impl SpanInputs<'_> {
    fn write(&mut self, f: &SiteField, value: &(impl Serialize + ?Sized)) {
        if self.args.key_text(f.name, f.quoted.as_deref(), f.redacted) {
            self.args.serialize_after_key(value);
        }
    }
}

/// Fields recorded on a span after it was made (`Span::record`): inputs for
/// [`Call::extend_deferred_inputs`], GenAI fields for the span's [`GenAiFields`].
#[derive(Debug)]
pub struct SpanRecord<'s> {
    site: &'s SpanSite,
    inputs: JsonMap,
    genai: GenAiRecorded,
}

/// GenAI fields recorded on a span, to add to the span's [`GenAiFields`] in the order
/// recorded ([`GenAiRecorded::add_to`]): no second set of fields to merge, and the first
/// field kept inline (`Span::record` records one field at a time: no allocation).
#[derive(Debug, Default)]
pub struct GenAiRecorded {
    first: Option<GenAiEntry>,
    more: Vec<GenAiEntry>,
}

type GenAiEntry = (&'static str, GenAiRole, Value);

impl GenAiRecorded {
    fn push(&mut self, entry: GenAiEntry) {
        if self.first.is_none() {
            self.first = Some(entry);
        } else {
            self.more.push(entry);
        }
    }

    /// Adds the fields to `fields` (made when there is none yet).
    pub fn add_to(self, fields: &mut Option<Box<GenAiFields>>) {
        let Some(first) = self.first else { return };
        let fields = fields.get_or_insert_with(Default::default);
        for (name, role, value) in std::iter::once(first).chain(self.more) {
            fields.add(name, role, value);
        }
    }
}

impl FieldSink for SpanRecord<'_> {
    fn put(&mut self, field: &Field, value: FieldValue<'_>) {
        let site = self.site;
        site.field(field, |f| {
            let v = value.into_json();
            let genai = f.role.is_genai() && !f.genai.is_empty();
            match (f.role.is_input(), genai) {
                (true, true) => {
                    self.inputs.insert(f.name.to_string(), v.clone());
                    self.genai.push((f.name, f.genai, v));
                }
                (true, false) => {
                    self.inputs.insert(f.name.to_string(), v);
                }
                (false, true) => self.genai.push((f.name, f.genai, v)),
                (false, false) => {}
            }
        })
    }
}

impl SpanRecord<'_> {
    /// The inputs recorded (for [`Call::extend_deferred_inputs`]) and the GenAI fields.
    pub fn into_parts(self) -> (JsonMap, GenAiRecorded) {
        (self.inputs, self.genai)
    }
}
