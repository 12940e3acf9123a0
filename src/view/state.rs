//! [`State`]: a database's items, the base snapshot plus the changes since.

use std::borrow::Cow;
use std::sync::Arc;

use super::ReadView;
use super::base::{Base, BaseBytes};
use crate::error::{Error, Result};
use crate::index::{Candidate, CandidateQuery, Coded, Index, ItemId, Postings, SidIndex};
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token};
use crate::snapshot::Snapshot;

/// Items with keys, mutually consistent: what a database publishes behind
/// its read lock, and what a caller can build in memory (e.g. to write a
/// snapshot without a database).
///
/// Either every item is in memory (no base), or a snapshot holds most of
/// them and memory holds only what changed since it was written. Either
/// way every query answers as one index over all live items would.
#[derive(Debug)]
pub struct State {
    pub(super) base: Option<Base>,
    /// Items added or re-encoded since the base (every item without one).
    pub(super) index: Index,
    /// Keys of the items in `index`, and of base items it re-encoded.
    pub(super) keys: KeyMap,
}

impl State {
    /// Every item in memory.
    pub fn new(index: Index, keys: KeyMap) -> State {
        State {
            base: None,
            index,
            keys,
        }
    }

    /// The items of `snapshot`, read in place, with no changes yet.
    pub fn from_snapshot(snapshot: Snapshot<BaseBytes>) -> State {
        let layout = *snapshot.layout();
        State {
            base: Some(Base::new(Arc::new(snapshot))),
            index: Index::for_changes(layout),
            keys: KeyMap::sparse(),
        }
    }

    /// Id of an external key, or [`Error::UnknownKey`].
    pub fn id(&self, key: &str) -> Result<ItemId> {
        self.find(key)
            .ok_or_else(|| Error::UnknownKey(key.to_string()))
    }

    /// Id of an external key, if held.
    pub fn find(&self, key: &str) -> Option<ItemId> {
        if let Some(id) = self.keys.id(key) {
            return Some(id);
        }
        let b = self.base.as_ref()?;
        b.snap.id(key).ok().filter(|&id| b.holds(id))
    }

    /// External key of an item id.
    pub fn key(&self, id: ItemId) -> Option<&str> {
        if let Some(k) = self.keys.key(id) {
            return Some(k);
        }
        let b = self.base.as_ref()?;
        b.holds(id).then(|| b.snap.key(id)).flatten()
    }

    /// Items held in memory: those changed since the base, plus the base
    /// items they hid (every item when there is no base).
    pub fn changes(&self) -> u64 {
        self.index.len() + self.base.as_ref().map_or(0, |b| b.hidden.len())
    }

    /// Whether a snapshot holds the unchanged items.
    pub fn has_base(&self) -> bool {
        self.base.is_some()
    }

    /// Every item, sorted by full SID.
    pub fn by_sid(&self) -> Vec<ItemId> {
        match self.layers() {
            Layers::Memory(ix) => ix.items_by_sid(),
            Layers::Snapshot(s) => s.order().to_vec(),
            Layers::Merged(b, ix) => super::merge::by_sid(b, ix),
        }
    }

    /// Where a query is answered.
    #[inline]
    fn layers(&self) -> Layers<'_> {
        match &self.base {
            None => Layers::Memory(&self.index),
            Some(b) if self.index.is_empty() && b.hidden.is_empty() => Layers::Snapshot(&b.snap),
            Some(b) => Layers::Merged(b, &self.index),
        }
    }
}

/// Where a [`State`]'s queries are answered.
enum Layers<'a> {
    /// Every item in memory (no base).
    Memory(&'a Index),
    /// The base snapshot, with no changes since it.
    Snapshot(&'a Snapshot<BaseBytes>),
    /// The base and the changes, merged.
    Merged(&'a Base, &'a Index),
}

impl ReadView for State {
    fn id(&self, key: &str) -> Result<ItemId> {
        State::id(self, key)
    }

    fn key(&self, id: ItemId) -> Option<&str> {
        State::key(self, id)
    }
}

/// The index's answers, so a [`State`] is a [`SidIndex`] too.
impl SidIndex for State {
    fn layout(&self) -> &SidLayout {
        self.index.layout()
    }

    fn len(&self) -> u64 {
        let base = self.base.as_ref();
        self.index.len() + base.map_or(0, |b| b.snap.len() - b.hidden.len())
    }

    fn contains(&self, item: ItemId) -> bool {
        self.index.contains(item) || self.base.as_ref().is_some_and(|b| b.holds(item))
    }

    fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
        if let Some(s) = self.index.sid(item) {
            return Some(s);
        }
        let b = self.base.as_ref()?;
        b.holds(item).then(|| b.snap.sid(item)).flatten()
    }

    fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
        match self.layers() {
            Layers::Memory(ix) => ix.items(prefix),
            Layers::Snapshot(s) => s.items(prefix),
            Layers::Merged(b, ix) => super::merge::items(b, ix, prefix),
        }
    }

    fn count(&self, prefix: &[Token]) -> u64 {
        let base = self.base.as_ref();
        self.index.count(prefix) + base.map_or(0, |b| b.live_under(prefix))
    }

    fn is_valid(&self, prefix: &[Token]) -> bool {
        prefix.is_empty() || self.count(prefix) > 0
    }

    fn next_tokens(&self, prefix: &[Token]) -> Option<Cow<'_, [Token]>> {
        match self.layers() {
            Layers::Memory(ix) => SidIndex::next_tokens(ix, prefix),
            Layers::Snapshot(s) => s.next_tokens(prefix),
            Layers::Merged(b, ix) => super::merge::next_tokens(b, ix, prefix),
        }
    }

    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        match self.layers() {
            Layers::Memory(ix) => ix.candidates(q),
            Layers::Snapshot(s) => s.candidates(q),
            Layers::Merged(..) => crate::index::candidates::over_view(self, q),
        }
    }

    fn position_postings(&self, position: usize, token: Token) -> Postings<'_> {
        match self.layers() {
            Layers::Memory(ix) => SidIndex::position_postings(ix, position, token),
            Layers::Snapshot(s) => s.position_postings(position, token),
            Layers::Merged(b, ix) => super::merge::position(b, ix, position, token),
        }
    }

    fn byte_codes(&self) -> Option<Coded<'_>> {
        match self.layers() {
            Layers::Memory(_) => None,
            Layers::Snapshot(s) => s.byte_codes(),
            Layers::Merged(b, ix) => Some(Coded {
                hidden: Some(&b.hidden),
                rest: Some(ix),
                ..b.snap.byte_codes()?
            }),
        }
    }

    fn prefix_counts(&self) -> Vec<u64> {
        match self.layers() {
            Layers::Memory(ix) => ix.prefix_counts(),
            Layers::Snapshot(s) => s.prefix_counts(),
            Layers::Merged(..) => super::merge::shape(self).0,
        }
    }

    fn node_count(&self) -> usize {
        match self.layers() {
            Layers::Memory(ix) => ix.node_count(),
            Layers::Snapshot(s) => s.node_count(),
            Layers::Merged(..) => super::merge::shape(self).1,
        }
    }

    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        match self.layers() {
            Layers::Memory(ix) => ix.for_each_sid(f),
            Layers::Snapshot(s) => s.for_each_sid(f),
            Layers::Merged(b, ix) => super::merge::for_each_sid(b, ix, f),
        }
    }

    fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
        match self.layers() {
            Layers::Memory(ix) => SidIndex::write_mask(ix, prefix, row),
            Layers::Snapshot(s) => s.write_mask(prefix, row),
            Layers::Merged(b, ix) => super::merge::write_mask(b, ix, prefix, row),
        }
    }

    fn mask_words(&self) -> usize {
        self.index.mask_words()
    }
}

/// A state is written as a snapshot from its items in SID order.
impl crate::snapshot::Source for &State {
    fn layout(&self) -> SidLayout {
        *SidIndex::layout(*self)
    }

    fn by_sid(&self) -> Vec<ItemId> {
        State::by_sid(self)
    }

    fn sid(&self, item: ItemId) -> (&[Token], &[f32]) {
        SidIndex::sid(*self, item).expect("a held item")
    }

    fn key(&self, item: ItemId) -> Option<&str> {
        State::key(self, item)
    }
}

impl State {
    /// A snapshot of the items as bytes (for [`Snapshot::new`]).
    pub fn snapshot_bytes(&self) -> Result<Vec<u8>> {
        crate::snapshot::assemble(&self)
    }

    /// Writes a snapshot of the items to `path` (temporary file, fsync,
    /// rename, as [`crate::snapshot::write`]); returns its size in bytes.
    pub fn write_snapshot(&self, path: &std::path::Path) -> Result<u64> {
        crate::snapshot::write_source(&self, path)
    }
}
