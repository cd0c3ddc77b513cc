//! Tests: delete.
