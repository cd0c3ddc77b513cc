//! Traces across processes: the current call handed to another process — in an HTTP
//! request's headers or a child process's environment — and continued there, so that the
//! calls the other process makes are children of this one's, in the same trace.
//!
//! The carrier is W3C Trace Context, which every tracing system reads:
//!
//! - `traceparent: 00-<trace id>-<parent id>-<flags>`: the trace id is the call's trace id
//!   as 32 hex digits (a Weave UUID without its dashes, or an OpenTelemetry trace id as it
//!   is); the parent id is the call id's last 16 hex digits; flag `01` says the trace is
//!   recorded, `00` that it was sampled out.
//! - `tracestate: weave=<call id>/<trace id>`: Weave's own entry, the ids exactly as Weave
//!   keeps them (a UUID cannot be rebuilt from 16 hex digits). Other vendors' entries in the
//!   same header are kept.
//!
//! On the receiving side, [`TraceContext::parse`] takes the ids from the `weave` entry when
//! it belongs to the same trace, and otherwise from `traceparent` alone: a request from a
//! service traced with OpenTelemetry continues its span (a 16-hex call id and a 32-hex trace
//! id, the ids Weave's own OTLP ingest gives that span). A service in between that passes
//! `tracestate` on but makes a span of its own (so changes the parent id) is skipped: the
//! callee's calls stay children of the nearest Weave call.
//!
//! Continuing a trace makes a [`Call`] that stands for the other process's call
//! ([`Call::is_remote`]): the current call while the work runs, the parent of the calls made
//! under it, never written or finished here. Summaries do not cross processes: the caller's
//! root does not add up the callee's token usage (each process's calls carry their own).
//!
//! Both processes must log to the same project of the same backend (one embedded store
//! file, a `weave serve`, W&B) for the trace to show as one tree.
//!
//! # Examples
//!
//! The caller puts its current call into the request; the callee continues it:
//!
//! ```
//! # std::env::set_var("WEAVE_DB_PATH", ":memory:");
//! use weave_core::propagation::{TraceContext, TRACEPARENT};
//! use weave_core::{Context, SqliteServer, WeaveClient};
//! use reqwest::header::HeaderMap;
//!
//! let client = WeaveClient::new("acme", "shop", std::sync::Arc::new(SqliteServer::in_memory()?), false)?;
//!
//! // Caller: inside a call, build the request's headers.
//! let checkout = client.create_call("checkout", serde_json::json!({}))?;
//! let mut headers = HeaderMap::new();
//! assert!(Context::current().inject_headers(&mut headers));
//! assert!(headers[TRACEPARENT].to_str().unwrap().ends_with("-01"));
//!
//! // Callee (another process, here the same one): continue the caller's call.
//! let remote = TraceContext::from_headers(&headers)?.expect("a traceparent");
//! let ctx = remote.context(&client);
//! let payment = ctx.scope(|| client.create_call("charge_card", serde_json::json!({})))?;
//! assert_eq!(payment.parent_id(), Some(checkout.id()));
//! assert_eq!(payment.trace_id(), checkout.trace_id());
//! # client.finish_call(&payment, ())?;
//! # client.finish_call(&checkout, ())?;
//! # Ok::<(), weave_core::WeaveError>(())
//! ```

use std::process::Command;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::client::call::Call;
use crate::client::context::{Context, Frame};
use crate::client::WeaveClient;
use crate::error::{Result, WeaveError};
use crate::ids::{generate_id, is_lower_hex, is_valid_call_id, is_valid_trace_id, otel_hex};
use crate::report::ReportOnce;

/// The W3C `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// The environment variable a child process reads `traceparent` from (OpenTelemetry's name
/// for environment carriers).
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";
/// The environment variable a child process reads `tracestate` from.
pub const TRACESTATE_ENV: &str = "TRACESTATE";
/// Weave's key in `tracestate`.
pub const TRACESTATE_KEY: &str = "weave";
/// The most entries W3C allows in `tracestate`.
const MAX_TRACESTATE_ENTRIES: usize = 32;

/// A call's place in a trace as it crosses a process boundary: the trace id, the call id and
/// whether the trace is recorded. Made from the current call ([`TraceContext::current`]) on
/// one side, read from headers or the environment on the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    call_id: String,
    sampled: bool,
}

impl TraceContext {
    /// The trace context of the code running now: its current call's, a sampled-out one
    /// inside a trace that was sampled out (so the other side does not record it either), or
    /// `None` outside any call.
    pub fn current() -> Option<TraceContext> {
        Context::current().trace_context()
    }

    /// The trace context that makes calls children of `call`. `None` when its ids cannot be
    /// written as W3C ids (only calls read back from a store that kept other ids).
    pub fn of_call(call: &Call) -> Option<TraceContext> {
        if call.is_untraced() {
            return Some(TraceContext::sampled_out());
        }
        let ctx = TraceContext {
            trace_id: call.trace_id().to_string(),
            call_id: call.id().to_string(),
            sampled: true,
        };
        (trace_hex(&ctx.trace_id).is_some() && span_hex(&ctx.call_id).is_some()).then_some(ctx)
    }

    /// A recorded trace context of `trace_id` (a lowercase UUID or 32 hex digits) and
    /// `call_id` (a lowercase UUID or 16 hex digits): for a parent named by another system
    /// (an OpenTelemetry span context, say). Errors naming the id that is neither.
    pub fn new(trace_id: &str, call_id: &str) -> Result<TraceContext> {
        if trace_hex(trace_id).is_none() {
            return Err(WeaveError::invalid_input(format!(
                "trace id {trace_id:?} is not a lowercase UUID or 32 hex digits (not all zero)"
            )));
        }
        if span_hex(call_id).is_none() {
            return Err(WeaveError::invalid_input(format!(
                "call id {call_id:?} is not a lowercase UUID or 16 hex digits (not all zero)"
            )));
        }
        Ok(TraceContext {
            trace_id: trace_id.to_string(),
            call_id: call_id.to_string(),
            sampled: true,
        })
    }

    /// A trace that was sampled out: fresh ids (nothing of it is recorded), flag `00`.
    fn sampled_out() -> TraceContext {
        TraceContext {
            trace_id: generate_id(),
            call_id: generate_id(),
            sampled: false,
        }
    }

    /// The trace id, as Weave keeps it.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The id of the call that calls made under this context become children of.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Whether the trace is recorded (flag `01`); false for a trace that was sampled out.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The `traceparent` value: `00-<32 hex trace id>-<16 hex parent id>-<flags>`.
    pub fn traceparent(&self) -> String {
        let trace = trace_hex(&self.trace_id).unwrap_or_default();
        let span = span_hex(&self.call_id).unwrap_or_default();
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{trace}-{span}-{flags}")
    }

    /// Weave's `tracestate` entry, `weave=<call id>/<trace id>`; `None` for a trace that was
    /// sampled out (nothing to keep).
    pub fn tracestate_entry(&self) -> Option<String> {
        self.sampled
            .then(|| format!("{TRACESTATE_KEY}={}/{}", self.call_id, self.trace_id))
    }

    /// Reads a trace context from `traceparent` and, when given, `tracestate` (the values of
    /// the headers, or of [`TRACEPARENT_ENV`] and [`TRACESTATE_ENV`]).
    ///
    /// Errors, naming what is wrong, when `traceparent` is not a W3C `traceparent` (version
    /// `00`, or a later version's first four fields). A `weave` entry in `tracestate` that is
    /// malformed or belongs to another trace is ignored (W3C: `tracestate` never invalidates
    /// `traceparent`).
    ///
    /// ```
    /// use weave_core::propagation::TraceContext;
    ///
    /// // From a service traced with OpenTelemetry: its span's ids, as Weave's OTLP ingest keeps them.
    /// let ctx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)?;
    /// assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(ctx.call_id(), "00f067aa0ba902b7");
    ///
    /// // From weave: the ids exactly as Weave keeps them.
    /// let ctx = TraceContext::parse(
    ///     "00-019a0e4c6f2b7c3d8e9f0a1b2c3d4e5f-8e9f0a1b2c3d4e5f-01",
    ///     Some("other=x,weave=019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f/019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f"),
    /// )?;
    /// assert_eq!(ctx.call_id(), "019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f");
    ///
    /// let err = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None);
    /// assert!(err.unwrap_err().to_string().contains("parent id"));
    /// # Ok::<(), weave_core::WeaveError>(())
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<TraceContext> {
        let (trace, parent, sampled) = parse_traceparent(traceparent.trim())?;
        let weave = tracestate
            .and_then(weave_entry)
            .and_then(|v| v.split_once('/'))
            .filter(|(call, trace_id)| {
                is_valid_call_id(call)
                    && is_valid_trace_id(trace_id)
                    && trace_hex(trace_id).as_deref() == Some(trace)
            });
        Ok(match weave {
            Some((call, trace_id)) => TraceContext {
                trace_id: trace_id.to_string(),
                call_id: call.to_string(),
                sampled,
            },
            None => TraceContext {
                trace_id: trace.to_string(),
                call_id: parent.to_string(),
                sampled,
            },
        })
    }

    /// The trace context in request headers (`traceparent`, `tracestate`); `None` when there
    /// is no `traceparent`. Works with the headers of reqwest, axum, hyper — anything built
    /// on `http` 1.
    ///
    /// Errors when `traceparent` is malformed, not text, or given more than once.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<TraceContext>> {
        let mut parents = headers.get_all(TRACEPARENT).iter();
        let Some(traceparent) = parents.next() else {
            return Ok(None);
        };
        if parents.next().is_some() {
            return Err(WeaveError::invalid_input(
                "more than one traceparent header: which call is the parent is ambiguous",
            ));
        }
        let traceparent = traceparent.to_str().map_err(|_| {
            WeaveError::invalid_input("the traceparent header is not visible ASCII text")
        })?;
        // Several `tracestate` headers are one list (RFC 9110 field lines, combined).
        let states: Vec<&str> = headers
            .get_all(TRACESTATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let tracestate = (!states.is_empty()).then(|| states.join(","));
        TraceContext::parse(traceparent, tracestate.as_deref()).map(Some)
    }

    /// The trace context a parent process put in this one's environment ([`TRACEPARENT_ENV`],
    /// [`TRACESTATE_ENV`]); `None` when `TRACEPARENT` is unset.
    pub fn from_env() -> Result<Option<TraceContext>> {
        match crate::config::trace_context_env() {
            (Some(parent), state) => TraceContext::parse(&parent, state.as_deref()).map(Some),
            (None, _) => Ok(None),
        }
    }

    /// Puts this trace context into `headers`: `traceparent` replaced, Weave's `tracestate`
    /// entry first and other vendors' entries kept (at most 32 in all, as W3C allows).
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.traceparent()) {
            headers.insert(TRACEPARENT, v);
        }
        let others: Vec<String> = headers
            .get_all(TRACESTATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty() && entry_key(e) != Some(TRACESTATE_KEY))
            .map(str::to_string)
            .collect();
        let entries: Vec<String> = self
            .tracestate_entry()
            .into_iter()
            .chain(others)
            .take(MAX_TRACESTATE_ENTRIES)
            .collect();
        headers.remove(TRACESTATE);
        if !entries.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&entries.join(",")) {
                headers.insert(TRACESTATE, v);
            }
        }
    }

    /// Puts this trace context into a child process's environment ([`TRACEPARENT_ENV`],
    /// [`TRACESTATE_ENV`]); the child continues it with [`Context::from_env`].
    pub fn set_env(&self, command: &mut Command) {
        command.env(TRACEPARENT_ENV, self.traceparent());
        match self.tracestate_entry() {
            Some(state) => command.env(TRACESTATE_ENV, state),
            None => command.env_remove(TRACESTATE_ENV),
        };
    }

    /// The context to run the continued work in, recording with `client`: its current call
    /// stands for the other process's call ([`Call::is_remote`]), so calls made inside are
    /// its children; for a trace that was sampled out, nothing inside is recorded.
    pub fn context(&self, client: &WeaveClient) -> Context {
        self.context_on(Some(client))
    }

    /// [`TraceContext::context`]; without a client, the empty context unless the trace was
    /// sampled out (which needs none).
    fn context_on(&self, client: Option<&WeaveClient>) -> Context {
        let frame = match client {
            _ if !self.sampled => Frame::Suppressed,
            Some(client) => Frame::Call(Call::remote(
                client.clone(),
                self.trace_id.as_str().into(),
                self.call_id.as_str().into(),
            )),
            None => return Context::default(),
        };
        Context::of_frame(Some(frame))
    }
}

/// Malformed trace context met by [`Context::from_headers`] / [`Context::from_env`].
static MALFORMED: ReportOnce = ReportOnce::new();

impl Context {
    /// The context a request's headers continue, recorded with the process-wide client
    /// ([`TraceContext::context`]); run the request's work in it (`ctx.wrap(fut)`,
    /// `ctx.scope(f)`). Without a `traceparent`, without a process-wide client, or with a
    /// malformed one (reported once on stderr), the empty context: the work's calls are
    /// roots, as W3C says of a trace context that cannot be read.
    ///
    /// Use [`TraceContext::from_headers`] to see the error or pick the client.
    pub fn from_headers(headers: &HeaderMap) -> Context {
        Self::continued(TraceContext::from_headers(headers), "headers")
    }

    /// The context a parent process handed this one in its environment (`TRACEPARENT`,
    /// `TRACESTATE`), as [`Context::from_headers`] does for headers.
    pub fn from_env() -> Context {
        Self::continued(TraceContext::from_env(), "environment")
    }

    fn continued(ctx: Result<Option<TraceContext>>, carrier: &str) -> Context {
        match ctx {
            Ok(Some(t)) => t.context_on(crate::client::global::global_client().as_ref()),
            Ok(None) => Context::default(),
            Err(e) => {
                MALFORMED.report(format_args!(
                    "weave: the trace context in the {carrier} was ignored: {e}"
                ));
                Context::default()
            }
        }
    }

    /// This context's trace context ([`TraceContext::current`] for the code running now).
    pub fn trace_context(&self) -> Option<TraceContext> {
        match self.frame()? {
            Frame::Call(c) => TraceContext::of_call(c),
            Frame::Suppressed => Some(TraceContext::sampled_out()),
            Frame::Capture(_) => None,
        }
    }

    /// Puts this context's call into outgoing request headers (see the [module](self)
    /// docs); false, leaving `headers` as they are, when the context has no call.
    pub fn inject_headers(&self, headers: &mut HeaderMap) -> bool {
        self.trace_context().map(|t| t.inject(headers)).is_some()
    }

    /// Puts this context's call into a child process's environment; false, leaving the
    /// command as it is, when the context has no call.
    pub fn set_env(&self, command: &mut Command) -> bool {
        self.trace_context().map(|t| t.set_env(command)).is_some()
    }
}

/// Adds the current call's trace context to a reqwest request.
///
/// ```no_run
/// use weave_core::propagation::RequestBuilderExt;
///
/// # async fn f() -> reqwest::Result<()> {
/// let reply = reqwest::Client::new()
///     .post("http://127.0.0.1:8080/charge")
///     .with_trace_context()
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
pub trait RequestBuilderExt {
    /// The request with `traceparent` and `tracestate` set from the current call (unchanged
    /// outside any call).
    fn with_trace_context(self) -> Self;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn with_trace_context(self) -> Self {
        let mut headers = HeaderMap::new();
        if Context::current().inject_headers(&mut headers) {
            self.headers(headers)
        } else {
            self
        }
    }
}

/// Parses a `traceparent`: its trace id, parent id and sampled flag.
fn parse_traceparent(tp: &str) -> Result<(&str, &str, bool)> {
    let bad = |what: &str| {
        WeaveError::invalid_input(format!(
            "traceparent {tp:?}: {what} (expected `00-<32 lowercase hex trace id>-<16 lowercase \
             hex parent id>-<2 hex flags>`)"
        ))
    };
    if !tp.is_ascii() {
        return Err(bad("not ASCII"));
    }
    let b = tp.as_bytes();
    if b.len() < 55 {
        return Err(bad("too short"));
    }
    let version = &tp[0..2];
    if !is_lower_hex(version) || version == "ff" {
        return Err(bad("the version is not 00 to fe"));
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return Err(bad("the fields are not separated by '-'"));
    }
    // Version 00 is exactly 55 characters; a later version may add fields after a '-'.
    if (version == "00" && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
        return Err(bad("unexpected characters after the flags"));
    }
    let (trace, parent, flags) = (&tp[3..35], &tp[36..52], &tp[53..55]);
    if !is_lower_hex(trace) || trace.bytes().all(|c| c == b'0') {
        return Err(bad(
            "the trace id is not 32 lowercase hex digits, not all zero",
        ));
    }
    if !is_lower_hex(parent) || parent.bytes().all(|c| c == b'0') {
        return Err(bad(
            "the parent id is not 16 lowercase hex digits, not all zero",
        ));
    }
    let flags = u8::from_str_radix(flags, 16).map_err(|_| bad("the flags are not hex"))?;
    Ok((trace, parent, flags & 1 == 1))
}

/// The value of Weave's entry in a `tracestate` list.
fn weave_entry(tracestate: &str) -> Option<&str> {
    tracestate
        .split(',')
        .map(str::trim)
        .find(|e| entry_key(e) == Some(TRACESTATE_KEY))
        .and_then(|e| e.split_once('='))
        .map(|(_, v)| v.trim())
}

/// The key of a `tracestate` list member (`key=value`).
fn entry_key(entry: &str) -> Option<&str> {
    entry.split_once('=').map(|(k, _)| k.trim())
}

/// A trace id as the 32 hex digits of `traceparent`: a UUID without its dashes, or a 32-hex
/// OpenTelemetry trace id as it is.
fn trace_hex(id: &str) -> Option<String> {
    is_valid_trace_id(id).then(|| otel_hex(id, 32)).flatten()
}

/// A call id as the 16 hex digits of `traceparent`'s parent id: a UUID's last 16 digits (the
/// random end of a UUIDv7), or a 16-hex span id as it is.
fn span_hex(id: &str) -> Option<String> {
    is_valid_call_id(id).then(|| otel_hex(id, 16)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_errors_name_the_field() {
        let cases = [
            ("", "too short"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "too short",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
            (
                "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "separated",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "trace id",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                "flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",
                "after the flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
                "ASCII",
            ),
        ];
        for (tp, what) in cases {
            let err = TraceContext::parse(tp, None).unwrap_err().to_string();
            assert!(err.contains(what), "{tp:?}: {err}");
        }
    }

    #[test]
    fn later_versions_and_flags() {
        // A later version may append fields; only bit 0 of the flags is read.
        let ctx = TraceContext::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future",
            None,
        )
        .unwrap();
        assert!(ctx.is_sampled());
        let ctx = TraceContext::parse(&TP.replace("-01", "-00"), None).unwrap();
        assert!(!ctx.is_sampled());
        assert_eq!(ctx.tracestate_entry(), None);
    }

    #[test]
    fn weave_entry_kept_only_for_the_same_trace() {
        let call = "019a0e4c-6f2b-7c3d-8e9f-0a1b2c3d4e5f";
        let trace = "019a0e4c-0000-7000-8000-0a1b2c3d4e5f";
        let tp = "00-019a0e4c0000700080000a1b2c3d4e5f-8e9f0a1b2c3d4e5f-01";
        let state = format!("vendor=abc , weave={call}/{trace},x=y");
        let ctx = TraceContext::parse(tp, Some(&state)).unwrap();
        assert_eq!((ctx.call_id(), ctx.trace_id()), (call, trace));
        // Round trip: what is written is read back the same.
        let back = TraceContext::parse(&ctx.traceparent(), ctx.tracestate_entry().as_deref());
        assert_eq!(back.unwrap(), ctx);
        assert_eq!(ctx.traceparent(), tp);
        // Another trace's entry, or a malformed one: the traceparent's ids.
        for state in [
            format!("weave={call}/{}", trace.replace("0a1b", "0a1c")),
            format!("weave={call}"),
            "weave=not-an-id/nope".to_string(),
        ] {
            let ctx = TraceContext::parse(tp, Some(&state)).unwrap();
            assert_eq!(ctx.call_id(), "8e9f0a1b2c3d4e5f", "{state}");
            assert_eq!(ctx.trace_id(), "019a0e4c0000700080000a1b2c3d4e5f");
        }
    }

    #[test]
    fn injecting_keeps_other_vendors() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(TP));
        headers.append(TRACESTATE, HeaderValue::from_static("a=1,weave=old/old"));
        headers.append(TRACESTATE, HeaderValue::from_static("b=2"));
        let ctx = TraceContext::parse(
            "00-019a0e4c0000700080000a1b2c3d4e5f-8e9f0a1b2c3d4e5f-01",
            None,
        )
        .unwrap();
        ctx.inject(&mut headers);
        assert_eq!(headers.get_all(TRACEPARENT).iter().count(), 1);
        assert_eq!(headers[TRACEPARENT], ctx.traceparent().as_str());
        assert_eq!(
            headers[TRACESTATE],
            "weave=8e9f0a1b2c3d4e5f/019a0e4c0000700080000a1b2c3d4e5f,a=1,b=2"
        );
        assert_eq!(TraceContext::from_headers(&headers).unwrap(), Some(ctx));
    }

    #[test]
    fn ids_given_directly_are_checked() {
        let ctx =
            TraceContext::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7").unwrap();
        assert_eq!(ctx, TraceContext::parse(TP, None).unwrap());
        let err = TraceContext::new("4bf9", "00f067aa0ba902b7").unwrap_err();
        assert!(err.to_string().contains("trace id \"4bf9\""), "{err}");
        let err = TraceContext::new("4bf92f3577b34da6a3ce929d0e0e4736", "0000000000000000");
        assert!(err.unwrap_err().to_string().contains("call id"));
    }

    #[test]
    fn two_traceparents_are_ambiguous() {
        let mut headers = HeaderMap::new();
        headers.append(TRACEPARENT, HeaderValue::from_static(TP));
        headers.append(TRACEPARENT, HeaderValue::from_static(TP));
        let err = TraceContext::from_headers(&headers).unwrap_err();
        assert!(
            err.to_string().contains("more than one traceparent"),
            "{err}"
        );
        assert_eq!(TraceContext::from_headers(&HeaderMap::new()).unwrap(), None);
    }

    fn client() -> WeaveClient {
        let store = crate::SqliteServer::in_memory().unwrap();
        WeaveClient::new("e", "p", std::sync::Arc::new(store), false).unwrap()
    }

    #[test]
    fn a_remote_parent_is_current_but_never_written_or_finished() {
        let client = client();
        let remote = TraceContext::parse(TP, None).unwrap();
        let ctx = remote.context(&client);
        assert_eq!(ctx.trace_context(), Some(remote.clone()));
        let work = ctx.scope(|| {
            let parent = crate::current_call().unwrap();
            assert!(parent.is_remote());
            assert_eq!(parent.id(), "00f067aa0ba902b7");
            let err = client.finish_call(&parent, ()).unwrap_err().to_string();
            assert!(err.contains("another process"), "{err}");
            // Passed on unchanged from inside the continued work.
            assert_eq!(TraceContext::current(), Some(remote.clone()));
            let work = client.create_call("work", serde_json::json!({})).unwrap();
            let usage = serde_json::json!({"model": "m", "usage": {"prompt_tokens": 3}});
            client.finish_call(&work, usage).unwrap();
            work
        });
        client.flush();
        let calls: Vec<_> = client
            .get_calls(crate::CallsQuery::new())
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(calls.len(), 1, "only the work is written");
        assert_eq!(calls[0].id(), work.id());
        assert_eq!(calls[0].parent_id(), Some("00f067aa0ba902b7"));
        assert_eq!(calls[0].trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(calls[0].usage()["m"]["prompt_tokens"], 3);
    }

    #[test]
    fn a_sampled_out_trace_stays_unrecorded() {
        let client = client();
        let ctx = TraceContext::parse(&TP.replace("-01", "-00"), None)
            .unwrap()
            .context(&client);
        let call = ctx.scope(|| client.create_call("work", serde_json::json!({})).unwrap());
        assert!(call.is_untraced());
        let mut headers = HeaderMap::new();
        assert!(ctx.inject_headers(&mut headers));
        assert!(headers[TRACEPARENT].to_str().unwrap().ends_with("-00"));
        assert!(headers.get(TRACESTATE).is_none());
        client.finish_call(&call, ()).unwrap();
        client.flush();
        assert_eq!(client.get_calls(crate::CallsQuery::new()).count(), 0);
        // Outside any call there is nothing to inject.
        assert!(!Context::default().inject_headers(&mut HeaderMap::new()));
    }
}
