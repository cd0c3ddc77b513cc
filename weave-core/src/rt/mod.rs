//! The runtime of `#[weave::op]`: what the generated code calls. Not a public API — the
//! macro is; names here may change in any release.
//!
//! Generated code for a sync op, in outline:
//!
//! ```text
//! static SITE: OpSite = OpSite::new(build_op, sample_rate);
//! let body = body(move |pre: Option<&mut Prelude>| {
//!     if let Some(pre) = pre { pre.start(|args| write inputs to args, |id| info_span!("name", weave.call_id = id)) }
//!     ...the function's statements...
//! });
//! if enabled() { run_sync(&SITE, display_name, self_type, body, |op, out| op.finish(|| capture(out))) }
//! else { body(None) }                            // the plain function, inlined
//! ```
//!
//! An `async fn` starts its call with [`OpSite::start`] when it is first polled (the
//! arguments are captured before they move into the future) and runs its body with
//! [`OpCall::run_async`], which pushes the call and enters the span around every poll; dropping the future before it completes fails the call as
//! cancelled.

use std::fmt::Debug;

pub use crate::client::context::SavedFrames;
use crate::client::context::{self, Current};
use crate::switch;
use crate::{Call, WeaveClient};

pub use crate::report::ReportOnce;
pub use serde_json;
pub use tracing;

mod capture;
mod layer;
mod op;
mod per_client;
mod sampling;
mod span;

pub use self::capture::*;
pub use self::layer::*;
pub use self::op::*;
pub use self::span::*;
#[doc(hidden)]
pub use crate::__weave_op_span as op_span;

// ---------------------------------------------------------------------------------------
// On / off (the switch itself is `crate::switch`, which the client sets too)

pub use crate::switch::{disable, is_disabled};

/// Whether an op should even look at tracing now: not disabled, and either a process-wide
/// client is set or a call encloses this code (ops inherit their parent's client). One
/// atomic load in the common cases.
#[inline]
pub fn enabled() -> bool {
    let m = switch::mode();
    if m == switch::GLOBAL_CLIENT {
        return true;
    }
    m & switch::DISABLED == 0 && context::stack_is_nonempty()
}

/// Names another tracing system's current span's call, for mirrors of its spans (the
/// OpenTelemetry span processor): from then on, an op, span or `create_call` made while
/// such a span is current — and deeper than this thread's own current call — is its child.
/// Once per process; false when a hook was set before.
pub fn set_foreign_current(hook: fn() -> Option<Call>) -> bool {
    context::set_foreign_current(hook)
}

/// Whether `call` is below `ancestor` in a trace (by the parent ids of its live ancestors,
/// in this process).
pub fn descends_from(call: &Call, ancestor: &Call) -> bool {
    context::descends_from(call, ancestor)
}

/// The client a new root call (no enclosing call) is recorded with: the process-wide one.
pub fn root_client() -> Option<WeaveClient> {
    if !switch::has_global_client() {
        return None;
    }
    crate::global_client()
}

/// Where a new call goes: under the enclosing call, as a root, or nowhere.
#[derive(Debug)]
pub enum Placement {
    /// Tracing is off for the process (`WEAVE_DISABLED`).
    Disabled,
    /// Inside a sampled-out trace: not traced, and what is made here stays untraced.
    Suppressed,
    /// A root call, on the process-wide client if one is set.
    Root(Option<WeaveClient>),
    /// A child of this call (on its client).
    Child(Call),
}

/// Decides where a call made now goes (ops and the tracing layer both use this).
pub fn placement() -> Placement {
    match placement_of_child() {
        Placement::Root(None) => Placement::Root(root_client()),
        other => other,
    }
}

/// [`placement`], except that a root is `Root(None)`, the process-wide client not looked up
/// (for the tracing layer, whose own client, when it has one, comes first).
pub fn placement_of_child() -> Placement {
    if is_disabled() {
        return Placement::Disabled;
    }
    match context::current() {
        Current::Suppressed => Placement::Suppressed,
        Current::Call(c) => Placement::Child(c),
        Current::None => Placement::Root(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{ArgKey, ArgsWriter};

    #[test]
    fn argument_names_are_checked_once_and_written_as_json() {
        let a = ArgKey::new("a", "\"a\":");
        // Redaction ignores ASCII case, as for map keys; a longer name is not redacted.
        let secret = ArgKey::new("Api_KEY", "\"Api_KEY\":");
        let not_secret = ArgKey::new("api_keys", "\"api_keys\":");
        // A quoted text that is not the name's: the name is escaped as it is written.
        let mismatch = ArgKey::new("b", "\"c\":");
        let escaped = ArgKey::new("q\"\n", "\"q\"\n\":");

        let mut args = ArgsWriter::new();
        args.serialize(a, &1u8);
        args.string(mismatch, "x");
        args.serialize(escaped, &[true]);
        args.serialize(secret, "sk-123");
        args.string(not_secret, "listed");
        assert_eq!(
            args.finish(),
            r#"{"a":1,"b":"x","q\"\n":[true],"Api_KEY":"REDACTED","api_keys":"listed"}"#
        );
    }
}
