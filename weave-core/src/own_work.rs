//! Weave's own work: which threads and stretches of code belong to the SDK itself (the
//! background writer, a backend's I/O, a client method talking to its backend), so that the
//! tracing layer never records the SDK as the user's calls. A leaf: it knows nothing of
//! calls, clients or backends, and every layer may mark its threads through it.

use std::cell::Cell;

thread_local! {
    /// Set for good on threads the SDK owns.
    static INTERNAL: Cell<bool> = const { Cell::new(false) };
    /// How many [`internal`] sections are running on this thread.
    static INTERNAL_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is doing weave's own work right now (the background writer, a
/// backend's I/O, a client method talking to its backend). The tracing layer ignores every
/// span and event made then, so the SDK never traces itself.
pub fn is_internal_thread() -> bool {
    INTERNAL.try_with(Cell::get).unwrap_or(false)
        || INTERNAL_DEPTH.try_with(Cell::get).unwrap_or(0) > 0
}

/// Marks the current thread as weave-internal for good (see [`is_internal_thread`]).
pub fn mark_internal_thread() {
    let _ = INTERNAL.try_with(|c| c.set(true));
}

/// Runs `f` as weave-internal work on this thread (see [`is_internal_thread`]).
pub fn internal<R>(f: impl FnOnce() -> R) -> R {
    struct Dec;
    impl Drop for Dec {
        fn drop(&mut self) {
            let _ = INTERNAL_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let _ = INTERNAL_DEPTH.try_with(|d| d.set(d.get() + 1));
    let _dec = Dec;
    f()
}
