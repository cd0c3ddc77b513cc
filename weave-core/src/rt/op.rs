//! Op sites and op calls: what the code `#[weave::op]` generates calls, for sync and async
//! functions.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};

use serde_json::Value;

use super::capture::ArgsWriter;
use super::per_client::PerClient;
use super::sampling::random_unit;
use super::{placement, Placement};
use crate::client::context::{self, Frame, FrameGuard, SavedFrames, SegmentGuard};
use crate::client::panic_message;
use crate::record::Inputs;
use crate::{Call, CallOptions, Exception, JsonMap, Op, WeaveClient};

// ---------------------------------------------------------------------------------------
// Op sites and calls

/// One `#[weave::op]` function: its [`Op`] (built once) and sample rate.
#[derive(Debug)]
pub struct OpSite {
    build: fn() -> Op,
    sample_rate: f64,
    op: OnceLock<Op>,
    /// A method's ops, one per `Self` type (a trait default method, a generic impl).
    methods: std::sync::RwLock<Vec<(&'static str, &'static Op)>>,
    /// The op ref, by (client serial, op address): saves the client's lookup (a hash of the
    /// name, a comparison of the code digest) on every call.
    resolved: PerClient<(u64, usize), Arc<str>>,
}

/// How a call's display name is given.
#[derive(Debug)]
pub enum DisplayNameArg {
    /// None given.
    None,
    /// A fixed name.
    Static(&'static str),
    /// A function of the new call.
    Fn(fn(&Call) -> String),
}

impl OpSite {
    /// A site whose op is made by `build` on first use.
    pub const fn new(build: fn() -> Op, sample_rate: f64) -> Self {
        OpSite {
            build,
            sample_rate,
            op: OnceLock::new(),
            methods: std::sync::RwLock::new(Vec::new()),
            resolved: PerClient::new(),
        }
    }

    /// The ref `op` is recorded under on `client` (cached for the last client seen).
    fn resolve(&self, client: &WeaveClient, op: &'static Op) -> crate::Result<Arc<str>> {
        let key = (client.serial(), op as *const Op as usize);
        self.resolved.get_or_try_init(key, || client.resolve_op(op))
    }

    /// The op. A method's op is named `Type.method` after its `Self` type (Python names
    /// methods by their `__qualname__`); each `Self` type gets its own op, built once and
    /// kept for the life of the process (one per type a method runs on).
    pub fn op(&self, self_type: Option<&'static str>) -> &Op {
        let Some(t) = self_type else {
            return self.op.get_or_init(self.build);
        };
        {
            let methods = self.methods.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, op)) = methods.iter().find(|(ty, _)| *ty == t) {
                return op;
            }
        }
        let mut methods = self.methods.write().unwrap_or_else(|e| e.into_inner());
        if let Some((_, op)) = methods.iter().find(|(ty, _)| *ty == t) {
            return op;
        }
        let op = (self.build)();
        let ty = crate::client::exception::short_type_name(t);
        let name = format!("{ty}.{}", op.name());
        let op: &'static Op = Box::leak(Box::new(op.renamed(name)));
        methods.push((t, op));
        op
    }

    /// Starts a call of this op where the stack says (see [`placement`]), with the inputs
    /// `inputs` builds (only called when the call is traced), and makes its `tracing` span
    /// with `span(call_id)` when a subscriber may want it.
    /// `self_type` is `type_name::<Self>()` for a method without an explicit name.
    #[inline(never)]
    pub fn start(
        &'static self,
        inputs: impl FnOnce(&mut ArgsWriter),
        display_name: DisplayNameArg,
        self_type: Option<&'static str>,
        span: impl FnOnce(&str) -> tracing::Span,
    ) -> OpCall {
        let mut op = self.start_call(inputs, display_name, self_type);
        op.attach_span(span);
        op
    }

    fn start_call(
        &'static self,
        inputs: impl FnOnce(&mut ArgsWriter),
        display_name: DisplayNameArg,
        self_type: Option<&'static str>,
    ) -> OpCall {
        let (client, parent) = match placement() {
            Placement::Disabled | Placement::Suppressed | Placement::Root(None) => {
                return OpCall::off()
            }
            Placement::Child(p) => (p.client().clone(), Some(p)),
            Placement::Root(Some(c)) => {
                if self.sample_rate < 1.0 && random_unit() >= self.sample_rate {
                    return OpCall {
                        state: State::SampledOut,
                    };
                }
                (c, None)
            }
        };
        let mut opts = CallOptions::new().use_stack(false);
        opts.parent = parent;
        match display_name {
            DisplayNameArg::None => {}
            DisplayNameArg::Static(s) => opts = opts.display_name(s),
            DisplayNameArg::Fn(f) => opts = opts.display_name_fn(f),
        }
        let op = self.op(self_type);
        let op_name = match self.resolve(&client, op) {
            Ok(r) => r,
            Err(e) => {
                report_once(&e);
                return OpCall::off();
            }
        };
        // A user's Serialize/Debug that panics must not stop the op from running.
        let mut args = ArgsWriter::new();
        let inputs = match catch_unwind(AssertUnwindSafe(|| inputs(&mut args))) {
            Ok(()) => Inputs::json(args.finish()),
            Err(p) => {
                let mut m = JsonMap::new();
                m.insert(
                    "_weave_capture_error".into(),
                    Value::String(format!(
                        "capturing the inputs panicked: {}",
                        panic_message(&*p)
                    )),
                );
                Inputs::Map(Box::new(m))
            }
        };
        match client.create_call_inner(op, op_name, inputs, opts) {
            Ok(call) => {
                context::offer_to_capture(&call);
                OpCall {
                    state: State::Live(Live {
                        call,
                        op,
                        span: tracing::Span::none(),
                        done: false,
                    }),
                }
            }
            Err(e) => {
                report_once(&e);
                OpCall::off()
            }
        }
    }
}

/// The body of a sync op as a closure called once (so that, as a function body, it may
/// return borrows of what it captured). It is handed a [`Prelude`] when the call is
/// traced, and `None` when it is not: then it is the plain function's body, inlined, and
/// the op costs a flag test over the plain function.
#[inline(always)]
pub fn body<R, F: FnOnce(Option<&mut Prelude>) -> R>(f: F) -> F {
    f
}

/// Handed to a traced sync op's body, which starts its call first thing (the arguments are
/// captured inside the body, where they were moved, so that the untraced path never takes
/// their addresses): the call is made current and its span entered until the body returns.
pub struct Prelude {
    site: &'static OpSite,
    display_name: Option<DisplayNameArg>,
    self_type: Option<&'static str>,
    op: OpCall,
    frame: Option<FrameGuard>,
    entered: Option<tracing::span::EnteredSpan>,
}

impl std::fmt::Debug for Prelude {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prelude").field("op", &self.op).finish()
    }
}

impl Prelude {
    /// Starts the call with the inputs `inputs` builds and the span `span` makes (see
    /// [`OpSite::start`]).
    pub fn start(
        &mut self,
        inputs: impl FnOnce(&mut ArgsWriter),
        span: impl FnOnce(&str) -> tracing::Span,
    ) {
        let display = self.display_name.take().unwrap_or(DisplayNameArg::None);
        self.op = self.site.start(inputs, display, self.self_type, span);
        if !self.op.is_off() {
            self.frame = Some(FrameGuard::push(self.op.frame()));
            if let State::Live(l) = &self.op.state {
                self.entered = Some(l.span.clone().entered());
            }
        }
    }
}

/// Runs a sync op's body traced: the body starts the call ([`Prelude::start`]); when it
/// returns, the span is exited, the call popped, and `finish` ends the call with the
/// output. A panic fails the call with the panic's message, then continues.
#[inline(never)]
pub fn run_sync<R>(
    site: &'static OpSite,
    display_name: DisplayNameArg,
    self_type: Option<&'static str>,
    body: impl FnOnce(Option<&mut Prelude>) -> R,
    finish: impl FnOnce(&mut OpCall, &R),
) -> R {
    let mut pre = Prelude {
        site,
        display_name: Some(display_name),
        self_type,
        op: OpCall::off(),
        frame: None,
        entered: None,
    };
    let res = catch_unwind(AssertUnwindSafe(|| body(Some(&mut pre))));
    let Prelude {
        mut op,
        frame,
        entered,
        ..
    } = pre;
    drop(entered);
    drop(frame);
    match res {
        Ok(r) => {
            finish(&mut op, &r);
            r
        }
        Err(payload) => {
            op.fail_panic(&*payload);
            resume_unwind(payload)
        }
    }
}

#[cold]
pub(super) fn report_once(e: &crate::WeaveError) {
    static REPORT: crate::report::ReportOnce = crate::report::ReportOnce::new();
    REPORT.report(format_args!(
        "weave: an op could not be traced ({e}); it ran untraced. Further such errors are not reported."
    ));
}

pub(super) struct Live {
    call: Call,
    op: &'static Op,
    span: tracing::Span,
    done: bool,
}

pub(super) enum State {
    Off,
    SampledOut,
    Live(Live),
}

/// One invocation of an op: traced (live), sampled out, or off.
pub struct OpCall {
    state: State,
}

impl std::fmt::Debug for OpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Off => f.write_str("OpCall::Off"),
            State::SampledOut => f.write_str("OpCall::SampledOut"),
            State::Live(l) => write!(f, "OpCall({})", l.call.id()),
        }
    }
}

impl OpCall {
    /// Not traced: the op runs as a plain function.
    #[inline]
    pub fn off() -> Self {
        OpCall { state: State::Off }
    }

    /// Whether a call is being recorded.
    #[inline]
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live(_))
    }

    /// Whether the op runs as a plain function (tracing off, no client).
    #[inline]
    pub fn is_off(&self) -> bool {
        matches!(self.state, State::Off)
    }

    /// Makes the op's `tracing` span with `make(call_id)`, for a live call only, and only
    /// when a subscriber may take `INFO` spans. The tracing layer recognises op spans by
    /// their `weave.call_id` field and does not make a second call for them.
    #[inline]
    pub fn attach_span(&mut self, make: impl FnOnce(&str) -> tracing::Span) {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return;
        }
        if let State::Live(l) = &mut self.state {
            let _ = OP_SPAN_CALL.try_with(|c| c.replace(Some(l.call.clone())));
            l.span = make(l.call.id());
            let _ = OP_SPAN_CALL.try_with(|c| c.take());
        }
    }

    fn frame(&self) -> Option<Frame> {
        match &self.state {
            State::Off => None,
            State::SampledOut => Some(Frame::Suppressed),
            State::Live(l) => Some(Frame::Call(l.call.clone())),
        }
    }

    /// Wraps the body of an `async fn` (see [`OpFuture`]).
    pub fn run_async<F: Future>(&mut self, body: F) -> OpFuture<'_, F> {
        OpFuture {
            op: self,
            saved: SavedFrames::default(),
            fut: body,
        }
    }

    fn fail_panic(&mut self, payload: &(dyn Any + Send)) {
        let msg = panic_message(payload);
        self.end(Value::Null, Some(Exception::new("panic", msg)));
    }

    fn end(&mut self, output: Value, exception: Option<Exception>) {
        if let State::Live(l) = &mut self.state {
            if l.done {
                return;
            }
            l.done = true;
            let _ = l
                .call
                .client()
                .finish_call_value(&l.call, output, exception, Some(l.op));
        }
    }

    /// Ends the call successfully with `output` (built only for a live call).
    #[inline]
    pub fn finish(&mut self, output: impl FnOnce() -> Value) {
        if self.is_live() {
            let output = catch_unwind(AssertUnwindSafe(output)).unwrap_or_else(|p| {
                Value::String(format!(
                    "<capturing the output panicked: {}>",
                    panic_message(&*p)
                ))
            });
            self.end(output, None);
        }
    }

    /// Ends the call as failed with `exception` (built only for a live call).
    #[inline]
    pub fn fail(&mut self, exception: impl FnOnce() -> Exception) {
        if self.is_live() {
            let exception = catch_unwind(AssertUnwindSafe(exception)).unwrap_or_else(|p| {
                Exception::new(
                    "Error",
                    format!("<capturing the error panicked: {}>", panic_message(&*p)),
                )
            });
            self.end(Value::Null, Some(exception));
        }
    }
}

impl Drop for OpCall {
    fn drop(&mut self) {
        if let State::Live(l) = &self.state {
            if !l.done {
                let e = if std::thread::panicking() {
                    Exception::new("panic", "the op was dropped while its thread was panicking")
                } else {
                    Exception::new(
                        "Cancelled",
                        "the op's future was dropped before it completed",
                    )
                };
                self.end(Value::Null, Some(e));
            }
        }
    }
}

thread_local! {
    static OP_SPAN_CALL: std::cell::RefCell<Option<Call>> = const { std::cell::RefCell::new(None) };
}

/// For the tracing layer: the op call whose span is being created right now on this thread.
pub fn op_span_call() -> Option<Call> {
    OP_SPAN_CALL.try_with(|c| c.borrow().clone()).ok().flatten()
}

pin_project_lite::pin_project! {
    /// The body of an `async` op: every poll runs with the op's call current and its span
    /// entered; a panic in a poll fails the call and continues.
    pub struct OpFuture<'a, F> {
        op: &'a mut OpCall,
        saved: SavedFrames,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for OpFuture<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let State::Off = this.op.state {
            return this.fut.poll(cx);
        }
        let res = {
            let _segment = SegmentGuard::enter(this.op.frame(), this.saved);
            let _enter = match &this.op.state {
                State::Live(l) => Some(l.span.enter()),
                _ => None,
            };
            let fut = this.fut;
            catch_unwind(AssertUnwindSafe(move || fut.poll(cx)))
        };
        match res {
            Ok(p) => p,
            Err(payload) => {
                this.op.fail_panic(&*payload);
                resume_unwind(payload)
            }
        }
    }
}
