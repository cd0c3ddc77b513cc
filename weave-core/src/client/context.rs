//! The runtime call stack: which call is *current* on this thread.
//!
//! There is exactly one stack. [`WeaveClient::create_call`](crate::WeaveClient::create_call)
//! with `use_stack` pushes the new call and finishing it pops it; `#[weave::op]` pushes its
//! call while its body runs (around every poll, for an `async fn`); the `tracing` layer
//! pushes a call span's call when the span is entered and pops it when the span is exited.
//! So ops, `tracing` spans and direct `create_call` nest in any order, and a call created
//! without an explicit parent becomes a child of the nearest enclosing call.
//!
//! Besides calls, the stack holds two kinds of marker frames:
//! - *suppressed*: the code below runs inside a trace that was sampled out (an op's
//!   `sample_rate`); ops and spans there are not traced, and [`current_call`] is `None`.
//! - *capture*: [`capture_call`] waits for the next call made directly below it, to hand it
//!   back with the result (Python's `op.call(...)`).
//!
//! Finishing a call on another thread than the one it was pushed on is allowed: entries of
//! finished calls are skipped (and dropped) when the stack is read, so they can never become
//! anybody's parent.
//!
//! [`Context`] carries the current frame to another thread or task.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};

use super::call::Call;

/// One entry of the call stack.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    /// A call: the parent of calls made below it.
    Call(Call),
    /// Inside a sampled-out trace: nothing below is traced.
    Suppressed,
    /// Waiting to catch the next call made directly below (see [`capture_call`]).
    Capture(Arc<Mutex<Option<Call>>>),
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// What the stack says about the code running now.
pub(crate) enum Current {
    /// No call encloses it.
    None,
    /// It runs inside a sampled-out trace.
    Suppressed,
    /// It runs inside this call.
    Call(Call),
}

/// Another tracing system's current span as a call, when one is set up to mirror its spans
/// into calls (the OpenTelemetry span processor): an op or span made while such a span is
/// current — and deeper than this thread's own current call — becomes its child.
static FOREIGN_CURRENT: OnceLock<fn() -> Option<Call>> = OnceLock::new();

/// Sets the hook that names another tracing system's current span's call (once per
/// process; false when one was set before).
pub(crate) fn set_foreign_current(hook: fn() -> Option<Call>) -> bool {
    FOREIGN_CURRENT.set(hook).is_ok()
}

/// What the stack says, or the other tracing system's current span when it is deeper
/// ([`FOREIGN_CURRENT`]).
pub(crate) fn current() -> Current {
    let own = current_on_stack();
    let Some(hook) = FOREIGN_CURRENT.get() else {
        return own;
    };
    match (own, hook()) {
        (Current::Suppressed, _) => Current::Suppressed,
        (own, None) => own,
        (Current::None, Some(f)) if !f.is_finished() => Current::Call(f),
        (Current::Call(w), Some(f)) if !f.is_finished() && descends_from(&f, &w) => {
            Current::Call(f)
        }
        (own, Some(_)) => own,
    }
}

/// Whether `call` is below `ancestor` (by the parent ids of its live ancestors).
pub(crate) fn descends_from(call: &Call, ancestor: &Call) -> bool {
    let mut record = call.record_ref();
    loop {
        if record.parent_id.as_deref() == Some(ancestor.id()) {
            return true;
        }
        match &record.parent {
            Some(p) => record = p,
            None => return false,
        }
    }
}

/// Reads the stack from the top: capture frames are transparent, finished calls are skipped
/// (and dropped when at the top).
fn current_on_stack() -> Current {
    STACK
        .try_with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return Current::None;
            };
            while let Some(Frame::Call(top)) = s.last() {
                if top.is_finished() {
                    s.pop();
                } else {
                    break;
                }
            }
            for f in s.iter().rev() {
                match f {
                    Frame::Call(c) if c.is_untraced() && !c.is_finished() => {
                        return Current::Suppressed
                    }
                    Frame::Call(c) if !c.is_finished() => return Current::Call(c.clone()),
                    Frame::Call(_) | Frame::Capture(_) => {}
                    Frame::Suppressed => return Current::Suppressed,
                }
            }
            Current::None
        })
        .unwrap_or(Current::None)
}

/// The current call on this thread: the innermost call on the stack that has not finished
/// (`None` inside a sampled-out trace).
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// assert!(weave_core::current_call().is_none());
/// let call = client.create_call("agent", serde_json::json!({})).unwrap();
/// assert_eq!(weave_core::current_call().unwrap().id(), call.id());
/// client.finish_call(&call, "done").unwrap();
/// assert!(weave_core::current_call().is_none());
/// ```
pub fn current_call() -> Option<Call> {
    match current() {
        Current::Call(c) => Some(c),
        _ => None,
    }
}

/// Whether the code running now is inside a trace that was sampled out (ops and spans there
/// are not recorded).
pub fn is_suppressed() -> bool {
    matches!(current(), Current::Suppressed)
}

/// Whether `call` is on this thread's stack.
pub(crate) fn on_stack(call: &Call) -> bool {
    STACK
        .try_with(|s| {
            s.try_borrow()
                .map(|s| {
                    s.iter()
                        .any(|f| matches!(f, Frame::Call(c) if c.same_call(call)))
                })
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Whether anything is on this thread's stack (a cheap pre-check for ops).
pub(crate) fn stack_is_nonempty() -> bool {
    STACK
        .try_with(|s| s.try_borrow().map(|s| !s.is_empty()).unwrap_or(false))
        .unwrap_or(false)
}

pub(crate) fn push_frame(frame: Frame) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.push(frame);
        }
    });
}

/// Removes the innermost frame matching `pred` and everything above it (left by unbalanced
/// use).
fn pop_frame_where(pred: impl Fn(&Frame) -> bool) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(i) = s.iter().rposition(pred) {
                s.truncate(i);
            }
        }
    });
}

pub(crate) fn pop_frame(frame: &Frame) {
    match frame {
        Frame::Call(c) => pop_frame_where(|f| matches!(f, Frame::Call(x) if x.same_call(c))),
        Frame::Suppressed => pop_frame_where(|f| matches!(f, Frame::Suppressed)),
        Frame::Capture(slot) => {
            pop_frame_where(|f| matches!(f, Frame::Capture(s) if Arc::ptr_eq(s, slot)))
        }
    }
}

/// Makes `call` the current call on this thread until [`pop_call`] is called with it.
pub fn push_call(call: Call) {
    push_frame(Frame::Call(call));
}

/// Removes the innermost stack entry of `call` on this thread (if any). Entries above it
/// stay: a span or call still running inside a call that was finished early keeps its place.
pub fn pop_call(call: &Call) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(i) = s
                .iter()
                .rposition(|f| matches!(f, Frame::Call(c) if c.same_call(call)))
            {
                s.remove(i);
            }
        }
    });
}

/// Hands a new call to a waiting [`capture_call`] if the top frame is one (the call is then
/// made "directly below" it).
pub(crate) fn offer_to_capture(call: &Call) {
    let _ = STACK.try_with(|s| {
        if let Ok(s) = s.try_borrow() {
            if let Some(Frame::Capture(slot)) = s.last() {
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_none() {
                    *slot = Some(call.clone());
                }
            }
        }
    });
}

fn same_frame(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Call(x), Frame::Call(y)) => x.same_call(y),
        (Frame::Suppressed, Frame::Suppressed) => true,
        (Frame::Capture(x), Frame::Capture(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn is_live(f: &Frame) -> bool {
    !matches!(f, Frame::Call(c) if c.is_finished())
}

/// The frames a suspended future (an `async` op, a task, an entered span) had above its own
/// frame when it was suspended — calls made directly with `create_call` inside it — put back
/// when it resumes. So such calls stay current across `.await`, and never leak to whatever
/// else runs on the thread meanwhile.
#[derive(Debug, Default)]
pub struct SavedFrames(Vec<Frame>);

impl SavedFrames {
    /// Whether nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Pushes `frame` (if any) and then the saved frames; returns the stack depth before.
pub(crate) fn enter_segment(frame: Option<&Frame>, saved: &mut SavedFrames) -> usize {
    STACK
        .try_with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return 0;
            };
            let base = s.len();
            if let Some(f) = frame {
                s.push(f.clone());
            }
            s.extend(saved.0.drain(..).filter(is_live));
            base
        })
        .unwrap_or(0)
}

/// Pops `frame` (or, without one, everything above `base`), keeping the live frames above it
/// in `saved`.
pub(crate) fn exit_segment(frame: Option<&Frame>, base: usize, saved: &mut SavedFrames) {
    match frame {
        Some(f) => exit_segment_where(Some(&|x: &Frame| same_frame(x, f)), base, saved),
        None => exit_segment_where(None, base, saved),
    }
}

/// [`exit_segment`] for the innermost frame `is_frame` accepts (so that a caller holding a
/// call need not clone it into a frame to find it).
pub(crate) fn exit_segment_where(
    is_frame: Option<&dyn Fn(&Frame) -> bool>,
    base: usize,
    saved: &mut SavedFrames,
) {
    let _ = STACK.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        let at = match is_frame {
            Some(f) => match s.iter().rposition(f) {
                Some(i) => i,
                None => return,
            },
            None if s.len() > base => base,
            None => return,
        };
        let above = s.split_off(at + usize::from(is_frame.is_some()));
        s.truncate(at);
        saved.0 = above.into_iter().filter(is_live).collect();
    });
}

/// A segment entered for the life of the guard (see [`SavedFrames`]).
pub(crate) struct SegmentGuard<'a> {
    frame: Option<Frame>,
    base: usize,
    saved: &'a mut SavedFrames,
}

impl<'a> SegmentGuard<'a> {
    pub(crate) fn enter(frame: Option<Frame>, saved: &'a mut SavedFrames) -> Self {
        let base = enter_segment(frame.as_ref(), saved);
        SegmentGuard { frame, base, saved }
    }
}

impl Drop for SegmentGuard<'_> {
    fn drop(&mut self) {
        exit_segment(self.frame.as_ref(), self.base, self.saved);
    }
}

/// A frame pushed for the life of the guard.
pub(crate) struct FrameGuard(Option<Frame>);

impl FrameGuard {
    pub(crate) fn push(frame: Option<Frame>) -> Self {
        if let Some(f) = &frame {
            push_frame(f.clone());
        }
        FrameGuard(frame)
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            pop_frame(f);
        }
    }
}

/// Runs `f` with `call` as the current call on this thread (for handing a call to another
/// thread or task: capture [`current_call`] there, then run the work inside `with_call`).
/// [`Context`] does the same and also carries a sampled-out trace.
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// let root = client.create_call("root", serde_json::json!({})).unwrap();
/// let parent = weave_core::current_call();
/// let c2 = client.clone();
/// std::thread::spawn(move || {
///     weave_core::with_call(parent.as_ref(), || {
///         let child = c2.create_call("worker", serde_json::json!({})).unwrap();
///         c2.finish_call(&child, ()).unwrap();
///     })
/// }).join().unwrap();
/// client.finish_call(&root, ()).unwrap();
/// # assert_eq!(client.get_calls(weave_core::CallsFilter { parent_ids: Some(vec![root.id().to_string()]), ..Default::default() }).count(), 1);
/// ```
pub fn with_call<R>(call: Option<&Call>, f: impl FnOnce() -> R) -> R {
    let _guard = FrameGuard::push(call.cloned().map(Frame::Call));
    f()
}

/// The tracing context of the code running now — its current call, or the fact that it runs
/// inside a sampled-out trace — to carry into another thread or task.
///
/// Threads and tasks start with an empty stack; work handed to them becomes a root call
/// unless it runs inside the spawner's context. `weave::spawn` and `weave::spawn_thread` do
/// this for you.
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// use weave_core::Context;
/// let root = client.create_call("root", serde_json::json!({})).unwrap();
/// let ctx = Context::current();
/// let c2 = client.clone();
/// let child_parent = std::thread::spawn(move || {
///     ctx.scope(|| {
///         let child = c2.create_call("worker", serde_json::json!({})).unwrap();
///         c2.finish_call(&child, ()).unwrap();
///         child.parent_id().map(str::to_string)
///     })
/// })
/// .join()
/// .unwrap();
/// assert_eq!(child_parent.as_deref(), Some(root.id()));
/// client.finish_call(&root, ()).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Context {
    frame: Option<Frame>,
}

impl Context {
    /// The context of the code running now.
    pub fn current() -> Self {
        let frame = match current() {
            Current::None => None,
            Current::Suppressed => Some(Frame::Suppressed),
            Current::Call(c) => Some(Frame::Call(c)),
        };
        Context { frame }
    }

    /// A context of `frame` (none: the empty context).
    pub(crate) fn of_frame(frame: Option<Frame>) -> Self {
        Context { frame }
    }

    /// The context's frame.
    pub(crate) fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The call this context would make new calls children of.
    pub fn call(&self) -> Option<&Call> {
        match &self.frame {
            Some(Frame::Call(c)) => Some(c),
            _ => None,
        }
    }

    /// Runs `f` inside this context.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = FrameGuard::push(self.frame.clone());
        f()
    }

    /// Wraps `fut` so that every poll of it runs inside this context.
    pub fn wrap<F: Future>(self, fut: F) -> WithContext<F> {
        WithContext {
            ctx: self,
            saved: SavedFrames::default(),
            fut,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside a [`Context`] (see [`Context::wrap`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        ctx: Context,
        saved: SavedFrames,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _segment = SegmentGuard::enter(this.ctx.frame.clone(), this.saved);
        this.fut.poll(cx)
    }
}

/// Runs `f` and returns its result together with the call of the first op (or direct
/// `create_call`) it makes on this thread — Python's `result, call = op.call(...)`. `None`
/// when that op was not traced (no client, tracing disabled, sampled out).
///
/// # Examples
///
/// ```
/// # let client = weave_core::WeaveClient::new("e", "p", std::sync::Arc::new(weave_core::SqliteServer::in_memory().unwrap()), false).unwrap();
/// let (n, call) = weave_core::capture_call(|| {
///     let c = client.create_call("add", serde_json::json!({"a": 1})).unwrap();
///     client.finish_call(&c, 2).unwrap();
///     2
/// });
/// assert_eq!(n, 2);
/// assert_eq!(call.unwrap().output(), serde_json::json!(2));
/// ```
pub fn capture_call<R>(f: impl FnOnce() -> R) -> (R, Option<Call>) {
    let slot = Arc::new(Mutex::new(None));
    let out = {
        let _guard = FrameGuard::push(Some(Frame::Capture(slot.clone())));
        f()
    };
    let call = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    (out, call)
}

/// The `async` form of [`capture_call`]: awaits `fut` and returns its output with the call of
/// the first op it makes.
pub async fn capture_call_async<F: Future>(fut: F) -> (F::Output, Option<Call>) {
    let slot = Arc::new(Mutex::new(None));
    let ctx = Context {
        frame: Some(Frame::Capture(slot.clone())),
    };
    let out = ctx.wrap(fut).await;
    let call = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    (out, call)
}
