//! The panic guard: user code the SDK runs (postprocess and display-name functions, a
//! `Serialize` or `Debug` of captured values) must never break the traced program.

/// Runs user code given to the SDK (postprocess functions, display-name functions): a panic in
/// it must not break the traced program, so it is caught and `fallback` gets its message.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T, fallback: impl FnOnce(String) -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| fallback(panic_message(&*p)))
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}
