//! `weave calls`, `weave tail` and `weave export`: a project's calls, filtered, as a table, as
//! JSON, as they arrive, or streamed into a file.

use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use weave_core::schema::{CallSchema, CallsFilter, CallsQueryReq, CallsQueryStatsReq, SortBy};
use weave_core::{Query, Timestamp, TraceServer};

use super::format::{self, Cell, Style};
use super::{CliError, Source};

/// Which calls: the filters `calls`, `tail` and `export` share.
#[derive(Debug, Clone, Default, Args)]
pub struct Filters {
    /// Only calls of this op (its name, or its full `weave:///…` ref).
    #[arg(long, value_name = "NAME")]
    pub op: Option<String>,
    /// Only calls with this status.
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// Only calls that started this long ago or later: `30s`, `15m`, `1h`, `7d`.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub since: Option<Duration>,
    /// Only trace roots.
    #[arg(long)]
    pub roots: bool,
    /// A Weave query (the protocol's `{"$expr": …}` or the operation alone), ANDed with the
    /// other filters: e.g. '{"$eq": [{"$getField": "inputs.city"}, {"$literal": "Paris"}]}'.
    #[arg(long, value_name = "JSON")]
    pub query: Option<String>,
}

/// A call's status, as `summary.weave.status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Status {
    /// Ended without an exception, and so did its descendants.
    Success,
    /// Ended with an exception.
    Error,
    /// Not ended yet.
    Running,
    /// Ended without an exception, but a descendant failed.
    DescendantError,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Running => "running",
            Status::DescendantError => "descendant_error",
        }
    }
}

/// `30s`, `15m`, `1h`, `7d` (or a bare number of seconds).
fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not an age like 30s, 15m, 1h or 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d, w")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

impl Filters {
    /// The query for `project`'s calls these filters select.
    fn request(&self, project: &str) -> Result<CallsQueryReq, CliError> {
        let (req, conditions) = self.parts(project)?;
        with_conditions(req, conditions)
    }

    /// The query without its `query` part, and the conditions that make it (ANDed).
    fn parts(&self, project: &str) -> Result<(CallsQueryReq, Vec<Value>), CliError> {
        let mut req = CallsQueryReq::new(project);
        let mut filter = CallsFilter::default();
        if let Some(op) = &self.op {
            filter.op_names = Some(if op.starts_with("weave:") || op.contains(':') {
                vec![op.clone()]
            } else {
                // Ops of the SDKs are refs (`weave:///e/p/op/name:digest`); calls made with
                // a plain name keep it as it is.
                vec![format!("weave:///{project}/op/{op}:*"), op.clone()]
            });
        }
        if self.roots {
            filter.trace_roots_only = Some(true);
        }
        if filter != CallsFilter::default() {
            req.filter = Some(filter);
        }
        let mut conditions: Vec<Value> = Vec::new();
        if let Some(status) = self.status {
            conditions.push(json!({"$eq": [
                {"$getField": "summary.weave.status"}, {"$literal": status.as_str()}
            ]}));
        }
        if let Some(age) = self.since {
            let since = Timestamp::now().as_nanos() - age.as_nanos().min(i64::MAX as u128) as i64;
            conditions.push(json!({"$gte": [
                {"$getField": "started_at"},
                {"$literal": Timestamp::from_nanos(since).to_string()}
            ]}));
        }
        if let Some(text) = &self.query {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| CliError::usage(format!("--query is not JSON: {e}")))?;
            conditions.push(match v {
                Value::Object(mut m) if m.contains_key("$expr") => {
                    m.remove("$expr").unwrap_or_default()
                }
                other => other,
            });
        }
        Ok((req, conditions))
    }
}

/// `req` with `conditions` ANDed as its query.
fn with_conditions(
    mut req: CallsQueryReq,
    mut conditions: Vec<Value>,
) -> Result<CallsQueryReq, CliError> {
    if !conditions.is_empty() {
        let expr = if conditions.len() == 1 {
            conditions.remove(0)
        } else {
            json!({ "$and": conditions })
        };
        let query: Query = serde_json::from_value(json!({ "$expr": expr }))
            .map_err(|e| CliError::usage(format!("--query is not a Weave query: {e}")))?;
        req.query = Some(query);
    }
    Ok(req)
}

/// `weave calls`.
#[derive(Debug, Clone, Args)]
pub struct CallsArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub filters: Filters,
    /// How many calls, the newest first (0: all).
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: u64,
    /// The calls as one JSON array (the protocol's CallSchema).
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// The calls as JSON lines, one per call.
    #[arg(long)]
    pub jsonl: bool,
}

/// `weave calls`: the newest calls of a project that pass the filters.
pub fn calls(args: &CallsArgs, style: &Style) -> Result<(), CliError> {
    let backend = args.source.open()?;
    let project = args.source.project(&*backend)?;
    let mut req = args.filters.request(&project)?;
    req.sort_by = Some(vec![SortBy::desc("started_at")]);
    req.include_costs = true;
    if args.limit > 0 {
        req.limit = Some(args.limit);
    }
    let stream = backend.calls_query_stream(req)?;
    let mut out = io::stdout().lock();
    if args.jsonl {
        for call in stream {
            format::write_json_line(&mut out, &call?)?;
        }
        return Ok(());
    }
    let calls: Vec<CallSchema> = stream.collect::<Result<_, _>>()?;
    if args.json {
        serde_json::to_writer_pretty(&mut out, &calls).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = calls.iter().map(|c| row(c, style)).collect();
    format::table(&mut out, style, HEADER, &rows)?;
    if calls.is_empty() {
        eprintln!("weave: no calls in {project} pass these filters");
    }
    Ok(())
}

const HEADER: &[&str] = &[
    "STARTED (UTC)",
    "ID",
    "OP",
    "STATUS",
    "LATENCY",
    "TOKENS",
    "COST",
    "INPUTS",
];

fn row(c: &CallSchema, style: &Style) -> Vec<Cell> {
    let status = format::status(c);
    vec![
        Cell::plain(format::time(c.started_at)),
        Cell::plain(&c.id),
        Cell::plain(format::cut(format::name(c), 32)),
        Cell::styled(style.status(status), status.chars().count()),
        Cell::right(format::latency(c)),
        Cell::right(format::tokens(c).map(|t| t.to_string()).unwrap_or_default()),
        Cell::right(
            format::cost(c)
                .map(|d| format!("${d:.4}"))
                .unwrap_or_default(),
        ),
        Cell::plain(format::inputs_preview(c, 60)),
    ]
}

/// `weave tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub filters: Filters,
    /// How often to look for new calls, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub every: u64,
    /// The new calls as JSON lines.
    #[arg(long)]
    pub jsonl: bool,
}

/// `weave tail`: prints calls as they start, oldest first, until interrupted. Each is
/// printed once, as it was when first seen.
pub fn tail(args: &TailArgs, style: &Style) -> Result<(), CliError> {
    let backend = args.source.open()?;
    let project = args.source.project(&*backend)?;
    let (base, conditions) = args.filters.parts(&project)?;
    // Checked once, before the first poll.
    with_conditions(base.clone(), conditions.clone())?;
    // Calls already there when the tail starts are not shown: from now on.
    let mut since = Timestamp::now().as_nanos();
    let mut seen_at_since: Vec<String> = Vec::new();
    let mut out = io::stdout().lock();
    if !args.jsonl {
        let head: Vec<&str> = HEADER.to_vec();
        format::table(&mut out, style, &head, &[])?;
        out.flush()?;
    }
    loop {
        let mut now = conditions.clone();
        now.push(json!({"$gte": [
            {"$getField": "started_at"},
            {"$literal": Timestamp::from_nanos(since).to_string()}
        ]}));
        let mut req = with_conditions(base.clone(), now)?;
        req.sort_by = Some(vec![SortBy::asc("started_at")]);
        req.include_costs = true;
        for call in backend.calls_query_stream(req)? {
            let call = call?;
            let at = call.started_at.as_nanos();
            if at == since && seen_at_since.contains(&call.id) {
                continue;
            }
            if at > since {
                since = at;
                seen_at_since.clear();
            }
            seen_at_since.push(call.id.clone());
            if args.jsonl {
                format::write_json_line(&mut out, &call)?;
            } else {
                // Not aligned: the widths of calls to come are not known.
                let line: Vec<String> = row(&call, style).into_iter().map(|c| c.text).collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(args.every.max(50)));
    }
}

/// `weave export`'s formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line: the protocol's CallSchema.
    Jsonl,
    /// One row per call; inputs, output, attributes and summary as JSON text.
    Csv,
}

/// `weave export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub filters: Filters,
    /// The format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// The file to write (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "trace_id",
    "parent_id",
    "op_name",
    "display_name",
    "status",
    "started_at",
    "ended_at",
    "latency_ms",
    "exception",
    "inputs",
    "output",
    "attributes",
    "summary",
];

/// `weave export`: every call of a project that passes the filters, oldest first, streamed
/// (memory stays flat whatever the count), with a progress line on stderr when it is a
/// terminal.
pub fn export(args: &ExportArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let backend = args.source.open()?;
    let project = args.source.project(&*backend)?;
    let req = args.filters.request(&project)?;
    let progress = io::stderr().is_terminal();
    let total = if progress {
        count(&*backend, &req).ok()
    } else {
        None
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(io::BufWriter::new(std::fs::File::create(path).map_err(
            |e| CliError::failed(format!("cannot write {}: {e}", path.display())),
        )?)),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    if args.format == ExportFormat::Csv {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    let mut n: u64 = 0;
    let mut last_shown = std::time::Instant::now();
    for call in backend.calls_query_stream(req)? {
        let call = call?;
        match args.format {
            ExportFormat::Jsonl => format::write_json_line(&mut out, &call)?,
            ExportFormat::Csv => write_csv_row(&mut out, &call)?,
        }
        n += 1;
        if progress && last_shown.elapsed() >= Duration::from_millis(200) {
            last_shown = std::time::Instant::now();
            show_progress(n, total);
        }
    }
    out.flush()?;
    if progress {
        show_progress(n, total);
        eprintln!();
    }
    Ok(())
}

fn count(backend: &dyn TraceServer, req: &CallsQueryReq) -> weave_core::Result<u64> {
    Ok(backend
        .calls_query_stats(CallsQueryStatsReq {
            project_id: req.project_id.clone(),
            filter: req.filter.clone(),
            query: req.query.clone(),
            limit: None,
            include_total_storage_size: false,
            expand_columns: None,
        })?
        .count)
}

fn show_progress(n: u64, total: Option<u64>) {
    const WIDTH: usize = 30;
    match total {
        Some(t) if t > 0 => {
            let done = ((n.min(t) as f64 / t as f64) * WIDTH as f64) as usize;
            eprint!(
                "\r[{}{}] {n}/{t} calls",
                "#".repeat(done),
                " ".repeat(WIDTH - done)
            );
        }
        _ => eprint!("\r{n} calls"),
    }
}

fn write_csv_row(out: &mut impl Write, c: &CallSchema) -> io::Result<()> {
    let fields: [String; 14] = [
        c.id.clone(),
        c.trace_id.clone(),
        c.parent_id.clone().unwrap_or_default(),
        c.op_name.clone(),
        c.display_name.clone().unwrap_or_default(),
        format::status(c).to_string(),
        c.started_at.to_string(),
        c.ended_at.map(|t| t.to_string()).unwrap_or_default(),
        c.ended_at
            .map(|e| ((e.as_nanos() - c.started_at.as_nanos()) / 1_000_000).to_string())
            .unwrap_or_default(),
        c.exception.clone().unwrap_or_default(),
        json_text(&c.inputs),
        json_text(&c.output),
        json_text(&c.attributes),
        json_text(&c.summary),
    ];
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
