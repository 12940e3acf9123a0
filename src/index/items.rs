//! Per-item SIDs held by the index, in flat arrays indexed by item id.

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::sid::{EMPTY, SidLayout, Token};

/// Full SIDs and effective routing weights of every live item.
///
/// Rows are indexed by item id (dense: the whole catalogue in memory), or,
/// for the few items a database changed since its base snapshot, by a
/// slot per item (sparse: memory for those items only, whatever their ids).
#[derive(Clone, Debug)]
pub(crate) struct ItemTable {
    stride: usize,
    behavior: usize,
    tokens: Vec<Token>,
    weights: Vec<f32>,
    /// Sparse tables: each item's row, and rows freed by removals.
    slots: Option<(FxHashMap<u32, u32>, Vec<u32>)>,
    pub live: RoaringBitmap,
}

impl ItemTable {
    pub(crate) fn new(layout: &SidLayout) -> Self {
        ItemTable {
            stride: layout.full_len(),
            behavior: layout.behavior as usize,
            tokens: Vec::new(),
            weights: Vec::new(),
            slots: None,
            live: RoaringBitmap::new(),
        }
    }

    /// A table whose memory grows with the items it holds, not their ids.
    pub(crate) fn sparse(layout: &SidLayout) -> Self {
        ItemTable {
            slots: Some(Default::default()),
            ..Self::new(layout)
        }
    }

    /// The row of a held item.
    #[inline]
    fn row(&self, item: u32) -> usize {
        match &self.slots {
            None => item as usize,
            Some((slots, _)) => slots.get(&item).map_or(usize::MAX, |&s| s as usize),
        }
    }

    /// The row `item` is stored in, made if need be.
    fn row_for(&mut self, item: u32) -> usize {
        match &mut self.slots {
            None => item as usize,
            Some((slots, free)) => {
                // Rows handed out so far (in use or freed), not rows
                // allocated: the table grows by half when it must.
                let next = (slots.len() + free.len()) as u32;
                *slots
                    .entry(item)
                    .or_insert_with(|| free.pop().unwrap_or(next)) as usize
            }
        }
    }

    /// Rows the table has memory for.
    #[cfg(test)]
    pub(crate) fn allocated_rows(&self) -> usize {
        self.tokens.len() / self.stride
    }

    #[inline]
    pub(crate) fn sid(&self, item: u32) -> &[Token] {
        let s = self.row(item) * self.stride;
        &self.tokens[s..s + self.stride]
    }

    pub(crate) fn weights(&self, item: u32) -> &[f32] {
        let s = self.row(item) * self.behavior;
        &self.weights[s..s + self.behavior]
    }

    /// Stores `full` and the weights; absent weights become 1 (0 where masked).
    pub(crate) fn set(&mut self, item: u32, full: &[Token], weights: &[f32]) {
        let row = self.row_for(item);
        let n = row + 1;
        if self.tokens.len() < n * self.stride {
            let grow = (n * self.stride).max(self.tokens.len() * 3 / 2);
            self.tokens.resize(grow, 0);
            self.weights.resize(grow / self.stride * self.behavior, 0.0);
        }
        let s = row * self.stride;
        self.tokens[s..s + self.stride].copy_from_slice(full);
        let first = self.stride - 1 - self.behavior;
        let w = row * self.behavior;
        for b in 0..self.behavior {
            self.weights[w + b] = match weights.get(b) {
                Some(&v) => v,
                None if full[first + b] == EMPTY => 0.0,
                None => 1.0,
            };
        }
        super::add(&mut self.live, item);
    }

    pub(crate) fn reserve(&mut self, ids: u32) {
        let n = ids as usize;
        if self.slots.is_none() && self.tokens.len() < n * self.stride {
            self.tokens.resize(n * self.stride, 0);
            self.weights.resize(n * self.behavior, 0.0);
        }
    }

    pub(crate) fn clear(&mut self, item: u32) {
        self.live.remove(item);
        if let Some((slots, free)) = &mut self.slots
            && let Some(row) = slots.remove(&item)
        {
            free.push(row);
        }
    }
}
