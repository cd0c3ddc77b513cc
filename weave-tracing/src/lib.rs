//! [`WeaveLayer`]: a `tracing-subscriber` [`Layer`] that turns spans into Weave calls.
//!
//! Depend on the `weave` facade (`weave::layer()`), not on this crate directly.
//!
//! # What becomes what
//!
//! | `tracing` | Weave call |
//! |---|---|
//! | a span (`#[instrument]`, `info_span!`, …) at or above the layer's level | a call of the op named after the span |
//! | the span's fields, including those recorded later with `Span::record` | `inputs` |
//! | the `return` event of `#[instrument(ret)]` | `output` |
//! | the `error` event of `#[instrument(err)]` | `exception` (the call fails) |
//! | `gen_ai.usage.*` / `gen_ai.response.model` / `gen_ai.request.model` fields | `summary.usage[model]` |
//! | other `gen_ai.response.*` fields (without `ret`) | `output` |
//! | other events inside a call (any call: op, span or `create_call`) | `summary.events`, in order |
//! | the span's target, level, file and line | `attributes.tracing` |
//!
//! A span's call is written when the span closes, start and end together — the way
//! OpenTelemetry exports spans — so that fields recorded after creation are part of its
//! inputs. `#[weave::op]` functions make their own calls (their spans carry a
//! `weave.call_id` field and are recognised here), so ops are traced whether or not this
//! layer is installed.
//!
//! # Filtering
//!
//! By default spans and events at `INFO` or more severe become calls and call events; the
//! `DEBUG`/`TRACE` spans that libraries (hyper, h2, tower, …) emit do not. Widen the level with
//! [`WeaveLayer::with_max_level`]; narrow what is recorded with any per-layer filter, e.g.
//! `weave::layer().with_filter(EnvFilter::new("my_app=info"))`. Both apply: to record
//! `my_app`'s debug spans, use `with_max_level(Level::DEBUG)` and `"my_app=debug"`.
//!
//! Field values given as `Debug` or `Display` text (`?x`, `%x`) that is valid JSON are stored
//! as that JSON (`ret` of a `u32` is a number, `?"text"` is the string `text`); other text is
//! stored as a string.
//!
//! Known limits: an event whose explicit `parent:` is a span a per-layer filter hides from
//! this layer cannot be placed, and is not kept (tracing-subscriber does not expose the
//! span). A span whose explicit parent is hidden from *every* layer is a root to tracing
//! itself, so it becomes a root call.
//!
//! One `WeaveLayer` per subscriber: if two are stacked (say, one per project), the first one
//! records each span and the second leaves it alone.
//!
//! Whatever the filter, nothing weave does itself is traced: spans and events on the SDK's
//! own threads (the background writer, a backend's I/O) and from its own crates are ignored.
//!
//! # The call stack
//!
//! Entering a call span makes its call the current call of the thread (and exiting undoes
//! it), on the same stack that `#[weave::op]` and `WeaveClient::create_call` use, so the three
//! nest in any order. Calls made directly with `create_call` inside a span that is exited
//! before they finish (an instrumented future at an `.await`) are kept with the span and put
//! back when it is entered again. A span's parent call is the current call where the span is created (or,
//! for a span with an explicit `parent:`, the nearest call among that span's ancestors).
//!
//! [`Layer`]: tracing_subscriber::Layer

mod fields;
mod layer;
mod metadata;
mod report;
mod sites;
mod span_entry;

pub use layer::{WeaveLayer, OP_SPAN_FIELD};
