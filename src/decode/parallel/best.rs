//! [`Best`]: the k best items seen so far, ties broken by item id.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Scored;

/// A heap entry ordered worst-first, so the heap's top is the k-th best.
#[derive(Clone, Copy, Debug)]
struct Worst(Scored);

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Greater = worse: lower score, then higher id.
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.item.cmp(&other.0.item))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Worst {}

/// The best `k` seen so far.
pub(super) struct Best {
    heap: BinaryHeap<Worst>,
    k: usize,
    /// The k-th best score once `k` are held (−∞ before): an item below
    /// it cannot enter, and most items of a scan are.
    floor: f32,
}

impl Best {
    pub(super) fn new(k: usize) -> Self {
        Best {
            heap: BinaryHeap::with_capacity(k + 1),
            k,
            floor: f32::NEG_INFINITY,
        }
    }

    /// Whether an item scoring `score` may enter (one equal to the k-th
    /// best enters on a lower id): one comparison, to skip costlier checks.
    #[inline]
    pub(super) fn admits(&self, score: f32) -> bool {
        score >= self.floor
    }

    #[inline]
    pub(super) fn offer(&mut self, s: Scored) {
        if self.k == 0 || !self.admits(s.score) {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(s));
        } else if self.heap.peek().is_some_and(|w| Worst(s) < *w) {
            self.heap.pop();
            self.heap.push(Worst(s));
        }
        if self.heap.len() == self.k {
            self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score);
        }
    }

    /// The k-th best score, once `k` items are held.
    pub(super) fn kth(&self) -> Option<f32> {
        (self.k > 0 && self.full()).then_some(self.floor)
    }

    /// Whether `k` items are held.
    pub(super) fn full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// Whether no item scoring at most `threshold` can still enter.
    pub(super) fn beats(&self, threshold: f32) -> bool {
        self.k > 0 && self.floor > threshold
    }

    pub(super) fn finish(self) -> Vec<Scored> {
        let mut v: Vec<Worst> = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|w| w.0).collect()
    }
}
