//! The background writer: call starts and ends are queued here and written by one thread in
//! batches, so `create_call` / `finish_call` never wait on I/O.
//!
//! - The queue is bounded ([`crate::config::Settings::max_calls_queue_size`], default
//!   100,000). When it is full the item is dropped, counted, and reported once on stderr:
//!   tracing never blocks the traced program. [`WeaveClient::dropped`](crate::WeaveClient::dropped)
//!   tells how many.
//! - The thread takes up to [`MAX_BATCH`] queued items at a time and writes them with one
//!   `call_start_batch` (one transaction in the embedded store). A batch that fails with a
//!   backend error is retried with backoff; a batch rejected as invalid is written item by
//!   item so that only the bad items are dropped.
//! - [`Writer::flush`] returns once everything enqueued before it is written (or finally
//!   dropped). Dropping the writer flushes and joins the thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::op_code::OpSave;
use crate::error::WeaveError;
use crate::schema::{CallBatchItem, CallCreateBatchReq};
use crate::server::TraceServer;

/// The most items written in one batch.
pub(crate) const MAX_BATCH: usize = 1000;
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_secs(1),
];

enum Msg {
    Item(Box<CallBatchItem>),
    Op(Box<OpSave>),
    Flush(mpsc::Sender<()>),
}

#[derive(Debug, Default)]
struct Counters {
    enqueued: AtomicU64,
    done: AtomicU64,
    dropped: AtomicU64,
    reported: AtomicBool,
}

impl Counters {
    fn drop_items(&self, n: u64, why: &str) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "weave: dropped call data ({why}); further drops are counted, not reported (see WeaveClient::dropped)"
            );
        }
    }
}

#[derive(Debug)]
pub(crate) struct Writer {
    tx: Mutex<Option<SyncSender<Msg>>>,
    counters: Arc<Counters>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn new(server: Arc<dyn TraceServer>, capacity: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let handle = std::thread::Builder::new()
            .name("weave-writer".into())
            .spawn(move || run(rx, server, c))
            .map_err(|e| eprintln!("weave: could not start the writer thread: {e}"))
            .ok();
        Writer {
            tx: Mutex::new(handle.as_ref().map(|_| tx)),
            counters,
            handle: Mutex::new(handle),
        }
    }

    /// Queues an item; never blocks. Returns false (and counts the item) when it is dropped.
    pub(crate) fn enqueue(&self, item: CallBatchItem) -> bool {
        self.send(Msg::Item(Box::new(item)))
    }

    /// Queues saving an op version (its code file, then its object).
    pub(crate) fn enqueue_op(&self, op: OpSave) -> bool {
        self.send(Msg::Op(Box::new(op)))
    }

    fn send(&self, msg: Msg) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            self.counters.drop_items(1, "the client is shut down");
            return false;
        };
        self.counters.enqueued.fetch_add(1, Ordering::SeqCst);
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(e) => {
                self.counters.enqueued.fetch_sub(1, Ordering::SeqCst);
                let why = match e {
                    TrySendError::Full(_) => "the write queue is full: the store cannot keep up",
                    TrySendError::Disconnected(_) => "the writer thread has stopped",
                };
                self.counters.drop_items(1, why);
                false
            }
        }
    }

    /// Waits until every item enqueued so far is written or dropped, at most `timeout`.
    /// Returns whether it finished in time.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let target = self.counters.enqueued.load(Ordering::SeqCst);
        if self.counters.done.load(Ordering::SeqCst) >= target {
            return true;
        }
        let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return self.counters.done.load(Ordering::SeqCst) >= target;
        };
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::channel();
        let mut msg = Msg::Flush(ack_tx);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        ack_rx.recv_timeout(left).is_ok()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting items, writes what is queued, and joins the thread.
    pub(crate) fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(rx: Receiver<Msg>, server: Arc<dyn TraceServer>, counters: Arc<Counters>) {
    crate::client::context::mark_internal_thread();
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Item(item) => batch.push(*item),
                Msg::Op(op) => {
                    save_op(&*server, *op, &counters);
                    counters.done.fetch_add(1, Ordering::SeqCst);
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < MAX_BATCH && acks.is_empty() {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            write_batch(&*server, batch, &counters);
            counters.done.fetch_add(n, Ordering::SeqCst);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn save_op(server: &dyn TraceServer, op: OpSave, counters: &Counters) {
    let mut attempt = 0;
    loop {
        let res = server
            .file_create(op.file.clone())
            .and_then(|_| server.obj_create(op.obj.clone()));
        match res {
            Ok(_) => return,
            Err(WeaveError::Backend(_)) if attempt < RETRY_DELAYS.len() => {
                std::thread::sleep(RETRY_DELAYS[attempt]);
                attempt += 1;
            }
            Err(e) => {
                counters.drop_items(1, &format!("the store rejected an op version: {e}"));
                return;
            }
        }
    }
}

fn write_batch(server: &dyn TraceServer, batch: Vec<CallBatchItem>, counters: &Counters) {
    let mut attempt = 0;
    loop {
        match server.call_start_batch(CallCreateBatchReq {
            batch: batch.clone(),
        }) {
            Ok(_) => return,
            Err(WeaveError::Backend(msg)) if attempt < RETRY_DELAYS.len() => {
                let _ = msg;
                std::thread::sleep(RETRY_DELAYS[attempt]);
                attempt += 1;
            }
            Err(_) if batch.len() > 1 => {
                // Isolate the bad items: write one by one, dropping only those that fail.
                for item in batch {
                    if server
                        .call_start_batch(CallCreateBatchReq { batch: vec![item] })
                        .is_err()
                    {
                        counters.drop_items(1, "the store rejected a call");
                    }
                }
                return;
            }
            Err(e) => {
                counters.drop_items(
                    batch.len() as u64,
                    &format!("the store rejected a write: {e}"),
                );
                return;
            }
        }
    }
}
