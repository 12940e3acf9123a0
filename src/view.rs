//! [`ReadView`]: what a reader asks of a set of items, the [`SidIndex`]
//! queries plus external keys, over a database's read guard
//! ([`crate::database::ReadGuard`]) or a [`crate::snapshot::Snapshot`] alike.
//! Evaluation, both retrievers, statistics and the command line read through
//! it, so each is written once and runs over either.

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

    /// This view as its index, for code written against [`SidIndex`].
    fn as_index(&self) -> &dyn SidIndex;
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

    fn as_index(&self) -> &dyn SidIndex {
        &self.index
    }
}

/// Implements [`SidIndex`] for a type by handing every query to the
/// [`Index`] that `$index` reaches from `self`.
macro_rules! delegate_to_index {
    ($ty:ty, |$s:ident| $index:expr) => {
        impl SidIndex for $ty {
            fn layout(&self) -> &SidLayout {
                let $s = self;
                $index.layout()
            }

            fn len(&self) -> u64 {
                let $s = self;
                $index.len()
            }

            fn contains(&self, item: ItemId) -> bool {
                let $s = self;
                $index.contains(item)
            }

            fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
                let $s = self;
                $index.sid(item)
            }

            fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
                let $s = self;
                $index.items(prefix)
            }

            fn next_tokens(&self, prefix: &[Token]) -> Option<&[Token]> {
                let $s = self;
                $index.next_tokens(prefix)
            }

            fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
                let $s = self;
                $index.candidates(q)
            }

            fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
                let $s = self;
                SidIndex::write_mask($index, prefix, row)
            }

            fn mask_words(&self) -> usize {
                let $s = self;
                $index.mask_words()
            }
        }
    };
}

#[cfg_attr(not(feature = "store"), allow(unused_imports))]
pub(crate) use delegate_to_index;

delegate_to_index!(State, |s| &s.index);
