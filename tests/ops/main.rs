//! #[weave::op] behaviour, one module per behaviour.

/// The shared fixtures use the embedded store (see tests/support/store.rs).
const SUITE: common::Suite = common::Suite::Embedded;

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
