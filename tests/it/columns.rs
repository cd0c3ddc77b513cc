//! Tests: columns.
