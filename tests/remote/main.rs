//! The remote backend (`RemoteServer`) against the reference Weave trace server: the same
//! client API, end to end over HTTP.

mod across_processes;
mod calls;
mod common;
mod faults;
mod init;
mod objects_feedback_costs;
mod otlp_export;
mod runtime;
mod stream;
