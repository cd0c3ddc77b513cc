//! [`PerClient`]: a value worked out once per client — an op's ref, a callsite's merged
//! attributes — read on every call.

use std::sync::{OnceLock, RwLock};

/// A value per client (keyed by `K`, which holds the client's serial): the first key's
/// value is read without a lock (most programs have one client), the last other key's
/// under a read lock.
#[derive(Debug)]
pub(crate) struct PerClient<K, V> {
    first: OnceLock<(K, V)>,
    other: RwLock<Option<(K, V)>>,
}

impl<K, V> PerClient<K, V> {
    pub(crate) const fn new() -> Self {
        PerClient {
            first: OnceLock::new(),
            other: RwLock::new(None),
        }
    }
}

impl<K: PartialEq + Copy, V: Clone> PerClient<K, V> {
    /// The value for `key`, made by `make` when neither slot holds it.
    pub(crate) fn get_or_try_init<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some((_, v)) = self.first.get().filter(|(k, _)| *k == key) {
            return Ok(v.clone());
        }
        if let Some((k, v)) = &*self.other.read().unwrap_or_else(|e| e.into_inner()) {
            if *k == key {
                return Ok(v.clone());
            }
        }
        let v = make()?;
        if let Err(entry) = self.first.set((key, v.clone())) {
            *self.other.write().unwrap_or_else(|e| e.into_inner()) = Some(entry);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::PerClient;

    #[test]
    fn each_key_is_made_once_while_it_stays_in_a_slot() {
        let cache: PerClient<u64, String> = PerClient::new();
        let made = std::cell::Cell::new(0);
        let get = |k: u64| {
            cache
                .get_or_try_init(k, || {
                    made.set(made.get() + 1);
                    Ok::<_, ()>(format!("v{k}"))
                })
                .unwrap()
        };
        // 1 takes the lock-free slot for good; 2 and 3 take turns in the other.
        assert_eq!(get(1), "v1");
        assert_eq!(get(2), "v2");
        assert_eq!(get(1), "v1");
        assert_eq!(get(2), "v2");
        assert_eq!(get(3), "v3");
        assert_eq!(get(1), "v1");
        assert_eq!(made.get(), 3);
        assert_eq!(get(2), "v2");
        assert_eq!(made.get(), 4);
        assert_eq!(cache.get_or_try_init(4, || Err("no")), Err("no"));
    }
}
