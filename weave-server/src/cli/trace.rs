//! `weave trace ID` (a call's trace as a tree) and `weave call ID` (everything about one
//! call).

use std::collections::HashMap;
use std::io::{self, Write};

use clap::Args;
use serde_json::Value;
use weave_core::query::{field, Query};
use weave_core::schema::{
    CallReadReq, CallSchema, CallsFilter, CallsQueryReq, FeedbackQueryReq, SortBy,
};
use weave_core::TraceServer;

use super::format::{self, Style};
use super::{CliError, Source};

/// `weave trace`.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// A call's id: its whole trace is shown, the call marked.
    pub id: String,
    #[command(flatten)]
    pub source: Source,
    /// The trace's calls as one JSON array, oldest first.
    #[arg(long)]
    pub json: bool,
}

/// `weave call`.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// The call's id.
    pub id: String,
    #[command(flatten)]
    pub source: Source,
    /// The call as JSON (the protocol's CallSchema, costs included).
    #[arg(long)]
    pub json: bool,
}

/// Reads call `id` of `project`, costs included, or says it is not there.
fn read(backend: &dyn TraceServer, project: &str, id: &str) -> Result<CallSchema, CliError> {
    backend
        .call_read(CallReadReq {
            project_id: project.to_string(),
            id: id.to_string(),
            include_costs: true,
            include_storage_size: false,
            include_total_storage_size: false,
        })?
        .call
        .ok_or_else(|| CliError::failed(format!("no call {id} in {project}")))
}

/// `weave trace ID`: the trace of call `ID` as a tree, each call with its status, latency
/// and tokens, the asked-for call marked.
pub fn trace(args: &TraceArgs, style: &Style) -> Result<(), CliError> {
    let backend = args.source.open()?;
    let project = args.source.project_of_call(&*backend, &args.id)?;
    let call = read(&*backend, &project, &args.id)?;
    let mut q = CallsQueryReq::new(project.clone());
    q.filter = Some(CallsFilter {
        trace_ids: Some(vec![call.trace_id.clone()]),
        ..Default::default()
    });
    q.sort_by = Some(vec![SortBy::asc("started_at")]);
    q.include_costs = true;
    let calls: Vec<CallSchema> = backend.calls_query_stream(q)?.collect::<Result<_, _>>()?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &calls).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let by_id: HashMap<&str, &CallSchema> = calls.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut children: HashMap<&str, Vec<&CallSchema>> = HashMap::new();
    let mut roots = Vec::new();
    for c in &calls {
        match c.parent_id.as_deref().filter(|p| by_id.contains_key(p)) {
            Some(p) => children.entry(p).or_default().push(c),
            None => roots.push(c),
        }
    }
    writeln!(
        out,
        "{} {}  {}",
        style.bold("Trace"),
        call.trace_id,
        style.dim(&format!("{project}, {} calls", calls.len()))
    )?;
    // Depth-first without recursion (a trace may be deep).
    let mut stack: Vec<(&CallSchema, usize)> = roots.iter().rev().map(|c| (*c, 0)).collect();
    while let Some((c, depth)) = stack.pop() {
        let status = format::status(c);
        let mut line = format!(
            "{:indent$}{} {}  {}",
            "",
            if c.id == args.id { "▶" } else { "•" },
            if c.id == args.id {
                style.bold(format::name(c))
            } else {
                format::name(c).to_string()
            },
            style.status(status),
            indent = depth * 2
        );
        let latency = format::latency(c);
        if !latency.is_empty() {
            line.push_str(&format!("  {latency}"));
        }
        if let Some(t) = format::tokens(c) {
            line.push_str(&format!("  {t} tokens"));
        }
        if let Some(d) = format::cost(c) {
            line.push_str(&format!("  ${d:.4}"));
        }
        line.push_str(&format!("  {}", style.dim(&c.id)));
        writeln!(out, "{line}")?;
        if let Some(kids) = children.get(c.id.as_str()) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    Ok(())
}

/// `weave call ID`: one call whole — where it sits, its inputs, output, exception, usage,
/// costs, attributes, summary and feedback.
pub fn call(args: &CallArgs, style: &Style) -> Result<(), CliError> {
    let backend = args.source.open()?;
    let project = args.source.project_of_call(&*backend, &args.id)?;
    let c = read(&*backend, &project, &args.id)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &c).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let status = format::status(&c);
    writeln!(out, "{} {}", style.bold("Call"), c.id)?;
    let mut facts: Vec<(&str, String)> = vec![
        (
            "op",
            format!("{}  {}", format::name(&c), style.dim(&c.op_name)),
        ),
        ("status", style.status(status)),
        ("project", project.clone()),
        ("trace", c.trace_id.clone()),
        ("started", format!("{} UTC", format::time(c.started_at))),
    ];
    if let Some(e) = c.ended_at {
        facts.push((
            "ended",
            format!("{} UTC  ({})", format::time(e), format::latency(&c)),
        ));
    }
    if let Some(p) = &c.parent_id {
        facts.push(("parent", p.clone()));
    }
    if let Some(t) = &c.thread_id {
        facts.push(("thread", t.clone()));
    }
    let mut q = CallsQueryReq::new(project.clone());
    q.filter = Some(CallsFilter {
        parent_ids: Some(vec![c.id.clone()]),
        ..Default::default()
    });
    q.columns = Some(vec!["id".into(), "op_name".into(), "display_name".into()]);
    let kids: Vec<CallSchema> = backend.calls_query_stream(q)?.collect::<Result<_, _>>()?;
    if !kids.is_empty() {
        let names: Vec<String> = kids
            .iter()
            .map(|k| format!("{} {}", format::name(k), style.dim(&k.id)))
            .collect();
        facts.push(("children", names.join(", ")));
    }
    let (entity, name) = project.split_once('/').unwrap_or(("", &project));
    facts.push((
        "link",
        format!("{}/{entity}/{name}/r/call/{}", backend.app_url(), c.id),
    ));
    for (k, v) in facts {
        writeln!(out, "  {:<9} {v}", style.dim(k))?;
    }
    section(&mut out, style, "Inputs", &Value::Object(c.inputs.clone()))?;
    if c.ended_at.is_some() {
        section(&mut out, style, "Output", &c.output)?;
    }
    if let Some(e) = c.exception.as_deref().filter(|e| !e.is_empty()) {
        writeln!(out, "\n{}", style.bold(&style.red("Exception")))?;
        write_exception(&mut out, e)?;
    }
    if let Some(summary) = &c.summary {
        if let Some(usage) = summary.get("usage") {
            section(&mut out, style, "Usage", usage)?;
        }
        if let Some(costs) = summary.get("weave").and_then(|w| w.get("costs")) {
            section(&mut out, style, "Costs", costs)?;
        }
        let rest: serde_json::Map<String, Value> = summary
            .iter()
            .filter(|(k, _)| *k != "usage" && *k != "weave")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            section(&mut out, style, "Summary", &Value::Object(rest))?;
        }
    }
    if !c.attributes.is_empty() {
        section(
            &mut out,
            style,
            "Attributes",
            &Value::Object(c.attributes.clone()),
        )?;
    }
    let call_ref = format!("weave:///{project}/call/{}", c.id);
    let feedback = backend.feedback_query(FeedbackQueryReq {
        project_id: project.clone(),
        fields: None,
        query: Some(Query::new(field("weave_ref").eq(call_ref.as_str()))),
        sort_by: None,
        limit: None,
        offset: None,
    })?;
    if !feedback.result.is_empty() {
        writeln!(out, "\n{}", style.bold("Feedback"))?;
        for f in &feedback.result {
            let kind = f.get("feedback_type").and_then(Value::as_str).unwrap_or("");
            let payload = f.get("payload").cloned().unwrap_or(Value::Null);
            let text = match kind {
                "wandb.reaction.1" => payload
                    .get("emoji")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                "wandb.note.1" => payload
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                _ => payload.to_string(),
            };
            writeln!(out, "  {:<18} {text}", style.dim(kind))?;
        }
    }
    Ok(())
}

/// A titled block of indented, pretty JSON.
fn section(out: &mut impl Write, style: &Style, title: &str, v: &Value) -> io::Result<()> {
    writeln!(out, "\n{}", style.bold(title))?;
    let text = serde_json::to_string_pretty(v).map_err(io::Error::from)?;
    for line in text.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// An exception as the SDKs store it (`{"type", "message", "traceback"}` as JSON text, the
/// traceback a list of frames `{filename, line_number, function_name, text}`), printed as
/// Python prints one; text that is not that shape, as it is.
fn write_exception(out: &mut impl Write, text: &str) -> io::Result<()> {
    let Ok(Value::Object(e)) = serde_json::from_str::<Value>(text) else {
        return writeln!(out, "  {text}");
    };
    let get = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    match e.get("traceback") {
        Some(Value::Array(frames)) if !frames.is_empty() => {
            writeln!(out, "  Traceback (most recent call last):")?;
            for f in frames {
                match f {
                    Value::Object(f) => {
                        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("?");
                        let line = f.get("line_number").and_then(Value::as_u64);
                        writeln!(
                            out,
                            "    File \"{}\", line {}, in {}",
                            s("filename"),
                            line.map_or("?".to_string(), |l| l.to_string()),
                            s("function_name")
                        )?;
                        if let Some(code) = f.get("text").and_then(Value::as_str) {
                            writeln!(out, "      {}", code.trim())?;
                        }
                    }
                    other => {
                        for line in other.as_str().unwrap_or_default().lines() {
                            writeln!(out, "    {line}")?;
                        }
                    }
                }
            }
        }
        Some(Value::String(tb)) => {
            for line in tb.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        _ => {}
    }
    writeln!(out, "  {}: {}", get("type"), get("message"))
}
