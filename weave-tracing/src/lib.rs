//! `WeaveLayer`: a `tracing-subscriber` layer that turns spans into Weave calls.
//!
//! The layer lands with the tracing work (see the project issues). It will extend the one call
//! stack of `weave_core` (`weave_core::push_call` on span enter, `weave_core::pop_call` on
//! exit) and skip every span on threads marked by `weave_core::mark_internal_thread`, so the
//! SDK never traces itself. Until then the crate exports nothing.

pub use weave_core;
