//! Tests: end_before_start.
