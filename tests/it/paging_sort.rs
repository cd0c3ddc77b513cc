//! Tests: paging_sort.
