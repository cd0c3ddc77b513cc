//! End-to-end tests of the `weave` facade, the way users use it, against a real SQLite file.
//! One binary with a module per feature, so the suite links once.

/// The shared fixtures use the embedded store (see tests/support/store.rs).
const SUITE: common::Suite = common::Suite::Embedded;

mod common;

mod bad_input;
mod call_handle;
mod client_calls;
mod columns;
mod costs;
mod delete;
mod digests;
mod display_name;
mod end_before_start;
mod feedback;
mod filters;
mod objects;
mod paging_sort;
mod persistence;
mod query_operators;
mod summary_rollup;
mod wire_format;
mod writer;
