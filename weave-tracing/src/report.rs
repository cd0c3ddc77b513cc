//! Reporting a span that could not be traced: once per process, on stderr, so that a broken
//! backend neither floods the output nor goes unnoticed.

/// Reports `e` on stderr the first time a span cannot be traced; later errors are not reported.
#[cold]
pub(crate) fn report_once(e: &weave_core::WeaveError) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!("weave: a span could not be traced ({e}); further such errors are not reported.");
    }
}
