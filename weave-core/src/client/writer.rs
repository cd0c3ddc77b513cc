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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::op_code::OpSave;
use super::Call;
use crate::error::WeaveError;
use crate::limits::{exceeds_limits_marker, FIELD_BYTES_LIMIT};
use crate::query::{field, Query};
use crate::record::CallRecord;
use crate::schema::{
    CallBatchItem, CallEndReq, CallStartReq, FeedbackCreateBatchReq, FeedbackCreateReq,
    FeedbackQueryReq, JsonMap,
};
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
    done: AtomicU64,
    dropped: AtomicU64,
    reported: AtomicBool,
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
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_items(&self, n: u64, why: &str) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "weave: dropped call data ({why}); further drops are counted, not reported (see WeaveClient::dropped)"
            );
        }
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
        if self.counters.done.load(Ordering::SeqCst) >= target {
            return true;
        }
        let (ack_tx, ack_rx) = mpsc::channel();
        // The flush message itself counts as one more message done.
        if self.queue.push(Msg::Flush(ack_tx), true).is_err() {
            return self.counters.done.load(Ordering::SeqCst) >= target;
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

/// A request built by the writer, for a sender thread to send.
type Job = Box<dyn FnOnce() + Send>;

/// The sender threads of a remote backend (none for the embedded store, which the writer
/// writes itself): the writer hands each request over when a sender is free (so at most
/// one more is built ahead), and counts the requests not yet answered. The threads start
/// with the first request, so a client that never sends one (or the embedded store) asks
/// the backend nothing and starts no thread.
struct Senders {
    server: Arc<dyn TraceServer>,
    counters: Arc<Counters>,
    /// `None` inside: no sender threads (the embedded store, or none could be spawned).
    pool: std::cell::OnceCell<Option<Pool>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
}

/// The running sender threads and the channel to them.
struct Pool {
    jobs: mpsc::SyncSender<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl Senders {
    fn new(server: &Arc<dyn TraceServer>, counters: &Arc<Counters>) -> Self {
        Senders {
            server: server.clone(),
            counters: counters.clone(),
            pool: std::cell::OnceCell::new(),
            pending: Arc::default(),
        }
    }

    /// The sender threads, started on first use: as many as the backend takes requests at
    /// once ([`TraceServer::concurrent_call_batches`]).
    fn pool(&self) -> Option<&Pool> {
        self.pool
            .get_or_init(|| {
                self.server.capabilities().max_request_bytes?;
                let (tx, rx) = mpsc::sync_channel::<Job>(0);
                let rx = Arc::new(Mutex::new(rx));
                let mut threads = Vec::new();
                for i in 0..self.server.concurrent_call_batches().max(1) {
                    let rx = rx.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("weave-sender-{i}"))
                        .spawn(move || {
                            crate::own_work::mark_internal_thread();
                            loop {
                                let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                                match job {
                                    Ok(job) => job(),
                                    Err(_) => return,
                                }
                            }
                        });
                    if let Ok(h) = spawned {
                        self.counters
                            .threads
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(h.thread().clone());
                        threads.push(h);
                    }
                }
                (!threads.is_empty()).then_some(Pool { jobs: tx, threads })
            })
            .as_ref()
    }

    /// Writes `chunk` (serialised as `body`, if built) on a sender thread, or here when there
    /// is none; its items count as done once it is written or dropped.
    fn send<T: Batched + Send + 'static>(&self, chunk: Vec<T>, body: Option<Vec<u8>>) {
        let Some(pool) = self.pool() else {
            write_now(&*self.server, chunk, body, &self.counters);
            return;
        };
        *self.pending.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let (server, counters, pending) = (
            self.server.clone(),
            self.counters.clone(),
            self.pending.clone(),
        );
        let job: Job = Box::new(move || {
            write_now(&*server, chunk, body, &counters);
            let mut left = pending.0.lock().unwrap_or_else(|e| e.into_inner());
            *left -= 1;
            if *left == 0 {
                pending.1.notify_all();
            }
        });
        if let Err(mpsc::SendError(job)) = pool.jobs.send(job) {
            // The senders are gone (they cannot be while `jobs` is held): write it here.
            job();
        }
    }

    /// Waits until every request handed over is answered (or finally dropped).
    fn wait_idle(&self) {
        let mut left = self.pending.0.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            left = self.pending.1.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stop(mut self) {
        self.wait_idle();
        if let Some(Some(Pool { jobs, threads })) = self.pool.take() {
            drop(jobs);
            for h in threads {
                let _ = h.join();
            }
        }
    }
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
    if let Some(store) = server.capabilities().records {
        let writes: Vec<RecordWrite<'_>> = calls
            .iter()
            .filter_map(|m| match m {
                Msg::Start(c) => Some(RecordWrite::Start(c)),
                Msg::End(c) => Some(RecordWrite::End(c)),
                _ => None,
            })
            .collect();
        if store.write_records(&writes).is_ok() {
            counters
                .done
                .fetch_add(calls.len() as u64, Ordering::SeqCst);
            return;
        }
    }
    let items: Vec<RemoteCall> = calls
        .into_iter()
        .filter_map(|m| match m {
            Msg::Start(c) => Some(RemoteCall::Start(c)),
            Msg::End(c) => Some(RemoteCall::End(c)),
            _ => None,
        })
        .collect();
    write_batch(server, items, counters, Some(senders))
}

/// A call's start or end on its way to a remote backend: serialised straight from the call's
/// record (its attributes, output and summary borrowed, an op's arguments written as the JSON
/// text the traced thread made), in the shape of [`CallBatchItem`]; copied into one only to
/// be shrunk, or for a backend that does not take serialised bodies.
#[derive(Clone)]
enum RemoteCall {
    Start(Arc<CallRecord>),
    End(Arc<CallRecord>),
    /// Boxed: rare (a shrunk item), and the common variants are a pointer.
    Item(Box<CallBatchItem>),
}

impl RemoteCall {
    fn to_item(&self) -> CallBatchItem {
        match self {
            RemoteCall::Start(c) => CallBatchItem::Start(CallStartReq {
                start: c.start_schema(),
            }),
            RemoteCall::End(c) => CallBatchItem::End(CallEndReq {
                end: c.end_schema(),
            }),
            RemoteCall::Item(i) => (**i).clone(),
        }
    }
}

impl serde::Serialize for RemoteCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(serde::Serialize)]
        struct StartReq<'a> {
            start: StartWire<'a>,
        }
        #[derive(serde::Serialize)]
        struct EndReq<'a> {
            end: EndWire<'a>,
        }
        if let RemoteCall::Item(i) = self {
            return i.serialize(s);
        }
        let mut m = s.serialize_struct("CallBatchItem", 2)?;
        match self {
            RemoteCall::Start(c) => {
                m.serialize_field("mode", "start")?;
                m.serialize_field(
                    "req",
                    &StartReq {
                        start: StartWire(c),
                    },
                )?;
            }
            RemoteCall::End(c) => {
                m.serialize_field("mode", "end")?;
                m.serialize_field("req", &EndReq { end: EndWire(c) })?;
            }
            RemoteCall::Item(_) => {}
        }
        m.end()
    }
}

/// A record's start, in the shape of [`crate::schema::StartedCallSchemaForInsert`].
struct StartWire<'a>(&'a CallRecord);

impl serde::Serialize for StartWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = self.0;
        let (display_name, extra) = {
            let st = c.state();
            (st.display_name.clone(), st.extra_inputs.is_some())
        };
        let mut m = s.serialize_struct("StartedCallSchemaForInsert", 15)?;
        m.serialize_field("project_id", &*c.project_id)?;
        m.serialize_field("id", &Some(c.id.as_str()))?;
        m.serialize_field("op_name", &*c.op_name)?;
        m.serialize_field("display_name", &display_name)?;
        m.serialize_field("trace_id", &Some(c.trace_id.as_str()))?;
        m.serialize_field("parent_id", &c.parent_id.as_ref().map(|p| p.as_str()))?;
        m.serialize_field("thread_id", &c.thread_id)?;
        m.serialize_field("turn_id", &c.turn_id)?;
        m.serialize_field("started_at", &c.started_at)?;
        m.serialize_field("attributes", &*c.attributes)?;
        // An op's arguments as the text the traced thread wrote (an object's, capped and
        // redacted); inputs added later (a deferred start) make a new map.
        let raw = match &c.inputs {
            crate::record::Inputs::Json(text, _) if !extra => {
                serde_json::from_str::<&serde_json::value::RawValue>(text).ok()
            }
            _ => None,
        };
        match raw {
            Some(raw) => m.serialize_field("inputs", raw)?,
            None if extra => m.serialize_field("inputs", &c.start_inputs())?,
            None => m.serialize_field("inputs", c.inputs.map())?,
        }
        m.serialize_field("otel_dump", &None::<()>)?;
        m.serialize_field("wb_user_id", &None::<()>)?;
        m.serialize_field("wb_run_id", &None::<()>)?;
        m.serialize_field("wb_run_step", &None::<()>)?;
        m.end()
    }
}

/// A finished record's end, in the shape of [`crate::schema::EndedCallSchemaForInsert`].
struct EndWire<'a>(&'a CallRecord);

impl serde::Serialize for EndWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = self.0;
        let st = c.state();
        let mut m = s.serialize_struct("EndedCallSchemaForInsert", 7)?;
        m.serialize_field("project_id", &*c.project_id)?;
        m.serialize_field("id", c.id.as_str())?;
        m.serialize_field("ended_at", &st.ended_at.unwrap_or(c.started_at))?;
        m.serialize_field("exception", &st.exception)?;
        m.serialize_field("output", &st.output)?;
        match st.summary() {
            Some(summary) => m.serialize_field("summary", &*summary)?,
            None => m.serialize_field("summary", &JsonMap::new())?,
        }
        m.serialize_field("wb_run_step_end", &None::<i64>)?;
        m.end()
    }
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
            Err(WeaveError::Backend(_)) if retry_failure(&mut failures, counters) => {}
            Err(e) => {
                counters.drop_items(1, &format!("the store rejected an op version: {e}"));
                return;
            }
        }
    }
}

/// After a backend error other than unavailability ([`WeaveError::Backend`]): counts a retry
/// and waits [`RETRY_DELAYS`]`[failures]` when failures are left, else returns false (the
/// request is then final: split or dropped).
fn retry_failure(failures: &mut u32, counters: &Counters) -> bool {
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
fn wait_to_retry(
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
fn backoff_wait(d: Duration, counters: &Counters) -> bool {
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
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let jitter = exp.mul_f64(0.5 * jitter_unit());
    (exp + jitter).max(retry_after.unwrap_or_default())
}

fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Writes a batch, splitting it to stay under the backend's request size; each item counts
/// as done once it is written or dropped. The requests go through `senders` when given, else
/// are written here.
///
/// Each item is serialised once, into the body of the request it goes in
/// (`{"batch":[…]}`, the shape of every batch route): an item that would take the body past
/// the limit starts the next one. A backend that takes bodies sends that body as it is.
fn write_batch<T: Batched + Send + 'static>(
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
trait Batched: serde::Serialize + Clone {
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
fn write_chunk<T: Batched>(
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
            WeaveError::Backend(_) if retry_failure(&mut failures, counters) => {}
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
