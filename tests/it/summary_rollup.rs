//! Tests: summary_rollup.
