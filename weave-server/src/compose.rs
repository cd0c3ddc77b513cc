//! Protocol routes made of the backend's own methods, so that every [`TraceServer`] gets them:
//! the v2 `calls/complete` write path, `/table/update`, `/table/query_stats_batch`,
//! `/threads/stream_query` and the multipart file upload.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weave_core::schema::*;
use weave_core::{Result, Timestamp, TraceServer, WeaveError};

use crate::routes::blocking;
use crate::{ApiError, AppState};

/// `POST /v2/{entity}/{project}/calls/complete`: `{"batch": [CompletedCallSchemaForInsert]}`.
#[derive(Debug, Deserialize)]
pub struct CallsCompleteReq {
    /// Whole calls, start and end in one.
    pub batch: Vec<CompletedCallSchemaForInsert>,
}

/// Writes whole calls as the start and end halves of one `/call/upsert_batch`: the same
/// rows, in one transaction of the embedded store. Every call must belong to the project of
/// the route (`project_id` of the path), as on the Weave server.
pub fn calls_complete(
    backend: &dyn TraceServer,
    project_id: &str,
    req: CallsCompleteReq,
) -> Result<CallEndRes> {
    let mut batch = Vec::with_capacity(req.batch.len() * 2);
    for call in req.batch {
        if call.project_id != project_id {
            return Err(WeaveError::InvalidInput(format!(
                "calls/complete: call {} is of project {:?}, not the route's {project_id:?}",
                call.id, call.project_id
            )));
        }
        let (start, end) = call.into_start_end();
        batch.push(CallBatchItem::Start(CallStartReq { start }));
        batch.push(CallBatchItem::End(CallEndReq { end }));
    }
    backend.call_start_batch(CallCreateBatchReq { batch })?;
    Ok(CallEndRes {})
}

/// One edit of `/table/update`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableUpdate {
    /// Adds a row at the end.
    Append {
        /// The row (a JSON object).
        row: Value,
    },
    /// Removes the row at `index`.
    Pop {
        /// Its position.
        index: i64,
    },
    /// Inserts a row at `index`.
    Insert {
        /// The position.
        index: i64,
        /// The row (a JSON object).
        row: Value,
    },
}

/// `POST /table/update`.
#[derive(Debug, Deserialize)]
pub struct TableUpdateReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The table the edits apply to.
    pub base_digest: String,
    /// The edits, applied in order.
    pub updates: Vec<TableUpdate>,
}

/// Response of `/table/update`.
#[derive(Debug, Serialize)]
pub struct TableUpdateRes {
    /// The new table's digest.
    pub digest: String,
    /// The digests of the rows the edits added, in the order of the edits.
    pub updated_row_digests: Vec<String>,
}

/// A new table: the base table's rows with `updates` applied. Tables are content-addressed,
/// so the base is left as it is.
pub fn table_update(backend: &dyn TraceServer, req: TableUpdateReq) -> Result<TableUpdateRes> {
    let base = backend.table_query(TableQueryReq {
        project_id: req.project_id.clone(),
        digest: req.base_digest.clone(),
        filter: None,
        limit: None,
        offset: None,
        sort_by: None,
    })?;
    let mut rows: Vec<Value> = base.rows.into_iter().map(|r| r.val).collect();
    let mut added = Vec::new();
    for (i, update) in req.updates.into_iter().enumerate() {
        let index_of = |index: i64, len: usize, what: &str| -> Result<usize> {
            usize::try_from(index)
                .ok()
                .filter(|&ix| ix <= len)
                .ok_or_else(|| {
                    WeaveError::InvalidInput(format!(
                        "table/update: updates[{i}].{what}.index {index} is outside the table's {len} rows"
                    ))
                })
        };
        match update {
            TableUpdate::Append { row } => {
                added.push(rows.len());
                rows.push(row);
            }
            TableUpdate::Insert { index, row } => {
                let ix = index_of(index, rows.len(), "insert")?;
                for a in added.iter_mut().filter(|a| **a >= ix) {
                    *a += 1;
                }
                added.push(ix);
                rows.insert(ix, row);
            }
            TableUpdate::Pop { index } => {
                let ix = index_of(index, rows.len().saturating_sub(1), "pop")?;
                if rows.is_empty() {
                    return Err(WeaveError::InvalidInput(format!(
                        "table/update: updates[{i}].pop: the table is empty"
                    )));
                }
                rows.remove(ix);
                added.retain(|a| *a != ix);
                for a in added.iter_mut().filter(|a| **a > ix) {
                    *a -= 1;
                }
            }
        }
    }
    let created = backend.table_create(TableCreateReq {
        table: TableSchemaForInsert {
            project_id: req.project_id,
            rows,
        },
    })?;
    Ok(TableUpdateRes {
        updated_row_digests: added
            .iter()
            .filter_map(|ix| created.row_digests.get(*ix).cloned())
            .collect(),
        digest: created.digest,
    })
}

/// `POST /table/query_stats_batch`.
#[derive(Debug, Deserialize)]
pub struct TableQueryStatsBatchReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// The tables.
    #[serde(default)]
    pub digests: Vec<String>,
}

/// One table of `/table/query_stats_batch`.
#[derive(Debug, Serialize)]
pub struct TableStats {
    /// The table digest.
    pub digest: String,
    /// Its number of rows.
    pub count: u64,
}

/// Response of `/table/query_stats_batch`.
#[derive(Debug, Serialize)]
pub struct TableQueryStatsBatchRes {
    /// One entry per table found, in the order asked.
    pub tables: Vec<TableStats>,
}

/// The row counts of several tables; unknown digests are left out, as on the Weave server.
pub fn table_query_stats_batch(
    backend: &dyn TraceServer,
    req: TableQueryStatsBatchReq,
) -> Result<TableQueryStatsBatchRes> {
    let mut tables = Vec::with_capacity(req.digests.len());
    for digest in req.digests {
        match backend.table_query_stats(TableQueryStatsReq {
            project_id: req.project_id.clone(),
            digest: digest.clone(),
        }) {
            Ok(s) => tables.push(TableStats {
                digest,
                count: s.count,
            }),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(TableQueryStatsBatchRes { tables })
}

/// The `filter` of `/threads/stream_query`.
#[derive(Debug, Default, Deserialize)]
pub struct ThreadsQueryFilter {
    /// Threads whose last activity is after this.
    #[serde(default)]
    pub after_date: Option<Timestamp>,
    /// Threads whose last activity is before this.
    #[serde(default)]
    pub before_date: Option<Timestamp>,
    /// Only these threads.
    #[serde(default)]
    pub thread_ids: Option<Vec<String>>,
}

/// `POST /threads/stream_query`.
#[derive(Debug, Deserialize)]
pub struct ThreadsQueryReq {
    /// `"entity/project"`.
    pub project_id: String,
    /// Filter.
    #[serde(default)]
    pub filter: Option<ThreadsQueryFilter>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Sort keys (a field of [`ThreadSchema`]); default: last activity, newest first.
    #[serde(default)]
    pub sort_by: Option<Vec<SortBy>>,
}

/// One conversation thread, as `/threads/stream_query` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadSchema {
    /// The thread id.
    pub thread_id: String,
    /// How many turns (calls that are their own turn: `turn_id == id`).
    pub turn_count: u64,
    /// When the first turn started.
    pub start_time: Timestamp,
    /// When the thread was last active (the latest end or start of a turn).
    pub last_updated: Timestamp,
    /// The first turn's id.
    pub first_turn_id: Option<String>,
    /// The last turn's id.
    pub last_turn_id: Option<String>,
    /// The median turn duration.
    pub p50_turn_duration_ms: Option<f64>,
    /// The 99th percentile of turn durations.
    pub p99_turn_duration_ms: Option<f64>,
}

/// The threads of a project, from its calls that have a `thread_id`: a turn is a call whose
/// `turn_id` is its own id (what the SDKs write for the outermost call of a turn).
pub fn threads(backend: &dyn TraceServer, req: ThreadsQueryReq) -> Result<Vec<ThreadSchema>> {
    let filter = req.filter.unwrap_or_default();
    let mut q = CallsQueryReq::new(req.project_id);
    q.columns = Some(
        ["id", "thread_id", "turn_id", "started_at", "ended_at"]
            .map(String::from)
            .to_vec(),
    );
    q.filter = Some(CallsFilter {
        thread_ids: filter.thread_ids.clone(),
        ..Default::default()
    });
    struct Acc {
        turns: Vec<(Timestamp, String, Option<f64>)>,
        last: Timestamp,
        first_seen: Timestamp,
    }
    let mut by_thread: HashMap<String, Acc> = HashMap::new();
    for call in backend.calls_query_stream(q)? {
        let call = call?;
        let Some(thread) = call.thread_id.clone() else {
            continue;
        };
        let end = call.ended_at.unwrap_or(call.started_at);
        let acc = by_thread.entry(thread).or_insert_with(|| Acc {
            turns: Vec::new(),
            last: end,
            first_seen: call.started_at,
        });
        acc.last = acc.last.max(end);
        acc.first_seen = acc.first_seen.min(call.started_at);
        if call.turn_id.as_deref() == Some(call.id.as_str()) {
            let ms = call
                .ended_at
                .map(|e| (e.as_nanos() - call.started_at.as_nanos()) as f64 / 1e6);
            acc.turns.push((call.started_at, call.id.clone(), ms));
        }
    }
    let mut out: Vec<ThreadSchema> = by_thread
        .into_iter()
        .map(|(thread_id, mut acc)| {
            acc.turns
                .sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let mut durations: Vec<f64> = acc.turns.iter().filter_map(|t| t.2).collect();
            durations.sort_by(f64::total_cmp);
            let pct = |p: f64| -> Option<f64> {
                if durations.is_empty() {
                    return None;
                }
                let rank = p * (durations.len() - 1) as f64;
                let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
                Some(durations[lo] + (durations[hi] - durations[lo]) * (rank - lo as f64))
            };
            ThreadSchema {
                turn_count: acc.turns.len() as u64,
                start_time: acc.turns.first().map_or(acc.first_seen, |t| t.0),
                last_updated: acc.last,
                first_turn_id: acc.turns.first().map(|t| t.1.clone()),
                last_turn_id: acc.turns.last().map(|t| t.1.clone()),
                p50_turn_duration_ms: pct(0.5),
                p99_turn_duration_ms: pct(0.99),
                thread_id,
            }
        })
        .filter(|t| filter.after_date.is_none_or(|d| t.last_updated > d))
        .filter(|t| filter.before_date.is_none_or(|d| t.last_updated < d))
        .collect();
    let sort = req
        .sort_by
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec![SortBy::desc("last_updated")]);
    for s in &sort {
        if !matches!(
            s.field.as_str(),
            "thread_id"
                | "turn_count"
                | "start_time"
                | "last_updated"
                | "p50_turn_duration_ms"
                | "p99_turn_duration_ms"
        ) {
            return Err(WeaveError::InvalidQuery(format!(
                "threads sort_by: unknown field {:?}",
                s.field
            )));
        }
    }
    out.sort_by(|a, b| {
        for s in &sort {
            let ord = match s.field.as_str() {
                "thread_id" => a.thread_id.cmp(&b.thread_id),
                "turn_count" => a.turn_count.cmp(&b.turn_count),
                "start_time" => a.start_time.cmp(&b.start_time),
                "p50_turn_duration_ms" => a
                    .p50_turn_duration_ms
                    .partial_cmp(&b.p50_turn_duration_ms)
                    .unwrap_or(std::cmp::Ordering::Equal),
                "p99_turn_duration_ms" => a
                    .p99_turn_duration_ms
                    .partial_cmp(&b.p99_turn_duration_ms)
                    .unwrap_or(std::cmp::Ordering::Equal),
                _ => a.last_updated.cmp(&b.last_updated),
            };
            let ord = if matches!(s.direction, SortDirection::Desc) {
                ord.reverse()
            } else {
                ord
            };
            if ord.is_ne() {
                return ord;
            }
        }
        a.thread_id.cmp(&b.thread_id)
    });
    let offset = req.offset.unwrap_or(0).min(out.len() as u64) as usize;
    out.drain(..offset);
    if let Some(limit) = req.limit {
        out.truncate(limit.min(usize::MAX as u64) as usize);
    }
    Ok(out)
}

/// `POST /file/create` and `/files/create`: multipart with the fields `project_id`,
/// `expected_digest` (optional: the upload is refused with 409 when the content's digest
/// differs) and the file part `file`, whose file name is the logical name.
pub async fn file_create(State(state): State<AppState>, req: Request) -> Response {
    match file_create_inner(&state, req).await {
        Ok(res) => Json(res).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn file_create_inner(state: &AppState, req: Request) -> Result<FileCreateRes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        ApiError::unprocessable(
            vec!["body".into()],
            format!(
                "expected multipart/form-data with a boundary, got content type {content_type:?}"
            ),
            "missing",
        )
    })?;
    let body = crate::body::read_limited(req, state.options.max_body_bytes).await?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut project_id, mut expected, mut file) = (None, None, None);
    let bad = |e: multer::Error| ApiError::unprocessable(vec!["body".into()], e, "value_error");
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or("") {
            "project_id" => project_id = Some(field.text().await.map_err(bad)?),
            "expected_digest" => expected = Some(field.text().await.map_err(bad)?),
            "file" => {
                let name = field.file_name().unwrap_or("file").to_string();
                file = Some((name, field.bytes().await.map_err(bad)?));
            }
            _ => {}
        }
    }
    let missing = |name: &str| {
        ApiError::unprocessable(
            vec!["body".into(), name.into()],
            "Field required",
            "missing",
        )
    };
    let project_id = project_id.ok_or_else(|| missing("project_id"))?;
    let (name, content) = file.ok_or_else(|| missing("file"))?;
    let digest = weave_core::digest::file_digest(&content);
    if let Some(expected) = expected.filter(|e| !e.is_empty()) {
        if expected != digest {
            return Err(ApiError::reason(
                StatusCode::CONFLICT,
                format!("file digest mismatch: expected {expected}, the content's is {digest}"),
            ));
        }
    }
    blocking(state, move |b| {
        b.file_create(FileCreateReq {
            project_id,
            name,
            content: content.to_vec(),
        })
    })
    .await
}
