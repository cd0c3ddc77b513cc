//! The SDK's one source of non-cryptographic randomness: wyrand, seeded once per thread from
//! the operating system's randomness (through `RandomState`, whose keys the OS draws). Ids,
//! sampling and the writer's retry jitter draw from it; none needs secrecy, all need to be
//! cheap on the traced thread (no system call after the seed). A leaf.

use std::cell::Cell;

/// A wyrand generator.
#[derive(Clone, Copy)]
pub(crate) struct Wyrand(u64);

impl Wyrand {
    /// A generator seeded from the OS's randomness, distinct per thread and per call.
    pub(crate) fn seeded() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        // Distinct per thread even when RandomState's per-thread keys coincide.
        h.write_usize(&h as *const _ as usize);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Wyrand(h.finish())
    }

    /// One 64-bit draw.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A uniform draw in [0, 1).
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

thread_local! {
    static THREAD_RNG: Cell<Option<Wyrand>> = const { Cell::new(None) };
}

/// A uniform draw in [0, 1) from this thread's generator; `None` during thread teardown.
pub(crate) fn unit() -> Option<f64> {
    THREAD_RNG
        .try_with(|cell| {
            let mut rng = cell.get().unwrap_or_else(Wyrand::seeded);
            let x = rng.unit();
            cell.set(Some(rng));
            x
        })
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_are_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..1000).map(|_| super::unit().unwrap()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        let mut a = super::Wyrand::seeded();
        let mut b = super::Wyrand::seeded();
        assert_ne!(a.next_u64(), b.next_u64(), "two seeds draw apart");
    }
}
