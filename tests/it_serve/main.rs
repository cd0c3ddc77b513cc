//! The end-to-end suite of `tests/it`, a third time: against `weave serve` (this repository's
//! Weave trace server, `weave-server`) over a fresh SQLite file, started by each test on a
//! free loopback port and reached through the remote backend (`RemoteServer`). The same tests
//! that hold the embedded store and the reference server to Weave's semantics hold the server
//! to them: where the answer depends on the client going over HTTP (queued feedback, the
//! client's clock), the tests branch on `over_http`; where the reference server differs from
//! Weave-rs's store, on `is_reference`, which is false here — `weave serve` answers as the
//! embedded store does.
//!
//! Modules about the embedded store itself (its file, its in-process writer queue, wire-format
//! unit checks that touch no store) run only in `tests/it`.

/// The shared fixtures start a fresh `weave serve` per test.
const SUITE: common::Suite = common::Suite::Served;

#[path = "../it/common.rs"]
mod common;

#[path = "../it/bad_input.rs"]
mod bad_input;
#[path = "../it/call_handle.rs"]
mod call_handle;
#[path = "../it/client_calls.rs"]
mod client_calls;
#[path = "../it/columns.rs"]
mod columns;
#[path = "../it/costs.rs"]
mod costs;
#[path = "../it/delete.rs"]
mod delete;
#[path = "../it/digests.rs"]
mod digests;
#[path = "../it/display_name.rs"]
mod display_name;
#[path = "../it/end_before_start.rs"]
mod end_before_start;
#[path = "../it/feedback.rs"]
mod feedback;
#[path = "../it/filters.rs"]
mod filters;
#[path = "../it/objects.rs"]
mod objects;
#[path = "../it/paging_sort.rs"]
mod paging_sort;
#[path = "../it/query_operators.rs"]
mod query_operators;
#[path = "../it/summary_rollup.rs"]
mod summary_rollup;
#[path = "../it/writer.rs"]
mod writer;
