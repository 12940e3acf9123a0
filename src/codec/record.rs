//! Item records and the chunks that hold them on disk.
//!
//! Items are stored 256 to a chunk, keyed by `id >> 8`: one store value per
//! chunk keeps per-item overhead at a few bytes and makes a full scan
//! (index rebuild on open) a few thousand sequential reads.

use serde::{Deserialize, Serialize};

use super::frame::Kind;
use crate::error::{Error, Result};
use crate::sid::Token;

/// Items per chunk: the low 8 bits of an item id are its slot.
pub const CHUNK_SLOTS: u32 = 256;

/// One item as stored: external key, full SID, routing weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// The user's key for the item.
    pub key: String,
    /// Full SID: semantic tokens then the disambiguation token.
    pub tokens: Vec<Token>,
    /// Routing weights of the behavior positions (empty when none were given).
    pub weights: Vec<f32>,
}

/// Up to [`CHUNK_SLOTS`] records, ordered by slot, each slot at most once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// `(slot, record)` pairs in strictly increasing slot order.
    pub entries: Vec<(u8, ItemRecord)>,
}

impl Chunk {
    /// Chunk number of an item id.
    pub fn number(id: u32) -> u32 {
        id / CHUNK_SLOTS
    }

    /// Item id of `slot` in chunk `number`.
    pub fn item_id(number: u32, slot: u8) -> u32 {
        number * CHUNK_SLOTS + slot as u32
    }

    /// Inserts or replaces the record of `slot`.
    pub fn put(&mut self, slot: u8, record: ItemRecord) {
        match self.entries.binary_search_by_key(&slot, |(s, _)| *s) {
            Ok(i) => self.entries[i].1 = record,
            Err(i) => self.entries.insert(i, (slot, record)),
        }
    }

    /// Removes the record of `slot`, if any.
    pub fn remove(&mut self, slot: u8) -> Option<ItemRecord> {
        let i = self.entries.binary_search_by_key(&slot, |(s, _)| *s).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Record of `slot`, if any.
    pub fn get(&self, slot: u8) -> Option<&ItemRecord> {
        let i = self.entries.binary_search_by_key(&slot, |(s, _)| *s).ok()?;
        Some(&self.entries[i].1)
    }

    /// Frames the chunk.
    pub fn encode(&self) -> Vec<u8> {
        super::encode(Kind::Chunk, self)
    }

    /// Decodes a framed chunk and checks slot order.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let chunk: Chunk = super::decode(Kind::Chunk, bytes)?;
        if chunk.entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::corruption("item chunk", "slots out of order"));
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_remove() {
        let mut c = Chunk::default();
        let r = |k: &str| ItemRecord {
            key: k.into(),
            tokens: vec![1, 2, 0],
            weights: vec![],
        };
        c.put(9, r("b"));
        c.put(3, r("a"));
        c.put(9, r("c"));
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.get(9).unwrap().key, "c");
        assert_eq!(Chunk::decode(&c.encode()).unwrap(), c);
        assert_eq!(c.remove(3).unwrap().key, "a");
        assert!(c.get(3).is_none());
    }

    #[test]
    fn unordered_slots_are_corrupt() {
        let r = ItemRecord {
            key: "a".into(),
            tokens: vec![1],
            weights: vec![],
        };
        let c = Chunk {
            entries: vec![(5, r.clone()), (2, r)],
        };
        assert!(Chunk::decode(&c.encode()).is_err());
    }
}
