//! Tests: filters.
