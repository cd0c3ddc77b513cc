//! Tests: client_calls.
