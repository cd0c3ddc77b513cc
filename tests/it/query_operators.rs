//! Tests: query_operators.
