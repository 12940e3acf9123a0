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

/// An [`ItemRecord`] borrowed for writing: it encodes to exactly the bytes
/// of the owned record with the same fields.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RecordRef<'a> {
    /// The user's key for the item.
    pub key: &'a str,
    /// Full SID: semantic tokens then the disambiguation token.
    pub tokens: &'a [Token],
    /// Routing weights of the behavior positions.
    pub weights: &'a [f32],
}

impl<'a> From<&'a ItemRecord> for RecordRef<'a> {
    fn from(r: &'a ItemRecord) -> Self {
        RecordRef {
            key: &r.key,
            tokens: &r.tokens,
            weights: &r.weights,
        }
    }
}

/// Frames `(slot, record)` pairs (strictly increasing slots) as a [`Chunk`]
/// that decodes to the owned records.
pub fn encode_chunk(entries: &[(u8, RecordRef<'_>)]) -> Vec<u8> {
    /// Serialises as `Chunk` does: a struct of one sequence.
    #[derive(Serialize)]
    struct ChunkRef<'a, 'b> {
        entries: &'b [(u8, RecordRef<'a>)],
    }
    super::encode(Kind::Chunk, &ChunkRef { entries })
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
    fn a_borrowed_chunk_encodes_as_the_owned_one() {
        let r = |k: &str, w: Vec<f32>| ItemRecord {
            key: k.into(),
            tokens: vec![7, u16::MAX, 300],
            weights: w,
        };
        let mut c = Chunk::default();
        c.put(0, r("", vec![]));
        c.put(200, r("ключ", vec![0.0, 0.25]));
        let borrowed: Vec<_> = c.entries.iter().map(|(s, r)| (*s, r.into())).collect();
        assert_eq!(encode_chunk(&borrowed), c.encode());
        assert_eq!(Chunk::decode(&encode_chunk(&borrowed)).unwrap(), c);
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
