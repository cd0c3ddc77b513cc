//! How the commands print: colours, aligned tables, and a call's figures (status, latency,
//! tokens, cost) as its derived summary has them.

use std::io::{self, Write};

use serde_json::Value;
use weave_core::schema::CallSchema;
use weave_core::Timestamp;

/// Colours on or off: on only when stdout is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours as the environment says.
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        let no_color = weave_core::config::Settings::from_env().no_color;
        Style {
            color: !no_color && io::stdout().is_terminal(),
        }
    }

    /// No colours.
    pub fn plain() -> Self {
        Style { color: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub(crate) fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub(crate) fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub(crate) fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub(crate) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub(crate) fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    /// A call status, coloured by what it means.
    pub(crate) fn status(&self, status: &str) -> String {
        match status {
            "success" => self.green(status),
            "error" => self.red(status),
            "descendant_error" => self.yellow(status),
            _ => self.dim(status),
        }
    }
}

/// One cell of a table: its text, its width on screen (without colour codes), alignment.
pub(crate) struct Cell {
    pub(crate) text: String,
    width: usize,
    right: bool,
}

impl Cell {
    pub(crate) fn plain(s: impl Into<String>) -> Self {
        let text = s.into();
        Cell {
            width: text.chars().count(),
            text,
            right: false,
        }
    }
    pub(crate) fn right(s: impl Into<String>) -> Self {
        Cell {
            right: true,
            ..Cell::plain(s)
        }
    }
    /// Text already coloured, `width` columns wide on screen.
    pub(crate) fn styled(text: String, width: usize) -> Self {
        Cell {
            text,
            width,
            right: false,
        }
    }
}

/// Writes `rows` under `header`, each column as wide as its widest cell.
pub(crate) fn table(
    out: &mut impl Write,
    style: &Style,
    header: &[&str],
    rows: &[Vec<Cell>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.width);
        }
    }
    let last = header.len() - 1;
    let head: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == last {
                h.to_string()
            } else {
                format!("{h:<w$}", w = widths[i])
            }
        })
        .collect();
    writeln!(out, "{}", style.bold(head.join("  ").trim_end()))?;
    for row in rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - c.width);
            if c.right {
                line.push_str(&pad);
                line.push_str(&c.text);
            } else {
                line.push_str(&c.text);
                if i != last {
                    line.push_str(&pad);
                }
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `value` as one line of JSON.
pub(crate) fn write_json_line(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// A time as `2025-01-02 15:04:05.123` (UTC).
pub(crate) fn time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The `summary.weave` object the store derives on read.
fn weave_summary(call: &CallSchema) -> Option<&serde_json::Map<String, Value>> {
    call.summary.as_ref()?.get("weave")?.as_object()
}

/// `success`, `error`, `running` or `descendant_error`.
pub(crate) fn status(call: &CallSchema) -> &str {
    weave_summary(call)
        .and_then(|w| w.get("status"))
        .and_then(Value::as_str)
        .unwrap_or(if call.ended_at.is_none() {
            "running"
        } else if call.exception.as_deref().is_some_and(|e| !e.is_empty()) {
            "error"
        } else {
            "success"
        })
}

/// The latency, `1.25 s` or `340 ms`; empty while running.
pub(crate) fn latency(call: &CallSchema) -> String {
    let ms = weave_summary(call)
        .and_then(|w| w.get("latency_ms"))
        .and_then(Value::as_i64)
        .or_else(|| {
            call.ended_at
                .map(|e| (e.as_nanos() - call.started_at.as_nanos()) / 1_000_000)
        });
    match ms {
        None => String::new(),
        Some(ms) if ms >= 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) if ms >= 1_000 => format!("{:.2} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
    }
}

/// The tokens of every model in the call's usage (its own and its descendants' when the
/// summary rolled them up): `total_tokens`, else prompt + completion.
pub(crate) fn tokens(call: &CallSchema) -> Option<u64> {
    let usage = call.summary.as_ref()?.get("usage")?.as_object()?;
    let mut total = 0;
    for u in usage.values() {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        total += n("total_tokens").unwrap_or_else(|| {
            n("prompt_tokens").or(n("input_tokens")).unwrap_or(0)
                + n("completion_tokens").or(n("output_tokens")).unwrap_or(0)
        });
    }
    Some(total)
}

/// The call's cost in dollars, when the query asked for costs and a price matched.
pub(crate) fn cost(call: &CallSchema) -> Option<f64> {
    let costs = weave_summary(call)?.get("costs")?.as_object()?;
    let mut total = 0.0;
    for c in costs.values() {
        for (k, v) in c.as_object()? {
            if k.ends_with("_total_cost") {
                total += v.as_f64().unwrap_or(0.0);
            }
        }
    }
    Some(total)
}

/// The op's short name (`name` of `weave:///e/p/op/name:digest`), or the display name.
pub(crate) fn name(call: &CallSchema) -> &str {
    call.display_name
        .as_deref()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| weave_core::schema::summary::op_display_name(&call.op_name))
}

/// `s` cut to `max` characters, with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A one-line preview of a call's inputs: `a=1, city="Paris"`.
pub(crate) fn inputs_preview(call: &CallSchema, max: usize) -> String {
    let parts: Vec<String> = call
        .inputs
        .iter()
        .map(|(k, v)| format!("{k}={}", cut(&v.to_string(), 40)))
        .collect();
    cut(&parts.join(", "), max)
}
