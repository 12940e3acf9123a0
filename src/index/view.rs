//! [`SidIndex`]: the read surface shared by the in-memory [`Index`] and a
//! mapped [`crate::snapshot::Snapshot`], so a decoder or a server is written
//! once and runs over either.

use std::borrow::Cow;

use super::{Candidate, CandidateQuery, Coded, Index, ItemId, Postings};
use crate::error::{Error, Result};
use crate::sid::{SidLayout, Token};

/// Prefix queries over the full SIDs of a set of items.
///
/// Both implementations answer every query identically (the snapshot model
/// test checks this), except that [`Postings::Slice`] lists a snapshot's
/// items in SID order rather than id order.
pub trait SidIndex {
    /// The layout of the SIDs held.
    fn layout(&self) -> &SidLayout;

    /// Number of items.
    fn len(&self) -> u64;

    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `item` is held.
    fn contains(&self, item: ItemId) -> bool;

    /// Full SID and effective routing weights of `item`.
    fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])>;

    /// The items whose full SID starts with `prefix`; `None` when none does.
    /// The empty prefix gives every item.
    fn items(&self, prefix: &[Token]) -> Option<Postings<'_>>;

    /// How many items live under `prefix`.
    fn count(&self, prefix: &[Token]) -> u64 {
        self.items(prefix).map_or(0, |p| p.len())
    }

    /// Whether some item's full SID starts with `prefix`.
    fn is_valid(&self, prefix: &[Token]) -> bool {
        self.items(prefix).is_some()
    }

    /// The tokens that may follow `prefix`, ascending ([`crate::EMPTY`] last).
    /// Empty for a full SID; `None` if `prefix` itself is not valid.
    /// Borrowed from the index or snapshot that holds them; computed only
    /// where a database merges a snapshot with later changes.
    fn next_tokens(&self, prefix: &[Token]) -> Option<Cow<'_, [Token]>>;

    /// Candidates near `q.tokens`, best first (see [`CandidateQuery`]).
    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate>;

    /// The items whose token at semantic `position` is `token` (empty for a
    /// position or token the layout does not have).
    fn position_postings(&self, position: usize, token: Token) -> Postings<'_>;

    /// Distinct prefixes of each length: entry `l` counts those of
    /// `l + 1` tokens (up to the full SID).
    fn prefix_counts(&self) -> Vec<u64>;

    /// Trie nodes: the root and every prefix two or more items share.
    fn node_count(&self) -> usize;

    /// Calls `f` with every item and its full SID, by ascending id (the
    /// order the SID table lies in memory): the scan a ranking of every
    /// item makes.
    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        if let Some(all) = self.items(&[]) {
            all.for_each(|item| {
                if let Some((sid, _)) = self.sid(item) {
                    f(item, sid);
                }
            });
        }
    }

    /// The held SIDs as one byte per token for a vectorised scan
    /// ([`crate::decode::parallel::top_k`]), where this index keeps them: a
    /// snapshot builds its codes on first use and keeps them; the in-memory
    /// index keeps none (it changes with every write).
    fn byte_codes(&self) -> Option<Coded<'_>> {
        None
    }

    /// Writes the next-token bitmask of `prefix` into `row`
    /// ([`SidIndex::mask_words`] words; bit `t` for token `t`, bit K for
    /// [`crate::EMPTY`]); all zero for an invalid prefix.
    fn write_mask(&self, prefix: &[Token], row: &mut [u64]);

    /// `u64` words per beam in [`SidIndex::allowed_mask`].
    fn mask_words(&self) -> usize {
        self.layout().mask_words()
    }

    /// Fills `out` with one next-token bitmask per prefix. `out` must hold
    /// `prefixes.len() * mask_words()` words. An invalid prefix gets an
    /// all-zero mask.
    fn allowed_mask<P: AsRef<[Token]>>(&self, prefixes: &[P], out: &mut [u64]) -> Result<()>
    where
        Self: Sized,
    {
        let words = self.mask_words();
        if out.len() != prefixes.len() * words {
            return Err(Error::InvalidArgument(format!(
                "mask buffer has {} words, {} beams need {}",
                out.len(),
                prefixes.len(),
                prefixes.len() * words
            )));
        }
        for (prefix, row) in prefixes.iter().zip(out.chunks_exact_mut(words)) {
            self.write_mask(prefix.as_ref(), row);
        }
        Ok(())
    }

    /// [`SidIndex::allowed_mask`] for `beams` prefixes of one length `depth`
    /// stored back to back in `tokens` (the layout a beam decoder keeps).
    fn allowed_mask_flat(
        &self,
        tokens: &[Token],
        depth: usize,
        beams: usize,
        out: &mut [u64],
    ) -> Result<()> {
        let words = self.mask_words();
        if tokens.len() != beams * depth || out.len() != beams * words {
            return Err(Error::InvalidArgument(format!(
                "{beams} beams of length {depth} need {} tokens and {} mask words, got {} and {}",
                beams * depth,
                beams * words,
                tokens.len(),
                out.len()
            )));
        }
        for (b, row) in out.chunks_exact_mut(words).enumerate() {
            self.write_mask(&tokens[b * depth..(b + 1) * depth], row);
        }
        Ok(())
    }
}

impl SidIndex for Index {
    fn layout(&self) -> &SidLayout {
        Index::layout(self)
    }

    fn len(&self) -> u64 {
        Index::len(self)
    }

    fn contains(&self, item: ItemId) -> bool {
        Index::contains(self, item)
    }

    fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
        Index::sid(self, item)
    }

    fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
        Index::items(self, prefix)
    }

    fn next_tokens(&self, prefix: &[Token]) -> Option<Cow<'_, [Token]>> {
        Index::next_tokens(self, prefix).map(Cow::Borrowed)
    }

    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        Index::candidates(self, q)
    }

    fn position_postings(&self, position: usize, token: Token) -> Postings<'_> {
        match self.position_items(position, token) {
            Some(b) => Postings::Many(b),
            None => Postings::Slice(&[]),
        }
    }

    fn prefix_counts(&self) -> Vec<u64> {
        Index::prefix_counts(self)
    }

    fn node_count(&self) -> usize {
        Index::node_count(self)
    }

    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        // Listed items are held: no membership test per item.
        if let Some(all) = Index::items(self, &[]) {
            all.for_each(|item| f(item, self.items.sid(item)));
        }
    }

    fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
        self.fill_mask(prefix, row)
    }

    fn mask_words(&self) -> usize {
        Index::mask_words(self)
    }
}

/// A consistent view of items: their SIDs ([`SidIndex`]) and their keys,
/// over a database's [`crate::State`] or a [`crate::snapshot::Snapshot`]
/// alike (see [`crate::view`]).
pub trait ReadView: SidIndex {
    /// Id of an external key, or [`crate::Error::UnknownKey`].
    fn id(&self, key: &str) -> Result<ItemId>;

    /// External key of an item id.
    fn key(&self, id: ItemId) -> Option<&str>;
}
