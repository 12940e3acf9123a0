//! Per-item SIDs held by the index, in flat arrays indexed by item id.

use roaring::RoaringBitmap;

use crate::sid::{SidLayout, Token, held_weight};

/// Full SIDs and effective routing weights of every live item.
///
/// Rows are indexed by item id (dense: the whole catalogue in memory), or,
/// for the items a database changed since its base snapshot, in blocks of
/// [`PAGE`] ids allocated when an item of the block is first stored (paged:
/// memory for the blocks in use plus a 4-byte directory entry per block of
/// ids below the largest, a lookup one array read more than dense, not a
/// hash).
#[derive(Clone, Debug)]
pub(crate) struct ItemTable {
    stride: usize,
    behavior: usize,
    tokens: Vec<Token>,
    weights: Vec<f32>,
    /// Paged tables: each block's first row (`NO_BLOCK`: none yet).
    blocks: Option<Vec<u32>>,
    pub live: RoaringBitmap,
}

/// Ids per block of a paged table.
const PAGE: u32 = 256;
const NO_BLOCK: u32 = u32::MAX;

impl ItemTable {
    pub(crate) fn new(layout: &SidLayout) -> Self {
        ItemTable {
            stride: layout.full_len(),
            behavior: layout.behavior as usize,
            tokens: Vec::new(),
            weights: Vec::new(),
            blocks: None,
            live: RoaringBitmap::new(),
        }
    }

    /// A table whose memory grows with the blocks of ids it holds.
    pub(crate) fn paged(layout: &SidLayout) -> Self {
        ItemTable {
            blocks: Some(Vec::new()),
            ..Self::new(layout)
        }
    }

    /// The row of a held item.
    #[inline]
    fn row(&self, item: u32) -> usize {
        match &self.blocks {
            None => item as usize,
            Some(blocks) => match blocks.get((item / PAGE) as usize) {
                Some(&first) if first != NO_BLOCK => (first + item % PAGE) as usize,
                _ => usize::MAX,
            },
        }
    }

    /// The row `item` is stored in, its block made if need be.
    fn row_for(&mut self, item: u32) -> usize {
        let rows = (self.tokens.len() / self.stride) as u32;
        let Some(blocks) = &mut self.blocks else {
            return item as usize;
        };
        let b = (item / PAGE) as usize;
        if blocks.len() <= b {
            blocks.resize(b + 1, NO_BLOCK);
        }
        if blocks[b] == NO_BLOCK {
            blocks[b] = rows;
            let n = (rows + PAGE) as usize;
            self.tokens.resize(n * self.stride, 0);
            self.weights.resize(n * self.behavior, 0.0);
        }
        (blocks[b] + item % PAGE) as usize
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

    /// Stores `full` and the weights (see [`held_weight`]).
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
            self.weights[w + b] = held_weight(weights, full[first + b], b);
        }
        super::add(&mut self.live, item);
    }

    pub(crate) fn reserve(&mut self, ids: u32) {
        let n = ids as usize;
        if self.blocks.is_none() && self.tokens.len() < n * self.stride {
            self.tokens.resize(n * self.stride, 0);
            self.weights.resize(n * self.behavior, 0.0);
        }
    }

    pub(crate) fn clear(&mut self, item: u32) {
        self.live.remove(item);
    }
}
