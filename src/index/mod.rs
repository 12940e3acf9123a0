//! The prefix index: roaring posting lists per SID prefix, valid next tokens
//! per prefix, per-(position, token) postings, and candidate lookup.
//!
//! Invariants (checked by the model-based tests):
//! * every prefix of every live item's full SID is valid, and no other prefix is;
//! * `items(p)` is exactly the set of live items whose SID starts with `p`;
//! * `next_tokens(p)` is exactly the set of tokens `t` with `p + [t]` valid,
//!   ascending, kept up to date on every write (no scan at query time);
//! * full SIDs are unique.
//!
//! The index is plain in-memory data with no I/O. It is `Send + Sync`; callers
//! that write while others read wrap it in a lock (see [`crate::Database`]).

pub(crate) mod candidates;
mod child;
mod codes;
mod items;
mod node;
mod postings;
mod view;
mod write;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::sid::{SidLayout, Token};

pub use candidates::{Candidate, CandidateMode, CandidateQuery};
pub use child::MAX_ITEM_ID;
pub(crate) use child::{Child, NO_CHILD, goes_dense, has_slot};
pub use codes::{BLOCK, ByteCodes, Coded, table_width};
pub use postings::Postings;
pub use view::{ReadView, SidIndex};

use items::ItemTable;
use node::{Geometry, Node};

/// Internal id of an item (dense, assigned by the database).
pub type ItemId = u32;

const ROOT: u32 = 0;

/// Inserts `item`. Not `push` first: ids are handed out in increasing
/// order, but roaring's `push` into a bitmap container scans its 1,024
/// words from the top for the maximum on every call, while `insert` sets
/// one bit there and appends after a binary search in an array container.
#[inline]
pub(crate) fn add(bitmap: &mut RoaringBitmap, item: ItemId) {
    bitmap.insert(item);
}

/// Sorts `rows` by `full`, given each row's `head`: a `u64` whose order
/// agrees with `full` (a packed prefix of what `full` compares). Sorting by
/// the head keeps the comparisons in cache; only runs that tie on it
/// (few and short where the head packs most of a SID) are sorted again by
/// `full`.
pub(crate) fn sort_rows_by_head<T: Send>(
    rows: &mut [T],
    head: impl Fn(&T) -> u64 + Sync,
    full: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    rows.par_sort_unstable_by_key(&head);
    for run in rows.chunk_by_mut(|a, b| head(a) == head(b)) {
        if run.len() > 1 {
            run.sort_unstable_by(&full);
        }
    }
}

/// Items ordered by `full` (then by id), given each item's head (see
/// [`sort_rows_by_head`]).
pub(crate) fn sort_by_head(
    mut keyed: Vec<(u64, ItemId)>,
    full: impl Fn(ItemId, ItemId) -> std::cmp::Ordering,
) -> Vec<ItemId> {
    let by_id = |a: &(u64, ItemId), b: &(u64, ItemId)| full(a.1, b.1).then(a.1.cmp(&b.1));
    sort_rows_by_head(&mut keyed, |&(head, _)| head, by_id);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// `ids` ordered by full SID (then by id), `sid(i)` giving each one's: the
/// one order every listing by SID takes (packed heads from
/// [`SidLayout::sort_key`], ties compared in full).
pub(crate) fn sort_by_sid<'a>(
    layout: &SidLayout,
    ids: impl Iterator<Item = ItemId>,
    sid: impl Fn(ItemId) -> &'a [Token],
) -> Vec<ItemId> {
    let keyed = ids.map(|i| (layout.sort_key(sid(i)), i)).collect();
    sort_by_head(keyed, |a, b| sid(a).cmp(sid(b)))
}

/// Where a prefix ends in the trie.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Node(u32),
    /// The prefix is reached by one item only.
    Item(ItemId),
}

/// In-memory prefix index over the full SIDs of a database's items.
#[derive(Clone, Debug)]
pub struct Index {
    layout: SidLayout,
    geo: Geometry,
    /// Child tables, by node id (hot: every lookup walks them).
    nodes: Vec<Node>,
    /// Posting lists, by node id (kept apart so a walk stays on one cache line per node).
    postings: Vec<RoaringBitmap>,
    free_nodes: Vec<u32>,
    items: ItemTable,
    /// `[position][mask bit]` → items with that token at that position.
    by_position: Vec<Vec<RoaringBitmap>>,
}

impl Index {
    /// An empty index for SIDs of the given layout.
    pub fn new(layout: SidLayout) -> Self {
        let geo = Geometry::new(layout.k() as usize);
        Index {
            layout,
            geo,
            nodes: vec![Node::default()],
            postings: vec![RoaringBitmap::new()],
            free_nodes: Vec::new(),
            items: ItemTable::new(&layout),
            by_position: vec![vec![RoaringBitmap::new(); geo.bits]; layout.levels()],
        }
    }

    /// An empty index whose item table grows with the blocks of ids it
    /// holds, not up to the largest id: what holds a database's changes
    /// beside a snapshot of millions of items (one change there may carry
    /// any id).
    pub(crate) fn for_changes(layout: SidLayout) -> Self {
        Index {
            items: ItemTable::paged(&layout),
            ..Self::new(layout)
        }
    }

    /// Makes room for item ids below `ids` up front (saves regrowth on bulk loads).
    pub fn reserve_ids(&mut self, ids: u32) {
        self.items.reserve(ids);
    }

    /// The layout of the SIDs held.
    pub fn layout(&self) -> &SidLayout {
        &self.layout
    }

    /// Number of live items.
    pub fn len(&self) -> u64 {
        self.items.live.len()
    }

    /// Whether the index holds no items.
    pub fn is_empty(&self) -> bool {
        self.items.live.is_empty()
    }

    /// Whether `item` is in the index.
    pub fn contains(&self, item: ItemId) -> bool {
        self.items.live.contains(item)
    }

    /// Full SID and effective routing weights of `item`.
    pub fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
        self.contains(item)
            .then(|| (self.items.sid(item), self.items.weights(item)))
    }

    /// Live items in SID order (see [`sort_by_sid`]).
    pub(crate) fn items_by_sid(&self) -> Vec<ItemId> {
        let items = &self.items;
        sort_by_sid(&self.layout, items.live.iter(), |i| items.sid(i))
    }

    /// The full SIDs of `order` (live items), copied row after row: a trie
    /// built from items sorted by SID then reads memory in order, not the
    /// item table at random once per level.
    pub(crate) fn sids_in_order(&self, order: &[ItemId]) -> Vec<Token> {
        let mut sids = Vec::with_capacity(order.len() * self.layout.full_len());
        for &i in order {
            sids.extend_from_slice(self.items.sid(i));
        }
        sids
    }

    /// Number of trie nodes (prefixes shared by two or more items, plus the root).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.free_nodes.len()
    }

    fn locate(&self, prefix: &[Token]) -> Option<Loc> {
        if prefix.len() > self.layout.full_len() {
            return None;
        }
        let mut node = ROOT;
        for (depth, &token) in prefix.iter().enumerate() {
            match self.nodes[node as usize].child(&self.geo, token)? {
                Child::Node(c) => node = c,
                Child::Item(item) => {
                    let sid = self.items.sid(item);
                    return (sid[depth + 1..prefix.len()] == prefix[depth + 1..])
                        .then_some(Loc::Item(item));
                }
            }
        }
        Some(Loc::Node(node))
    }

    /// The items whose SID starts with `prefix` (any length up to the full SID).
    /// The empty prefix gives every item. `None` if no item has that prefix.
    pub fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
        Some(match self.locate(prefix)? {
            Loc::Node(n) => Postings::Many(&self.postings[n as usize]),
            Loc::Item(i) => Postings::One(i),
        })
    }

    /// How many items live under `prefix`.
    pub fn count(&self, prefix: &[Token]) -> u64 {
        self.items(prefix).map_or(0, |p| p.len())
    }

    /// Whether some item's full SID starts with `prefix`.
    pub fn is_valid(&self, prefix: &[Token]) -> bool {
        self.locate(prefix).is_some()
    }

    /// The tokens that may follow `prefix`, ascending ([`crate::sid::EMPTY`] last).
    /// Empty for a full SID; `None` if `prefix` itself is not valid.
    pub fn next_tokens(&self, prefix: &[Token]) -> Option<&[Token]> {
        Some(match self.locate(prefix)? {
            Loc::Node(n) => &self.nodes[n as usize].tokens,
            Loc::Item(i) => {
                let sid = self.items.sid(i);
                &sid[prefix.len().min(sid.len())..(prefix.len() + 1).min(sid.len())]
            }
        })
    }

    /// `u64` words per beam in [`SidIndex::allowed_mask`].
    pub fn mask_words(&self) -> usize {
        self.geo.words
    }

    fn fill_mask(&self, prefix: &[Token], row: &mut [u64]) {
        match self.locate(prefix) {
            Some(Loc::Node(n)) => self.nodes[n as usize].write_mask(&self.geo, row),
            Some(Loc::Item(i)) => {
                row.fill(0);
                if let Some(&t) = self.items.sid(i).get(prefix.len()) {
                    let b = self.geo.bit(t);
                    row[b / 64] |= 1 << (b % 64);
                }
            }
            None => row.fill(0),
        }
    }

    /// Items whose token at `position` is `token`.
    pub fn position_items(&self, position: usize, token: Token) -> Option<&RoaringBitmap> {
        if token as usize == self.geo.k {
            return None;
        }
        self.by_position.get(position)?.get(self.geo.bit(token))
    }

    /// The disambiguation tokens in use under `semantic` (the first `levels`
    /// tokens of a full SID), with the item holding each, ascending.
    pub fn disambiguators(&self, semantic: &[Token]) -> Vec<(Token, ItemId)> {
        match self.locate(semantic) {
            None => Vec::new(),
            Some(Loc::Item(i)) => vec![(self.items.sid(i)[semantic.len()], i)],
            Some(Loc::Node(n)) => self.nodes[n as usize]
                .children()
                .filter_map(|(t, c)| match c {
                    Child::Item(i) => Some((t, i)),
                    Child::Node(_) => None,
                })
                .collect(),
        }
    }

    /// Distinct valid prefixes per length `1..=full_len` (index 0 is length 1).
    pub fn prefix_counts(&self) -> Vec<u64> {
        let full = self.layout.full_len();
        let mut counts = vec![0u64; full];
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            for (_, child) in self.nodes[node as usize].children() {
                match child {
                    Child::Node(c) => {
                        counts[depth] += 1;
                        stack.push((c, depth + 1));
                    }
                    Child::Item(_) => counts[depth..].iter_mut().for_each(|c| *c += 1),
                }
            }
        }
        counts
    }

    /// Item count per token at `position` (mask-bit order: K codebook tokens, then EMPTY).
    pub fn token_counts(&self, position: usize) -> Vec<u64> {
        self.by_position[position].iter().map(|b| b.len()).collect()
    }
}

#[cfg(test)]
mod tests;
