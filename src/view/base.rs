//! The base of a [`super::State`]: a snapshot and the items of it that
//! changes since have hidden (removed, or re-encoded into the changes).
//!
//! Invariant: `hidden` ⊆ the snapshot's items, and `under` / `at` count
//! exactly the hidden items per prefix of their snapshot SID (every
//! length, the empty prefix included) and per (position, token), so a
//! query learns in O(1) whether hidden items touch what it reads.

use std::sync::Arc;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::index::{ItemId, SidIndex};
use crate::sid::Token;
use crate::snapshot::Snapshot;

/// The bytes of a base snapshot: the database's published file, mapped, or
/// bytes in memory.
#[derive(Debug)]
pub enum BaseBytes {
    /// A mapped file.
    Map(memmap2::Mmap),
    /// Bytes in memory (8-byte aligned, as a `Vec` allocation is).
    Vec(Vec<u8>),
}

impl AsRef<[u8]> for BaseBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            BaseBytes::Map(m) => m,
            BaseBytes::Vec(v) => v,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Base {
    pub snap: Arc<Snapshot<BaseBytes>>,
    pub hidden: RoaringBitmap,
    under: FxHashMap<Prefix, Under>,
    at: FxHashMap<(u16, Token), u32>,
}

/// A prefix as a map key: held in place up to 12 tokens (every SID of
/// up to 11 levels), so hiding an item allocates nothing per prefix.
type Prefix = SmallVec<[Token; 12]>;

/// The hidden items under one prefix.
#[derive(Debug, Default)]
struct Under {
    count: u32,
    /// Next tokens after the prefix under which every snapshot item is
    /// hidden, ascending (kept as items are hidden: they never come back).
    /// Most prefixes of a hidden item lead to it alone, and their lists hold
    /// one token: in place, not allocated.
    emptied: SmallVec<[Token; 4]>,
}

impl Base {
    pub(crate) fn new(snap: Arc<Snapshot<BaseBytes>>) -> Base {
        Base {
            snap,
            hidden: RoaringBitmap::new(),
            under: FxHashMap::default(),
            at: FxHashMap::default(),
        }
    }

    /// Whether `item` is a snapshot item not hidden.
    #[inline]
    pub(crate) fn holds(&self, item: ItemId) -> bool {
        !self.hidden.contains(item) && self.snap.contains(item)
    }

    /// Hidden items under `prefix`.
    #[inline]
    pub(crate) fn hidden_under(&self, prefix: &[Token]) -> u32 {
        match self.hidden.is_empty() {
            true => 0,
            false => self.under.get(prefix).map_or(0, |u| u.count),
        }
    }

    /// Next tokens after `prefix` under which every snapshot item is
    /// hidden, ascending.
    pub(crate) fn emptied_after(&self, prefix: &[Token]) -> &[Token] {
        match self.hidden.is_empty() {
            true => &[],
            false => self.under.get(prefix).map_or(&[], |u| &u.emptied),
        }
    }

    /// Hidden items with `token` at `position`.
    #[inline]
    pub(crate) fn hidden_at(&self, position: usize, token: Token) -> u32 {
        match self.hidden.is_empty() {
            true => 0,
            false => self.at.get(&(position as u16, token)).copied().unwrap_or(0),
        }
    }

    /// Snapshot items under `prefix` that are not hidden.
    pub(crate) fn live_under(&self, prefix: &[Token]) -> u64 {
        self.snap.count(prefix) - self.hidden_under(prefix) as u64
    }

    /// Hides `item`, a held snapshot item whose SID is `sid`.
    #[cfg(feature = "store")]
    pub(crate) fn hide(&mut self, item: ItemId, sid: &[Token]) {
        debug_assert!(self.holds(item));
        let levels = self.snap.layout().levels();
        // Hidden items under each prefix, this one counted.
        let mut hidden = SmallVec::<[u32; 12]>::with_capacity(sid.len() + 1);
        for len in 0..=sid.len() {
            match self.under.get_mut(&sid[..len]) {
                Some(u) => {
                    u.count += 1;
                    hidden.push(u.count);
                }
                None => {
                    let first = Under {
                        count: 1,
                        ..Default::default()
                    };
                    self.under.insert(Prefix::from_slice(&sid[..len]), first);
                    hidden.push(1);
                }
            }
        }
        // The prefixes this emptied, deepest first (a shorter one holds
        // more items: it empties only once every longer one has).
        let held = self.snap.counts_along(sid);
        for len in (1..=sid.len()).rev() {
            if u64::from(hidden[len]) != held[len] {
                break;
            }
            let parent = self.under.get_mut(&sid[..len - 1]).expect("counted above");
            if let Err(at) = parent.emptied.binary_search(&sid[len - 1]) {
                parent.emptied.insert(at, sid[len - 1]);
            }
        }
        for (p, &t) in sid[..levels].iter().enumerate() {
            *self.at.entry((p as u16, t)).or_default() += 1;
        }
        self.hidden.insert(item);
    }
}
