//! The `#[weave::op]` attribute macro of weave-rs.
//!
//! This crate is re-exported by the `weave` facade; depend on `weave`, not on this crate.
//! The macro itself lands with the `#[weave::op]` work (see the project issues); until then
//! the crate exports nothing, so that nothing pretends to trace.
