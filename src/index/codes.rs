//! [`ByteCodes`]: every item's semantic tokens as one byte each (and a bit
//! more where K + 1 > 256), laid out for a vectorised scan, and [`Coded`],
//! what an index hands a scan.
//!
//! An exact top-k over flat per-position scores must look at every item
//! (`decode::parallel`), and the SID table it would read holds two bytes
//! per token plus the disambiguation token. The codes hold the low byte of
//! each semantic token's column in blocks of [`BLOCK`] items,
//! position-major within a block, so one 64-byte load brings one
//! position's tokens of 64 items. Where some column is 256 or more (K up
//! to 511, as the paper's K = 300), a 64-bit word per block and position
//! holds the ninth bit of each of its 64 columns.
//!
//! Invariants: `ids` ascends; slot `s` (item `ids[s]`) is byte `s % 64` of
//! every position's row in block `s / 64` and, with bit `s % 64` of that
//! position's high word when there are high words, is that item's token
//! column at that level; slots past `ids.len()` hold 0. High words exist
//! only if some column is 256 or more.

use roaring::RoaringBitmap;

use super::{Index, ItemId, SidIndex};
use crate::sid::token_column;

/// Items per block of codes.
pub const BLOCK: usize = 64;

/// Columns a position's score table needs for codes with these high
/// words ([`ByteCodes::high`]): 256 without any, 512 with.
#[inline]
pub fn table_width(high: &[u64]) -> usize {
    if high.is_empty() { 256 } else { 512 }
}

/// The semantic tokens of a set of items, a byte (and a bit) each (see
/// the module docs). Built where every token column is below 512 (K ≤ 511).
#[derive(Debug)]
pub struct ByteCodes {
    levels: usize,
    ids: Vec<ItemId>,
    bytes: Vec<u8>,
    /// Per block, one word per level: the ninth bit of each slot's column
    /// (empty when every column is below 256).
    high: Vec<u64>,
}

impl ByteCodes {
    /// Codes of every item of `index`; `None` when K is above 511. Costs
    /// one pass over the SID table.
    pub fn build(index: &dyn SidIndex) -> Option<ByteCodes> {
        let layout = index.layout();
        let (levels, k) = (layout.levels(), layout.k() as usize);
        if k >= 512 {
            return None;
        }
        let n = index.len() as usize;
        let stride = BLOCK * levels;
        let mut codes = ByteCodes {
            levels,
            ids: Vec::with_capacity(n),
            bytes: Vec::with_capacity(n.div_ceil(BLOCK) * stride),
            high: Vec::with_capacity(n.div_ceil(BLOCK) * levels),
        };
        index.for_each_sid(&mut |item, sid| {
            let slot = codes.ids.len() % BLOCK;
            if slot == 0 {
                codes.bytes.resize(codes.bytes.len() + stride, 0);
                codes.high.resize(codes.high.len() + levels, 0);
            }
            let (block, words) = (codes.bytes.len() - stride, codes.high.len() - levels);
            for (p, &t) in sid[..levels].iter().enumerate() {
                let column = token_column(k, t);
                codes.bytes[block + p * BLOCK + slot] = column as u8;
                codes.high[words + p] |= ((column >> 8) as u64) << slot;
            }
            codes.ids.push(item);
        });
        if codes.high.iter().all(|&w| w == 0) {
            codes.high = Vec::new();
        }
        Some(codes)
    }

    /// Columns a position's score table needs (see [`table_width`]).
    pub fn width(&self) -> usize {
        table_width(&self.high)
    }

    /// Block `b`'s high words, one per level (empty when there are none).
    #[inline]
    pub fn high(&self, b: usize) -> &[u64] {
        match self.high.is_empty() {
            true => &[],
            false => &self.high[b * self.levels..(b + 1) * self.levels],
        }
    }

    /// Items coded.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no item is coded.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Semantic levels per item.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Blocks of [`BLOCK`] slots (the last one padded).
    pub fn blocks(&self) -> usize {
        self.ids.len().div_ceil(BLOCK)
    }

    /// Block `b`: `levels` rows of [`BLOCK`] bytes, position `p`'s at
    /// `p * BLOCK`.
    #[inline]
    pub fn block(&self, b: usize) -> &[u8] {
        let stride = BLOCK * self.levels;
        &self.bytes[b * stride..(b + 1) * stride]
    }

    /// The rows of block `b + ahead` that a scan of `positions` reads next,
    /// if there is such a block.
    #[inline]
    pub fn rows_ahead(&self, b: usize, ahead: usize, positions: usize) -> Option<&[u8]> {
        (b + ahead < self.blocks()).then(|| &self.block(b + ahead)[..positions * BLOCK])
    }

    /// The item in `slot`.
    #[inline]
    pub fn item(&self, slot: usize) -> ItemId {
        self.ids[slot]
    }

    /// Bytes held in memory.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ids.capacity() * std::mem::size_of::<ItemId>()
            + self.high.capacity() * std::mem::size_of::<u64>()
    }
}

/// What an index hands a scan of its items: codes of a set of items, which
/// of those it no longer holds as coded, and the items it holds beyond
/// them (a database's base snapshot, the base items that changes since hid,
/// and the changes).
#[derive(Clone, Copy, Debug)]
pub struct Coded<'a> {
    /// Codes of every item held, or of a base set of them.
    pub codes: &'a ByteCodes,
    /// Coded items that are not held as coded (removed or re-encoded).
    pub hidden: Option<&'a RoaringBitmap>,
    /// Items held that `codes` does not have (or has with an old SID).
    pub rest: Option<&'a Index>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::{EMPTY, SidLayout, Token};

    fn index(layout: SidLayout, sids: &[Vec<Token>]) -> Index {
        let mut ix = Index::new(layout);
        for (i, s) in sids.iter().enumerate() {
            // A behavior position's weight is 0 exactly where it is EMPTY.
            let b = layout.behavior as usize;
            let weights: Vec<f32> = s[layout.levels() - b..layout.levels()]
                .iter()
                .map(|&t| if t == EMPTY { 0.0 } else { 1.0 })
                .collect();
            ix.insert(i as ItemId * 3, s, &weights).unwrap();
        }
        ix
    }

    #[test]
    fn every_slot_holds_its_items_token_columns() {
        let layout = SidLayout::new(3, 256, 0).unwrap();
        let sids: Vec<Vec<Token>> = (0..150u16)
            .map(|i| vec![i % 256, (i * 7) % 256, 255 - i % 200, 0])
            .collect();
        let ix = index(layout, &sids);
        let codes = ByteCodes::build(&ix).unwrap();
        assert_eq!((codes.len(), codes.blocks(), codes.levels()), (150, 3, 3));
        for (slot, sid) in sids.iter().enumerate() {
            assert_eq!(codes.item(slot), slot as ItemId * 3);
            let block = codes.block(slot / BLOCK);
            assert!(codes.high(slot / BLOCK).is_empty());
            for p in 0..3 {
                assert_eq!(block[p * BLOCK + slot % BLOCK] as Token, sid[p]);
            }
        }
        // The padding of the last block is zero.
        assert!(codes.block(2)[150 % BLOCK..BLOCK].iter().all(|&b| b == 0));
    }

    #[test]
    fn columns_past_a_byte_keep_their_ninth_bit_apart() {
        let narrow = SidLayout::new(2, 255, 1).unwrap();
        let ix = index(narrow, &[vec![4, 7, 0], vec![4, EMPTY, 0]]);
        let codes = ByteCodes::build(&ix).unwrap();
        assert_eq!(codes.block(0)[BLOCK + 1], 255, "EMPTY is column K");
        assert_eq!((codes.width(), codes.high(0)), (256, &[][..]));
        // K = 300 (the paper's): token 299 and EMPTY (column 300) are 256 + 43 and 256 + 44.
        let wide = SidLayout::new(2, 300, 1).unwrap();
        let ix = index(wide, &[vec![299, 7, 0], vec![4, EMPTY, 0], vec![5, 255, 0]]);
        let codes = ByteCodes::build(&ix).unwrap();
        assert_eq!(codes.width(), 512);
        assert_eq!(codes.high(0), &[0b001, 0b010]);
        let row = |p: usize| &codes.block(0)[p * BLOCK..p * BLOCK + 3];
        assert_eq!((row(0), row(1)), (&[43, 4, 5][..], &[7, 44, 255][..]));
        assert!(
            ByteCodes::build(&index(SidLayout::new(1, 512, 0).unwrap(), &[vec![1, 0]])).is_none()
        );
    }
}
