//! What the layer keeps in a span's extensions ([`SpanEntry`]), and finding a span's nearest
//! call among its ancestors by it.
//!
//! A span the layer records holds its [`OwnedCall`]; an op's span (`#[weave::op]`) holds the
//! op's call; a span made inside a sampled-out trace is marked suppressed. Each keeps the
//! direct calls made inside it while it is exited ([`PerThreadSaved`]).

use serde_json::Value;
use tracing::span::Id;
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use weave_core::rt::{self, Placement, SavedFrames};

use weave_core::genai::GenAiFields;
use weave_core::{Call, Exception};

use crate::sites::Site;

/// Frames saved when a span is exited, per thread: a span entered on two threads at once
/// (rare, but allowed) must not hand one thread's direct calls to the other.
#[derive(Default)]
pub(crate) struct PerThreadSaved(Vec<(std::thread::ThreadId, SavedFrames)>);

impl PerThreadSaved {
    fn take(&mut self) -> SavedFrames {
        if self.0.is_empty() {
            // Most spans: nothing kept, no need to ask which thread this is.
            return SavedFrames::default();
        }
        let me = std::thread::current().id();
        match self.0.iter().position(|(t, _)| *t == me) {
            Some(i) => self.0.swap_remove(i).1,
            None => SavedFrames::default(),
        }
    }
    fn put(&mut self, saved: SavedFrames) {
        if !saved.is_empty() {
            self.0.push((std::thread::current().id(), saved));
        }
    }
    pub(crate) fn enter(&mut self, call: Option<&Call>) {
        let mut saved = self.take();
        rt::enter_span_segment(call, &mut saved);
    }
    pub(crate) fn exit(&mut self, call: Option<&Call>) {
        let mut saved = SavedFrames::default();
        rt::exit_span_segment(call, &mut saved);
        self.put(saved);
    }
}

/// What the layer keeps in a span's extensions.
pub(crate) enum SpanEntry {
    /// A call this layer made for the span, finished when the span closes.
    Owned(OwnedCall),
    /// An op's span: the op makes and finishes the call. Kept for explicit-parent lookups,
    /// and pushed when the span is entered where the op's call is not already current (a
    /// task spawned with `fut.in_current_span()` inside the op).
    Op(Call, PerThreadSaved),
    /// Made inside a sampled-out trace: entering it keeps its subtree untraced.
    Suppressed(PerThreadSaved),
}

/// The call a span this layer records owns, and what is gathered for it until the span closes.
pub(crate) struct OwnedCall {
    pub(crate) call: Call,
    /// The span's callsite.
    pub(crate) site: &'static Site,
    /// The GenAI fields (see [`weave_core::genai::GenAiFields`]), mapped when the call ends
    /// (`None` for the many spans without any).
    pub(crate) genai: Option<Box<GenAiFields>>,
    /// The `return` value of `#[instrument(ret)]`.
    pub(crate) output: Option<Value>,
    /// The `error` of `#[instrument(err)]`.
    pub(crate) error: Option<Exception>,
    /// Depth of enters on the current thread(s), to pop what was pushed.
    pub(crate) entered: usize,
    /// Direct calls made inside the span, kept while it is exited (see [`SavedFrames`]).
    pub(crate) saved: PerThreadSaved,
}

/// The nearest call among `parent` and its ancestors.
pub(crate) fn explicit_parent<S>(ctx: &Context<'_, S>, parent: &Id) -> Placement
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match ctx.span_scope(parent) {
        Some(scope) => nearest_call(scope),
        None => Placement::Root(None),
    }
}

/// The first call among `scope` (a span and its ancestors).
pub(crate) fn nearest_call<'a, R: LookupSpan<'a>>(
    scope: tracing_subscriber::registry::Scope<'a, R>,
) -> Placement {
    for span in scope {
        match span.extensions().get::<SpanEntry>() {
            Some(SpanEntry::Owned(o)) => return Placement::Child(o.call.clone()),
            Some(SpanEntry::Op(c, _)) => return Placement::Child(c.clone()),
            Some(SpanEntry::Suppressed(_)) => return Placement::Suppressed,
            None => {}
        }
    }
    Placement::Root(None)
}
