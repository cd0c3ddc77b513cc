//! Compiles calls queries (filter, `$expr`, sort, columns) to parameterised SQL.
//!
//! No user-supplied string ever reaches the SQL text: field names are matched against a fixed
//! set of columns, JSON paths and literals are bound as parameters.
//!
//! ## Typing
//!
//! Each operand compiles to a typed SQL expression. Top-level columns are text (timestamps
//! are nanosecond integers), the computed `summary.weave.*` fields have fixed types, and JSON
//! paths are *dynamic*. A comparison with a null literal is IS NULL; one with a timestamp
//! column compares timestamps; otherwise a typed side (a column, a computed field, a
//! `$convert`, an operation) decides the domain, else the literal does (string → text,
//! number → numeric, bool → bool) — as the Weave server infers casts from literals — else
//! text. Dynamic values convert like ClickHouse's `to*OrNull`: text that is not a number compares as NULL, never as `0`. A comparison with a
//! NULL side is false (so `$not` of it is true).

use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::error::{Result, WeaveError};
use crate::query::{ConvertTo, Operand, Operation, Query};
use crate::schema::{CallsFilter, SortBy, SortDirection};
use crate::time::Timestamp;

/// The largest list a filter accepts, as on the Weave server.
pub(crate) const MAX_FILTER_LIST: usize = 1000;

/// Bound parameters, numbered in order.
#[derive(Debug, Default)]
pub(crate) struct Params(pub(crate) Vec<SqlValue>);

impl Params {
    pub(crate) fn bind(&mut self, v: impl Into<SqlValue>) -> String {
        self.0.push(v.into());
        format!("?{}", self.0.len())
    }
    /// A parenthesised list of parameters, one per item (`(?3, ?4)`), for `IN`: unlike a
    /// subquery (`json_each`), the planner sees how many values there are (one is an
    /// equality), so an index on the column is used to look them up. `items` is not empty
    /// and has at most [`MAX_FILTER_LIST`] values.
    fn bind_list(&mut self, items: &[String]) -> String {
        let ps: Vec<String> = items.iter().map(|i| self.bind(i.clone())).collect();
        format!("({})", ps.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Number,
    Bool,
    Timestamp,
}

#[derive(Debug, Clone)]
enum Compiled {
    Typed(String, Ty),
    Json { extract: String, jtype: String },
    Literal(Value),
}

/// `summary.weave.status`, as derived on read (see `derive_weave_summary`).
pub(crate) const STATUS_SQL: &str =
    "(CASE WHEN exception IS NOT NULL AND exception != '' THEN 'error' \
     WHEN ended_at IS NULL THEN 'running' \
     WHEN COALESCE(json_extract(summary, '$.status_counts.error'), 0) > 0 THEN 'descendant_error' \
     ELSE 'success' END)";
/// `summary.weave.status == "error"`: the first case of [`STATUS_SQL`], never NULL. It is the
/// condition of the partial index `calls_project_op_errors` (migration v5), whose WHERE the
/// planner matches term by term, so it must stay exactly this.
pub(crate) const ERROR_SQL: &str = "(exception IS NOT NULL AND exception != '')";
/// `floor((ended_at - started_at) / 1 ms)`: SQLite's integer division truncates towards zero,
/// so a negative duration (an end before its start) rounds down explicitly, as read back.
const LATENCY_SQL: &str = "(CASE WHEN ended_at IS NULL THEN NULL \
     WHEN ended_at >= started_at THEN (ended_at - started_at) / 1000000 \
     ELSE -((started_at - ended_at + 999999) / 1000000) END)";
const TRACE_NAME_SQL: &str = "COALESCE(display_name, weave_op_name(op_name))";

/// The top-level columns a query may name, with their types.
const COLUMNS: &[(&str, Ty)] = &[
    ("id", Ty::Text),
    ("project_id", Ty::Text),
    ("op_name", Ty::Text),
    ("display_name", Ty::Text),
    ("trace_id", Ty::Text),
    ("parent_id", Ty::Text),
    ("thread_id", Ty::Text),
    ("turn_id", Ty::Text),
    ("started_at", Ty::Timestamp),
    ("ended_at", Ty::Timestamp),
    ("exception", Ty::Text),
    ("wb_user_id", Ty::Text),
    ("wb_run_id", Ty::Text),
    ("wb_run_step", Ty::Number),
    ("wb_run_step_end", Ty::Number),
];

const JSON_COLUMNS: &[&str] = &["inputs", "output", "attributes", "summary"];

/// The tables a query can run over; each names its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// Calls: columns, JSON paths, computed `summary.weave.*`.
    Calls,
    /// Cost (price) rows.
    Costs,
    /// Feedback rows: columns and `payload.<path>`.
    Feedback,
}

const COST_COLUMNS: &[(&str, Ty)] = &[
    ("id", Ty::Text),
    ("llm_id", Ty::Text),
    ("provider_id", Ty::Text),
    ("pricing_level", Ty::Text),
    ("pricing_level_id", Ty::Text),
    ("prompt_token_cost", Ty::Number),
    ("completion_token_cost", Ty::Number),
    ("cache_read_input_token_cost", Ty::Number),
    ("cache_creation_input_token_cost", Ty::Number),
    ("prompt_token_cost_unit", Ty::Text),
    ("completion_token_cost_unit", Ty::Text),
    ("effective_date", Ty::Timestamp),
    ("created_by", Ty::Text),
    ("created_at", Ty::Timestamp),
];

const FEEDBACK_COLUMNS: &[(&str, Ty)] = &[
    ("id", Ty::Text),
    ("project_id", Ty::Text),
    ("weave_ref", Ty::Text),
    ("wb_user_id", Ty::Text),
    ("creator", Ty::Text),
    ("created_at", Ty::Timestamp),
    ("feedback_type", Ty::Text),
    ("annotation_ref", Ty::Text),
    ("runnable_ref", Ty::Text),
    ("call_ref", Ty::Text),
    ("trigger_ref", Ty::Text),
];

/// Resolves a field name of `table` to SQL.
fn resolve_field(table: Table, name: &str, params: &mut Params) -> Result<Compiled> {
    let (columns, what) = match table {
        Table::Calls => return resolve_call_field(name, params),
        Table::Costs => (COST_COLUMNS, "cost"),
        Table::Feedback => (FEEDBACK_COLUMNS, "feedback"),
    };
    if let Some((col, ty)) = columns.iter().find(|(c, _)| *c == name) {
        return Ok(Compiled::Typed((*col).to_string(), *ty));
    }
    if table == Table::Feedback && (name == "payload" || name.starts_with("payload.")) {
        let segments: Vec<String> = name.split('.').skip(1).map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(WeaveError::invalid_query(format!(
                "bad path {name:?}: empty segment"
            )));
        }
        return Ok(json_path_sql("payload", &segments, params));
    }
    let known: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    let extra = if table == Table::Feedback {
        ", or payload.<path>"
    } else {
        ""
    };
    Err(WeaveError::invalid_query(format!(
        "unknown {what} field {name:?} (expected one of {}{extra})",
        known.join(", ")
    )))
}

/// Resolves a calls field name to SQL.
fn resolve_call_field(name: &str, params: &mut Params) -> Result<Compiled> {
    if let Some((col, ty)) = COLUMNS.iter().find(|(c, _)| *c == name) {
        return Ok(Compiled::Typed((*col).to_string(), *ty));
    }
    match name {
        "summary.weave.status" => return Ok(Compiled::Typed(STATUS_SQL.into(), Ty::Text)),
        "summary.weave.latency_ms" => return Ok(Compiled::Typed(LATENCY_SQL.into(), Ty::Number)),
        "summary.weave.trace_name" => return Ok(Compiled::Typed(TRACE_NAME_SQL.into(), Ty::Text)),
        _ => {}
    }
    if name.starts_with("summary.weave.") {
        return Err(WeaveError::invalid_query(format!(
            "unknown computed field {name:?} (summary.weave has status, latency_ms and trace_name)"
        )));
    }
    if name.starts_with("feedback.") {
        return Err(WeaveError::invalid_query(format!(
            "field {name:?}: feedback selectors are not supported by the embedded store yet"
        )));
    }
    let (column, path) = match name.split_once('.') {
        Some((c, p)) => (c, Some(p)),
        None => (name, None),
    };
    let Some(column) = JSON_COLUMNS.iter().find(|c| **c == column) else {
        let known: Vec<&str> = COLUMNS.iter().map(|(c, _)| *c).collect();
        return Err(WeaveError::invalid_query(format!(
            "unknown field {name:?} (expected one of {}, a dotted path under inputs., output., attributes. or summary., \
             or summary.weave.status / latency_ms / trace_name)",
            known.join(", ")
        )));
    };
    let segments: Vec<String> = match path {
        None => Vec::new(),
        Some(p) => p.split('.').map(str::to_string).collect(),
    };
    if segments.iter().any(String::is_empty) {
        return Err(WeaveError::invalid_query(format!(
            "bad path {name:?}: empty segment"
        )));
    }
    Ok(json_path_sql(column, &segments, params))
}

/// SQL reading `segments` out of the JSON `column`. Plain keys use SQLite's own
/// `json_extract`; a path with an integer segment (a list index, or a dict key that looks like
/// one) or a key SQLite's path syntax cannot quote goes through `weave_json_get`.
fn json_path_sql(column: &str, segments: &[String], params: &mut Params) -> Compiled {
    let native = segments
        .iter()
        .all(|s| !s.chars().all(|c| c.is_ascii_digit()) && !s.contains(['"', '\\']));
    if native {
        let mut path = String::from("$");
        for s in segments {
            path.push_str(".\"");
            path.push_str(s);
            path.push('"');
        }
        let p = params.bind(path);
        Compiled::Json {
            extract: format!("json_extract({column}, {p})"),
            jtype: format!("json_type({column}, {p})"),
        }
    } else {
        let p = params.bind(serde_json::to_string(segments).unwrap_or_else(|_| "[]".into()));
        Compiled::Json {
            extract: format!("weave_json_get({column}, {p})"),
            jtype: format!("weave_json_type({column}, {p})"),
        }
    }
}

/// Appends ` AND <query> ORDER BY <keys>, rowid LIMIT .. OFFSET ..` for a query over `table`
/// (rows come in insertion order unless sorted; `limit: None` is unlimited).
pub(crate) fn append_query_sort_page(
    sql: &mut String,
    table: Table,
    query: Option<&Query>,
    sort_by: Option<&[SortBy]>,
    limit: Option<u64>,
    offset: Option<u64>,
    params: &mut Params,
) -> Result<()> {
    if let Some(q) = query {
        sql.push_str(" AND ");
        sql.push_str(&query_condition(table, q, params)?);
    }
    let order = order_by_keys(table, sort_by.unwrap_or(&[]), params)?;
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {} OFFSET {}",
        order.map_or("rowid".into(), |o| format!("{o}, rowid")),
        limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64),
        offset.unwrap_or(0).min(i64::MAX as u64)
    ));
    Ok(())
}

/// SQL reading the dotted path `dotted` out of the JSON `column` (for sorting table rows).
pub(crate) fn json_value_sql(column: &str, dotted: &str, params: &mut Params) -> Result<String> {
    let segments: Vec<String> = dotted.split('.').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(WeaveError::invalid_query(format!(
            "bad path {dotted:?}: empty segment"
        )));
    }
    match json_path_sql(column, &segments, params) {
        Compiled::Json { extract, .. } => Ok(extract),
        _ => unreachable!("json_path_sql gives a JSON path"),
    }
}

struct Compiler<'p> {
    params: &'p mut Params,
    table: Table,
}

impl Compiler<'_> {
    fn operand(&mut self, op: &Operand) -> Result<Compiled> {
        Ok(match op {
            Operand::Literal(v) => Compiled::Literal(v.clone()),
            Operand::GetField(f) => resolve_field(self.table, f, self.params)?,
            Operand::Operation(o) => Compiled::Typed(self.operation(o)?, Ty::Bool),
            Operand::Convert(x, to) => {
                let c = self.operand(x)?;
                match to {
                    ConvertTo::Double => Compiled::Typed(self.coerce(&c, Ty::Number)?, Ty::Number),
                    ConvertTo::Int => Compiled::Typed(
                        format!("CAST({} AS INTEGER)", self.coerce(&c, Ty::Number)?),
                        Ty::Number,
                    ),
                    ConvertTo::String => Compiled::Typed(self.coerce(&c, Ty::Text)?, Ty::Text),
                    ConvertTo::Bool => Compiled::Typed(self.coerce(&c, Ty::Bool)?, Ty::Bool),
                    ConvertTo::Exists => Compiled::Typed(
                        match &c {
                            Compiled::Json { jtype, .. } => format!("({jtype} IS NOT NULL)"),
                            Compiled::Typed(sql, _) => format!("({sql} IS NOT NULL)"),
                            Compiled::Literal(v) => (!v.is_null() as i32).to_string(),
                        },
                        Ty::Bool,
                    ),
                }
            }
        })
    }

    /// The natural SQL value of a compiled operand (for sorting and projection).
    fn natural(&mut self, c: &Compiled) -> String {
        match c {
            Compiled::Typed(sql, _) => sql.clone(),
            Compiled::Json { extract, .. } => extract.clone(),
            Compiled::Literal(v) => self.literal_text(v),
        }
    }

    fn literal_text(&mut self, v: &Value) -> String {
        match v {
            Value::Null => "NULL".into(),
            Value::String(s) => self.params.bind(s.clone()),
            Value::Bool(b) => self
                .params
                .bind(if *b { "true" } else { "false" }.to_string()),
            other => self.params.bind(other.to_string()),
        }
    }

    /// Converts a compiled operand to SQL of type `ty`.
    fn coerce(&mut self, c: &Compiled, ty: Ty) -> Result<String> {
        Ok(match (c, ty) {
            (Compiled::Literal(v), Ty::Text) => self.literal_text(v),
            (Compiled::Literal(v), Ty::Number) => match v {
                Value::Number(n) => match n.as_i64() {
                    Some(i) => self.params.bind(i),
                    None => self.params.bind(n.as_f64().unwrap_or(0.0)),
                },
                Value::Bool(b) => self.params.bind(*b as i64),
                Value::String(s) => {
                    let p = self.params.bind(s.clone());
                    format!("weave_to_number({p})")
                }
                _ => "NULL".into(),
            },
            (Compiled::Literal(v), Ty::Bool) => match v {
                Value::Bool(b) => (*b as i64).to_string(),
                Value::Number(n) => ((n.as_f64().unwrap_or(0.0) != 0.0) as i64).to_string(),
                Value::String(s) => {
                    let p = self.params.bind(s.clone());
                    format!("weave_to_bool({p})")
                }
                _ => "NULL".into(),
            },
            (Compiled::Literal(v), Ty::Timestamp) => match v {
                Value::String(s) => {
                    let t: Timestamp = s.parse().map_err(|_| {
                        WeaveError::invalid_query(format!(
                            "{s:?} is compared with a timestamp column but is not an RFC 3339 timestamp"
                        ))
                    })?;
                    self.params.bind(t.as_nanos())
                }
                Value::Number(n) => self.params.bind((n.as_f64().unwrap_or(0.0) * 1e9) as i64),
                Value::Null => "NULL".into(),
                other => {
                    return Err(WeaveError::invalid_query(format!(
                        "{other} cannot be compared with a timestamp column (use an RFC 3339 string or epoch seconds)"
                    )))
                }
            },
            (Compiled::Typed(sql, from), to) if *from == to => sql.clone(),
            (Compiled::Typed(sql, from), Ty::Text) => match from {
                Ty::Number => format!("CAST({sql} AS TEXT)"),
                Ty::Bool => format!("(CASE WHEN ({sql}) IS NULL THEN NULL WHEN ({sql}) THEN 'true' ELSE 'false' END)"),
                Ty::Timestamp => format!("weave_ts_text({sql})"),
                Ty::Text => unreachable!(),
            },
            (Compiled::Typed(sql, from), Ty::Number) => match from {
                Ty::Text => format!("weave_to_number({sql})"),
                _ => sql.clone(),
            },
            (Compiled::Typed(sql, from), Ty::Bool) => match from {
                Ty::Text => format!("weave_to_bool({sql})"),
                _ => format!("(({sql}) != 0)"),
            },
            (Compiled::Typed(sql, from), Ty::Timestamp) => match from {
                Ty::Text => format!("weave_parse_ts({sql})"),
                _ => format!("CAST(({sql}) * 1000000000 AS INTEGER)"),
            },
            (Compiled::Json { extract, jtype }, ty) => match ty {
                Ty::Text => format!(
                    "(CASE {jtype} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST({extract} AS TEXT) END)"
                ),
                Ty::Number => format!(
                    "(CASE WHEN {jtype} IN ('integer', 'real') THEN {extract} \
                     WHEN {jtype} = 'text' THEN weave_to_number({extract}) ELSE NULL END)"
                ),
                Ty::Bool => format!(
                    "(CASE {jtype} WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN {extract} != 0 \
                     WHEN 'real' THEN {extract} != 0 WHEN 'text' THEN weave_to_bool({extract}) ELSE NULL END)"
                ),
                Ty::Timestamp => format!(
                    "(CASE WHEN {jtype} = 'text' THEN weave_parse_ts({extract}) \
                     WHEN {jtype} IN ('integer', 'real') THEN CAST({extract} * 1000000000 AS INTEGER) ELSE NULL END)"
                ),
            },
        })
    }

    /// The domain a comparison of `a` and `b` happens in; `None` means IS NULL.
    fn domain(a: &Compiled, b: &Compiled) -> Option<Ty> {
        let typed = |c: &Compiled| match c {
            Compiled::Typed(_, t) => Some(*t),
            _ => None,
        };
        let literal = |c: &Compiled| match c {
            Compiled::Literal(Value::Number(_)) => Some(Ty::Number),
            Compiled::Literal(Value::Bool(_)) => Some(Ty::Bool),
            Compiled::Literal(_) => Some(Ty::Text),
            _ => None,
        };
        if matches!(a, Compiled::Literal(Value::Null))
            || matches!(b, Compiled::Literal(Value::Null))
        {
            return None;
        }
        if typed(a) == Some(Ty::Timestamp) || typed(b) == Some(Ty::Timestamp) {
            return Some(Ty::Timestamp);
        }
        Some(
            typed(a)
                .or(typed(b))
                .or(literal(a))
                .or(literal(b))
                .unwrap_or(Ty::Text),
        )
    }

    fn compare(&mut self, a: &Operand, b: &Operand, op: &str) -> Result<String> {
        let mark = self.params.0.len();
        let (ca, cb) = (self.operand(a)?, self.operand(b)?);
        if op == "=" && (is_error_status(&ca, &cb) || is_error_status(&cb, &ca)) {
            // The same truth value as `STATUS_SQL = 'error'` (never NULL either), in the form
            // the index of failed calls is defined with.
            return Ok(ERROR_SQL.into());
        }
        match Self::domain(&ca, &cb) {
            None => {
                // Comparing with null: $eq means IS NULL, ordering comparisons are never true.
                if op != "=" {
                    // The operands' SQL is dropped, so drop their parameters too.
                    self.params.0.truncate(mark);
                    return Ok("0".into());
                }
                let other = if matches!(ca, Compiled::Literal(Value::Null)) {
                    &cb
                } else {
                    &ca
                };
                let sql = match other {
                    Compiled::Literal(v) => return Ok((v.is_null() as i32).to_string()),
                    Compiled::Typed(sql, _) => sql.clone(),
                    Compiled::Json { extract, .. } => extract.clone(),
                };
                Ok(format!("(({sql}) IS NULL)"))
            }
            Some(ty) => {
                let (sa, sb) = (self.coerce(&ca, ty)?, self.coerce(&cb, ty)?);
                Ok(format!("COALESCE(({sa}) {op} ({sb}), 0)"))
            }
        }
    }

    fn boolean(&mut self, op: &Operand) -> Result<String> {
        let c = self.operand(op)?;
        Ok(format!("COALESCE({}, 0)", self.coerce(&c, Ty::Bool)?))
    }

    fn operation(&mut self, op: &Operation) -> Result<String> {
        Ok(match op {
            Operation::And(ops) | Operation::Or(ops) => {
                let joiner = if matches!(op, Operation::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = ops
                    .iter()
                    .map(|o| self.boolean(o))
                    .collect::<Result<Vec<_>>>()?;
                format!("({})", parts.join(joiner))
            }
            Operation::Not(x) => format!("(NOT {})", self.boolean(x)?),
            Operation::Eq(a, b) => self.compare(a, b, "=")?,
            Operation::Gt(a, b) => self.compare(a, b, ">")?,
            Operation::Gte(a, b) => self.compare(a, b, ">=")?,
            Operation::Lt(a, b) => self.compare(a, b, "<")?,
            Operation::Lte(a, b) => self.compare(a, b, "<=")?,
            Operation::In(a, list) => {
                if list.is_empty() {
                    return Ok("0".into());
                }
                let ca = self.operand(a)?;
                let mut parts = Vec::new();
                let mut groups: Vec<(Ty, Vec<String>)> = Vec::new();
                for item in list {
                    let ci = self.operand(item)?;
                    match (&ci, Self::domain(&ca, &ci)) {
                        (_, None) => parts.push(self.compare(a, item, "=")?),
                        (Compiled::Literal(_), Some(ty)) => {
                            let p = self.coerce(&ci, ty)?;
                            match groups.iter_mut().find(|(t, _)| *t == ty) {
                                Some((_, ps)) => ps.push(p),
                                None => groups.push((ty, vec![p])),
                            }
                        }
                        (_, Some(_)) => parts.push(self.compare(a, item, "=")?),
                    }
                }
                for (ty, ps) in groups {
                    let lhs = self.coerce(&ca, ty)?;
                    parts.push(format!("COALESCE(({lhs}) IN ({}), 0)", ps.join(", ")));
                }
                format!("({})", parts.join(" OR "))
            }
            Operation::Contains {
                input,
                substr,
                case_insensitive,
            } => {
                let (ci, cs) = (self.operand(input)?, self.operand(substr)?);
                let (si, ss) = (self.coerce(&ci, Ty::Text)?, self.coerce(&cs, Ty::Text)?);
                if *case_insensitive {
                    format!("COALESCE(weave_contains_ci({si}, {ss}), 0)")
                } else {
                    format!("COALESCE(instr({si}, {ss}) > 0, 0)")
                }
            }
        })
    }
}

/// Whether `status` is `summary.weave.status` and `literal` the string `"error"`.
fn is_error_status(status: &Compiled, literal: &Compiled) -> bool {
    matches!(status, Compiled::Typed(sql, Ty::Text) if sql == STATUS_SQL)
        && matches!(literal, Compiled::Literal(Value::String(s)) if s == "error")
}

/// SQL conditions (ANDed) for a `CallsFilter`.
pub(crate) fn filter_conditions(filter: &CallsFilter, params: &mut Params) -> Result<Vec<String>> {
    let mut conds = Vec::new();
    let lists: [(&str, &Option<Vec<String>>, &str); 7] = [
        ("parent_ids", &filter.parent_ids, "parent_id"),
        ("trace_ids", &filter.trace_ids, "trace_id"),
        ("call_ids", &filter.call_ids, "id"),
        ("thread_ids", &filter.thread_ids, "thread_id"),
        ("turn_ids", &filter.turn_ids, "turn_id"),
        ("wb_user_ids", &filter.wb_user_ids, "wb_user_id"),
        ("wb_run_ids", &filter.wb_run_ids, "wb_run_id"),
    ];
    let check_len = |name: &str, items: &[String]| {
        if items.len() > MAX_FILTER_LIST {
            Err(WeaveError::invalid_query(format!(
                "filter.{name} has {} values; at most {MAX_FILTER_LIST} are allowed",
                items.len()
            )))
        } else {
            Ok(())
        }
    };
    // An empty list means "not set", as on the Weave server (`if filter.op_names:`).
    let set = |l: &'_ Option<Vec<String>>| l.as_ref().filter(|v| !v.is_empty()).cloned();
    for (name, list, column) in lists {
        if let Some(items) = set(list) {
            check_len(name, &items)?;
            conds.push(format!("{column} IN {}", params.bind_list(&items)));
        }
    }
    if let Some(names) = set(&filter.op_names) {
        check_len("op_names", &names)?;
        let mut ors = Vec::new();
        let (wild, exact): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| n.ends_with(":*"));
        if !exact.is_empty() {
            let exact: Vec<String> = exact.into_iter().cloned().collect();
            ors.push(format!("op_name IN {}", params.bind_list(&exact)));
        }
        for w in wild {
            // `name:*` matches `name:<any digest>`; compare the prefix, no LIKE wildcards.
            let prefix = &w[..w.len() - 1];
            let p = params.bind(prefix.to_string());
            ors.push(format!("substr(op_name, 1, length({p})) = {p}"));
        }
        conds.push(if ors.is_empty() {
            "0".into()
        } else {
            format!("({})", ors.join(" OR "))
        });
    }
    for (name, list, kind) in [
        ("input_refs", &filter.input_refs, 0),
        ("output_refs", &filter.output_refs, 1),
    ] {
        if let Some(refs) = set(list) {
            check_len(name, &refs)?;
            conds.push(format!(
                "EXISTS (SELECT 1 FROM call_refs r WHERE r.project_id = calls.project_id AND r.call_id = calls.id \
                 AND r.kind = {kind} AND r.ref IN {})",
                params.bind_list(&refs)
            ));
        }
    }
    if filter.trace_roots_only == Some(true) {
        conds.push("parent_id IS NULL".into());
    }
    Ok(conds)
}

/// The SQL condition of a query's `$expr` over `table`.
pub(crate) fn query_condition(table: Table, query: &Query, params: &mut Params) -> Result<String> {
    Compiler { params, table }.operation(&query.expr)
}

/// Plain `started_at <op> ?` copies of the query's top-level comparisons of `started_at`
/// with a timestamp, for the calls WHERE clause to add beside the compiled query.
///
/// The compiled comparison is wrapped for SQL's NULLs (`COALESCE(started_at <= ?, 0)`), which
/// hides it from the planner, so a query bounded in time (the viewer's keyset pages, `--since`)
/// scanned the start index from its end. A copy is exact, not an approximation: the clause
/// also requires `started_at IS NOT NULL`, and a top-level conjunct must hold for a row to
/// match, so the plain comparison holds for exactly the rows the wrapped one admits. Only
/// conjuncts of the outermost `$and` are copied (under `$or` or `$not` they need not hold).
pub(crate) fn start_bounds(query: &Query, params: &mut Params) -> Vec<String> {
    fn walk(op: &Operation, params: &mut Params, out: &mut Vec<String>) {
        let (a, b, sql_op, flipped) = match op {
            Operation::And(ops) => {
                for o in ops {
                    if let Operand::Operation(inner) = o {
                        walk(inner, params, out);
                    }
                }
                return;
            }
            Operation::Eq(a, b) => (a, b, "=", "="),
            Operation::Gt(a, b) => (a, b, ">", "<"),
            Operation::Gte(a, b) => (a, b, ">=", "<="),
            Operation::Lt(a, b) => (a, b, "<", ">"),
            Operation::Lte(a, b) => (a, b, "<=", ">="),
            _ => return,
        };
        let is_start = |o: &Operand| matches!(o, Operand::GetField(f) if f == "started_at");
        let (literal, sql_op) = match (a, b) {
            (f, Operand::Literal(v)) if is_start(f) => (v, sql_op),
            (Operand::Literal(v), f) if is_start(f) => (v, flipped),
            _ => return,
        };
        if let Value::String(s) = literal {
            if let Ok(t) = s.parse::<Timestamp>() {
                out.push(format!("started_at {sql_op} {}", params.bind(t.as_nanos())));
            }
        }
    }
    let mut out = Vec::new();
    walk(&query.expr, params, &mut out);
    out
}

/// An ORDER BY clause (without the keywords) over `table` for explicit sort keys; `None` when
/// there are none.
pub(crate) fn order_by_keys(
    table: Table,
    keys: &[SortBy],
    params: &mut Params,
) -> Result<Option<String>> {
    let mut parts = Vec::new();
    for key in keys {
        let c = resolve_field(table, &key.field, params).map_err(|e| {
            WeaveError::invalid_query(format!(
                "sort_by: {}",
                e.to_string().trim_start_matches("invalid query: ")
            ))
        })?;
        let sql = Compiler { params, table }.natural(&c);
        let dir = match key.direction {
            SortDirection::Asc => "ASC",
            SortDirection::Desc => "DESC",
        };
        parts.push(format!("{sql} {dir} NULLS LAST"));
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join(", "))
    })
}

/// The ORDER BY clause (without the keywords) for `sort_by`, with the protocol's defaults:
/// `None` = `started_at asc, id asc`; `[]` = unordered; otherwise the keys plus an `id`
/// tiebreak in the direction of `started_at` when it is the last key, else descending.
pub(crate) fn order_by(sort_by: Option<&[SortBy]>, params: &mut Params) -> Result<Option<String>> {
    let default = [SortBy::asc("started_at")];
    let keys = match sort_by {
        None => &default[..],
        Some([]) => return Ok(None),
        Some(keys) => keys,
    };
    let mut parts: Vec<String> = order_by_keys(Table::Calls, keys, params)?
        .into_iter()
        .collect();
    let last = keys.last().expect("non-empty");
    let tiebreak = if last.field == "started_at" {
        last.direction
    } else {
        SortDirection::Desc
    };
    if !keys.iter().any(|k| k.field == "id") {
        parts.push(format!(
            "id {}",
            if tiebreak == SortDirection::Asc {
                "ASC"
            } else {
                "DESC"
            }
        ));
    }
    Ok(Some(parts.join(", ")))
}
