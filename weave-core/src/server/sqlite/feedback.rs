//! Feedback (`/feedback/*`, PROTOCOL §3.6, §4.9) and the feedback of calls
//! (`include_feedback`, §4.5).
//!
//! Rows of the `feedback` table, validated as the Weave server validates them: reactions are
//! exactly one emoji and get `alias`, `detoned` and `detoned_alias`; notes are 1 to 1024
//! characters; annotation and runnable feedback carry the refs their type needs and no other
//! type carries them; payloads are at most 1 MiB of JSON; purges are by id only.

use std::collections::HashMap;

use rusqlite::{params_from_iter, Connection, OptionalExtension, Row, Transaction};
use serde_json::{json, Map, Value};

use super::query::{self, Params, Table};
use crate::error::{Result, WeaveError};
use crate::ids::generate_id;
use crate::refs::WEAVE_SCHEME;
use crate::schema::*;
use crate::time::Timestamp;

/// Who created feedback when the request does not say: the embedded store has no users.
const LOCAL_WB_USER_ID: &str = "local";

/// The columns of a feedback row, in the order `/feedback/query` returns them.
const FIELDS: &[&str] = &[
    "id",
    "project_id",
    "weave_ref",
    "wb_user_id",
    "creator",
    "created_at",
    "feedback_type",
    "payload",
    "annotation_ref",
    "runnable_ref",
    "call_ref",
    "trigger_ref",
];

/// A validated row, ready to insert.
struct NewRow {
    id: String,
    req: FeedbackCreateReq,
    wb_user_id: String,
    created_at: Timestamp,
}

fn new_row(req: FeedbackCreateReq) -> NewRow {
    NewRow {
        id: req.id.clone().unwrap_or_else(generate_id),
        wb_user_id: req
            .wb_user_id
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| LOCAL_WB_USER_ID.to_string()),
        created_at: Timestamp::now(),
        req,
    }
}

fn invalid(msg: impl std::fmt::Display) -> WeaveError {
    WeaveError::invalid_input(msg)
}

fn insert(tx: &Transaction<'_>, row: NewRow) -> Result<FeedbackCreateRes> {
    let exists: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM feedback WHERE id = ?1")?
        .query_row([&row.id], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(invalid(format!("feedback id {:?} already exists", row.id)));
    }
    let r = &row.req;
    tx.prepare_cached(
        "INSERT INTO feedback (id, project_id, weave_ref, wb_user_id, creator, created_at, feedback_type, \
         payload, annotation_ref, runnable_ref, call_ref, trigger_ref) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        row.id,
        r.project_id,
        r.weave_ref,
        row.wb_user_id,
        r.creator,
        row.created_at.as_nanos(),
        r.feedback_type,
        serde_json::to_string(&r.payload)?,
        r.annotation_ref,
        r.runnable_ref,
        r.call_ref,
        r.trigger_ref,
    ])?;
    Ok(FeedbackCreateRes {
        id: row.id,
        created_at: row.created_at,
        wb_user_id: row.wb_user_id,
        payload: row.req.payload,
    })
}

/// Validates every request, then stores them all in one transaction.
pub(super) fn create(
    conn: &mut Connection,
    reqs: Vec<FeedbackCreateReq>,
) -> Result<Vec<FeedbackCreateRes>> {
    let many = reqs.len() > 1;
    let rows = reqs
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            validate_feedback(r).map(new_row).map_err(|e| match e {
                WeaveError::InvalidInput(m) if many => {
                    WeaveError::InvalidInput(format!("batch item {i}: {m}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tx = conn.transaction()?;
    let mut res = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        res.push(insert(&tx, row).map_err(|e| match e {
            WeaveError::InvalidInput(m) if many => {
                WeaveError::InvalidInput(format!("batch item {i}: {m}"))
            }
            other => other,
        })?);
    }
    tx.commit()?;
    Ok(res)
}

/// Purges `feedback_id` and creates the replacement, atomically; the replacement is validated
/// first, so a rejected one leaves the old row in place.
pub(super) fn replace(
    conn: &mut Connection,
    req: FeedbackReplaceReq,
) -> Result<FeedbackReplaceRes> {
    let row = new_row(validate_feedback(req.create)?);
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM feedback WHERE project_id = ?1 AND id = ?2")?
        .execute(rusqlite::params![row.req.project_id, req.feedback_id])?;
    let res = insert(&tx, row)?;
    tx.commit()?;
    Ok(res)
}

pub(super) fn purge(conn: &Connection, req: FeedbackPurgeReq) -> Result<FeedbackPurgeRes> {
    let ids = purge_ids(&req.query)?;
    conn.prepare_cached(
        "DELETE FROM feedback WHERE project_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
    )?
    .execute(rusqlite::params![
        req.project_id,
        serde_json::to_string(&ids)?
    ])?;
    Ok(FeedbackPurgeRes {})
}

/// A selected output field.
enum Field {
    /// A column, by its index in [`FIELDS`].
    Column(usize),
    /// A path under `payload` (the key is the requested name).
    PayloadPath(String, Vec<String>),
}

fn parse_fields(fields: Option<&[String]>) -> Result<Vec<Field>> {
    let Some(fields) = fields.filter(|f| !f.is_empty()) else {
        return Ok((0..FIELDS.len()).map(Field::Column).collect());
    };
    fields
        .iter()
        .map(|f| {
            if let Some(i) = FIELDS.iter().position(|c| c == f) {
                return Ok(Field::Column(i));
            }
            if let Some(path) = f.strip_prefix("payload.") {
                let segments: Vec<String> = path.split('.').map(str::to_string).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(WeaveError::invalid_query(format!(
                        "fields: bad path {f:?}: empty segment"
                    )));
                }
                return Ok(Field::PayloadPath(f.clone(), segments));
            }
            Err(WeaveError::invalid_query(format!(
                "fields: unknown feedback field {f:?} (expected one of {}, or payload.<path>)",
                FIELDS.join(", ")
            )))
        })
        .collect()
}

/// The value at `path` in `v` (a numeric segment also indexes a list); null when missing.
fn get_path(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for seg in path {
        let next = match cur {
            Value::Object(m) => m.get(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// A row's columns as JSON values, in [`FIELDS`] order.
fn row_values(r: &Row<'_>) -> rusqlite::Result<Vec<Value>> {
    let text = |i: usize| -> rusqlite::Result<Value> {
        Ok(r.get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::String))
    };
    let payload: String = r.get(7)?;
    Ok(vec![
        text(0)?,
        text(1)?,
        text(2)?,
        text(3)?,
        text(4)?,
        Value::String(Timestamp::from_nanos(r.get(5)?).to_string()),
        text(6)?,
        serde_json::from_str(&payload).unwrap_or_else(|_| Value::Object(Map::new())),
        text(8)?,
        text(9)?,
        text(10)?,
        text(11)?,
    ])
}

pub(super) fn query(conn: &Connection, req: FeedbackQueryReq) -> Result<FeedbackQueryRes> {
    let fields = parse_fields(req.fields.as_deref())?;
    let mut params = Params::default();
    let mut sql = format!(
        "SELECT {} FROM feedback WHERE project_id = {}",
        FIELDS.join(", "),
        params.bind(req.project_id.clone())
    );
    query::append_query_sort_page(
        &mut sql,
        Table::Feedback,
        req.query.as_ref(),
        req.sort_by.as_deref(),
        req.limit,
        req.offset,
        &mut params,
    )?;
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.0.iter()), row_values)?;
    let mut result = Vec::new();
    for row in rows {
        let mut values = row?;
        let mut out = Map::new();
        for f in &fields {
            match f {
                Field::Column(i) => {
                    out.insert(FIELDS[*i].to_string(), std::mem::take(&mut values[*i]));
                }
                Field::PayloadPath(name, path) => {
                    out.insert(name.clone(), get_path(&values[7], path));
                }
            }
        }
        result.push(out);
    }
    Ok(FeedbackQueryRes { result })
}

/// Fills `summary.weave.feedback` of each call (whose summary was selected) with the feedback
/// on the call's ref, oldest first, in the shape the Weave server gives it.
pub(super) fn apply(conn: &Connection, project_id: &str, calls: &mut [CallSchema]) -> Result<()> {
    let call_ref = |id: &str| format!("{WEAVE_SCHEME}{project_id}/call/{id}");
    let refs: Vec<String> = calls
        .iter()
        .filter(|c| c.summary.is_some())
        .map(|c| call_ref(&c.id))
        .collect();
    if refs.is_empty() {
        return Ok(());
    }
    let mut by_ref: HashMap<String, Vec<Value>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM feedback WHERE project_id = ?1 AND weave_ref IN (SELECT value FROM json_each(?2)) \
             ORDER BY created_at, rowid",
            FIELDS.join(", ")
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![project_id, serde_json::to_string(&refs)?],
            row_values,
        )?;
        for row in rows {
            let v = row?;
            let weave_ref = v[2].as_str().unwrap_or_default().to_string();
            by_ref.entry(weave_ref).or_default().push(json!({
                "id": v[0],
                "feedback_type": v[6],
                "weave_ref": v[2],
                "payload": v[7],
                "creator": v[4],
                "created_at": v[5],
                "wb_user_id": v[3],
                "runnable_ref": v[9],
                "call_ref": v[10],
                "trigger_ref": v[11],
                "annotation_ref": v[8],
            }));
        }
    }
    for call in calls.iter_mut() {
        let feedback = by_ref.remove(&call_ref(&call.id)).unwrap_or_default();
        let Some(summary) = call.summary.as_mut() else {
            continue;
        };
        let weave = summary
            .entry("weave")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(w) = weave {
            w.insert("feedback".into(), Value::Array(feedback));
        }
    }
    Ok(())
}
