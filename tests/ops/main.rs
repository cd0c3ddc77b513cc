//! #[weave::op] behaviour, one module per behaviour.
//!
//! Plain `#[test]`s on the embedded store: outside `#[backends]`, weave-testkit's
//! `TestStore::new()` is a fresh SQLite file.

mod common;

mod async_ops;
mod cancellation;
mod capture;
mod current_call;
mod display_names;
mod errors;
mod names;
mod no_client;
mod panics;
mod postprocess;
mod robustness;
mod sampling;
mod skip;
