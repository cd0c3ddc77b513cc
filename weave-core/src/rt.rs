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

use std::any::Any;
use std::cell::Cell;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};

use serde::Serialize;
use serde_json::Value;

pub use crate::client::context::SavedFrames;
use crate::client::context::{self, Current, Frame, FrameGuard, SegmentGuard};
use crate::record::Inputs;
use crate::switch;
use crate::{Call, CallOptions, Exception, JsonMap, Op, WeaveClient};

pub use serde_json;
pub use tracing;

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
    if is_disabled() {
        return Placement::Disabled;
    }
    match context::current() {
        Current::Suppressed => Placement::Suppressed,
        Current::Call(c) => Placement::Child(c),
        Current::None => Placement::Root(root_client()),
    }
}

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
    let frame = match call {
        Some(c) => Frame::Call(c.clone()),
        None => Frame::Suppressed,
    };
    context::exit_segment(Some(&frame), 0, saved);
}

// ---------------------------------------------------------------------------------------
// Sampling

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish() | 1
    });
}

/// A uniform draw in [0, 1) (xorshift64*, per thread).
fn random_unit() -> f64 {
    RNG.try_with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
    // During thread teardown: trace (a sampled trace is never wrongly dropped for this).
    .unwrap_or(0.0)
}

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
    /// The op ref last resolved: (client serial, op address, ref). Saves the client's lookup
    /// (a hash of the name, a comparison of the code digest) on every call.
    resolved: std::sync::RwLock<Option<(u64, usize, Arc<str>)>>,
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
            resolved: std::sync::RwLock::new(None),
        }
    }

    /// The ref `op` is recorded under on `client` (cached for the last client seen).
    fn resolve(&self, client: &WeaveClient, op: &'static Op) -> crate::Result<Arc<str>> {
        let key = (client.serial(), op as *const Op as usize);
        if let Some((serial, addr, r)) = &*self.resolved.read().unwrap_or_else(|e| e.into_inner()) {
            if (*serial, *addr) == key {
                return Ok(r.clone());
            }
        }
        let r = client.resolve_op(op)?;
        *self.resolved.write().unwrap_or_else(|e| e.into_inner()) = Some((key.0, key.1, r.clone()));
        Ok(r)
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
                Inputs::Map(m)
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
fn report_once(e: &crate::WeaveError) {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!("weave: an op could not be traced ({e}); it ran untraced. Further such errors are not reported.");
    }
}

struct Live {
    call: Call,
    op: &'static Op,
    span: tracing::Span,
    done: bool,
}

enum State {
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

use crate::client::panic_message;

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

// ---------------------------------------------------------------------------------------
// Capturing values without bounds: Serialize, else Debug, else a placeholder.
//
// Autoref specialisation: `(&&&Capture(&x)).__weave_value()` picks the first impl that
// applies, in the order of the receiver types `&&Capture`, `&Capture`, `Capture`; errors
// likewise with `(&&&&&CaptureErr(&e)).__weave_exception()` over five levels.

/// An argument's name, as an op's macro passes it to [`ArgsWriter`]: made in a constant, so
/// that whether its value is redacted (named like one of [`REDACT_KEYS`](crate::REDACT_KEYS))
/// and its quoted text are settled when the program is compiled, not on each call.
#[derive(Clone, Copy, Debug)]
pub struct ArgKey {
    name: &'static str,
    /// `"name":`, when that is the name's JSON text (an identifier's always is).
    quoted: Option<&'static str>,
    redacted: bool,
}

impl ArgKey {
    /// The argument `name`; `quoted` is meant to be `"name":` (the macro writes it with
    /// `concat!`), and is checked here: when it is not exactly that, the name is escaped
    /// as it is written instead.
    pub const fn new(name: &'static str, quoted: &'static str) -> Self {
        ArgKey {
            name,
            quoted: if is_quoted_key(name.as_bytes(), quoted.as_bytes()) {
                Some(quoted)
            } else {
                None
            },
            redacted: crate::client::is_redacted_key(name),
        }
    }
}

/// Whether `quoted` is `"name":` with nothing in `name` that JSON escapes.
const fn is_quoted_key(name: &[u8], quoted: &[u8]) -> bool {
    if quoted.len() != name.len() + 3
        || quoted[0] != b'"'
        || quoted[name.len() + 1] != b'"'
        || quoted[name.len() + 2] != b':'
    {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b < 0x20 || b == b'"' || b == b'\\' || quoted[i + 1] != b {
            return false;
        }
        i += 1;
    }
    true
}

/// An op's arguments, written as the JSON text of an object on the traced thread as they
/// are captured: one buffer, whatever the values (no `Value` tree, no map to hash). Each value
/// is nested at most [`MAX_DEPTH`](crate::limits::MAX_DEPTH) levels deep in the object and
/// redacted as it is written (arguments and keys named like
/// [`REDACT_KEYS`](crate::REDACT_KEYS)), so the text is final: the writer stores it as it is.
#[derive(Debug)]
pub struct ArgsWriter {
    out: crate::client::capture::TextOut,
}

impl ArgsWriter {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.push(b'{');
        ArgsWriter {
            out: crate::client::capture::TextOut::new(buf),
        }
    }

    /// Starts the argument `key`; false when its value is redacted (then already written).
    #[inline]
    fn key(&mut self, key: ArgKey) -> bool {
        let buf = self.out.buf.get_mut();
        if buf.len() > 1 {
            buf.push(b',');
        }
        match key.quoted {
            Some(quoted) => buf.extend_from_slice(quoted.as_bytes()),
            None => {
                // A `str` always serialises.
                let _ = serde_json::to_writer(&mut *buf, key.name);
                buf.push(b':');
            }
        }
        if key.redacted {
            let _ = serde_json::to_writer(&mut *buf, crate::REDACTED_VALUE);
            return false;
        }
        true
    }

    /// Writes the argument `key` through `serde`; a value that fails to serialise is
    /// written as a string saying so, naming its type and the error.
    pub fn serialize<T: Serialize + ?Sized>(&mut self, key: ArgKey, value: &T) {
        if !self.key(key) {
            return;
        }
        let mark = self.out.buf.get_mut().len();
        if let Err(e) = crate::client::capture::write_capped(&self.out, value, 1) {
            let buf = self.out.buf.get_mut();
            buf.truncate(mark);
            let text = format!("<unserializable {}: {e}>", std::any::type_name::<T>());
            let _ = serde_json::to_writer(&mut *buf, &text);
        }
    }

    /// Writes the argument `key` as the string `value`.
    pub fn string(&mut self, key: ArgKey, value: &str) {
        if self.key(key) {
            let _ = serde_json::to_writer(self.out.buf.get_mut(), value);
        }
    }

    /// The object's text.
    fn finish(self) -> String {
        let mut buf = self.out.buf.into_inner();
        buf.push(b'}');
        // serde_json writes UTF-8 only, and so does the fast path (from `str`s).
        let text = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if self.out.redact_again.get() {
            return crate::client::capture::redact_text(&text);
        }
        text
    }
}

/// A value to capture (see the module docs).
#[derive(Debug)]
pub struct Capture<'a, T: ?Sized>(pub &'a T);

/// Capture through `serde`.
pub trait ViaSerialize {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}
/// Capture through `Debug`.
pub trait ViaDebug {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}
/// Capture as a placeholder naming the type.
pub trait ViaNothing {
    /// The value as JSON.
    fn __weave_value(&self) -> Value;
    /// The value written as the argument `key`.
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey);
}

impl<T: Serialize + ?Sized> ViaSerialize for &&Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        crate::client::to_json(self.0)
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.serialize(key, self.0);
    }
}
impl<T: Debug + ?Sized> ViaDebug for &Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        Value::String(format!("{:?}", self.0))
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.string(key, &format!("{:?}", self.0));
    }
}
impl<T: ?Sized> ViaNothing for Capture<'_, T> {
    fn __weave_value(&self) -> Value {
        Value::String(placeholder(std::any::type_name::<T>()))
    }
    fn __weave_write(&self, args: &mut ArgsWriter, key: ArgKey) {
        args.string(key, &placeholder(std::any::type_name::<T>()));
    }
}

fn placeholder(type_name: &str) -> String {
    format!("<{}>", type_name.trim_start_matches('&'))
}

/// An error to capture (see the module docs): `std::error::Error` (with its source chain),
/// else `Display`, else `Debug`, else a placeholder.
#[derive(Debug)]
pub struct CaptureErr<'a, T: ?Sized>(pub &'a T);

/// Capture through the `std::error::Error` inside a `Box` (`Box<dyn Error + Send + Sync>`,
/// which does not itself implement `Error`).
pub trait ErrViaBoxedError {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `std::error::Error`.
pub trait ErrViaError {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `Display`.
pub trait ErrViaDisplay {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture through `Debug`.
pub trait ErrViaDebug {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}
/// Capture as a placeholder naming the type.
pub trait ErrViaNothing {
    /// The error as an exception.
    fn __weave_exception(&self) -> Exception;
}

fn short_type<T: ?Sized>() -> String {
    crate::client::exception::short_type_name(std::any::type_name::<T>())
}

impl<T: std::error::Error + ?Sized> ErrViaBoxedError for &&&&CaptureErr<'_, Box<T>> {
    fn __weave_exception(&self) -> Exception {
        Exception::from_error(&**self.0)
    }
}
impl<T: std::error::Error + ?Sized> ErrViaError for &&&CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::from_error(self.0)
    }
}
impl<T: Display + ?Sized> ErrViaDisplay for &&CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        // `{:#}` gives the whole chain for error types that support it (anyhow, eyre).
        Exception::new(short_type::<T>(), format!("{:#}", self.0))
    }
}
impl<T: Debug + ?Sized> ErrViaDebug for &CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::new(short_type::<T>(), format!("{:?}", self.0))
    }
}
impl<T: ?Sized> ErrViaNothing for CaptureErr<'_, T> {
    fn __weave_exception(&self) -> Exception {
        Exception::new(short_type::<T>(), placeholder(std::any::type_name::<T>()))
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
