//! Reporting a failure of tracing itself once per process: on stderr, the first time, and
//! never again, so that a broken backend never floods the traced program's output (what
//! else is lost is counted where it happens, e.g. `WeaveClient::dropped`). A leaf.

use std::sync::atomic::{AtomicBool, Ordering};

/// A message printed on stderr the first time [`ReportOnce::report`] is called.
///
/// ```
/// static SPAN_FAILED: weave_core::rt::ReportOnce = weave_core::rt::ReportOnce::new();
/// SPAN_FAILED.report(format_args!("weave: a span could not be traced"));
/// SPAN_FAILED.report(format_args!("not printed"));
/// ```
#[derive(Debug)]
pub struct ReportOnce(AtomicBool);

impl ReportOnce {
    /// Not reported yet.
    pub const fn new() -> Self {
        ReportOnce(AtomicBool::new(false))
    }

    /// Prints `message` on stderr unless something was reported through `self` before.
    #[cold]
    pub fn report(&self, message: std::fmt::Arguments<'_>) {
        if !self.0.swap(true, Ordering::Relaxed) {
            eprintln!("{message}");
        }
    }
}

impl Default for ReportOnce {
    fn default() -> Self {
        Self::new()
    }
}
