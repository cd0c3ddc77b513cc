//! The process's on/off switch for tracing, read by every op before anything else: whether
//! tracing is disabled (`WEAVE_DISABLED`, or [`disable`]) and whether a process-wide client is
//! set. Both live in one atomic byte so that the common case costs one load. A leaf: the
//! client sets the global-client bit, the op runtime and the tracing layer read it.

use std::sync::atomic::{AtomicU8, Ordering};

/// The switch has not read the environment yet.
const UNINIT: u8 = 0x80;
/// A process-wide client is set ([`crate::set_global_client`]).
pub(crate) const GLOBAL_CLIENT: u8 = 0x01;
/// Tracing is off for the process.
pub(crate) const DISABLED: u8 = 0x02;

static MODE: AtomicU8 = AtomicU8::new(UNINIT);

#[cold]
fn init_mode() -> u8 {
    let disabled = crate::config::Settings::from_env().disabled;
    let set = if disabled { DISABLED } else { 0 };
    // Keep a GLOBAL_CLIENT bit set meanwhile by set_global_client.
    let _ = MODE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
        Some((m & !UNINIT) | set)
    });
    MODE.load(Ordering::Acquire)
}

/// The switch's bits ([`GLOBAL_CLIENT`], [`DISABLED`]), reading the environment the first
/// time.
#[inline]
pub(crate) fn mode() -> u8 {
    let m = MODE.load(Ordering::Relaxed);
    if m & UNINIT != 0 {
        init_mode()
    } else {
        m
    }
}

/// Whether tracing is turned off for this process (`WEAVE_DISABLED`).
pub fn is_disabled() -> bool {
    mode() & DISABLED != 0
}

/// Turns tracing off for the rest of the process, as `WEAVE_DISABLED=true` does (used by
/// `weave::init` when its settings say disabled).
pub fn disable() {
    let _ = mode();
    MODE.fetch_or(DISABLED, Ordering::AcqRel);
}

/// Whether a process-wide client is set.
pub(crate) fn has_global_client() -> bool {
    mode() & GLOBAL_CLIENT != 0
}

/// Records whether a process-wide client is set (by [`crate::set_global_client`]).
pub(crate) fn set_global_client_flag(on: bool) {
    let _ = mode();
    if on {
        MODE.fetch_or(GLOBAL_CLIENT, Ordering::AcqRel);
    } else {
        MODE.fetch_and(!GLOBAL_CLIENT, Ordering::AcqRel);
    }
}
