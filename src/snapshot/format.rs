//! The snapshot file layout: header, section table, sections.
//!
//! ```text
//! 0   magic "ADSIDSNP"            8 bytes
//! 8   format version             u16
//! 10  section count              u16
//! 12  reserved (zero)            u32
//! 16  file length                u64
//! 24  section table: per section id u32, crc32 u32, offset u64, length u64
//! ..  crc32 of bytes 0 .. here   u32, then 4 zero bytes
//! ..  sections, each at an offset that is a multiple of 8, zero padding between
//! ```
//!
//! Everything is little-endian. Parsing the header is O(1): it checks the
//! magic, version, length and the header checksum, and that every section
//! lies inside the file in order; section checksums are checked by
//! [`super::Snapshot::verify`].

use std::ops::Range;

use crate::error::{Error, Result};

/// First bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"ADSIDSNP";
/// Format version this build writes. Version 2 lets a disambiguation
/// counter reach K and beyond (such a node has no dense table); version 1
/// files, whose counters all stay below K, read unchanged. Version 3 adds
/// the key hash table (`KeyBuckets`, `KeyHashes`); without it, as in
/// versions 1 and 2, a key is found by binary search over `KeyOrder`.
pub const VERSION: u16 = 3;

/// Oldest format version this build reads.
pub const OLDEST_READABLE: u16 = 1;

pub(crate) const HEADER: usize = 24;
pub(crate) const ENTRY: usize = 24;

/// The sections, in file order; a section's id is its position + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// u64 × 8: levels, K, behavior, items, id bound, nodes, children, dense nodes.
    Meta,
    /// u32 per item: item ids sorted by full SID.
    Order,
    /// u32 per id below the bound: position in `Order`, `u32::MAX` if absent.
    Rank,
    /// u16 × full SID length per id.
    Sids,
    /// f32 × behavior positions per id.
    Weights,
    /// u32 × 5 per trie node: first, end (a range of `Order`), first child, child count, dense slot.
    Nodes,
    /// u16 per child: its token (ascending within a node).
    ChildTokens,
    /// u32 per child: a node id, or an item id with the top bit set.
    ChildRefs,
    /// u64 × mask words per dense node: its next-token mask.
    DenseMasks,
    /// u32 × mask bits per dense node: child reference per token, `u32::MAX` if none.
    DenseSlots,
    /// u64 × (levels × mask bits + 1): offsets into `PosItems`.
    PosOffsets,
    /// u32: ascending item ids per (position, token).
    PosItems,
    /// u64 × (id bound + 1): offsets into `KeyBytes`.
    KeyOffsets,
    /// UTF-8 keys, back to back.
    KeyBytes,
    /// u32 per item: item ids sorted by key bytes.
    KeyOrder,
    /// u32 × (2^B + 1): where each bucket starts in `KeyHashes` (version 3).
    KeyBuckets,
    /// u64 per item: key hash << 32 | id, ascending (version 3).
    KeyHashes,
}

/// Every section this build writes, in file order.
pub(crate) const SECTIONS: [Section; 17] = [
    Section::Meta,
    Section::Order,
    Section::Rank,
    Section::Sids,
    Section::Weights,
    Section::Nodes,
    Section::ChildTokens,
    Section::ChildRefs,
    Section::DenseMasks,
    Section::DenseSlots,
    Section::PosOffsets,
    Section::PosItems,
    Section::KeyOffsets,
    Section::KeyBytes,
    Section::KeyOrder,
    Section::KeyBuckets,
    Section::KeyHashes,
];

/// The sections a file of format `version` holds, in file order.
pub(crate) fn sections_of(version: u16) -> &'static [Section] {
    match version {
        ..=2 => &SECTIONS[..15],
        _ => &SECTIONS,
    }
}

/// Bytes before the first section of a file of `count` sections.
pub(crate) fn table_end(count: usize) -> usize {
    HEADER + count * ENTRY + 8
}

pub(crate) fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Where each section lies, and its checksum.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub version: u16,
    pub ranges: Vec<Range<usize>>,
    pub crcs: Vec<u32>,
}

fn corrupt(detail: impl Into<String>) -> Error {
    Error::corruption("snapshot", detail)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Checks the header and reads the section table (O(1) in the items held).
pub(crate) fn parse(b: &[u8]) -> Result<Table> {
    if b.len() < HEADER {
        return Err(corrupt(format!(
            "truncated: {} bytes, the header alone needs {HEADER}",
            b.len()
        )));
    }
    if &b[..8] != MAGIC {
        return Err(corrupt("not an adasid snapshot (bad magic)"));
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if !(OLDEST_READABLE..=VERSION).contains(&version) {
        return Err(Error::VersionMismatch {
            what: "snapshot".into(),
            found: version.into(),
            supported: VERSION.into(),
        });
    }
    let stated = u64_at(b, 16);
    if stated != b.len() as u64 {
        return Err(corrupt(format!(
            "the header says {stated} bytes, the file has {} (truncated or appended to)",
            b.len()
        )));
    }
    let count = u16::from_le_bytes([b[10], b[11]]) as usize;
    let end = table_end(count);
    if count != sections_of(version).len() || b.len() < end {
        return Err(corrupt(format!(
            "section table of {count} sections in {} bytes",
            b.len()
        )));
    }
    if crc32fast::hash(&b[..end - 8]) != u32_at(b, end - 8) || u32_at(b, end - 4) != 0 {
        return Err(corrupt("header checksum mismatch"));
    }
    let mut table = Table {
        version,
        ranges: Vec::with_capacity(count),
        crcs: Vec::with_capacity(count),
    };
    let mut at = end;
    for i in 0..count {
        let e = HEADER + i * ENTRY;
        let (id, crc) = (u32_at(b, e), u32_at(b, e + 4));
        let (offset, len) = (u64_at(b, e + 8), u64_at(b, e + 16));
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| Some(o..o.checked_add(l)?))
            .filter(|r| r.start >= at && r.start % 8 == 0 && r.end <= b.len());
        let Some(range) = range.filter(|_| id as usize == i + 1) else {
            return Err(corrupt(format!("section {} lies outside the file", i + 1)));
        };
        at = range.end;
        table.ranges.push(range);
        table.crcs.push(crc);
    }
    Ok(table)
}

/// Writes `sections` (in [`SECTIONS`] order) as one snapshot image.
pub(crate) fn assemble(sections: &[Vec<u8>], out: &mut impl std::io::Write) -> std::io::Result<()> {
    assert_eq!(sections.len(), SECTIONS.len(), "one payload per section");
    let end = table_end(SECTIONS.len());
    let mut offsets = Vec::with_capacity(sections.len());
    let mut at = end;
    for s in sections {
        at = align8(at);
        offsets.push(at);
        at += s.len();
    }
    let mut head = vec![0u8; end];
    head[..8].copy_from_slice(MAGIC);
    head[8..10].copy_from_slice(&VERSION.to_le_bytes());
    head[10..12].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    head[16..24].copy_from_slice(&(at as u64).to_le_bytes());
    for (i, (s, &offset)) in sections.iter().zip(&offsets).enumerate() {
        let e = HEADER + i * ENTRY;
        head[e..e + 4].copy_from_slice(&(i as u32 + 1).to_le_bytes());
        head[e + 4..e + 8].copy_from_slice(&checksum(s).to_le_bytes());
        head[e + 8..e + 16].copy_from_slice(&(offset as u64).to_le_bytes());
        head[e + 16..e + 24].copy_from_slice(&(s.len() as u64).to_le_bytes());
    }
    let crc = crc32fast::hash(&head[..end - 8]);
    head[end - 8..end - 4].copy_from_slice(&crc.to_le_bytes());
    out.write_all(&head)?;
    let mut written = end;
    for (s, &offset) in sections.iter().zip(&offsets) {
        out.write_all(&[0u8; 8][..offset - written])?;
        out.write_all(s)?;
        written = offset + s.len();
    }
    Ok(())
}

/// Recomputes every section checksum and the header checksum of a snapshot
/// image edited in place (so a fuzzer can reach the sections' contents).
/// The section table itself must still be intact.
pub fn reseal(b: &mut [u8]) -> Result<()> {
    let version = b.get(8..10).map_or(0, |v| u16::from_le_bytes([v[0], v[1]]));
    let count = sections_of(version).len();
    let end = table_end(count);
    if b.len() < end {
        return Err(corrupt("too short to reseal"));
    }
    for i in 0..count {
        let e = HEADER + i * ENTRY;
        let (offset, len) = (u64_at(b, e + 8) as usize, u64_at(b, e + 16) as usize);
        let section = offset
            .checked_add(len)
            .and_then(|stop| b.get(offset..stop))
            .ok_or_else(|| corrupt("section outside the file"))?;
        let crc = checksum(section);
        b[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&b[..end - 8]);
    b[end - 8..end - 4].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A section's CRC-32: pieces of 16 MiB on the rayon pool, combined in
/// order (a large database's open verifies its whole base file, and every
/// publication writes one).
pub(super) fn checksum(bytes: &[u8]) -> u32 {
    use rayon::prelude::*;
    const PIECE: usize = 16 << 20;
    if bytes.len() <= PIECE {
        return crc32fast::hash(bytes);
    }
    let pieces: Vec<crc32fast::Hasher> = bytes
        .par_chunks(PIECE)
        .map(|piece| {
            let mut h = crc32fast::Hasher::new();
            h.update(piece);
            h
        })
        .collect();
    let mut all = crc32fast::Hasher::new();
    for piece in &pieces {
        all.combine(piece);
    }
    all.finalize()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_checksum_in_pieces_is_the_checksum() {
        let bytes: Vec<u8> = (0..(40u32 << 20) + 12345)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in [0, 1, 16 << 20, (16 << 20) + 1, bytes.len()] {
            assert_eq!(
                super::checksum(&bytes[..len]),
                crc32fast::hash(&bytes[..len]),
                "{len} bytes"
            );
        }
    }
}
