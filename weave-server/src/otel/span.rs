//! One OTLP span → one Weave call (a start and an end), as the Weave server maps it in
//! `weave/trace_server/opentelemetry/python_spans.py` (`Span.to_call`, `Span.as_dict`).

use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use weave_core::schema::{EndedCallSchemaForInsert, StartedCallSchemaForInsert};
use weave_core::{JsonMap, Timestamp};

use super::attributes::{
    self as attrs, first_found, python_int, truthy, ATTRIBUTE_KEYS, INPUT_KEYS, OUTPUT_KEYS,
    TIME_OVERRIDE_KEYS, USAGE_KEYS, WANDB_KEYS,
};

/// Op names of this many characters or more are shortened (the store takes up to 128).
const MAX_OP_NAME_CHARS: usize = 128;
/// Display names of this many characters or more are shortened.
const MAX_DISPLAY_NAME_CHARS: usize = 1024;

/// The usage fields of a call's summary, in the order the Weave server writes them; the ones
/// a span does not report are `null`.
const USAGE_FIELDS: [&str; 8] = [
    "prompt_tokens",
    "input_tokens",
    "completion_tokens",
    "output_tokens",
    "requests",
    "total_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A resource as the dump of each of its spans shows it.
pub fn resource_dump(resource: Option<&Resource>) -> Result<Value, String> {
    let (attributes, dropped) = match resource {
        Some(r) => (attrs::expand(&r.attributes)?, r.dropped_attributes_count),
        None => (Map::new(), 0),
    };
    Ok(json!({ "attributes": attributes, "dropped_attributes_count": dropped }))
}

/// `n / d` as the nearest double, as Python's true division of two ints computes it.
fn nearest_f64(n: u64, d: u64) -> f64 {
    if n < (1 << 53) {
        return n as f64 / d as f64; // both exact: one rounding
    }
    // Find the 53-bit quotient q = ⌊n·2^s / d⌋ and round it half to even by the remainder.
    let (n, d) = (u128::from(n), u128::from(d));
    let mut s = 0i32;
    while (n << s) / d < (1 << 52) {
        s += 1;
    }
    let (mut q, r) = ((n << s) / d, (n << s) % d);
    if 2 * r > d || (2 * r == d && q & 1 == 1) {
        q += 1;
    }
    q as f64 * 2f64.powi(-s)
}

/// A span time (nanoseconds) as the Weave server records it: seconds as a double, rounded
/// half to even to the microsecond (Python's `datetime.fromtimestamp(ns / 1e9)`). `None` past
/// the years the store can hold.
fn span_time(ns: u64) -> Option<Timestamp> {
    let secs = nearest_f64(ns, 1_000_000_000);
    let mut whole = secs.trunc();
    let mut micros = ((secs - whole) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        whole += 1.0;
    }
    let total = (whole as i64)
        .checked_mul(1_000_000)?
        .checked_add(micros as i64)?;
    total.checked_mul(1000).map(Timestamp::from_nanos)
}

/// A time as the dump shows it: Python's `isoformat()` of a naive datetime (UTC here), with
/// no fraction when the microseconds are zero.
fn dump_time(t: Timestamp) -> String {
    let s = t.to_string();
    let s = s.strip_suffix('Z').unwrap_or(&s);
    s.strip_suffix(".000000").unwrap_or(s).to_string()
}

/// A time override (`langfuse.startTime`): an RFC 3339 string, integer nanoseconds or float
/// seconds. `Null` when it cannot be read.
fn override_time(v: Value) -> Value {
    let t = match &v {
        Value::String(s) => s.parse::<Timestamp>().ok(),
        Value::Number(n) if n.is_u64() => n.as_u64().and_then(span_time),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 9.2e9)
            .map(|f| Timestamp::from_nanos((f * 1e6).round_ties_even() as i64 * 1000)),
        _ => None,
    };
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn is_delimiter(c: char) -> bool {
    matches!(c, ',' | ';' | '|' | ' ' | '/' | '?' | '.')
}

/// Shortens `name` to under `max` characters at a delimiter where it can, ending it with
/// `abbrv` (after the delimiter it was cut at, with `delimiter_in_abbrv`): the Weave server's
/// `shorten_name`.
fn shorten_name(name: &str, max: usize, abbrv: &str, delimiter_in_abbrv: bool) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let abbrv_len = abbrv.chars().count();
    let room = max.saturating_sub(abbrv_len);
    let cut = |s: &str| s.chars().take(room).collect::<String>() + abbrv;
    // Runs of non-delimiters and single delimiters, in order.
    let mut parts: Vec<String> = Vec::new();
    let mut run = String::new();
    for c in name.chars() {
        if is_delimiter(c) {
            if !run.is_empty() {
                parts.push(std::mem::take(&mut run));
            }
            parts.push(c.to_string());
        } else {
            run.push(c);
        }
    }
    if !run.is_empty() {
        parts.push(run);
    }
    if parts.len() <= 1 {
        return cut(name);
    }
    let is_delim_part = |p: &str| p.chars().count() == 1 && p.chars().all(is_delimiter);
    let mut out = parts[0].clone();
    let mut out_len = out.chars().count();
    if out_len > room {
        return cut(&out);
    }
    let mut i = 1;
    while i < parts.len() {
        let mut delimiters = String::new();
        while i < parts.len() && is_delim_part(&parts[i]) {
            delimiters.push_str(&parts[i]);
            i += 1;
        }
        let next = format!("{delimiters}{}", parts.get(i).map_or("", |s| s.as_str()));
        let ending = if abbrv.is_empty() {
            String::new()
        } else if abbrv.starts_with(&delimiters) || !delimiter_in_abbrv {
            abbrv.to_string()
        } else {
            format!("{delimiters}{abbrv}")
        };
        let next_len = next.chars().count();
        if out_len + next_len >= max.saturating_sub(ending.chars().count()) {
            out.push_str(&ending);
            break;
        }
        out.push_str(&next);
        out_len += next_len;
        i += 1;
    }
    out
}

/// The op name of a span: its name, shortened past 128 characters with the first four hex
/// digits of its SHA-256 (`long.name…:1a2b`) so that long names stay apart.
fn op_name(name: &str) -> String {
    if name.chars().count() < MAX_OP_NAME_CHARS {
        return name.to_string();
    }
    let digest = hex(&Sha256::digest(name.as_bytes()));
    shorten_name(
        name,
        MAX_OP_NAME_CHARS,
        &format!(":{}", &digest[..4]),
        false,
    )
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "OK",
        2 => "ERROR",
        _ => "UNSET",
    }
}

/// A text field from a W&B attribute: a string, or a number's digits.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An id of `len` bytes as lowercase hex, or why not.
fn id_hex(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() == len {
        Ok(hex(bytes))
    } else {
        Err(format!(
            "{what} must be {len} bytes ({} hex digits), got {} bytes",
            len * 2,
            bytes.len()
        ))
    }
}

/// The call of `span`, in `project_id`, with its resource dumped as `resource`: its start and
/// its end. Fails, saying why, for a span the store cannot hold (bad ids, no name, times out
/// of range, attributes that are not a tree).
pub fn to_call(
    span: &Span,
    resource: &Value,
    project_id: &str,
) -> Result<(StartedCallSchemaForInsert, EndedCallSchemaForInsert), String> {
    let trace_id = id_hex(&span.trace_id, 16, "trace_id")?;
    let span_id = id_hex(&span.span_id, 8, "span_id")?;
    let parent_id = match span.parent_span_id.len() {
        0 => None,
        _ => Some(id_hex(&span.parent_span_id, 8, "parent_span_id")?),
    };
    if span.name.is_empty() {
        return Err("the span has no name".into());
    }
    let out_of_range = |what| format!("{what} is past the years the store can hold");
    let start = span_time(span.start_time_unix_nano).ok_or_else(|| out_of_range("start time"))?;
    let end = span_time(span.end_time_unix_nano).ok_or_else(|| out_of_range("end time"))?;

    let mut tree = Value::Object(attrs::expand(&span.attributes)?);
    let mut events = Vec::with_capacity(span.events.len());
    for e in &span.events {
        events.push(json!({
            "name": e.name,
            "timestamp": e.time_unix_nano,
            "attributes": attrs::expand(&e.attributes)?,
            "dropped_attributes_count": e.dropped_attributes_count,
        }));
    }
    let mut links = Vec::with_capacity(span.links.len());
    for l in &span.links {
        links.push(json!({
            "trace_id": hex(&l.trace_id),
            "span_id": hex(&l.span_id),
            "trace_state": l.trace_state,
            "attributes": attrs::expand(&l.attributes)?,
            "dropped_attributes_count": l.dropped_attributes_count,
            "flags": l.flags,
        }));
    }
    let (code, message) = span
        .status
        .as_ref()
        .map_or((0, ""), |s| (s.code, s.message.as_str()));

    // The conventions, in the order the Weave server reads them (each may turn index-keyed
    // objects of the tree into arrays).
    let mut usage = attrs::fields(&mut tree, USAGE_KEYS, python_int);
    for (total, a, b) in [
        ("total_tokens", "prompt_tokens", "completion_tokens"),
        ("total_tokens", "input_tokens", "output_tokens"),
    ] {
        if let (false, Some(x), Some(y)) = (
            usage.contains_key(total),
            usage.get(a).and_then(Value::as_i64),
            usage.get(b).and_then(Value::as_i64),
        ) {
            usage.insert(total.into(), Value::from(x.saturating_add(y)));
        }
    }
    let found_inputs = first_found(&mut tree, INPUT_KEYS);
    let found_output = first_found(&mut tree, OUTPUT_KEYS);
    let mut attributes = attrs::fields(&mut tree, ATTRIBUTE_KEYS, |v| v);
    let wandb = attrs::fields(&mut tree, WANDB_KEYS, |v| v);
    let overrides = attrs::fields(&mut tree, TIME_OVERRIDE_KEYS, override_time);

    let found_anything = !attributes.is_empty()
        || found_inputs.is_some()
        || found_output.is_some()
        || !usage.is_empty();
    // A single `input`/`inputs` object is the inputs themselves; a single `output`/`outputs`
    // value is the output.
    let inputs: JsonMap = match found_inputs {
        None => Map::new(),
        Some(("input" | "inputs", Value::Object(m))) => m,
        Some((key, v)) => Map::from_iter([(key.to_string(), v)]),
    };
    let output = match found_output {
        None => Value::Object(Map::new()),
        Some(("output" | "outputs", v)) => v,
        Some((key, v)) => json!({ key: v }),
    };

    let model = match attributes.get("model") {
        Some(m) if truthy(m) => m.as_str().map(str::to_string),
        _ => attributes
            .get("model_parameters")
            .and_then(|p| p.get("model"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string),
    };
    if let Some(Value::Object(custom)) = wandb.get("attributes") {
        for (k, v) in custom {
            attributes.insert(k.clone(), v.clone());
        }
    }
    if !found_anything {
        attributes = tree.as_object().cloned().unwrap_or_default();
    }

    let op_name = op_name(&span.name);
    let display_name = text(wandb.get("display_name")).map(|d| {
        if d.chars().count() >= MAX_DISPLAY_NAME_CHARS {
            shorten_name(&d, MAX_DISPLAY_NAME_CHARS, "...", true)
        } else {
            d
        }
    });
    let thread_id = text(wandb.get("thread_id"));
    let turn_id = match (&thread_id, wandb.get("is_turn")) {
        (Some(_), Some(flag)) if truthy(flag) => Some(span_id.clone()),
        _ => None,
    };
    let wb_run_id = wandb
        .get("wb_run_id")
        .and_then(Value::as_str)
        .filter(|r| !r.contains('/') && !r.contains(':'))
        .map(|r| format!("{project_id}:{r}"));
    let step = |key: &str| {
        wandb
            .get(key)
            .map(|v| python_int(v.clone()))
            .and_then(|v| v.as_i64())
            .filter(|n| *n != 0)
    };
    let override_of = |key: &str| {
        overrides
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
    };

    let mut usage_fields = Map::new();
    for f in USAGE_FIELDS {
        let v = usage.get(f).filter(|v| v.is_i64() || v.is_u64());
        usage_fields.insert(f.into(), v.cloned().unwrap_or(Value::Null));
    }
    let latency_ms = ((i128::from(span.end_time_unix_nano) - i128::from(span.start_time_unix_nano))
        as f64
        / 1e6) as i64;
    let summary = json!({
        "usage": { model.as_deref().unwrap_or("usage"): usage_fields },
        "weave": {
            "status": if code == 2 { "error" } else { "success" },
            "latency_ms": latency_ms,
            "trace_name": op_name,
        },
    });

    let otel_dump = json!({
        "name": span.name,
        "context": { "trace_id": trace_id, "span_id": span_id, "trace_state": span.trace_state },
        "kind": kind_name(span.kind),
        "parent_id": parent_id,
        "start_time": dump_time(start),
        "end_time": dump_time(end),
        "status": { "code": status_name(code), "message": message },
        "attributes": tree,
        "events": events,
        "links": links,
        "resource": resource,
    });
    // The Weave server records ERROR's message as the exception; an ERROR without one is
    // still a failed call here (the store reads an empty exception as none).
    let exception = (code == 2).then(|| {
        if message.is_empty() {
            "ERROR".to_string()
        } else {
            message.to_string()
        }
    });

    let start_call = StartedCallSchemaForInsert {
        project_id: project_id.to_string(),
        id: Some(span_id.clone()),
        op_name,
        display_name,
        trace_id: Some(trace_id),
        parent_id,
        thread_id,
        turn_id,
        started_at: override_of("start_time").unwrap_or(start),
        attributes,
        inputs,
        otel_dump: otel_dump.as_object().cloned(),
        wb_user_id: None,
        wb_run_id,
        wb_run_step: step("wb_run_step"),
    };
    let end_call = EndedCallSchemaForInsert {
        project_id: project_id.to_string(),
        id: span_id,
        ended_at: override_of("end_time").unwrap_or(end),
        exception,
        output,
        summary: summary.as_object().cloned().unwrap_or_default(),
        wb_run_step_end: step("wb_run_step_end"),
    };
    Ok((start_call, end_call))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_as_python_floats_do() {
        // 1700000000.000999999 s is 1700000000.001 as a double.
        let t = span_time(1_700_000_000_000_999_999).unwrap();
        assert_eq!(dump_time(t), "2023-11-14T22:13:20.001000");
        let t = span_time(1_700_000_000_123_456_789).unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123457Z");
        assert_eq!(
            dump_time(span_time(1_700_000_000_000_000_000).unwrap()),
            "2023-11-14T22:13:20"
        );
        assert_eq!(span_time(u64::MAX), None);
        assert_eq!(nearest_f64(3, 2), 1.5);
        assert_eq!(
            nearest_f64(1 << 60, 1_000_000_000),
            (1u64 << 60) as f64 / 1e9
        );
    }

    #[test]
    fn long_names_are_shortened_at_delimiters() {
        assert_eq!(
            shorten_name("hello/world.txt", 10, "...", true),
            "hello/..."
        );
        assert_eq!(
            shorten_name("hello/world.txt", 10, "...", false),
            "hello..."
        );
        assert_eq!(
            shorten_name("hello/world.txt", 20, "...", true),
            "hello/world.txt"
        );
        assert_eq!(shorten_name("verylongword", 8, "...", true), "veryl...");
        assert_eq!(
            shorten_name("hello/world.txt", 10, ":1234", false),
            "hello:1234"
        );
        // Trailing delimiters do not run past the end.
        let name = format!("{}{}", "a".repeat(100), " ".repeat(50));
        assert_eq!(op_name(&name).chars().count(), 105);
        // The Weave server's own answers.
        assert_eq!(
            op_name(&"x.".repeat(100)),
            format!("{}x:5722", "x.".repeat(60))
        );
        let display = shorten_name(&"a b/c".repeat(300), MAX_DISPLAY_NAME_CHARS, "...", true);
        assert_eq!(display, format!("{}a b/...", "a b/c".repeat(203)));
    }
}
