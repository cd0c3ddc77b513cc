//! Sampling: an op's `sample_rate`, decided where a trace starts.

use super::*;

// ---------------------------------------------------------------------------------------
// Sampling

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish() | 1
    });
}

/// A uniform draw in [0, 1) (xorshift64*, per thread).
pub(super) fn random_unit() -> f64 {
    RNG.try_with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
    // During thread teardown: trace (a sampled trace is never wrongly dropped for this).
    .unwrap_or(0.0)
}
