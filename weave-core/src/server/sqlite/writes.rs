//! Writing calls into the embedded store: starts and ends, from the protocol's items or
//! straight from the client's call records (the background writer's path: nothing is copied
//! into the protocol's structs first, and the SDK attributes shared by a batch's calls are
//! serialised once).
//!
//! Items come in three forms: the protocol's structs, the client's call records, and a
//! `/call/upsert_batch` body read as text (`raw_batch.rs`); each becomes the same column
//! values, checked the same way.
//!
//! A batch is one transaction. A start whose end follows in the same batch is written as one
//! complete row (one INSERT); a new call's start is one INSERT, an end onto a started call
//! one UPDATE. Rows that already exist (an end before its start, an item sent again) take
//! the slower upserts, which also replace the call's refs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use rusqlite::Transaction;
use serde_json::Value;

use super::raw_batch::{RawEnd, RawStart};
use super::SqliteServer;
use crate::error::{Result, WeaveError};
use crate::ids::{generate_id, is_valid_call_id, is_valid_trace_id};
use crate::limits;
use crate::record::{CallRecord, Inputs};
use crate::refs::extract_refs;
use crate::schema::check_project_id;
use crate::schema::*;

/// One write of a batch.
pub(crate) enum CallWrite<'a> {
    /// A protocol item (validated here).
    Item(&'a CallBatchItem),
    /// A live call's start, from the client's own record (trusted: its ids were generated,
    /// its project and op name checked when the call was made).
    Start(&'a CallRecord),
    /// A finished call's end, from its record.
    End(&'a CallRecord),
    /// A start read from a request body as text (validated here).
    RawStart(&'a RawStart<'a>),
    /// An end read from a request body as text (validated here).
    RawEnd(&'a RawEnd<'a>),
}

/// A JSON column's text: borrowed from a request body, shared by a batch's calls (the SDK
/// attributes, serialised once), or made for this row.
enum Text<'a> {
    Borrowed(&'a str),
    Shared(Rc<str>),
    Owned(String),
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Shared(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl rusqlite::ToSql for Text<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Text(self.as_bytes()),
        ))
    }
}

/// Two JSON texts of one row with [`limits::limit_row_texts`] applied, when together they
/// pass the row limit (`None`: under it, kept as they are, nothing copied).
fn limited_pair(a: &str, b: &str) -> Option<(String, String)> {
    if a.len() + b.len() <= limits::ROW_BYTES_LIMIT {
        return None;
    }
    let mut t = limits::limit_row_texts(vec![a.to_string(), b.to_string()]);
    let b = t.pop().unwrap_or_default();
    Some((t.pop().unwrap_or_default(), b))
}

/// A start's call id, generated when the client sent none, or an error naming it.
fn start_call_id(id: Option<&str>) -> Result<Cow<'_, str>> {
    let id = id.map_or_else(|| Cow::Owned(generate_id()), Cow::Borrowed);
    check_call_id(&id)?;
    Ok(id)
}

fn check_call_id(id: &str) -> Result<()> {
    if is_valid_call_id(id) {
        return Ok(());
    }
    Err(WeaveError::invalid_input(format!(
        "call id {id:?} is not a lowercase UUID or 16-hex-digit span id"
    )))
}

/// A start's trace id, generated when the client sent none, or an error naming it.
fn start_trace_id(id: Option<&str>) -> Result<Cow<'_, str>> {
    let id = id.map_or_else(|| Cow::Owned(generate_id()), Cow::Borrowed);
    if !is_valid_trace_id(&id) {
        return Err(WeaveError::invalid_input(format!(
            "trace id {id:?} is not a lowercase UUID or 32-hex-digit trace id"
        )));
    }
    Ok(id)
}

/// The JSON text of `v`, nested at most [`limits::MAX_DEPTH`] deep (a deeper value is
/// copied and capped; the common shallow one is serialised as it is).
fn capped_text(v: &Value) -> String {
    if limits::depth_exceeds(v, limits::MAX_DEPTH) {
        let mut v = v.clone();
        limits::cap_depth(&mut v);
        serde_json::to_string(&v)
    } else {
        serde_json::to_string(v)
    }
    .unwrap_or_else(|_| limits::exceeds_limits_marker().to_string())
}

/// [`capped_text`] of a JSON object.
fn capped_map_text(m: &JsonMap) -> String {
    if m.values()
        .any(|v| limits::depth_exceeds(v, limits::MAX_DEPTH - 1))
    {
        capped_text(&Value::Object(m.clone()))
    } else {
        serde_json::to_string(m).unwrap_or_else(|_| limits::exceeds_limits_marker().to_string())
    }
}

/// Refs in some values, as [`extract_refs`] finds them, each once.
fn refs_in<'v>(values: impl Iterator<Item = &'v Value>) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        for r in extract_refs(v) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// The inputs' JSON text and refs.
fn inputs_text(inputs: &Inputs) -> (Cow<'_, str>, Vec<String>) {
    match inputs {
        // Already capped and redacted; refs are rare, so the text is parsed only when it
        // may hold one.
        Inputs::Json(text, _) => {
            let refs = if text.contains(crate::refs::WEAVE_SCHEME) {
                refs_in(inputs.map().values())
            } else {
                Vec::new()
            };
            (Cow::Borrowed(text), refs)
        }
        other => {
            let m = other.map();
            (Cow::Owned(capped_map_text(m)), refs_in(m.values()))
        }
    }
}

/// A start turned into column values.
struct StartRow<'a> {
    project_id: &'a str,
    id: Cow<'a, str>,
    trace_id: Cow<'a, str>,
    parent_id: Option<&'a str>,
    thread_id: Option<&'a str>,
    turn_id: Option<&'a str>,
    op_name: &'a str,
    display_name: Option<Cow<'a, str>>,
    started_at: i64,
    attributes: Text<'a>,
    inputs: Cow<'a, str>,
    otel: Option<Cow<'a, str>>,
    wb_user_id: Option<&'a str>,
    wb_run_id: Option<&'a str>,
    wb_run_step: Option<i64>,
    refs: Vec<String>,
}

/// A protocol start, validated.
fn start_row(s: &StartedCallSchemaForInsert) -> Result<StartRow<'_>> {
    check_project_id(&s.project_id)?;
    crate::refs::check_op_name(&s.op_name)?;
    let id = start_call_id(s.id.as_deref())?;
    let trace_id = start_trace_id(s.trace_id.as_deref())?;
    let mut texts = limits::limit_row_texts(vec![
        capped_map_text(&s.inputs),
        capped_map_text(&s.attributes),
    ]);
    let attributes = texts.pop().unwrap_or_default();
    let inputs = texts.pop().unwrap_or_default();
    let otel = s
        .otel_dump
        .as_ref()
        .map(|m| Cow::Owned(limits::limit_row_texts(vec![capped_map_text(m)]).remove(0)));
    Ok(StartRow {
        project_id: &s.project_id,
        id,
        trace_id,
        parent_id: s.parent_id.as_deref(),
        thread_id: s.thread_id.as_deref(),
        turn_id: s.turn_id.as_deref(),
        op_name: &s.op_name,
        display_name: s.display_name.as_deref().map(Cow::Borrowed),
        started_at: s.started_at.as_nanos(),
        attributes: Text::Owned(attributes),
        inputs: Cow::Owned(inputs),
        otel,
        wb_user_id: s.wb_user_id.as_deref(),
        wb_run_id: s.wb_run_id.as_deref(),
        wb_run_step: s.wb_run_step,
        refs: refs_in(s.inputs.values()),
    })
}

/// A start read as text, validated as [`start_row`] validates a protocol start; its JSON
/// texts are stored as they came (the caller checked their depth).
fn raw_start_row<'a>(s: &'a RawStart<'a>) -> Result<StartRow<'a>> {
    check_project_id(&s.project_id)?;
    crate::refs::check_op_name(&s.op_name)?;
    let id = start_call_id(s.id.as_deref())?;
    let trace_id = start_trace_id(s.trace_id.as_deref())?;
    let (inputs, attributes) = match limited_pair(s.inputs.0.text, s.attributes.0.text) {
        Some((i, a)) => (Cow::Owned(i), Text::Owned(a)),
        None => (
            Cow::Borrowed(s.inputs.0.text),
            Text::Borrowed(s.attributes.0.text),
        ),
    };
    let otel = s.otel_dump.map(|o| {
        if o.0.text.len() > limits::ROW_BYTES_LIMIT {
            Cow::Owned(limits::limit_row_texts(vec![o.0.text.to_string()]).remove(0))
        } else {
            Cow::Borrowed(o.0.text)
        }
    });
    Ok(StartRow {
        project_id: &s.project_id,
        id,
        trace_id,
        parent_id: s.parent_id.as_deref(),
        thread_id: s.thread_id.as_deref(),
        turn_id: s.turn_id.as_deref(),
        op_name: &s.op_name,
        display_name: s.display_name.as_deref().map(Cow::Borrowed),
        started_at: s.started_at.as_nanos(),
        refs: s.inputs.0.refs(),
        attributes,
        inputs,
        otel,
        wb_user_id: s.wb_user_id.as_deref(),
        wb_run_id: s.wb_run_id.as_deref(),
        wb_run_step: s.wb_run_step,
    })
}

/// The attributes serialised in this batch, by the address of the shared map: the client's,
/// and one map per `tracing` callsite (the layer merges its `tracing` block in once per
/// callsite), so a batch mixing a few callsites serialises each map once.
type AttributesCache = Vec<(usize, Rc<str>)>;

/// The most attribute maps [`AttributesCache`] keeps (the oldest makes way).
const ATTRIBUTES_CACHED: usize = 16;

/// A call record's start.
fn record_start_row<'a>(c: &'a CallRecord, cache: &mut AttributesCache) -> StartRow<'a> {
    let (inputs, refs) = if c.state().extra_inputs().is_some() {
        let m = c.start_inputs();
        (Cow::Owned(capped_map_text(&m)), refs_in(m.values()))
    } else {
        inputs_text(&c.inputs)
    };
    let key = std::sync::Arc::as_ptr(&c.attributes) as usize;
    let attributes = match cache.iter().find(|(k, _)| *k == key) {
        Some((_, text)) => text.clone(),
        None => {
            let text: Rc<str> = capped_map_text(&c.attributes).into();
            if cache.len() == ATTRIBUTES_CACHED {
                cache.remove(0);
            }
            cache.push((key, text.clone()));
            text
        }
    };
    let (inputs, attributes) = match limited_pair(&inputs, &attributes) {
        Some((i, a)) => (Cow::Owned(i), Text::Owned(a)),
        None => (inputs, Text::Shared(attributes)),
    };
    StartRow {
        project_id: &c.project_id,
        id: Cow::Borrowed(&c.id),
        trace_id: Cow::Borrowed(&c.trace_id),
        parent_id: c.parent_id.as_deref(),
        thread_id: c.thread_id(),
        turn_id: c.turn_id(),
        op_name: &c.op_name,
        display_name: c.state().display_name().cloned().map(Cow::Owned),
        started_at: c.started_at.as_nanos(),
        attributes,
        inputs,
        otel: None,
        wb_user_id: None,
        wb_run_id: None,
        wb_run_step: None,
        refs,
    }
}

/// An end turned into column values.
struct EndRow<'a> {
    project_id: &'a str,
    id: &'a str,
    ended_at: i64,
    exception: Option<Cow<'a, str>>,
    output: Cow<'a, str>,
    summary: Cow<'a, str>,
    wb_run_step_end: Option<i64>,
    refs: Vec<String>,
}

/// A protocol end, validated.
fn end_row(e: &EndedCallSchemaForInsert) -> Result<EndRow<'_>> {
    check_project_id(&e.project_id)?;
    check_call_id(&e.id)?;
    let mut texts =
        limits::limit_row_texts(vec![capped_text(&e.output), capped_map_text(&e.summary)]);
    let summary = texts.pop().unwrap_or_default();
    let output = texts.pop().unwrap_or_default();
    Ok(EndRow {
        project_id: &e.project_id,
        id: &e.id,
        ended_at: e.ended_at.as_nanos(),
        exception: e
            .exception
            .as_deref()
            .filter(|x| !x.is_empty())
            .map(Cow::Borrowed),
        output: Cow::Owned(output),
        summary: Cow::Owned(summary),
        wb_run_step_end: e.wb_run_step_end,
        refs: extract_refs(&e.output),
    })
}

/// An end read as text, validated as [`end_row`] validates a protocol end.
fn raw_end_row<'a>(e: &'a RawEnd<'a>) -> Result<EndRow<'a>> {
    check_project_id(&e.project_id)?;
    check_call_id(&e.id)?;
    let output = e.output.map_or("null", |o| o.text);
    let summary = e.summary.0.text;
    let (output, summary) = match limited_pair(output, summary) {
        Some((o, s)) => (Cow::Owned(o), Cow::Owned(s)),
        None => (Cow::Borrowed(output), Cow::Borrowed(summary)),
    };
    Ok(EndRow {
        project_id: &e.project_id,
        id: &e.id,
        ended_at: e.ended_at.as_nanos(),
        exception: e
            .exception
            .as_deref()
            .filter(|x| !x.is_empty())
            .map(Cow::Borrowed),
        refs: e.output.map(|o| o.refs()).unwrap_or_default(),
        output,
        summary,
        wb_run_step_end: e.wb_run_step_end,
    })
}

/// A finished call record's end.
fn record_end_row(c: &CallRecord) -> EndRow<'_> {
    let st = c.state();
    let summary = match (&st.summary, st.counts) {
        (None, Some(n)) => st.compact_summary_text(n),
        (Some(m), _) => capped_map_text(m),
        (None, None) => "{}".to_string(),
    };
    // A GenAI span's response fields come as text: kept as it is, parsed only for refs.
    let (output_text, refs) = match st.genai_output_text() {
        Some(text) if !text.contains(crate::refs::WEAVE_SCHEME) => (text.to_string(), Vec::new()),
        _ => {
            let output_value = st.output();
            (capped_text(&output_value), extract_refs(&output_value))
        }
    };
    let mut texts = limits::limit_row_texts(vec![output_text, summary]);
    let summary = texts.pop().unwrap_or_default();
    let output = texts.pop().unwrap_or_default();
    EndRow {
        project_id: &c.project_id,
        id: &c.id,
        ended_at: st.ended_at.unwrap_or(c.started_at).as_nanos(),
        exception: st
            .exception
            .clone()
            .filter(|x| !x.is_empty())
            .map(Cow::Owned),
        output: Cow::Owned(output),
        summary: Cow::Owned(summary),
        wb_run_step_end: None,
        refs,
    }
}

macro_rules! insert_calls {
    () => {
        "INSERT INTO calls (project_id, id, trace_id, parent_id, thread_id, turn_id, op_name, display_name, \
         started_at, attributes, inputs, otel_dump, wb_user_id, wb_run_id, wb_run_step"
    };
}
/// A new call's start; nothing when the call already has a row.
const INSERT_NEW_START: &str = concat!(
    insert_calls!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT DO NOTHING"
);
/// A start over an existing row (an end came first, or the start is sent again).
const UPSERT_START: &str = concat!(
    insert_calls!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (project_id, id) DO UPDATE SET trace_id = excluded.trace_id, parent_id = excluded.parent_id, \
     thread_id = excluded.thread_id, turn_id = excluded.turn_id, op_name = excluded.op_name, \
     display_name = COALESCE(calls.display_name, excluded.display_name), started_at = excluded.started_at, \
     attributes = excluded.attributes, inputs = excluded.inputs, otel_dump = excluded.otel_dump, \
     wb_user_id = excluded.wb_user_id, wb_run_id = excluded.wb_run_id, wb_run_step = excluded.wb_run_step"
);
/// A new call, started and ended; nothing when the call already has a row.
const INSERT_NEW_COMPLETE: &str = concat!(
    insert_calls!(),
    ", ended_at, exception, output, summary, wb_run_step_end) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
     ON CONFLICT DO NOTHING"
);
/// An end onto a started call that has not ended.
const UPDATE_END_OF_STARTED: &str =
    "UPDATE calls SET ended_at = ?3, exception = ?4, output = ?5, summary = ?6, \
     wb_run_step_end = ?7 WHERE project_id = ?1 AND id = ?2 AND ended_at IS NULL";
/// An end before its start, or again.
const UPSERT_END: &str = "INSERT INTO calls (project_id, id, ended_at, exception, output, summary, wb_run_step_end) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (project_id, id) DO UPDATE SET ended_at = excluded.ended_at, exception = excluded.exception, \
     output = excluded.output, summary = excluded.summary, wb_run_step_end = excluded.wb_run_step_end";

/// The statements a batch runs per call, prepared once per batch (looking a statement up in
/// the cache hashes its whole SQL text, which costs more than binding it).
struct HotStatements<'t> {
    new_start: rusqlite::CachedStatement<'t>,
    new_complete: rusqlite::CachedStatement<'t>,
    end_started: rusqlite::CachedStatement<'t>,
}

impl<'t> HotStatements<'t> {
    fn new(tx: &'t Transaction<'_>) -> Result<Self> {
        Ok(HotStatements {
            new_start: tx.prepare_cached(INSERT_NEW_START)?,
            new_complete: tx.prepare_cached(INSERT_NEW_COMPLETE)?,
            end_started: tx.prepare_cached(UPDATE_END_OF_STARTED)?,
        })
    }
}

fn start_params<'r>(r: &'r StartRow<'_>) -> [&'r dyn rusqlite::ToSql; 15] {
    [
        &r.project_id,
        &r.id,
        &r.trace_id,
        &r.parent_id,
        &r.thread_id,
        &r.turn_id,
        &r.op_name,
        &r.display_name,
        &r.started_at,
        &r.attributes,
        &r.inputs,
        &r.otel,
        &r.wb_user_id,
        &r.wb_run_id,
        &r.wb_run_step,
    ]
}

fn end_params<'r>(r: &'r EndRow<'_>) -> [&'r dyn rusqlite::ToSql; 7] {
    [
        &r.project_id,
        &r.id,
        &r.ended_at,
        &r.exception,
        &r.output,
        &r.summary,
        &r.wb_run_step_end,
    ]
}

/// Writes a start: a new row when the call is new, else the start's columns over the
/// existing row and its input refs replaced.
fn insert_start(tx: &Transaction<'_>, hot: &mut HotStatements<'_>, r: &StartRow<'_>) -> Result<()> {
    let params = start_params(r);
    if hot.new_start.execute(params)? == 1 {
        insert_refs(tx, r.project_id, &r.id, 0, &r.refs)?;
    } else {
        tx.prepare_cached(UPSERT_START)?.execute(params)?;
        replace_refs(tx, r.project_id, &r.id, 0, &r.refs)?;
    }
    Ok(())
}

/// Writes an end: onto the started row when it has not ended yet, else as an upsert with
/// its output refs replaced.
fn insert_end(tx: &Transaction<'_>, hot: &mut HotStatements<'_>, r: &EndRow<'_>) -> Result<()> {
    let params = end_params(r);
    if hot.end_started.execute(params)? == 1 {
        return insert_refs(tx, r.project_id, r.id, 1, &r.refs);
    }
    tx.prepare_cached(UPSERT_END)?.execute(params)?;
    replace_refs(tx, r.project_id, r.id, 1, &r.refs)
}

/// Writes a start and its end as one new row; false when the call already has a row (then
/// they are written one after the other).
fn insert_complete(
    tx: &Transaction<'_>,
    hot: &mut HotStatements<'_>,
    s: &StartRow<'_>,
    e: &EndRow<'_>,
) -> Result<bool> {
    let start = start_params(s);
    let end = end_params(e);
    let params: [&dyn rusqlite::ToSql; 20] = [
        start[0], start[1], start[2], start[3], start[4], start[5], start[6], start[7], start[8],
        start[9], start[10], start[11], start[12], start[13], start[14], end[2], end[3], end[4],
        end[5], end[6],
    ];
    if hot.new_complete.execute(params)? == 0 {
        return Ok(false);
    }
    insert_refs(tx, s.project_id, &s.id, 0, &s.refs)?;
    insert_refs(tx, s.project_id, &s.id, 1, &e.refs)?;
    Ok(true)
}

fn insert_refs(
    tx: &Transaction<'_>,
    project_id: &str,
    call_id: &str,
    kind: i64,
    refs: &[String],
) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO call_refs (project_id, call_id, kind, ref) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in refs {
        ins.execute(rusqlite::params![project_id, call_id, kind, r])?;
    }
    Ok(())
}

fn replace_refs(
    tx: &Transaction<'_>,
    project_id: &str,
    call_id: &str,
    kind: i64,
    refs: &[String],
) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM call_refs WHERE project_id = ?1 AND call_id = ?2 AND kind = ?3",
    )?
    .execute(rusqlite::params![project_id, call_id, kind])?;
    insert_refs(tx, project_id, call_id, kind, refs)
}

/// Where a batch's ends are: records by address, items by (project, call id).
#[derive(Default)]
struct EndsIndex<'a> {
    records: HashMap<usize, usize>,
    items: HashMap<(&'a str, &'a str), usize>,
}

impl<'a> EndsIndex<'a> {
    fn new(batch: &[CallWrite<'a>]) -> Self {
        let mut ends = EndsIndex::default();
        for (i, w) in batch.iter().enumerate() {
            match w {
                CallWrite::End(c) => {
                    ends.records
                        .entry(*c as *const CallRecord as usize)
                        .or_insert(i);
                }
                CallWrite::Item(CallBatchItem::End(e)) => {
                    ends.items
                        .entry((e.end.project_id.as_str(), e.end.id.as_str()))
                        .or_insert(i);
                }
                CallWrite::RawEnd(e) => {
                    ends.items.entry((&e.project_id, &e.id)).or_insert(i);
                }
                _ => {}
            }
        }
        ends
    }
}

fn name_item(i: usize) -> impl Fn(WeaveError) -> WeaveError {
    move |e| match e {
        WeaveError::InvalidInput(m) => WeaveError::InvalidInput(format!("batch item {i}: {m}")),
        other => other,
    }
}

/// Applies a batch in order, in one transaction. An invalid item fails the whole batch
/// (rolled back), naming the item. Returns a result per write.
fn write_batch(tx: &Transaction<'_>, batch: &[CallWrite<'_>]) -> Result<Vec<CallBatchItemRes>> {
    let ends = EndsIndex::new(batch);
    let mut hot = HotStatements::new(tx)?;
    let mut attributes: AttributesCache = Vec::new();
    let mut merged = vec![false; batch.len()];
    let mut res = Vec::with_capacity(batch.len());
    for (i, w) in batch.iter().enumerate() {
        let (row, end_at) = match w {
            CallWrite::Start(c) => (
                record_start_row(c, &mut attributes),
                ends.records
                    .get(&(*c as *const CallRecord as usize))
                    .copied(),
            ),
            CallWrite::Item(CallBatchItem::Start(s)) => (
                start_row(&s.start).map_err(name_item(i))?,
                s.start
                    .id
                    .as_deref()
                    .and_then(|id| ends.items.get(&(s.start.project_id.as_str(), id)).copied()),
            ),
            CallWrite::RawStart(s) => (
                raw_start_row(s).map_err(name_item(i))?,
                s.id.as_deref()
                    .and_then(|id| ends.items.get(&(&*s.project_id, id)).copied()),
            ),
            CallWrite::End(c) => {
                if !merged[i] {
                    insert_end(tx, &mut hot, &record_end_row(c)).map_err(name_item(i))?;
                }
                res.push(CallBatchItemRes::End(CallEndRes {}));
                continue;
            }
            CallWrite::Item(CallBatchItem::End(e)) => {
                if !merged[i] {
                    let row = end_row(&e.end).map_err(name_item(i))?;
                    insert_end(tx, &mut hot, &row).map_err(name_item(i))?;
                }
                res.push(CallBatchItemRes::End(CallEndRes {}));
                continue;
            }
            CallWrite::RawEnd(e) => {
                if !merged[i] {
                    let row = raw_end_row(e).map_err(name_item(i))?;
                    insert_end(tx, &mut hot, &row).map_err(name_item(i))?;
                }
                res.push(CallBatchItemRes::End(CallEndRes {}));
                continue;
            }
        };
        let mut done = false;
        if let Some(j) = end_at.filter(|&j| j > i && !merged[j]) {
            // An invalid end is reported at its own position.
            let end = match &batch[j] {
                CallWrite::End(c) => Some(record_end_row(c)),
                CallWrite::Item(CallBatchItem::End(e)) => end_row(&e.end).ok(),
                CallWrite::RawEnd(e) => raw_end_row(e).ok(),
                _ => None,
            };
            if let Some(end) = end {
                done = insert_complete(tx, &mut hot, &row, &end).map_err(name_item(i))?;
                merged[j] = done;
            }
        }
        if !done {
            insert_start(tx, &mut hot, &row).map_err(name_item(i))?;
        }
        res.push(CallBatchItemRes::Start(CallStartRes {
            id: row.id.into_owned(),
            trace_id: row.trace_id.into_owned(),
        }));
    }
    Ok(res)
}

impl SqliteServer {
    /// Writes a batch of call starts and ends in one transaction (see the module docs).
    pub(crate) fn write_calls(&self, batch: &[CallWrite<'_>]) -> Result<Vec<CallBatchItemRes>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let res = write_batch(&tx, batch)?;
        tx.commit()?;
        Ok(res)
    }
}
