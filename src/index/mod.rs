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
mod items;
mod node;
mod postings;
mod view;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::sid::{SidLayout, Token};

pub use candidates::{Candidate, CandidateMode, CandidateQuery};
pub use node::MAX_ITEM_ID;
pub use postings::Postings;
pub use view::SidIndex;

use items::ItemTable;
use node::{Child, Geometry, Node};

/// Internal id of an item (dense, assigned by the database).
pub type ItemId = u32;

const ROOT: u32 = 0;

/// Inserts `item`, appending in O(1) when it is the largest so far (the
/// usual case: ids are handed out in increasing order).
#[inline]
pub(crate) fn add(bitmap: &mut RoaringBitmap, item: ItemId) {
    if !bitmap.push(item) {
        bitmap.insert(item);
    }
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

    /// Adds `item` with its full SID (semantic tokens + disambiguation token).
    pub fn insert(&mut self, item: ItemId, full: &[Token], weights: &[f32]) -> Result<()> {
        if item > MAX_ITEM_ID {
            return Err(Error::InvalidArgument(format!(
                "item id {item} exceeds {MAX_ITEM_ID}"
            )));
        }
        if self.contains(item) {
            return Err(Error::InvalidArgument(format!(
                "item {item} is already indexed"
            )));
        }
        self.layout.check_full(full, weights)?;
        self.items.set(item, full, weights);
        self.insert_trie(item, full)?;
        for (pos, &token) in full[..self.layout.levels()].iter().enumerate() {
            add(&mut self.by_position[pos][self.geo.bit(token)], item);
        }
        Ok(())
    }

    /// Loads many items into an empty index at once; `records` must be in
    /// strictly increasing id order. The result equals inserting them one by
    /// one, but the trie is built from the items sorted by SID (each node's
    /// posting list made once from a sorted run) and the per-position postings
    /// from per-token id runs, in parallel.
    pub fn bulk_load<'a>(
        &mut self,
        records: impl IntoIterator<Item = (ItemId, &'a [Token], &'a [f32])>,
    ) -> Result<()> {
        if !self.is_empty() {
            return Err(Error::InvalidArgument(
                "bulk_load needs an empty index".into(),
            ));
        }
        if let Err(e) = self.load_items(records) {
            *self = Index::new(self.layout);
            return Err(e);
        }
        let mut order: Vec<ItemId> = self.items.live.iter().collect();
        let items = &self.items;
        order.par_sort_unstable_by(|&a, &b| items.sid(a).cmp(items.sid(b)));
        // A contiguous copy of the SIDs in sorted order keeps the trie build sequential in memory.
        let stride = self.layout.full_len();
        let mut sorted = Vec::with_capacity(order.len() * stride);
        order
            .iter()
            .for_each(|&i| sorted.extend_from_slice(self.items.sid(i)));
        self.postings[ROOT as usize] = self.items.live.clone();
        if let Err(e) = self.build_subtrie(ROOT, 0, &order, &sorted) {
            *self = Index::new(self.layout);
            return Err(e);
        }
        let (items, geo) = (&self.items, self.geo);
        self.by_position
            .par_iter_mut()
            .enumerate()
            .for_each(|(pos, bitmaps)| {
                let mut runs: Vec<Vec<ItemId>> = vec![Vec::new(); geo.bits];
                for item in &items.live {
                    runs[geo.bit(items.sid(item)[pos])].push(item);
                }
                for (bitmap, run) in bitmaps.iter_mut().zip(runs) {
                    *bitmap = RoaringBitmap::from_sorted_iter(run).expect("ids ascend");
                }
            });
        Ok(())
    }

    fn load_items<'a>(
        &mut self,
        records: impl IntoIterator<Item = (ItemId, &'a [Token], &'a [f32])>,
    ) -> Result<()> {
        let mut last = None;
        for (item, full, weights) in records {
            if item > MAX_ITEM_ID || last.is_some_and(|l| l >= item) {
                return Err(Error::InvalidArgument(format!(
                    "item id {item} is out of order or too large"
                )));
            }
            last = Some(item);
            self.layout.check_full(full, weights)?;
            self.items.set(item, full, weights);
        }
        Ok(())
    }

    /// Builds the children of `node` from `run`: the items under its prefix
    /// (of length `depth`), sorted by SID, whose SIDs are `sids` (row-major).
    fn build_subtrie(
        &mut self,
        node: u32,
        depth: usize,
        run: &[ItemId],
        sids: &[Token],
    ) -> Result<()> {
        let stride = self.layout.full_len();
        let token_at = |i: usize| sids[i * stride + depth];
        let mut start = 0;
        while start < run.len() {
            let token = token_at(start);
            let mut end = start + 1;
            while end < run.len() && token_at(end) == token {
                end += 1;
            }
            let group = &run[start..end];
            let group_sids = &sids[start * stride..end * stride];
            start = end;
            if group.len() == 1 {
                self.nodes[node as usize].set_child(&self.geo, token, Child::Item(group[0]));
                continue;
            }
            if depth + 1 == stride {
                return Err(Error::InvalidArgument(format!(
                    "items {} and {} share the full SID {}",
                    group[0],
                    group[1],
                    crate::sid::format_tokens(&group_sids[..stride])
                )));
            }
            let c = self.alloc_node();
            let mut ids = group.to_vec();
            ids.sort_unstable();
            self.postings[c as usize] = RoaringBitmap::from_sorted_iter(ids).expect("sorted");
            self.nodes[node as usize].set_child(&self.geo, token, Child::Node(c));
            self.build_subtrie(c, depth + 1, group, group_sids)?;
        }
        Ok(())
    }

    /// Threads `item` (already in the item table) through the trie.
    fn insert_trie(&mut self, item: ItemId, full: &[Token]) -> Result<()> {
        add(&mut self.postings[ROOT as usize], item);
        let mut path: SmallVec<[u32; 16]> = SmallVec::new();
        let mut node = ROOT;
        let mut split_seen = false;
        for (depth, &token) in full.iter().enumerate() {
            match self.nodes[node as usize].child(&self.geo, token) {
                None => {
                    self.nodes[node as usize].set_child(&self.geo, token, Child::Item(item));
                    break;
                }
                Some(Child::Node(c)) => {
                    add(&mut self.postings[c as usize], item);
                    path.push(c);
                    node = c;
                }
                Some(Child::Item(other)) => {
                    // Only the first item met can share the whole SID; check before changing the trie.
                    if !split_seen && self.items.sid(other)[depth + 1..] == full[depth + 1..] {
                        for n in path.into_iter().chain([ROOT]) {
                            self.postings[n as usize].remove(item);
                        }
                        self.items.clear(item);
                        return Err(Error::InvalidArgument(format!(
                            "full SID {} is already taken by item {other}",
                            crate::sid::format_tokens(full)
                        )));
                    }
                    split_seen = true;
                    node = self.split(node, depth, other, item);
                }
            }
        }
        Ok(())
    }

    /// Gives the prefix `full[..=depth]`, so far reached by `other` alone, a
    /// node holding `other` and `item`; returns the new node.
    fn split(&mut self, parent: u32, depth: usize, other: ItemId, item: ItemId) -> u32 {
        let token = self.items.sid(other)[depth];
        let other_next = self.items.sid(other)[depth + 1];
        let c = self.alloc_node();
        let geo = self.geo;
        add(&mut self.postings[c as usize], other);
        add(&mut self.postings[c as usize], item);
        self.nodes[c as usize].set_child(&geo, other_next, Child::Item(other));
        self.nodes[parent as usize].set_child(&geo, token, Child::Node(c));
        c
    }

    fn alloc_node(&mut self) -> u32 {
        match self.free_nodes.pop() {
            Some(n) => n,
            None => {
                self.nodes.push(Node::default());
                self.postings.push(RoaringBitmap::new());
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Removes `item`; nodes left with one item collapse into a direct item reference.
    pub fn remove(&mut self, item: ItemId) -> Result<()> {
        if !self.contains(item) {
            return Err(Error::InvalidArgument(format!(
                "item {item} is not indexed"
            )));
        }
        let full: Vec<Token> = self.items.sid(item).to_vec();
        let mut path = vec![ROOT];
        let mut depth = 0;
        while let Some(Child::Node(c)) =
            self.nodes[*path.last().unwrap() as usize].child(&self.geo, full[depth])
        {
            path.push(c);
            depth += 1;
        }
        for &n in &path {
            self.postings[n as usize].remove(item);
        }
        let geo = self.geo;
        self.nodes[*path.last().unwrap() as usize].remove_child(&geo, full[depth]);
        if let Some(i) = (1..path.len()).find(|&i| self.postings[path[i] as usize].len() == 1) {
            let survivor = self.postings[path[i] as usize].min().expect("one item");
            self.nodes[path[i - 1] as usize].set_child(&geo, full[i - 1], Child::Item(survivor));
            for &n in &path[i..] {
                self.nodes[n as usize] = Node::default();
                self.postings[n as usize] = RoaringBitmap::new();
                self.free_nodes.push(n);
            }
        }
        for (pos, &token) in full[..self.layout.levels()].iter().enumerate() {
            self.by_position[pos][self.geo.bit(token)].remove(item);
        }
        self.items.clear(item);
        Ok(())
    }

    /// Replaces the SID of an indexed item.
    pub fn update(&mut self, item: ItemId, full: &[Token], weights: &[f32]) -> Result<()> {
        self.layout.check_full(full, weights)?;
        if let Some(Loc::Item(other)) = self.locate(full)
            && other != item
        {
            return Err(Error::InvalidArgument(format!(
                "full SID {} is already taken by item {other}",
                crate::sid::format_tokens(full)
            )));
        }
        self.remove(item)?;
        self.insert(item, full, weights)
    }
}

#[cfg(test)]
mod tests;
