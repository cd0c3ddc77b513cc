//! Checkpoints of a file store's write-ahead log, on a thread of their own.
//!
//! In WAL mode every committed page is appended to the `-wal` file, and a *checkpoint* copies
//! the pages back into the database file (reading them from the WAL, writing them, and
//! syncing both files). By default SQLite runs it on the connection that commits, once the
//! WAL holds 1,000 pages: the thread writing calls stops to do it. A profile of the ingest
//! benchmark put a fifth to a quarter of the writer's time there (`pread`, `pwrite`,
//! `fsync`), and the same rows inserted with no checkpoints went ~25% faster.
//!
//! So the writer connection's WAL hook (which replaces SQLite's automatic checkpoint) only
//! wakes a `weave-wal-ckpt` thread, which runs a `PASSIVE` checkpoint on a connection of
//! its own while the writer goes on writing (a passive checkpoint never blocks the writer or
//! readers, and readers never block it for long: it copies what no reader still needs).
//!
//! The WAL file is rewound to its start only when a checkpoint has copied everything by the
//! time the writer begins its next transaction. Under a steady stream of commits the
//! checkpointer is always a commit behind, so the file would grow without bound; when it
//! holds [`SELF_AT_FRAMES`] pages, the committing connection checkpoints what is left itself
//! (little: the checkpointer has copied the rest), and the next transaction rewinds the WAL.
//! That bounds the WAL at about 64 MiB, against 4 MiB with SQLite's default.
//!
//! On Linux the thread runs at `SCHED_IDLE`: only when a core would otherwise be idle. A
//! traced program that keeps both cores busy (its own threads and the writer) is never
//! preempted by checkpoints: measured without it, the caller's cost of a traced call rose
//! by a quarter on 2 cores while the writer was saturated. The checkpointer then waits,
//! and the committing connection's own checkpoint at [`SELF_AT_FRAMES`] does the work, as
//! SQLite's automatic one did. One catch: a checkpointer starved in the middle of a
//! checkpoint holds SQLite's checkpoint lock, so the committing connection's checkpoint
//! finds it busy and the WAL would grow past its bound for as long as the machine is busy
//! (seen with builds running beside the tests). So when that happens the committing
//! connection lifts the checkpointer to normal priority (priority inheritance, by hand); it
//! goes back to `SCHED_IDLE` once that checkpoint is done.
//!
//! Checkpoint errors are ignored, as SQLite's automatic checkpoint ignores them: the pages
//! are safe in the WAL, and the next checkpoint copies them.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::{ffi, Connection, OpenFlags};

use crate::error::{Result, WeaveError};

/// Pages in the WAL after a commit at which the checkpointer is woken (SQLite's own
/// automatic checkpoint threshold).
const WAKE_AT_FRAMES: c_int = 1000;
/// Pages in the WAL after a commit at which the committing connection checkpoints itself,
/// so that the next transaction can rewind the WAL (see the module docs).
const SELF_AT_FRAMES: c_int = 16_000;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// The checkpointer's thread id (Linux), `0` until it runs.
    tid: std::sync::atomic::AtomicI32,
    /// The checkpointer runs at normal priority until its checkpoint under way is done.
    boosted: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    /// A commit has left pages to copy since the checkpointer last started.
    pending: bool,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The checkpointing thread of a store's writer connection ([`Checkpointer::install`]).
/// The installed hook holds a reference of its own to `shared` (`Arc::into_raw`), released
/// by `uninstall`.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the checkpointing thread for the store file at `path` and installs the WAL
    /// hook on `writer`, the store's writer connection (in WAL mode). Call
    /// [`uninstall`](Self::uninstall) with the same connection before dropping either.
    pub(super) fn install(writer: &Connection, path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("weave-wal-ckpt".into())
            .spawn({
                let shared = shared.clone();
                move || run(conn, &shared)
            })
            .map_err(|e| {
                WeaveError::backend_caused_by(format!("cannot start the checkpoint thread: {e}"), e)
            })?;
        let hook_ctx = Arc::into_raw(shared.clone());
        // SAFETY: `writer` is a live connection; `hook_ctx` stays valid until `uninstall`
        // removes the hook and releases it.
        unsafe {
            ffi::sqlite3_wal_hook(writer.handle(), Some(wal_hook), hook_ctx as *mut c_void);
        }
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Removes the hook from `writer` (the connection it was installed on), then stops the
    /// thread and waits for it (dropping `self`: it finishes a checkpoint under way first).
    pub(super) fn uninstall(self, writer: &Connection) {
        // SAFETY: the hook was installed on `writer` with the pointer of an `Arc::into_raw` of
        // `self.shared` (the same pointer as `Arc::as_ptr`); once the hook is removed nothing
        // else uses it, and this releases the hook's reference.
        unsafe {
            ffi::sqlite3_wal_hook(writer.handle(), None, std::ptr::null_mut());
            drop(Arc::from_raw(Arc::as_ptr(&self.shared)));
        }
    }

    /// Stops the thread and waits for it.
    fn stop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    /// Without [`uninstall`](Checkpointer::uninstall) first, the thread still stops; the
    /// hook keeps its reference (valid, never released) and only wakes no one.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer connection's WAL hook, called after each commit with the WAL's size in pages.
/// It must not unwind (an FFI boundary): nothing in it panics.
unsafe extern "C" fn wal_hook(
    ctx: *mut c_void,
    db: *mut ffi::sqlite3,
    name: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `ctx` is the `Arc<Shared>` the hook was installed with, alive until the hook is
    // removed.
    let shared = unsafe { &*(ctx as *const Shared) };
    if frames >= SELF_AT_FRAMES {
        // SAFETY: `db` and `name` are the ones SQLite calls the hook with; SQLite's own
        // automatic checkpoint makes this call from its hook too.
        let rc = unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                db,
                name,
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc == ffi::SQLITE_BUSY {
            // The checkpointer is in the middle of one: let it finish at normal priority.
            boost(shared);
        }
    } else if frames >= WAKE_AT_FRAMES {
        let mut st = shared.lock();
        if !st.pending {
            st.pending = true;
            drop(st);
            shared.wake.notify_one();
        }
    }
    ffi::SQLITE_OK
}

fn run(conn: Connection, shared: &Shared) {
    crate::own_work::mark_internal_thread();
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions.
    shared.tid.store(
        unsafe { libc::gettid() },
        std::sync::atomic::Ordering::Release,
    );
    run_only_when_idle();
    loop {
        {
            let mut st = shared.lock();
            while !st.pending && !st.stop {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.stop {
                shared.tid.store(0, std::sync::atomic::Ordering::Release);
                return;
            }
            st.pending = false;
        }
        // Busy (another checkpoint under way, e.g. the writer's own): the next wake retries.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if shared
            .boosted
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            run_only_when_idle();
        }
    }
}

/// Lifts the checkpointer to normal priority (Linux; elsewhere it never left it), once
/// until it has finished its checkpoint.
fn boost(shared: &Shared) {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::Ordering;
        let tid = shared.tid.load(Ordering::Acquire);
        if tid != 0 && !shared.boosted.swap(true, Ordering::AcqRel) {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `tid` is the checkpointer's thread (alive while the hook is installed:
            // the thread stops only after the hook is removed); `param` is valid.
            unsafe {
                libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = shared;
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on a core nothing
/// else wants. Elsewhere (and if it fails) the thread keeps its normal priority.
fn run_only_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
    }
}
