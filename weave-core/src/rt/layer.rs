//! The tracing layer's contract with the call stack: what `weave-tracing` calls when it
//! enters and exits a span that has a call.

use crate::client::context::{self, Frame, SavedFrames};
use crate::Call;

/// For the tracing layer entering a span: makes `call` (or, with `None`, a sampled-out
/// trace) current, with the frames `saved` when the span was last exited above it.
pub fn enter_span_segment(call: Option<&Call>, saved: &mut SavedFrames) {
    let frame = match call {
        Some(c) => Frame::Call(c.clone()),
        None => Frame::Suppressed,
    };
    context::enter_segment(Some(&frame), saved);
}

/// Whether `call` is on this thread's call stack (for the tracing layer: an op's span entered
/// where the op itself runs needs no second push).
pub fn is_on_stack(call: &Call) -> bool {
    context::on_stack(call)
}

/// For the tracing layer exiting a span: undoes [`enter_span_segment`], keeping in `saved`
/// the live frames made above it meanwhile (direct `create_call`s), for the next enter.
pub fn exit_span_segment(call: Option<&Call>, saved: &mut SavedFrames) {
    let is_frame = |f: &Frame| match (f, call) {
        (Frame::Call(c), Some(call)) => c.same_call(call),
        (Frame::Suppressed, None) => true,
        _ => false,
    };
    context::exit_segment_where(Some(&is_frame), 0, saved);
}
