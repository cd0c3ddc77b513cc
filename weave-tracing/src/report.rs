//! Reporting a span that could not be traced: once per process, on stderr, so that a broken
//! backend neither floods the output nor goes unnoticed.

/// Reports `e` on stderr the first time a span cannot be traced; later errors are not reported.
#[cold]
pub(crate) fn report_once(e: &weave_core::WeaveError) {
    static REPORT: weave_core::rt::ReportOnce = weave_core::rt::ReportOnce::new();
    REPORT.report(format_args!(
        "weave: a span could not be traced ({e}); further such errors are not reported."
    ));
}
