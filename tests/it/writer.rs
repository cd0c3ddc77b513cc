//! Tests: writer.
