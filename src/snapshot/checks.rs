//! The checks of a snapshot's bytes beyond its header: section sizes
//! against the meta counts (on open, O(1)) and checksums (`verify`, O(size)).

use super::format::{self, Section};
use super::{Snapshot, corrupt, keyhash};
use crate::error::Result;

impl<D: AsRef<[u8]>> Snapshot<D> {
    /// Checks every section's length against the counts of the meta section.
    pub(super) fn check_sizes(
        &self,
        [items, bound, nodes, children, dense]: [u64; 5],
    ) -> Result<()> {
        let l = &self.layout;
        let (full, bits, words) = (
            l.full_len() as u64,
            l.mask_bits() as u64,
            l.mask_words() as u64,
        );
        let levels = l.levels() as u64;
        let key_bytes = self.range(Section::KeyBytes).len() as u64;
        let expect = |s: Section| -> Option<u64> {
            Some(match s {
                Section::Meta => 64,
                Section::Order | Section::KeyOrder => items.checked_mul(4)?,
                Section::Rank => bound.checked_mul(4)?,
                Section::Sids => bound.checked_mul(full)?.checked_mul(2)?,
                Section::Weights => bound.checked_mul(l.behavior as u64 * 4)?,
                Section::Nodes => nodes.checked_mul(20)?,
                Section::ChildTokens => children.checked_mul(2)?,
                Section::ChildRefs => children.checked_mul(4)?,
                Section::DenseMasks => dense.checked_mul(words * 8)?,
                Section::DenseSlots => dense.checked_mul(bits * 4)?,
                Section::PosOffsets => (levels * bits + 1) * 8,
                Section::PosItems => items.checked_mul(levels * 4)?,
                Section::KeyOffsets => bound.checked_add(1)?.checked_mul(8)?,
                Section::KeyBytes => key_bytes,
                Section::KeyBuckets => ((1u64 << keyhash::bucket_bits(items)) + 1) * 4,
                Section::KeyHashes => items.checked_mul(8)?,
            })
        };
        for &s in format::sections_of(self.version) {
            if expect(s) != Some(self.range(s).len() as u64) {
                return Err(corrupt(format!("{s:?} section has the wrong size")));
            }
        }
        Ok(())
    }

    /// Checks every section's checksum and that the padding is zero (O(size)).
    pub fn verify(&self) -> Result<()> {
        let bytes = self.data.as_ref();
        let mut at = format::table_end(self.ranges.len());
        for (i, (range, &crc)) in self.ranges.iter().zip(&self.crcs).enumerate() {
            let gap = bytes.get(at..range.start).unwrap_or(&[1]);
            if gap.iter().any(|&b| b != 0) {
                return Err(corrupt(format!("padding before section {}", i + 1)));
            }
            let section = bytes.get(range.clone()).unwrap_or(&[]);
            if format::checksum(section) != crc {
                return Err(corrupt(format!(
                    "{:?} section checksum mismatch",
                    format::sections_of(self.version)[i]
                )));
            }
            at = range.end;
        }
        if at != bytes.len() {
            return Err(corrupt("bytes after the last section"));
        }
        Ok(())
    }
}
