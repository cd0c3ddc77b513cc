//! Tests: wire_format.
