//! The background writer: call starts and ends are queued here and written by one thread in
//! batches, so `create_call` / `finish_call` never wait on I/O.
//!
//! - The queue is bounded ([`crate::config::Settings::max_calls_queue_size`], default
//!   100,000). When it is full the item is dropped, counted, and reported once on stderr:
//!   tracing never blocks the traced program. [`WeaveClient::dropped`](crate::WeaveClient::dropped)
//!   tells how many.
//! - Callers queue a call's record (shared, not copied) for its start and again for its end;
//!   the writer is woken once per batch ([`WAKE_AT`] items, or [`LINGER`] after it last
//!   wrote), never per item. Rows and requests are built on the writer's thread (an op's
//!   arguments come as the JSON text the traced thread wrote, stored as they are).
//! - The thread takes up to [`MAX_BATCH`] queued items at a time and writes them in one go:
//!   the embedded store takes the records directly, in one transaction (a start and end in
//!   the same batch become one row); a remote server gets one `/call/upsert_batch` request,
//!   split so that no request exceeds the backend's [`Capabilities::max_request_bytes`](crate::server::Capabilities).
//! - Requests to a remote server are sent by sender threads, so that the writer builds the
//!   next request while one is in flight: one sender (requests in the order the calls came)
//!   unless the backend says it merges a call's start and end in any order
//!   ([`TraceServer::concurrent_call_batches`]), then that many. Feedback waits for the
//!   calls queued before it, and a flush for everything.
//! - A backend that is unavailable ([`WeaveError::Unavailable`]: refused, timed out, 429,
//!   5xx) is retried with exponential backoff and jitter, honouring `Retry-After`, for as long
//!   as it takes — meanwhile new items wait in the bounded queue, so nothing is lost while the
//!   queue bound holds. Only when the client shuts down does the retrying stop, after
//!   [`SHUTDOWN_GRACE`]; what is then unsent is dropped, counted and reported.
//! - A batch too large for the backend ([`WeaveError::TooLarge`], HTTP 413) is split in half;
//!   a single call too large for any request is sent with its oversized fields replaced by the
//!   server's marker (`{"_weave": {"error": "<EXCEEDS_LIMITS>"}}`), once.
//! - Any other backend error is retried a few times; a batch rejected as invalid is written
//!   item by item so that only the bad items are dropped.
//! - Feedback for a remote server is queued here too, behind the calls queued before it, and
//!   sent with `/feedback/batch/create` under the same rules (checked by id after a lost answer;
//!   one `/feedback/create` per item on servers without the batch route).
//! - [`Writer::flush`] returns once everything enqueued before it is written (or finally
//!   dropped). Dropping the writer flushes and joins the thread.

mod batches;
mod senders;
mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::batches::{retry_failure, wait_to_retry, write_batch, write_chunk, Batched};
use self::senders::Senders;
use self::wire::RemoteCall;
use super::op_code::OpSave;
use super::Call;
use crate::error::WeaveError;
use crate::record::CallRecord;
use crate::schema::FeedbackCreateReq;
use crate::server::RecordWrite;
use crate::server::TraceServer;

/// The most items written in one batch.
pub(crate) const MAX_BATCH: usize = 1000;
/// How long a shutting-down writer keeps retrying an unavailable backend before dropping
/// what is left (and saying so).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The first retry delay for an unavailable backend; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two retries of an unavailable backend.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The waits before the retries of a request that failed on an available backend (HTTP 500,
/// a store error): one per retry, so it is tried `1 + RETRY_DELAYS.len()` times in all.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_secs(1),
];

enum Msg {
    /// A call's start, built from the live call's record on the writer's thread.
    Start(Arc<CallRecord>),
    /// A call's end, built from the finished call's record on the writer's thread.
    End(Arc<CallRecord>),
    Feedback(Box<FeedbackCreateReq>),
    Op(Box<OpSave>),
    Flush(mpsc::Sender<()>),
}

/// Queued items are picked up when this many are waiting, or after [`LINGER`], or at once
/// when someone flushes.
const WAKE_AT: usize = 512;
/// How long the writer waits for more items after writing some, before it sleeps until
/// woken. While it lingers, callers do not wake it (no system call per item); the first item
/// after it sleeps wakes it.
const LINGER: Duration = Duration::from_millis(2);

/// The bounded queue between callers and the writer: a vector under a mutex, swapped out
/// whole by the writer. Unlike a channel, a push does not wake the writer each time (a
/// futex wake is a system call, which would cost more than the rest of a traced call);
/// see [`WAKE_AT`] and [`LINGER`].
struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct QueueState {
    items: Vec<Msg>,
    /// Messages ever pushed (flush waits for the writer to get through them).
    pushed: u64,
    /// The writer is waiting on `wake` for the first item (not lingering).
    asleep: bool,
    /// The writer is lingering: it wakes by itself soon, or when [`WAKE_AT`] items wait.
    lingering: bool,
    /// A flush is queued: the writer takes the queue without lingering.
    urgent: bool,
    closed: bool,
}

enum PushError {
    Full,
    Closed,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState::default()),
            wake: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; `urgent` wakes the writer now (a flush). Returns the count of messages
    /// pushed so far, this one included.
    fn push(&self, msg: Msg, urgent: bool) -> Result<u64, PushError> {
        let mut st = self.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        if st.items.len() >= self.capacity && !urgent {
            return Err(PushError::Full);
        }
        st.items.push(msg);
        st.pushed += 1;
        st.urgent |= urgent;
        let pushed = st.pushed;
        let wake =
            st.asleep || (urgent && st.lingering) || (st.lingering && st.items.len() == WAKE_AT);
        if wake {
            st.asleep = false;
            st.lingering = false;
            drop(st);
            self.wake.notify_one();
        }
        Ok(pushed)
    }

    fn pushed(&self) -> u64 {
        self.lock().pushed
    }

    /// Takes every queued message into `out` (which must be empty), waiting for one if there
    /// is none. `linger` first waits up to [`LINGER`] for more. Returns false once the queue
    /// is closed and empty.
    fn take(&self, out: &mut Vec<Msg>, linger: bool) -> bool {
        let mut st = self.lock();
        if linger && st.items.len() < WAKE_AT && !st.closed && !st.urgent {
            st.lingering = true;
            st = self
                .wake
                .wait_timeout(st, LINGER)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.lingering = false;
        }
        while st.items.is_empty() {
            if st.closed {
                return false;
            }
            st.asleep = true;
            st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            st.asleep = false;
        }
        std::mem::swap(&mut st.items, out);
        st.urgent = false;
        true
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.asleep = false;
        st.lingering = false;
        drop(st);
        self.wake.notify_all();
    }
}

#[derive(Debug, Default)]
struct Counters {
    /// Items written or dropped: queued messages, and the ends that came with their start's
    /// message ([`CallRecord::fold_end_into_start`]) when those are written as items of
    /// their own (counted in `folded` first).
    done: AtomicU64,
    folded: AtomicU64,
    dropped: AtomicU64,
    /// The first drop of this client is reported on stderr.
    reported: crate::report::ReportOnce,
    /// Set when the writer shuts down: retries stop at this instant.
    deadline: Mutex<Option<Instant>>,
    /// How many requests were retried (for tests and diagnostics).
    retries: AtomicU64,
    /// Set when the backend answered 404 to `/feedback/batch/create` (an older server):
    /// feedback then goes one `/feedback/create` per item.
    no_feedback_batch: AtomicBool,
    /// The sender threads, which may be waiting to retry: woken at shutdown so that they see
    /// the deadline (the writer thread is woken through its handle).
    threads: Mutex<Vec<std::thread::Thread>>,
}

impl Counters {
    /// How many queued messages are written or dropped (at most: a lower bound is safe, as
    /// flush then waits for the writer's answer).
    fn messages_done(&self) -> u64 {
        let done = self.done.load(Ordering::SeqCst);
        done.saturating_sub(self.folded.load(Ordering::SeqCst))
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_items(&self, n: u64, why: &str) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.reported.report(format_args!(
            "weave: dropped call data ({why}); further drops are counted, not reported (see WeaveClient::dropped)"
        ));
    }
}

pub(crate) struct Writer {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn new(server: Arc<dyn TraceServer>, capacity: usize) -> Self {
        let queue = Arc::new(Queue::new(capacity));
        let counters = Arc::new(Counters::default());
        let (q, c) = (queue.clone(), counters.clone());
        let handle = std::thread::Builder::new()
            .name("weave-writer".into())
            .spawn(move || run(&q, server, c))
            .map_err(|e| eprintln!("weave: could not start the writer thread: {e}"))
            .ok();
        if handle.is_none() {
            queue.close();
        }
        Writer {
            queue,
            counters,
            handle: Mutex::new(handle),
        }
    }

    /// Queues a live call's start.
    pub(crate) fn enqueue_start(&self, call: &Call) -> bool {
        self.send(Msg::Start(call.record()))
    }

    /// Queues a finished call's end.
    pub(crate) fn enqueue_end(&self, call: &Call) -> bool {
        self.send(Msg::End(call.record()))
    }

    /// Queues creating feedback (validated, with its id set).
    pub(crate) fn enqueue_feedback(&self, req: FeedbackCreateReq) -> bool {
        self.send(Msg::Feedback(Box::new(req)))
    }

    /// Queues saving an op version (its code file, then its object).
    pub(crate) fn enqueue_op(&self, op: OpSave) -> bool {
        self.send(Msg::Op(Box::new(op)))
    }

    #[inline]
    fn send(&self, msg: Msg) -> bool {
        match self.queue.push(msg, false) {
            Ok(_) => true,
            Err(e) => {
                let why = match e {
                    PushError::Full => "the write queue is full: the store cannot keep up",
                    PushError::Closed => "the client is shut down",
                };
                self.counters.drop_items(1, why);
                false
            }
        }
    }

    /// Waits until every item enqueued so far is written or dropped, at most `timeout`.
    /// Returns whether it finished in time.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let target = self.queue.pushed();
        if self.counters.messages_done() >= target {
            return true;
        }
        let (ack_tx, ack_rx) = mpsc::channel();
        // The flush message itself counts as one more message done.
        if self.queue.push(Msg::Flush(ack_tx), true).is_err() {
            return self.counters.messages_done() >= target;
        }
        ack_rx.recv_timeout(timeout).is_ok()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn retries(&self) -> u64 {
        self.counters.retries.load(Ordering::Relaxed)
    }

    /// Stops accepting items, writes what is queued — retrying an unavailable backend for at
    /// most [`SHUTDOWN_GRACE`] — and joins the thread.
    pub(crate) fn shutdown(&self) {
        *self
            .counters
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + SHUTDOWN_GRACE);
        self.queue.close();
        if let Some(h) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Wake it and its senders from a backoff wait.
            h.thread().unpark();
            for t in self
                .counters
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                t.unpark();
            }
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(queue: &Queue, server: Arc<dyn TraceServer>, counters: Arc<Counters>) {
    crate::own_work::mark_internal_thread();
    let senders = Senders::new(&server, &counters);
    let mut taken: Vec<Msg> = Vec::new();
    let mut linger = false;
    while queue.take(&mut taken, linger) {
        linger = true;
        let mut msgs = taken.drain(..).peekable();
        while msgs.peek().is_some() {
            let mut calls = Vec::new();
            let mut feedback = Vec::new();
            let mut acks = Vec::new();
            // Up to MAX_BATCH items, or up to a flush.
            while let Some(msg) =
                msgs.next_if(|_| calls.len() + feedback.len() < MAX_BATCH && acks.is_empty())
            {
                match msg {
                    Msg::Feedback(f) => feedback.push(*f),
                    Msg::Op(op) => {
                        save_op(&*server, *op, &counters);
                        counters.done.fetch_add(1, Ordering::SeqCst);
                    }
                    Msg::Flush(ack) => {
                        acks.push(ack);
                        counters.done.fetch_add(1, Ordering::SeqCst);
                    }
                    call => calls.push(call),
                }
            }
            write_calls(&*server, calls, &counters, &senders);
            // Feedback queued after a call is about a call already sent.
            if !feedback.is_empty() {
                senders.wait_idle();
                write_batch(&*server, feedback, &counters, None);
            }
            if !acks.is_empty() {
                senders.wait_idle();
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }
    senders.stop();
}

/// Writes `chunk` on this thread; its items count as done once it is written or dropped.
fn write_now<T: Batched>(
    server: &dyn TraceServer,
    chunk: Vec<T>,
    body: Option<Vec<u8>>,
    counters: &Counters,
) {
    let n = chunk.len() as u64;
    write_chunk(server, chunk, body, counters);
    counters.done.fetch_add(n, Ordering::SeqCst);
}

/// Writes call messages: straight from the records into the embedded store, else (or when
/// that fails: the transaction rolled back, so nothing is written twice) as protocol items
/// through [`write_batch`], with its retries and isolation of bad items.
fn write_calls(server: &dyn TraceServer, calls: Vec<Msg>, counters: &Counters, senders: &Senders) {
    if calls.is_empty() {
        return;
    }
    let messages = calls.len() as u64;
    // A start whose call ended before it was taken brings the end too.
    let mut items: Vec<RemoteCall> = Vec::with_capacity(calls.len() * 2);
    for m in calls {
        match m {
            Msg::Start(c) => {
                if c.take_start() {
                    items.push(RemoteCall::Start(c.clone()));
                    items.push(RemoteCall::End(c));
                } else {
                    items.push(RemoteCall::Start(c));
                }
            }
            Msg::End(c) => items.push(RemoteCall::End(c)),
            _ => {}
        }
    }
    if let Some(store) = server.capabilities().records {
        let writes: Vec<RecordWrite<'_>> = items
            .iter()
            .filter_map(|item| match item {
                RemoteCall::Start(c) => Some(RecordWrite::Start(c)),
                RemoteCall::End(c) => Some(RecordWrite::End(c)),
                // Only made by shrinking, later.
                RemoteCall::Item(_) => None,
            })
            .collect();
        if store.write_records(&writes).is_ok() {
            counters.done.fetch_add(messages, Ordering::SeqCst);
            return;
        }
    }
    // Each item counts as done once written or dropped: the ends that came with their
    // start's message were never pushed, so they are counted apart (see `messages_done`).
    counters
        .folded
        .fetch_add(items.len() as u64 - messages, Ordering::SeqCst);
    write_batch(server, items, counters, Some(senders))
}

fn save_op(server: &dyn TraceServer, op: OpSave, counters: &Counters) {
    let mut attempt: u32 = 0;
    let mut failures: u32 = 0;
    loop {
        let res = server
            .file_create(op.file.clone())
            .and_then(|_| server.obj_create(op.obj.clone()));
        match res {
            Ok(_) => return,
            Err(WeaveError::Unavailable { retry_after, .. }) => {
                if !wait_to_retry(&mut attempt, retry_after, 1, counters) {
                    return;
                }
            }
            Err(WeaveError::Backend { .. }) if retry_failure(&mut failures, counters) => {}
            Err(e) => {
                counters.drop_items(1, &format!("the store rejected an op version: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::{Batched, RemoteCall};
    use crate::client::{CallOptions, Op, WeaveClient};
    use crate::record::Inputs;
    use crate::SqliteServer;

    /// What a remote backend is sent for a record is exactly the protocol item built from it:
    /// op arguments as text, inputs as a map, a deferred start's added inputs, an end with
    /// output, exception and summary, a child with its parent and thread.
    #[test]
    fn records_serialise_as_the_protocol_items_they_stand_for() {
        let server = Arc::new(SqliteServer::in_memory().unwrap());
        let client = WeaveClient::new("e", "p", server, false).unwrap();
        let op = Op::new("op");
        let op_name: Arc<str> = "weave:///e/p/op/op:abc".into();
        let as_text = client
            .create_call_inner(
                &op,
                op_name.clone(),
                Inputs::json(r#"{"a":1,"s":"x\"y","api_key":"REDACTED"}"#.into()),
                CallOptions::new().use_stack(false).display_name("shown"),
            )
            .unwrap();
        let as_map = client
            .create_call_with(
                "m",
                json!({"n": [1, 2, {"deep": null}], "f": 1.5}),
                CallOptions::new()
                    .use_stack(false)
                    .parent(&as_text)
                    .thread_id("t")
                    .attribute("k", "v"),
            )
            .unwrap();
        let deferred = client
            .create_call_with(
                "d",
                json!({"first": 1}),
                CallOptions::new().use_stack(false).defer_start(true),
            )
            .unwrap();
        deferred.extend_deferred_inputs(json!({"later": 2}).as_object().unwrap().clone());
        client.finish_call(&as_map, json!({"out": "ok"})).unwrap();
        client
            .fail_call(&as_text, crate::Exception::new("ValueError", "boom"))
            .unwrap();
        client.finish_call(&deferred, 3).unwrap();
        for call in [&as_text, &as_map, &deferred] {
            for item in [
                RemoteCall::Start(call.record()),
                RemoteCall::End(call.record()),
            ] {
                let wire: Value = serde_json::to_value(&item).unwrap();
                let protocol = serde_json::to_value(item.to_item()).unwrap();
                assert_eq!(wire, protocol);
                // Shrinking turns it into the item itself.
                let mut shrunk = item.clone();
                shrunk.shrink();
                assert_eq!(serde_json::to_value(&shrunk).unwrap(), protocol);
            }
        }
        let start: Value = serde_json::to_value(RemoteCall::Start(as_text.record())).unwrap();
        assert_eq!(start["mode"], "start");
        assert_eq!(
            start["req"]["start"]["inputs"],
            json!({"a": 1, "s": "x\"y", "api_key": "REDACTED"})
        );
        let start: Value = serde_json::to_value(RemoteCall::Start(deferred.record())).unwrap();
        assert_eq!(
            start["req"]["start"]["inputs"],
            json!({"first": 1, "later": 2})
        );
    }
}
