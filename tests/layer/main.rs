//! WeaveLayer, the call stack across spans/ops/tasks, and weave::init.
//!
//! Plain `#[test]`s on the embedded store: outside `#[backends]`, weave-testkit's
//! `TestStore::new()` is a fresh SQLite file.

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
