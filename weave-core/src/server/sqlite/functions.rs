//! SQL functions the query compiler relies on, registered on every connection.
//!
//! They exist where SQLite's built-ins cannot express the Weave semantics: JSON paths whose
//! segments may be list indexes or dict keys, conversions that yield NULL instead of SQLite's
//! lenient `CAST` (which turns `'abc'` into `0`), timestamps, and Unicode case folding.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;
use serde_json::Value;

use crate::time::Timestamp;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("weave_op_name", 1, flags, |ctx| {
        Ok(text_arg(ctx, 0).map(|s| crate::schema::summary::op_display_name(&s).to_string()))
    })?;
    conn.create_scalar_function("weave_to_number", 1, flags, |ctx| {
        Ok(to_number(ctx.get_raw(0)))
    })?;
    conn.create_scalar_function("weave_to_bool", 1, flags, |ctx| Ok(to_bool(ctx.get_raw(0))))?;
    conn.create_scalar_function("weave_json_get", 2, flags, |ctx| {
        Ok(json_walk(ctx)
            .map(|v| json_to_sql(&v))
            .unwrap_or(SqlValue::Null))
    })?;
    conn.create_scalar_function("weave_json_type", 2, flags, |ctx| {
        Ok(json_walk(ctx).map(|v| json_type(&v)))
    })?;
    conn.create_scalar_function("weave_contains_ci", 2, flags, |ctx| {
        Ok(match (text_arg(ctx, 0), text_arg(ctx, 1)) {
            (Some(a), Some(b)) => Some(a.to_lowercase().contains(&b.to_lowercase())),
            _ => None,
        })
    })?;
    conn.create_scalar_function("weave_ts_text", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Integer(ns) => Some(Timestamp::from_nanos(ns).to_string()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("weave_parse_ts", 1, flags, |ctx| {
        Ok(text_arg(ctx, 0)
            .and_then(|s| s.parse::<Timestamp>().ok())
            .map(Timestamp::as_nanos))
    })?;
    Ok(())
}

fn text_arg(ctx: &Context<'_>, i: usize) -> Option<String> {
    match ctx.get_raw(i) {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Like ClickHouse's `toFloat64OrNull`: numbers pass, plain decimal text parses, the rest is
/// NULL.
fn to_number(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Integer(n) => SqlValue::Integer(n),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            let s = s.trim();
            // Decimal and exponent forms ("1.5", "-2", "1e3"); not "inf", "NaN" or "0x10".
            let plain = s.chars().any(|c| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
            if !plain {
                return SqlValue::Null;
            }
            if let Ok(n) = s.parse::<i64>() {
                SqlValue::Integer(n)
            } else {
                s.parse::<f64>()
                    .map(SqlValue::Real)
                    .unwrap_or(SqlValue::Null)
            }
        }
        _ => SqlValue::Null,
    }
}

fn to_bool(v: ValueRef<'_>) -> Option<bool> {
    match v {
        ValueRef::Integer(n) => Some(n != 0),
        ValueRef::Real(f) => Some(f != 0.0),
        ValueRef::Text(t) => match String::from_utf8_lossy(t)
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "true" => Some(true),
            "false" => Some(false),
            other => other.parse::<f64>().ok().map(|f| f != 0.0),
        },
        _ => None,
    }
}

/// Walks `json` (arg 0) along the segments (arg 1, a JSON array of strings): a segment
/// indexes a list when it is an integer and keys an object otherwise.
fn json_walk(ctx: &Context<'_>) -> Option<Value> {
    let doc = text_arg(ctx, 0)?;
    let segs: Vec<String> = serde_json::from_str(&text_arg(ctx, 1)?).ok()?;
    let mut cur: Value = serde_json::from_str(&doc).ok()?;
    for seg in &segs {
        cur = match cur {
            Value::Object(mut m) => m.remove(seg)?,
            Value::Array(mut items) => {
                let i: usize = seg.parse().ok()?;
                if i >= items.len() {
                    return None;
                }
                items.swap_remove(i)
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// The SQL value `json_extract` would give for `v`.
fn json_to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// The name `json_type` would give for `v`.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "real",
        Value::String(_) => "text",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
