//! Feedback: [`crate::Call::feedback`] (Python's `call.feedback`, a `RefFeedbackQuery`) and
//! [`WeaveClient::get_feedback`] (Python's `client.get_feedback`, a `FeedbackQuery`).
//!
//! Every write is checked here before anything is sent (a reaction is exactly one emoji, a
//! note 1 to 1024 characters, a custom type does not start with `wandb.`, a payload is at most
//! 1 MiB of JSON, purges are by id), and checked again by the backend.
//!
//! Creating feedback on the embedded store goes straight to it, after a flush so the call it
//! is about is stored first, and returns the stored row. On a remote server
//! ([`TraceServer::queues_feedback`](crate::server::TraceServer::queues_feedback)) it is
//! checked against the server's own rules here, queued to the background writer behind the
//! calls already queued, and sent in batches (`/feedback/batch/create`, or one
//! `/feedback/create` per item on servers without it), retried through outages like calls:
//! as in the Python client, the returned row is then built locally — the server's payload
//! fields (a reaction's `alias`, …) are there, `created_at` is the client's clock, and
//! `wb_user_id` is empty until the row is read back.

use std::ops::Deref;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use super::WeaveClient;
use crate::error::{Result, WeaveError};
use crate::ids::generate_id;
use crate::query::{field, Expr, Query};
use crate::refs::Ref;
use crate::schema::{
    check_custom_type, check_note, check_payload_size, check_reaction, purge_ids,
    validate_feedback, Feedback, FeedbackCreateReq, FeedbackCreateRes, FeedbackPurgeReq,
    FeedbackQueryReq, JsonMap, SortBy, NOTE_FEEDBACK_TYPE, REACTION_FEEDBACK_TYPE,
};
use crate::time::Timestamp;

/// Python's default `limit` of `get_feedback`.
pub const DEFAULT_FEEDBACK_LIMIT: u64 = 100;

/// How many ids one purge request names at most.
const PURGE_CHUNK: usize = 1000;

/// What [`WeaveClient::get_feedback`] accepts (Python's `get_feedback(query, reaction, offset,
/// limit)`): a query or a feedback id, narrowed to one reaction, paged.
///
/// A `&str` / `String` converts to a lookup by id, a [`Query`] or query expression to a
/// query over feedback fields (`id`, `weave_ref`, `feedback_type`, `created_at`,
/// `wb_user_id`, `creator`, `payload.<path>`).
///
/// # Examples
///
/// ```
/// use weave_core::{query::field, FeedbackFilter};
/// let thumbs = FeedbackFilter::new().reaction("👍").limit(10);
/// let notes = FeedbackFilter::from(field("feedback_type").eq("wandb.note.1"));
/// # let _ = (thumbs, notes);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackFilter {
    /// A query over feedback fields.
    pub query: Option<Query>,
    /// Only reactions with this emoji.
    pub reaction: Option<String>,
    /// Skip this many (default 0).
    pub offset: u64,
    /// At most this many (default 100, as in Python).
    pub limit: u64,
}

impl Default for FeedbackFilter {
    fn default() -> Self {
        FeedbackFilter {
            query: None,
            reaction: None,
            offset: 0,
            limit: DEFAULT_FEEDBACK_LIMIT,
        }
    }
}

impl FeedbackFilter {
    /// Every feedback row of the project (the first 100).
    pub fn new() -> Self {
        Self::default()
    }
    /// The feedback with this id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.query = Some(Query::by_id(id));
        self
    }
    /// A query over feedback fields.
    pub fn query(mut self, q: impl Into<Query>) -> Self {
        self.query = Some(q.into());
        self
    }
    /// Only reactions with this emoji.
    pub fn reaction(mut self, emoji: impl Into<String>) -> Self {
        self.reaction = Some(emoji.into());
        self
    }
    /// Skip this many.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = n;
        self
    }
    /// At most this many.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = n;
        self
    }

    /// The query sent: the query, and'ed with the reaction shortcut (PROTOCOL §4.9).
    fn combined_query(&self) -> Option<Query> {
        let by_reaction = self.reaction.as_ref().map(|e| {
            field("feedback_type")
                .eq(REACTION_FEEDBACK_TYPE)
                .and(field("payload.emoji").eq(e.as_str()))
        });
        match (&self.query, by_reaction) {
            (None, None) => None,
            (Some(q), None) => Some(q.clone()),
            (None, Some(e)) => Some(Query::new(e)),
            (Some(q), Some(e)) => Some(Query::new(Expr::from(q.expr.clone()).and(e))),
        }
    }
}

impl From<Query> for FeedbackFilter {
    fn from(q: Query) -> Self {
        FeedbackFilter::new().query(q)
    }
}

impl From<Expr> for FeedbackFilter {
    fn from(e: Expr) -> Self {
        FeedbackFilter::new().query(e)
    }
}

impl From<&str> for FeedbackFilter {
    /// A feedback id.
    fn from(id: &str) -> Self {
        FeedbackFilter::new().id(id)
    }
}

impl From<String> for FeedbackFilter {
    /// A feedback id.
    fn from(id: String) -> Self {
        FeedbackFilter::new().id(id)
    }
}

/// A feedback query, run lazily and then cached (Python's `FeedbackQuery`): iterate it, count
/// it, index it. Rows come oldest first.
///
/// Iterating yields `Result<Feedback>`: when the query fails, its error is yielded once.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use serde_json::json;
/// # use weave_core::{SqliteServer, WeaveClient};
/// # let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
/// let call = client.create_call("answer", json!({"q": "2 + 2"}))?;
/// client.finish_call(&call, 4)?;
/// call.feedback().add_reaction("👍")?;
/// call.feedback().add_note("right")?;
/// let thumbs = client.get_feedback(weave_core::FeedbackFilter::new().reaction("👍"));
/// assert_eq!(thumbs.len()?, 1);
/// for f in &thumbs {
///     assert_eq!(f?.payload["alias"], ":thumbs_up:");
/// }
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Debug)]
pub struct FeedbackQuery {
    client: WeaveClient,
    project_id: String,
    query: Option<Query>,
    offset: Option<u64>,
    limit: Option<u64>,
    cache: Mutex<Option<Vec<Feedback>>>,
}

impl Clone for FeedbackQuery {
    fn clone(&self) -> Self {
        FeedbackQuery {
            client: self.client.clone(),
            project_id: self.project_id.clone(),
            query: self.query.clone(),
            offset: self.offset,
            limit: self.limit,
            cache: Mutex::new(self.cached().clone()),
        }
    }
}

impl FeedbackQuery {
    fn new(
        client: WeaveClient,
        project_id: String,
        query: Option<Query>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Self {
        FeedbackQuery {
            client,
            project_id,
            query,
            offset,
            limit,
            cache: Mutex::new(None),
        }
    }

    fn cached(&self) -> MutexGuard<'_, Option<Vec<Feedback>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn invalidate(&self) {
        *self.cached() = None;
    }

    /// The query sent (`None` = every row).
    pub fn query(&self) -> Option<&Query> {
        self.query.as_ref()
    }

    /// The rows: fetched on first use, then cached (see [`FeedbackQuery::refresh`]).
    pub fn execute(&self) -> Result<Vec<Feedback>> {
        if let Some(rows) = self.cached().as_ref() {
            return Ok(rows.clone());
        }
        self.refresh()
    }

    /// Fetches the rows again, replacing the cache.
    pub fn refresh(&self) -> Result<Vec<Feedback>> {
        self.client.flush();
        let res = self.client.server().feedback_query(FeedbackQueryReq {
            project_id: self.project_id.clone(),
            fields: None,
            query: self.query.clone(),
            sort_by: Some(vec![SortBy::asc("created_at")]),
            limit: self.limit,
            offset: self.offset,
        })?;
        let rows = res
            .result
            .into_iter()
            .map(|row| serde_json::from_value::<Feedback>(Value::Object(row)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        *self.cached() = Some(rows.clone());
        Ok(rows)
    }

    /// How many rows there are.
    pub fn len(&self) -> Result<usize> {
        if let Some(rows) = self.cached().as_ref() {
            return Ok(rows.len());
        }
        Ok(self.refresh()?.len())
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The row at `index`, oldest first.
    pub fn get(&self, index: usize) -> Result<Option<Feedback>> {
        Ok(self.execute()?.into_iter().nth(index))
    }

    /// The rows, as an iterator.
    pub fn iter(&self) -> FeedbackIter {
        FeedbackIter::from(self.execute())
    }

    /// The distinct refs the rows are about, in first-seen order.
    pub fn refs(&self) -> Result<Vec<String>> {
        let mut refs: Vec<String> = Vec::new();
        for f in self.execute()? {
            if !refs.contains(&f.weave_ref) {
                refs.push(f.weave_ref);
            }
        }
        Ok(refs)
    }
}

/// The rows of a [`FeedbackQuery`].
#[derive(Debug)]
pub struct FeedbackIter {
    rows: std::vec::IntoIter<Feedback>,
    error: Option<WeaveError>,
}

impl From<Result<Vec<Feedback>>> for FeedbackIter {
    fn from(r: Result<Vec<Feedback>>) -> Self {
        match r {
            Ok(rows) => FeedbackIter {
                rows: rows.into_iter(),
                error: None,
            },
            Err(e) => FeedbackIter {
                rows: Vec::new().into_iter(),
                error: Some(e),
            },
        }
    }
}

impl Iterator for FeedbackIter {
    type Item = Result<Feedback>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        self.rows.next().map(Ok)
    }
}

impl IntoIterator for FeedbackQuery {
    type Item = Result<Feedback>;
    type IntoIter = FeedbackIter;
    fn into_iter(self) -> FeedbackIter {
        self.iter()
    }
}

impl IntoIterator for &FeedbackQuery {
    type Item = Result<Feedback>;
    type IntoIter = FeedbackIter;
    fn into_iter(self) -> FeedbackIter {
        self.iter()
    }
}

/// The feedback of one ref — a call's, from [`crate::Call::feedback`] — to add to, list and
/// purge (Python's `RefFeedbackQuery`). Derefs to the [`FeedbackQuery`] of the ref's rows,
/// oldest first; adding or purging clears its cache.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use serde_json::json;
/// # use weave_core::{SqliteServer, WeaveClient};
/// # let client = WeaveClient::new("acme", "demo", Arc::new(SqliteServer::in_memory()?), false)?;
/// let call = client.create_call("answer", json!({"q": "2 + 2"}))?;
/// client.finish_call(&call, 4)?;
/// let feedback = call.feedback();
/// let thumbs = feedback.add_reaction("👍🏽")?;
/// assert_eq!(thumbs.payload["alias"], ":thumbs_up_medium_skin_tone:");
/// feedback.add_note("correct")?;
/// feedback.add("correctness", json!({"value": 1}))?;
/// assert_eq!(feedback.len()?, 3);
/// feedback.purge(&thumbs.id)?;
/// assert_eq!(feedback.len()?, 2);
/// assert!(feedback.add_reaction("👍👍").is_err());
/// # Ok::<(), weave_core::WeaveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RefFeedback {
    query: FeedbackQuery,
    weave_ref: String,
    creator: Option<String>,
}

impl Deref for RefFeedback {
    type Target = FeedbackQuery;
    fn deref(&self) -> &FeedbackQuery {
        &self.query
    }
}

impl IntoIterator for &RefFeedback {
    type Item = Result<Feedback>;
    type IntoIter = FeedbackIter;
    fn into_iter(self) -> FeedbackIter {
        self.query.iter()
    }
}

impl RefFeedback {
    /// The feedback of `weave_ref`, whose entity and project name the project.
    pub(crate) fn new(client: WeaveClient, weave_ref: String) -> Result<Self> {
        let parsed: Ref = weave_ref.parse()?;
        let (entity, project) = match &parsed {
            Ref::Object(o) => (o.entity.as_str(), o.project.as_str()),
            Ref::Table {
                entity, project, ..
            } => (entity.as_str(), project.as_str()),
            Ref::Call(c) => (c.entity.as_str(), c.project.as_str()),
        };
        let project_id = format!("{entity}/{project}");
        Ok(Self::in_project(client, project_id, weave_ref))
    }

    /// The feedback of `weave_ref`, a ref of `project_id`.
    pub(crate) fn in_project(client: WeaveClient, project_id: String, weave_ref: String) -> Self {
        let query = Query::new(field("weave_ref").eq(weave_ref.as_str()));
        RefFeedback {
            query: FeedbackQuery::new(client, project_id, Some(query), None, None),
            weave_ref,
            creator: None,
        }
    }

    /// The ref the feedback is about.
    pub fn weave_ref(&self) -> &str {
        &self.weave_ref
    }

    /// The display name recorded as the creator of feedback added through this handle.
    pub fn creator(mut self, name: impl Into<String>) -> Self {
        self.creator = Some(name.into());
        self
    }

    /// Adds a reaction: exactly one emoji (any skin tone). The stored payload carries the
    /// server's `alias`, `detoned` and `detoned_alias`.
    pub fn add_reaction(&self, emoji: &str) -> Result<Feedback> {
        check_reaction(emoji)?;
        let mut payload = JsonMap::new();
        payload.insert("emoji".into(), Value::String(emoji.to_string()));
        self.create(REACTION_FEEDBACK_TYPE, payload)
    }

    /// Adds a note of 1 to 1024 characters.
    pub fn add_note(&self, note: &str) -> Result<Feedback> {
        check_note(note)?;
        let mut payload = JsonMap::new();
        payload.insert("note".into(), Value::String(note.to_string()));
        self.create(NOTE_FEEDBACK_TYPE, payload)
    }

    /// Adds feedback of a custom type (not starting with `wandb.`) whose payload is anything
    /// serialising to a JSON object of at most 1 MiB.
    pub fn add(&self, feedback_type: &str, payload: impl Serialize) -> Result<Feedback> {
        check_custom_type(feedback_type)?;
        let payload = match serde_json::to_value(payload)? {
            Value::Object(m) => m,
            other => {
                return Err(WeaveError::invalid_input(format!(
                    "a feedback payload must be a JSON object, got {}",
                    crate::schema::json_kind(&other)
                )))
            }
        };
        check_payload_size(&payload)?;
        self.create(feedback_type, payload)
    }

    /// Deletes one feedback row of this ref's project, by id.
    pub fn purge(&self, feedback_id: &str) -> Result<()> {
        self.query
            .client
            .purge_feedback_in(&self.query.project_id, [feedback_id])?;
        self.query.invalidate();
        Ok(())
    }

    fn create(&self, feedback_type: &str, payload: JsonMap) -> Result<Feedback> {
        let client = &self.query.client;
        let mut req = FeedbackCreateReq::new(
            self.query.project_id.clone(),
            self.weave_ref.clone(),
            feedback_type,
            payload,
        );
        req.id = Some(generate_id());
        req.creator = self.creator.clone();
        let res = if client.server().capabilities().queues_feedback {
            let req = validate_feedback(req.clone())?;
            let res = FeedbackCreateRes {
                id: req.id.clone().unwrap_or_default(),
                created_at: Timestamp::now(),
                wb_user_id: String::new(),
                payload: req.payload.clone(),
            };
            client.enqueue_feedback(req)?;
            res
        } else {
            client.flush();
            client.server().feedback_create(req.clone())?
        };
        self.query.invalidate();
        Ok(Feedback {
            id: res.id,
            project_id: req.project_id,
            weave_ref: req.weave_ref,
            wb_user_id: res.wb_user_id,
            creator: req.creator,
            created_at: res.created_at,
            feedback_type: req.feedback_type,
            payload: res.payload,
            annotation_ref: None,
            runnable_ref: None,
            call_ref: None,
            trigger_ref: None,
        })
    }
}

impl WeaveClient {
    /// Queries the project's feedback (Python's `get_feedback`): by query, by id
    /// (`"<feedback id>".into()`), by reaction, paged (default: the first 100). The query runs
    /// when the result is first used; rows come oldest first.
    pub fn get_feedback(&self, filter: impl Into<FeedbackFilter>) -> FeedbackQuery {
        let filter = filter.into();
        FeedbackQuery::new(
            self.clone(),
            self.project_id().to_string(),
            filter.combined_query(),
            Some(filter.offset),
            Some(filter.limit),
        )
    }

    /// Alias of [`WeaveClient::get_feedback`], as in Python.
    pub fn feedback(&self, filter: impl Into<FeedbackFilter>) -> FeedbackQuery {
        self.get_feedback(filter)
    }

    /// The feedback of any ref (a call, an object, …) of this project, to add to and list.
    pub fn ref_feedback(&self, weave_ref: &str) -> Result<RefFeedback> {
        let rf = RefFeedback::new(self.clone(), weave_ref.to_string())?;
        if rf.query.project_id != self.project_id() {
            return Err(WeaveError::invalid_input(format!(
                "ref {weave_ref:?} is not in project {:?}",
                self.project_id()
            )));
        }
        Ok(rf)
    }

    /// Deletes feedback by id.
    pub fn purge_feedback<S: AsRef<str>>(&self, ids: impl IntoIterator<Item = S>) -> Result<()> {
        self.purge_feedback_in(self.project_id(), ids)
    }

    /// Deletes the feedback a query names — which must be by id: `$eq` on `id`, or `$or` of
    /// such `$eq`s; any other query is refused before anything is sent.
    pub fn purge_feedback_where(&self, query: impl Into<Query>) -> Result<()> {
        let query = query.into();
        purge_ids(&query)?;
        self.flush();
        self.server().feedback_purge(FeedbackPurgeReq {
            project_id: self.project_id().to_string(),
            query,
        })?;
        Ok(())
    }

    fn purge_feedback_in<S: AsRef<str>>(
        &self,
        project_id: &str,
        ids: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        let ids: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_string()).collect();
        if let Some(i) = ids.iter().position(String::is_empty) {
            return Err(WeaveError::invalid_input(format!(
                "purge_feedback: feedback id {i} is empty"
            )));
        }
        self.flush();
        for chunk in ids.chunks(PURGE_CHUNK) {
            let mut ids = chunk.iter();
            let Some(first) = ids.next() else { break };
            let expr = ids.fold(field("id").eq(first.as_str()), |e, id| {
                e.or(field("id").eq(id.as_str()))
            });
            self.server().feedback_purge(FeedbackPurgeReq {
                project_id: project_id.to_string(),
                query: Query::new(expr),
            })?;
        }
        Ok(())
    }
}
