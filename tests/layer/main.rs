//! WeaveLayer, the call stack across spans/ops/tasks, and weave::init.

/// The shared fixtures use the embedded store (see tests/support/store.rs).
const SUITE: common::Suite = common::Suite::Embedded;

mod common;

mod disabled;
mod filters;
mod genai;
mod init;
mod mixing;
mod otel;
mod own_work;
mod parents;
mod spans;
