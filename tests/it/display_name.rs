//! Tests: display_name.
