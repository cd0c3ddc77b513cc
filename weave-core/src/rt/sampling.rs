//! Sampling: an op's `sample_rate`, decided where a trace starts.

// ---------------------------------------------------------------------------------------
// Sampling

/// A uniform draw in [0, 1) ([`crate::rand`]); during thread teardown 0, so a trace is
/// never wrongly dropped for it.
pub(super) fn random_unit() -> f64 {
    crate::rand::unit().unwrap_or(0.0)
}
