//! What the layer works out once per callsite, not once per span: whether its spans are an
//! op's, whether it is one of weave's own, and its [`SpanSite`] (op, attributes, field keys).
//!
//! Callsites are found by the address of their `'static` metadata, in one table for the
//! process: a callsite's site is the same whichever layer asks (what differs between layers,
//! the level, is tested per span). The table holds one entry per callsite that made a span,
//! a bounded number in any program (callsites are statics, or leaked by whoever makes them).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

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

type Table = HashMap<usize, Arc<Site>, BuildHasherDefault<AddressHasher>>;

static SITES: RwLock<Option<Table>> = RwLock::new(None);

/// The site of the callsite `meta` describes.
pub(crate) fn site(meta: &'static Metadata<'static>) -> Arc<Site> {
    let key = meta as *const Metadata<'static> as usize;
    if let Some(site) = SITES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|t| t.get(&key))
    {
        return site.clone();
    }
    // Made outside the lock; a racing thread's site for the same callsite is the same.
    let made = Arc::new(Site::new(meta));
    SITES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Table::default)
        .entry(key)
        .or_insert(made)
        .clone()
}
