//! The end-to-end suite of `tests/it`, against the reference Weave trace server: every test
//! gets a fresh reference server of its own (the fixture in tests/support/store.rs), reached
//! through the remote backend (`RemoteServer`), so both backends are held to the same observable
//! behaviour. Where the reference server really differs from the embedded store, the test
//! says so and checks each backend's own answer (search for `is_reference`).
//!
//! Modules that are about the embedded store itself (its file, its in-process writer queue,
//! wire-format unit checks that touch no store) run only in `tests/it`.

/// The shared fixtures use a fresh reference server per test.
const SUITE: common::Suite = common::Suite::Reference;

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
