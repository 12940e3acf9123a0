//! Per-item SIDs held by the index, in flat arrays indexed by item id.

use roaring::RoaringBitmap;

use crate::sid::{EMPTY, SidLayout, Token};

/// Full SIDs and effective routing weights of every live item.
#[derive(Clone, Debug)]
pub(crate) struct ItemTable {
    stride: usize,
    behavior: usize,
    tokens: Vec<Token>,
    weights: Vec<f32>,
    pub live: RoaringBitmap,
}

impl ItemTable {
    pub(crate) fn new(layout: &SidLayout) -> Self {
        ItemTable {
            stride: layout.full_len(),
            behavior: layout.behavior as usize,
            tokens: Vec::new(),
            weights: Vec::new(),
            live: RoaringBitmap::new(),
        }
    }

    #[inline]
    pub(crate) fn sid(&self, item: u32) -> &[Token] {
        let s = item as usize * self.stride;
        &self.tokens[s..s + self.stride]
    }

    pub(crate) fn weights(&self, item: u32) -> &[f32] {
        let s = item as usize * self.behavior;
        &self.weights[s..s + self.behavior]
    }

    /// Stores `full` and the weights; absent weights become 1 (0 where masked).
    pub(crate) fn set(&mut self, item: u32, full: &[Token], weights: &[f32]) {
        let n = item as usize + 1;
        if self.tokens.len() < n * self.stride {
            let grow = (n * self.stride).max(self.tokens.len() * 3 / 2);
            self.tokens.resize(grow, 0);
            self.weights.resize(grow / self.stride * self.behavior, 0.0);
        }
        let s = item as usize * self.stride;
        self.tokens[s..s + self.stride].copy_from_slice(full);
        let first = self.stride - 1 - self.behavior;
        let w = item as usize * self.behavior;
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
        if self.tokens.len() < n * self.stride {
            self.tokens.resize(n * self.stride, 0);
            self.weights.resize(n * self.behavior, 0.0);
        }
    }

    pub(crate) fn clear(&mut self, item: u32) {
        self.live.remove(item);
    }
}
