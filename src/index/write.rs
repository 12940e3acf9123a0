//! Writes to the prefix index: single inserts, bulk loads (sorted, built a
//! subtrie at a time in parallel), removals and updates. Every one keeps the
//! invariants of [`super`] before it returns; a rejected write changes nothing.

use rayon::prelude::*;
use roaring::RoaringBitmap;
use smallvec::SmallVec;

use super::node::Node;
use super::{Child, Index, ItemId, Loc, MAX_ITEM_ID, ROOT, add, sort_by_sid};
use crate::error::{Error, Result};
use crate::sid::Token;

impl Index {
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

    /// Inserts many items at once, as [`Index::insert`] would one by one:
    /// the trie an item at a time while the per-position postings fill in
    /// parallel beside it; an empty index given ascending ids (a new
    /// database's first batch) is built whole by [`Index::bulk_load`]
    /// instead, several times faster. On error nothing changed.
    pub fn insert_many(&mut self, items: &[(ItemId, &[Token], &[f32])]) -> Result<()> {
        // `bulk_load` checks ids and SIDs itself, and leaves the index empty on error.
        if self.is_empty() && items.windows(2).all(|w| w[0].0 < w[1].0) {
            return self.bulk_load(items.iter().copied());
        }
        let mut ids = RoaringBitmap::new();
        for &(item, full, weights) in items {
            if item > MAX_ITEM_ID || self.contains(item) || !ids.insert(item) {
                return Err(Error::InvalidArgument(format!(
                    "item id {item} is too large, already indexed or given twice"
                )));
            }
            self.layout.check_full(full, weights)?;
        }
        let mut by_position = std::mem::take(&mut self.by_position);
        let (geo, levels) = (self.geo, self.layout.levels());
        let (trie, ()) = rayon::join(
            || self.insert_trie_many(items),
            || {
                by_position
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(pos, bitmaps)| {
                        for &(item, full, _) in items {
                            add(&mut bitmaps[geo.bit(full[pos])], item);
                        }
                    });
            },
        );
        self.by_position = by_position;
        if let Err(e) = trie {
            for pos in 0..levels {
                for &(item, full, _) in items {
                    self.by_position[pos][geo.bit(full[pos])].remove(item);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Threads `items` through the trie and the item table, in SID order
    /// (consecutive items then share their path, so its nodes stay in cache:
    /// in the order given, a large batch meets a cold node at every level);
    /// on error takes out again the ones already in.
    fn insert_trie_many(&mut self, items: &[(ItemId, &[Token], &[f32])]) -> Result<()> {
        let order = sort_by_sid(&self.layout, 0..items.len() as u32, |n| items[n as usize].1);
        for (k, &n) in order.iter().enumerate() {
            let (item, full, weights) = items[n as usize];
            self.items.set(item, full, weights);
            if let Err(e) = self.insert_trie(item, full) {
                for &done in &order[..k] {
                    self.remove_trie(items[done as usize].0);
                }
                return Err(e);
            }
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
        let order = self.items_by_sid();
        let sorted = self.sids_in_order(&order);
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
        for (pos, &token) in self.items.sid(item)[..self.layout.levels()]
            .iter()
            .enumerate()
        {
            self.by_position[pos][self.geo.bit(token)].remove(item);
        }
        self.remove_trie(item);
        Ok(())
    }

    /// Takes an indexed `item` out of the trie and the item table.
    fn remove_trie(&mut self, item: ItemId) {
        let full: SmallVec<[Token; 16]> = SmallVec::from_slice(self.items.sid(item));
        let mut path: SmallVec<[u32; 16]> = SmallVec::from_slice(&[ROOT]);
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
        self.items.clear(item);
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
