//! End-to-end tests of the `weave` facade, the way users use it. One binary with a module per
//! feature, so the suite links once.
//!
//! The suite runs on three backends: each test marked `#[backends]` (weave-testkit) is one
//! function and three `#[test]`s, `module::test::embedded` (a fresh SQLite file, written in
//! process), `module::test::reference` (a fresh reference Weave trace server of the test's own,
//! the weave package's own server code, reached through the remote backend, `RemoteServer`)
//! and `module::test::served` (a fresh `weave serve`, this repository's server, over a fresh
//! SQLite file, reached the same way). `TestStore::new()` opens the store of the backend the
//! test runs on, so every backend is held to the same observable behaviour. Where the reference
//! server really differs from weave-rs's store, the test says so and checks each backend's own
//! answer (search for `is_reference`); where the answer depends on the client going over HTTP
//! (queued feedback, the client's clock), it branches on `over_http`.
//!
//! One backend: `cargo test --test it served` (or `embedded`, `reference`).
//!
//! Modules about the embedded store itself (`persistence`: its file; `wire_format`: unit
//! checks that touch no store) use plain `#[test]`s on the embedded store.

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
