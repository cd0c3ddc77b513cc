//! The sender threads of a remote backend: the writer builds request N+1 while request N is
//! in flight, and hands it over when a sender is free.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::batches::Batched;
use super::{write_now, Counters};
use crate::server::TraceServer;

/// A request built by the writer, for a sender thread to send.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// The sender threads of a remote backend (none for the embedded store, which the writer
/// writes itself): the writer hands each request over when a sender is free (so at most
/// one more is built ahead), and counts the requests not yet answered. The threads start
/// with the first request, so a client that never sends one (or the embedded store) asks
/// the backend nothing and starts no thread.
pub(super) struct Senders {
    server: Arc<dyn TraceServer>,
    counters: Arc<Counters>,
    /// `None` inside: no sender threads (the embedded store, or none could be spawned).
    pool: std::cell::OnceCell<Option<Pool>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
}

/// The running sender threads and the channel to them.
pub(super) struct Pool {
    jobs: mpsc::SyncSender<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl Senders {
    pub(super) fn new(server: &Arc<dyn TraceServer>, counters: &Arc<Counters>) -> Self {
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
    pub(super) fn send<T: Batched + Send + 'static>(&self, chunk: Vec<T>, body: Option<Vec<u8>>) {
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
    pub(super) fn wait_idle(&self) {
        let mut left = self.pending.0.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            left = self.pending.1.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(super) fn stop(mut self) {
        self.wait_idle();
        if let Some(Some(Pool { jobs, threads })) = self.pool.take() {
            drop(jobs);
            for h in threads {
                let _ = h.join();
            }
        }
    }
}
