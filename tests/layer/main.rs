//! WeaveLayer, the call stack across spans/ops/tasks, and weave::init.

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
