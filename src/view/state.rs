//! [`State`]: a database's items, the base snapshot plus the changes since.

use std::borrow::Cow;
use std::sync::Arc;

use super::ReadView;
use super::base::{Base, BaseBytes};
use crate::error::{Error, Result};
use crate::index::{Candidate, CandidateQuery, Index, ItemId, Postings, SidIndex};
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
        match &self.base {
            None => self.index.items_by_sid(),
            Some(b) if self.index.is_empty() && b.hidden.is_empty() => b.snap.order().to_vec(),
            Some(b) => super::merge::by_sid(b, &self.index),
        }
    }

    /// The base snapshot when nothing changed since it (every query is its own).
    #[inline]
    fn pure(&self) -> Option<&Snapshot<BaseBytes>> {
        let b = self.base.as_ref()?;
        (self.index.is_empty() && b.hidden.is_empty()).then_some(&*b.snap)
    }
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
        match (&self.base, self.pure()) {
            (None, _) => self.index.items(prefix),
            (_, Some(s)) => s.items(prefix),
            (Some(b), None) => super::merge::items(b, &self.index, prefix),
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
        match (&self.base, self.pure()) {
            (None, _) => SidIndex::next_tokens(&self.index, prefix),
            (_, Some(s)) => s.next_tokens(prefix),
            (Some(b), None) => super::merge::next_tokens(b, &self.index, prefix),
        }
    }

    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        match (&self.base, self.pure()) {
            (None, _) => self.index.candidates(q),
            (_, Some(s)) => s.candidates(q),
            (Some(_), None) => crate::index::candidates::over_view(self, q),
        }
    }

    fn position_postings(&self, position: usize, token: Token) -> Postings<'_> {
        match (&self.base, self.pure()) {
            (None, _) => SidIndex::position_postings(&self.index, position, token),
            (_, Some(s)) => s.position_postings(position, token),
            (Some(b), None) => super::merge::position(b, &self.index, position, token),
        }
    }

    fn prefix_counts(&self) -> Vec<u64> {
        match (&self.base, self.pure()) {
            (None, _) => self.index.prefix_counts(),
            (_, Some(s)) => s.prefix_counts(),
            (Some(_), None) => super::merge::shape(self).0,
        }
    }

    fn node_count(&self) -> usize {
        match (&self.base, self.pure()) {
            (None, _) => self.index.node_count(),
            (_, Some(s)) => s.node_count(),
            (Some(_), None) => super::merge::shape(self).1,
        }
    }

    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        match (&self.base, self.pure()) {
            (None, _) => self.index.for_each_sid(f),
            (_, Some(s)) => s.for_each_sid(f),
            (Some(b), None) => {
                // Both sides by ascending id, interleaved.
                let mut changed = self
                    .index
                    .items(&[])
                    .map_or(Vec::new(), |p| p.to_sorted_vec());
                changed.reverse();
                let mut emit_changed_below =
                    |bound: ItemId, f: &mut dyn FnMut(ItemId, &[Token])| {
                        while let Some(&i) = changed.last().filter(|&&i| i < bound) {
                            changed.pop();
                            if let Some((sid, _)) = self.index.sid(i) {
                                f(i, sid);
                            }
                        }
                    };
                b.snap.for_each_sid(&mut |item, sid| {
                    emit_changed_below(item, f);
                    if !b.hidden.contains(item) {
                        f(item, sid);
                    }
                });
                emit_changed_below(ItemId::MAX, f);
            }
        }
    }

    fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
        match (&self.base, self.pure()) {
            (None, _) => SidIndex::write_mask(&self.index, prefix, row),
            (_, Some(s)) => s.write_mask(prefix, row),
            (Some(b), None) => super::merge::write_mask(b, &self.index, prefix, row),
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
