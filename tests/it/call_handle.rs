//! Tests: call_handle.
