//! Tests: persistence.
