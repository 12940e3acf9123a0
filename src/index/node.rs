//! Trie nodes: the posting list of one prefix and its child table.
//!
//! Children are [`Child`] references; a prefix shared by a single item points
//! straight at the item, which keeps node count near the number of branching
//! prefixes rather than `items * levels`.
//!
//! Nodes with many children also keep a dense slot table and a ready next-token
//! bitmask, so lookup is one array read and a beam's mask is a copy. A node
//! holding a disambiguation counter of K or more stays sparse: those counters
//! have no slot (see [`super::child::has_slot`]).

use smallvec::SmallVec;

use crate::sid::Token;

use super::child::{Child, NO_CHILD, dense_at, goes_dense, has_slot};

/// Mask geometry shared by every node of one index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    /// Bits per mask (K + 1: codebook tokens plus EMPTY).
    pub bits: usize,
    /// u64 words per mask.
    pub words: usize,
    /// Codebook size K: EMPTY maps to bit K.
    pub k: usize,
    /// Children count below which a dense node goes sparse again (twice this).
    pub dense_at: usize,
}

impl Geometry {
    pub(crate) fn new(k: usize) -> Self {
        let bits = k + 1;
        Geometry {
            bits,
            words: bits.div_ceil(64),
            k,
            dense_at: dense_at(bits),
        }
    }

    #[inline]
    pub(crate) fn bit(&self, token: Token) -> usize {
        crate::sid::token_column(self.k, token)
    }
}

#[derive(Clone, Debug, Default)]
struct Dense {
    slots: Box<[u32]>,
    mask: Box<[u64]>,
}

/// The child table of one prefix shared by two or more items (or the root).
///
/// Child lists live inline up to 8 tokens / 4 children (most deep nodes) and
/// the node fills exactly one cache line, so a lookup step usually costs one
/// line and nothing else. (Its posting list lives in a separate array.)
#[derive(Clone, Debug, Default)]
#[repr(align(64))]
pub(crate) struct Node {
    /// Child tokens, ascending (EMPTY last).
    pub tokens: SmallVec<[Token; 8]>,
    children: SmallVec<[u32; 4]>,
    dense: Option<Box<Dense>>,
}

impl Node {
    #[inline]
    pub(crate) fn child(&self, geo: &Geometry, token: Token) -> Option<Child> {
        if let Some(d) = &self.dense {
            // A dense node holds slot tokens only; K is not a second
            // spelling of EMPTY (bit K), nor is any counter past it.
            if !has_slot(geo.bits, token) {
                return None;
            }
            let raw = *d.slots.get(geo.bit(token))?;
            return (raw != NO_CHILD).then(|| Child::unpack(raw));
        }
        let i = self.tokens.binary_search(&token).ok()?;
        Some(Child::unpack(self.children[i]))
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (Token, Child)> + '_ {
        self.tokens
            .iter()
            .zip(&self.children)
            .map(|(&t, &c)| (t, Child::unpack(c)))
    }

    /// Writes this node's next-token mask into `row` (`geo.words` words).
    #[inline]
    pub(crate) fn write_mask(&self, geo: &Geometry, row: &mut [u64]) {
        if let Some(d) = &self.dense {
            row.copy_from_slice(&d.mask);
            return;
        }
        row.fill(0);
        for &t in &self.tokens {
            let b = geo.bit(t);
            row[b / 64] |= 1 << (b % 64);
            if b == geo.k {
                // Every later token (ascending) maps to bit K as well.
                break;
            }
        }
    }

    /// Adds or replaces the child under `token`.
    pub(crate) fn set_child(&mut self, geo: &Geometry, token: Token, child: Child) {
        let raw = child.pack();
        match self.tokens.binary_search(&token) {
            Ok(i) => self.children[i] = raw,
            Err(i) => {
                self.tokens.insert(i, token);
                self.children.insert(i, raw);
            }
        }
        match &mut self.dense {
            Some(_) if !has_slot(geo.bits, token) => self.dense = None,
            Some(d) => {
                let b = geo.bit(token);
                d.slots[b] = raw;
                d.mask[b / 64] |= 1 << (b % 64);
            }
            None if goes_dense(geo.bits, &self.tokens) => self.make_dense(geo),
            None => {}
        }
    }

    /// Removes the child under `token`.
    pub(crate) fn remove_child(&mut self, geo: &Geometry, token: Token) {
        if let Ok(i) = self.tokens.binary_search(&token) {
            self.tokens.remove(i);
            self.children.remove(i);
        }
        if self.tokens.len() < geo.dense_at / 2 {
            self.dense = None;
        } else if let Some(d) = &mut self.dense {
            // Dense nodes hold slot tokens only, so `token` had one.
            let b = geo.bit(token);
            d.slots[b] = NO_CHILD;
            d.mask[b / 64] &= !(1 << (b % 64));
        }
    }

    fn make_dense(&mut self, geo: &Geometry) {
        let mut d = Dense {
            slots: vec![NO_CHILD; geo.bits].into_boxed_slice(),
            mask: vec![0u64; geo.words].into_boxed_slice(),
        };
        for (&t, &raw) in self.tokens.iter().zip(&self.children) {
            let b = geo.bit(t);
            d.slots[b] = raw;
            d.mask[b / 64] |= 1 << (b % 64);
        }
        self.dense = Some(Box::new(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_agree() {
        let geo = Geometry::new(256);
        let mut n = Node::default();
        let tokens: Vec<Token> = (0..40).map(|i| (i * 7 % 256) as Token).collect();
        for (i, &t) in tokens.iter().enumerate() {
            n.set_child(&geo, t, Child::Item(i as u32));
        }
        n.set_child(&geo, crate::sid::EMPTY, Child::Node(3));
        assert!(n.dense.is_some());
        for (i, &t) in tokens.iter().enumerate() {
            assert_eq!(n.child(&geo, t), Some(Child::Item(i as u32)));
        }
        assert_eq!(n.child(&geo, crate::sid::EMPTY), Some(Child::Node(3)));
        let mut dense_row = vec![0; geo.words];
        n.write_mask(&geo, &mut dense_row);
        for &t in &tokens[..35] {
            n.remove_child(&geo, t);
        }
        assert!(n.dense.is_none());
        let mut sparse_row = vec![0; geo.words];
        n.write_mask(&geo, &mut sparse_row);
        assert_eq!(sparse_row.iter().map(|w| w.count_ones()).sum::<u32>(), 6);
        assert_eq!(dense_row.iter().map(|w| w.count_ones()).sum::<u32>(), 41);
        assert_eq!(n.child(&geo, tokens[0]), None);
    }
}
