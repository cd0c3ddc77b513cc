//! Writing a batch to a backend, whatever it holds (calls, feedback): retries with backoff
//! while the backend is unavailable, halving on 413, the oversized call shrunk once, a batch
//! rejected as invalid written item by item so only the bad items are dropped.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::senders::Senders;
use super::wire::RemoteCall;
use super::{write_now, Counters, FIRST_BACKOFF, MAX_BACKOFF, RETRY_DELAYS};
use crate::error::WeaveError;
use crate::limits::{exceeds_limits_marker, FIELD_BYTES_LIMIT};
use crate::query::{field, Query};
use crate::schema::{
    CallBatchItem, FeedbackCreateBatchReq, FeedbackCreateReq, FeedbackQueryReq, JsonMap,
};
use crate::server::TraceServer;

/// After a backend error other than unavailability ([`WeaveError::Backend`]): counts a retry
/// and waits [`RETRY_DELAYS`]`[failures]` when failures are left, else returns false (the
/// request is then final: split or dropped).
pub(super) fn retry_failure(failures: &mut u32, counters: &Counters) -> bool {
    let Some(&delay) = RETRY_DELAYS.get(*failures as usize) else {
        return false;
    };
    counters.retries.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(delay);
    *failures += 1;
    true
}

/// Counts a retry and waits before it ([`backoff`]); past the shutdown deadline, drops the
/// `n` items instead (counted and reported) and returns false.
pub(super) fn wait_to_retry(
    attempt: &mut u32,
    retry_after: Option<Duration>,
    n: usize,
    counters: &Counters,
) -> bool {
    counters.retries.fetch_add(1, Ordering::Relaxed);
    if !backoff_wait(backoff(*attempt, retry_after), counters) {
        counters.drop_items(
            n as u64,
            "the backend was still unavailable when the client shut down",
        );
        return false;
    }
    *attempt = attempt.saturating_add(1);
    true
}

/// Waits `d`, or less when the writer is shutting down (it is unparked then). Returns false
/// when the shutdown deadline has passed.
pub(super) fn backoff_wait(d: Duration, counters: &Counters) -> bool {
    let until = Instant::now() + d;
    loop {
        let now = Instant::now();
        if let Some(deadline) = counters.deadline() {
            if now >= deadline {
                return false;
            }
        }
        if now >= until {
            return true;
        }
        let mut wait = until - now;
        if let Some(deadline) = counters.deadline() {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        std::thread::park_timeout(wait);
    }
}

/// The wait before retry `attempt` (0-based): exponential from [`FIRST_BACKOFF`] to
/// [`MAX_BACKOFF`], with up to 50% random jitter, and never less than `retry_after`.
pub(super) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let jitter = exp.mul_f64(0.5 * jitter_unit());
    (exp + jitter).max(retry_after.unwrap_or_default())
}

pub(super) fn jitter_unit() -> f64 {
    crate::rand::unit().unwrap_or(0.5)
}

/// Writes a batch, splitting it to stay under the backend's request size; each item counts
/// as done once it is written or dropped. The requests go through `senders` when given, else
/// are written here.
///
/// Each item is serialised once, into the body of the request it goes in
/// (`{"batch":[…]}`, the shape of every batch route): an item that would take the body past
/// the limit starts the next one. A backend that takes bodies sends that body as it is.
pub(super) fn write_batch<T: Batched + Send + 'static>(
    server: &dyn TraceServer,
    batch: Vec<T>,
    counters: &Counters,
    senders: Option<&Senders>,
) {
    const OPEN: &[u8] = b"{\"batch\":[";
    const CLOSE: &[u8] = b"]}";
    if batch.is_empty() {
        return;
    }
    let write = |chunk: Vec<T>, body: Option<Vec<u8>>| match senders {
        Some(s) => s.send(chunk, body),
        None => write_now(server, chunk, body, counters),
    };
    let Some(max) = server.capabilities().max_request_bytes else {
        write(batch, None);
        return;
    };
    // The largest item that fits in a request on its own.
    let budget = max.saturating_sub(OPEN.len() + CLOSE.len());
    // Appends `item`'s JSON; its length, or `None` (nothing appended) when it is over budget.
    let append = |body: &mut Vec<u8>, item: &T| {
        let start = body.len();
        match serde_json::to_writer(&mut *body, item) {
            Ok(()) if body.len() - start <= budget => Some(()),
            _ => {
                body.truncate(start);
                None
            }
        }
    };
    let mut chunk = Vec::new();
    let mut body = OPEN.to_vec();
    for mut item in batch {
        let at = body.len();
        if !chunk.is_empty() {
            body.push(b',');
        }
        let start = body.len();
        if append(&mut body, &item).is_none() {
            // Too large for any request: the server's marker in place of its big fields.
            item.shrink();
            if append(&mut body, &item).is_none() {
                body.truncate(at);
                counters.drop_items(
                    1,
                    &format!(
                        "a {} is too large for any request, even without its large fields",
                        T::NOUN
                    ),
                );
                counters.done.fetch_add(1, Ordering::SeqCst);
                continue;
            }
        }
        if body.len() + CLOSE.len() > max && !chunk.is_empty() {
            let item_json = body[start..].to_vec();
            body.truncate(at);
            body.extend_from_slice(CLOSE);
            let full = std::mem::replace(&mut body, OPEN.to_vec());
            write(std::mem::take(&mut chunk), Some(full));
            body.extend_from_slice(&item_json);
        }
        chunk.push(item);
    }
    if !chunk.is_empty() {
        body.extend_from_slice(CLOSE);
        write(chunk, Some(body));
    }
}

/// What the writer sends in batches: call starts and ends, and feedback.
pub(super) trait Batched: serde::Serialize + Clone {
    /// What one item is called in drop reports.
    const NOUN: &'static str;

    /// Sends one request's worth of items (kept by the caller, to retry or split them).
    /// `body`: the chunk serialised as `{"batch":[…]}`, when the caller has it.
    fn send(
        server: &dyn TraceServer,
        chunk: &[Self],
        body: Option<&[u8]>,
        counters: &Counters,
    ) -> crate::error::Result<()>;

    /// The items of `chunk` the backend does not hold yet (one query for the whole chunk).
    fn unsent(
        server: &dyn TraceServer,
        chunk: &[Self],
        counters: &Counters,
    ) -> crate::error::Result<Vec<Self>>;

    /// Whether the backend already holds what this item writes.
    fn already_stored(&self, server: &dyn TraceServer, counters: &Counters) -> bool;

    /// Replaces each JSON field over [`FIELD_BYTES_LIMIT`] with the server's marker, as the
    /// Weave server does for rows over its limits. Returns whether anything changed.
    fn shrink(&mut self) -> bool;
}

impl Batched for RemoteCall {
    const NOUN: &'static str = "call";

    /// As one serialised body, when the backend takes one; else as items.
    fn send(
        server: &dyn TraceServer,
        chunk: &[Self],
        body: Option<&[u8]>,
        _: &Counters,
    ) -> crate::error::Result<()> {
        #[derive(serde::Serialize)]
        struct Batch<'a> {
            batch: &'a [RemoteCall],
        }
        let made;
        let body = match body {
            Some(body) => body,
            None => {
                made = serde_json::to_vec(&Batch { batch: chunk })?;
                &made
            }
        };
        match server.call_upsert_batch_body(body) {
            Some(r) => r.map(drop),
            None => server.call_write_batch(&chunk.iter().map(Self::to_item).collect::<Vec<_>>()),
        }
    }

    fn unsent(
        server: &dyn TraceServer,
        chunk: &[Self],
        counters: &Counters,
    ) -> crate::error::Result<Vec<Self>> {
        let items: Vec<CallBatchItem> = chunk.iter().map(Self::to_item).collect();
        let held = CallBatchItem::unsent(server, &items, counters)?;
        // The unsent items, as the writer's own (held items are a subsequence of `chunk`).
        let mut rest = Vec::with_capacity(held.len());
        let mut held = held.into_iter().peekable();
        for (item, mine) in items.iter().zip(chunk) {
            if held.peek() == Some(item) {
                held.next();
                rest.push(mine.clone());
            }
        }
        Ok(rest)
    }

    fn already_stored(&self, server: &dyn TraceServer, counters: &Counters) -> bool {
        self.to_item().already_stored(server, counters)
    }

    fn shrink(&mut self) -> bool {
        let mut item = self.to_item();
        let changed = item.shrink();
        *self = RemoteCall::Item(Box::new(item));
        changed
    }
}

impl Batched for CallBatchItem {
    const NOUN: &'static str = "call";

    fn send(
        server: &dyn TraceServer,
        chunk: &[Self],
        _: Option<&[u8]>,
        _: &Counters,
    ) -> crate::error::Result<()> {
        server.call_write_batch(chunk)
    }

    /// Starts of calls it does not have, ends of calls it has not seen end.
    fn unsent(
        server: &dyn TraceServer,
        chunk: &[Self],
        _: &Counters,
    ) -> crate::error::Result<Vec<Self>> {
        let Some(project_id) = chunk.first().map(|i| match i {
            CallBatchItem::Start(s) => s.start.project_id.clone(),
            CallBatchItem::End(e) => e.end.project_id.clone(),
        }) else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<String> = chunk
            .iter()
            .filter_map(|i| match i {
                CallBatchItem::Start(s) => s.start.id.clone(),
                CallBatchItem::End(e) => Some(e.end.id.clone()),
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut held: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        let query = crate::client::calls_iter::CallsQuery::new()
            .filter(crate::schema::CallsFilter {
                call_ids: Some(ids),
                ..Default::default()
            })
            .columns(["id", "ended_at"]);
        for call in server.calls_query_stream(query.to_req(&project_id))? {
            let call = call?;
            held.insert(call.id, call.ended_at.is_some());
        }
        Ok(chunk
            .iter()
            .filter(|i| match i {
                CallBatchItem::Start(s) => {
                    s.start.id.as_ref().is_none_or(|id| !held.contains_key(id))
                }
                CallBatchItem::End(e) => !held.get(&e.end.id).copied().unwrap_or(false),
            })
            .cloned()
            .collect())
    }

    /// The call's start (it exists) or its end (it has ended).
    fn already_stored(&self, server: &dyn TraceServer, _: &Counters) -> bool {
        let (project_id, id, end) = match self {
            CallBatchItem::Start(s) => match &s.start.id {
                Some(id) => (&s.start.project_id, id, false),
                None => return false,
            },
            CallBatchItem::End(e) => (&e.end.project_id, &e.end.id, true),
        };
        match server.call_read(crate::schema::CallReadReq {
            project_id: project_id.clone(),
            id: id.clone(),
            include_costs: false,
            include_storage_size: false,
            include_total_storage_size: false,
        }) {
            Ok(res) => res.call.is_some_and(|c| !end || c.ended_at.is_some()),
            Err(_) => false,
        }
    }

    fn shrink(&mut self) -> bool {
        fn big(v: &serde_json::Value) -> bool {
            serde_json::to_vec(v).map_or(true, |t| t.len() > FIELD_BYTES_LIMIT)
        }
        fn marker_map() -> JsonMap {
            match exceeds_limits_marker() {
                serde_json::Value::Object(m) => m,
                _ => JsonMap::new(),
            }
        }
        let mut changed = false;
        match self {
            CallBatchItem::Start(s) => {
                for m in [&mut s.start.inputs, &mut s.start.attributes] {
                    if big(&serde_json::Value::Object(m.clone())) {
                        *m = marker_map();
                        changed = true;
                    }
                }
            }
            CallBatchItem::End(e) => {
                if big(&e.end.output) {
                    e.end.output = exceeds_limits_marker();
                    changed = true;
                }
                if big(&serde_json::Value::Object(e.end.summary.clone())) {
                    e.end.summary = marker_map();
                    changed = true;
                }
                if e.end
                    .exception
                    .as_ref()
                    .is_some_and(|x| x.len() > FIELD_BYTES_LIMIT)
                {
                    e.end.exception = Some(exceeds_limits_marker().to_string());
                    changed = true;
                }
            }
        }
        changed
    }
}

impl Batched for FeedbackCreateReq {
    const NOUN: &'static str = "feedback";

    /// `/feedback/batch/create`; on a server without it (404), one `/feedback/create` per item
    /// without the client's id, as the Python client does (older servers choose ids).
    fn send(
        server: &dyn TraceServer,
        chunk: &[Self],
        _: Option<&[u8]>,
        counters: &Counters,
    ) -> crate::error::Result<()> {
        if !counters.no_feedback_batch.load(Ordering::Relaxed) {
            match server.feedback_create_batch(FeedbackCreateBatchReq {
                batch: chunk.to_vec(),
            }) {
                Err(e) if e.is_not_found() => {
                    counters.no_feedback_batch.store(true, Ordering::Relaxed);
                }
                res => return res.map(drop),
            }
        }
        match chunk {
            [one] => {
                let mut one = one.clone();
                one.id = None;
                server.feedback_create(one).map(drop)
            }
            // `write_chunk` answers a refused batch by writing its items one by one.
            _ => Err(WeaveError::invalid_input(
                "the backend has no /feedback/batch/create: feedback goes item by item",
            )),
        }
    }

    /// The feedback whose ids the backend does not hold. Without the batch route the server
    /// chose the ids, so nothing can be checked: everything is sent again.
    fn unsent(
        server: &dyn TraceServer,
        chunk: &[Self],
        counters: &Counters,
    ) -> crate::error::Result<Vec<Self>> {
        let (Some(first), false) = (
            chunk.first(),
            counters.no_feedback_batch.load(Ordering::Relaxed),
        ) else {
            return Ok(chunk.to_vec());
        };
        let ids: Vec<&str> = chunk.iter().filter_map(|f| f.id.as_deref()).collect();
        let res = server.feedback_query(FeedbackQueryReq {
            project_id: first.project_id.clone(),
            fields: Some(vec!["id".into()]),
            query: Some(Query::new(field("id").in_(ids))),
            sort_by: None,
            limit: None,
            offset: None,
        })?;
        let held: std::collections::HashSet<&str> = res
            .result
            .iter()
            .filter_map(|row| row.get("id").and_then(|v| v.as_str()))
            .collect();
        Ok(chunk
            .iter()
            .filter(|f| f.id.as_deref().is_none_or(|id| !held.contains(id)))
            .cloned()
            .collect())
    }

    fn already_stored(&self, server: &dyn TraceServer, counters: &Counters) -> bool {
        self.id.is_some()
            && Self::unsent(server, std::slice::from_ref(self), counters)
                .is_ok_and(|rest| rest.is_empty())
    }

    /// Payloads are at most 1 MiB (checked before queueing): always small enough.
    fn shrink(&mut self) -> bool {
        false
    }
}

/// Writes one request's worth of items, retrying and splitting as the module docs say.
/// `body` is the chunk serialised, while the chunk is unchanged.
pub(super) fn write_chunk<T: Batched>(
    server: &dyn TraceServer,
    mut chunk: Vec<T>,
    mut body: Option<Vec<u8>>,
    counters: &Counters,
) {
    // Waits for an unavailable backend and failures of an available one are counted apart:
    // only failures use up the few retries a failing request gets (a 429 between two 500s
    // must not make the second 500 final).
    let mut attempt: u32 = 0;
    let mut failures: u32 = 0;
    let mut shrunk = false;
    // Set when an attempt may have been applied without our hearing of it: before sending
    // again, the items the backend already holds are taken out (so nothing is written twice).
    let mut suspect = false;
    loop {
        if suspect {
            match T::unsent(server, &chunk, counters) {
                Ok(rest) => {
                    suspect = false;
                    if rest.len() != chunk.len() {
                        body = None;
                    }
                    chunk = rest;
                    if chunk.is_empty() {
                        return;
                    }
                }
                Err(_) => {
                    if !wait_to_retry(&mut attempt, None, chunk.len(), counters) {
                        return;
                    }
                    continue;
                }
            }
        }
        let err = match T::send(server, &chunk, body.as_deref(), counters) {
            Ok(_) => return,
            Err(e) => e,
        };
        match err {
            WeaveError::Unavailable {
                retry_after,
                maybe_applied,
                ..
            } => {
                suspect |= maybe_applied;
                if !wait_to_retry(&mut attempt, retry_after, chunk.len(), counters) {
                    return;
                }
            }
            WeaveError::TooLarge(_) if chunk.len() > 1 => {
                let second = chunk.split_off(chunk.len() / 2);
                write_chunk(server, chunk, None, counters);
                write_chunk(server, second, None, counters);
                return;
            }
            WeaveError::TooLarge(msg) => {
                if !shrunk && chunk[0].shrink() {
                    shrunk = true;
                    body = None;
                    continue;
                }
                counters.drop_items(
                    1,
                    &format!("a {} is too large for the backend: {msg}", T::NOUN),
                );
                return;
            }
            WeaveError::Backend { .. } if retry_failure(&mut failures, counters) => {}
            _ if chunk.len() > 1 => {
                // Isolate the bad items: one by one, dropping only those that fail.
                for item in chunk {
                    write_chunk(server, vec![item], None, counters);
                }
                return;
            }
            e => {
                // A retry of a batch whose answer was lost (cut, timed out) may be refused
                // because the backend already has it: then nothing is lost.
                if chunk.len() == 1 && chunk[0].already_stored(server, counters) {
                    return;
                }
                counters.drop_items(1, &format!("the store rejected a {}: {e}", T::NOUN));
                return;
            }
        }
    }
}
