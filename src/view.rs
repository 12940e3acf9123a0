//! [`ReadView`]: what a reader asks of a set of items, the [`SidIndex`]
//! queries plus external keys, over a [`State`] (what a database's
//! [`crate::database::ReadGuard`] derefs to) or a
//! [`crate::snapshot::Snapshot`] alike. Leave-one-out evaluation, the
//! generative retriever and the command line's `lookup` and `next` read
//! through it, so each is written once and runs over either. A `&dyn
//! ReadView` upcasts to `&dyn SidIndex` for the beam decoder.

use crate::error::{Error, Result};
use crate::index::{Candidate, CandidateQuery, Index, ItemId, Postings, SidIndex};
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token};

/// A consistent view of items: their SIDs ([`SidIndex`]) and their keys.
pub trait ReadView: SidIndex {
    /// Id of an external key, or [`crate::Error::UnknownKey`].
    fn id(&self, key: &str) -> Result<ItemId>;

    /// External key of an item id.
    fn key(&self, id: ItemId) -> Option<&str>;
}

/// Items with keys: an index plus its key map, mutually consistent. A
/// database publishes one behind its read lock; a caller can build one in
/// memory (e.g. to write a snapshot without a database).
#[derive(Debug)]
pub struct State {
    /// The prefix index.
    pub index: Index,
    /// External keys.
    pub keys: KeyMap,
}

impl State {
    /// Id of an external key, or [`Error::UnknownKey`].
    pub fn id(&self, key: &str) -> Result<ItemId> {
        self.keys
            .id(key)
            .ok_or_else(|| Error::UnknownKey(key.to_string()))
    }

    /// External key of an item id.
    pub fn key(&self, id: ItemId) -> Option<&str> {
        self.keys.key(id)
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
        self.index.len()
    }

    fn contains(&self, item: ItemId) -> bool {
        self.index.contains(item)
    }

    fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
        self.index.sid(item)
    }

    fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
        self.index.items(prefix)
    }

    fn next_tokens(&self, prefix: &[Token]) -> Option<&[Token]> {
        self.index.next_tokens(prefix)
    }

    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        self.index.candidates(q)
    }

    fn position_postings(&self, position: usize, token: Token) -> Postings<'_> {
        self.index.position_postings(position, token)
    }

    fn prefix_counts(&self) -> Vec<u64> {
        self.index.prefix_counts()
    }

    fn node_count(&self) -> usize {
        self.index.node_count()
    }

    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        self.index.for_each_sid(f)
    }

    fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
        SidIndex::write_mask(&self.index, prefix, row)
    }

    fn mask_words(&self) -> usize {
        self.index.mask_words()
    }
}
