//! What the layer works out once per callsite, not once per span: whether its spans are an
//! op's, whether it is one of weave's own, and its [`SpanSite`] (op, attributes, field keys).
//!
//! Callsites are found by the address of their `'static` metadata, in one table for the
//! process: a callsite's site is the same whichever layer asks (what differs between layers,
//! the level, is tested per span). A site lives as long as its callsite, the whole process:
//! it is made once and never freed (one per callsite that made a span, a bounded number in
//! any program — callsites are statics, or leaked by whoever makes them), so spans hold it
//! as a plain reference. Each thread keeps the sites it used last in a small cache in front
//! of the table, so that a span takes no lock to find its site.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

use tracing::Metadata;
use weave_core::rt::SpanSite;

use crate::layer::OP_SPAN_FIELD;
use crate::metadata::{is_own_target, tracing_attributes};

/// One callsite, as the layer sees it.
#[derive(Debug)]
pub(crate) struct Site {
    /// Its spans are `#[weave::op]`'s (they carry [`OP_SPAN_FIELD`]).
    pub(crate) op_span: bool,
    /// It is in one of weave's own crates (never traced).
    pub(crate) own: bool,
    /// Its spans' calls.
    pub(crate) span: SpanSite,
}

impl Site {
    fn new(meta: &'static Metadata<'static>) -> Self {
        let mut attributes = weave_core::JsonMap::new();
        attributes.insert("tracing".into(), tracing_attributes(meta));
        Site {
            op_span: meta.fields().field(OP_SPAN_FIELD).is_some(),
            own: is_own_target(meta.target()),
            span: SpanSite::new(
                meta.name(),
                meta.fields().iter().map(|f| f.name()),
                attributes,
            ),
        }
    }
}

/// Hashes a callsite's address: addresses are distinct, so a multiply spreads them enough.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

type Table = HashMap<usize, &'static Site, BuildHasherDefault<AddressHasher>>;

static SITES: RwLock<Option<Table>> = RwLock::new(None);

/// Slots of the per-thread cache (direct-mapped by address).
const NEAR_SLOTS: usize = 32;

thread_local! {
    static NEAR: [Cell<Option<(usize, &'static Site)>>; NEAR_SLOTS] =
        const { [const { Cell::new(None) }; NEAR_SLOTS] };
}

/// The site of the callsite `meta` describes.
pub(crate) fn site(meta: &'static Metadata<'static>) -> &'static Site {
    let key = meta as *const Metadata<'static> as usize;
    // Metadata are at least 8-byte aligned and a few dozen bytes apart.
    let slot = (key >> 4) % NEAR_SLOTS;
    if let Ok(Some(site)) = NEAR.try_with(|near| match near[slot].get() {
        Some((k, site)) if k == key => Some(site),
        _ => None,
    }) {
        return site;
    }
    let site = shared_site(key, meta);
    let _ = NEAR.try_with(|near| near[slot].set(Some((key, site))));
    site
}

/// The site from the process's table, made on the callsite's first span.
fn shared_site(key: usize, meta: &'static Metadata<'static>) -> &'static Site {
    if let Some(site) = SITES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|t| t.get(&key))
    {
        return site;
    }
    let mut table = SITES.write().unwrap_or_else(|e| e.into_inner());
    let site: &mut &'static Site = table
        .get_or_insert_with(Table::default)
        .entry(key)
        // Never freed: see the module docs.
        .or_insert_with(|| Box::leak(Box::new(Site::new(meta))));
    site
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metadata of 40 distinct callsites (more than the per-thread cache has slots).
    fn metadata() -> Vec<&'static Metadata<'static>> {
        macro_rules! callsites {
            ($($name:literal)*) => {
                vec![$({
                    tracing::callsite! { name: $name, kind: tracing::metadata::Kind::SPAN, fields: a, b }
                        .metadata()
                }),*]
            };
        }
        use tracing::callsite::Callsite as _;
        callsites!("s0" "s1" "s2" "s3" "s4" "s5" "s6" "s7" "s8" "s9" "s10" "s11" "s12" "s13"
            "s14" "s15" "s16" "s17" "s18" "s19" "s20" "s21" "s22" "s23" "s24" "s25" "s26" "s27"
            "s28" "s29" "s30" "s31" "s32" "s33" "s34" "s35" "s36" "s37" "s38" "s39")
    }

    #[test]
    fn each_callsite_keeps_its_own_site_through_the_cache() {
        let metas = metadata();
        let first: Vec<&'static Site> = metas.iter().map(|m| site(m)).collect();
        for round in 0..2 {
            for (m, s) in metas.iter().zip(&first) {
                let again = site(m);
                assert!(std::ptr::eq(again, *s), "round {round}: {}", m.name());
                assert_eq!(again.span.op().name(), m.name());
            }
        }
        // Another thread finds the same sites.
        let from_other: Vec<usize> = std::thread::spawn(move || {
            metas
                .iter()
                .map(|m| site(m) as *const Site as usize)
                .collect()
        })
        .join()
        .unwrap();
        let here: Vec<usize> = first.iter().map(|s| *s as *const Site as usize).collect();
        assert_eq!(from_other, here);
    }
}
