//! Immutable index snapshots, queried in place.
//!
//! A snapshot is one file holding everything a serving process reads: items
//! sorted by full SID, the trie over them, per-(position, token) postings,
//! SIDs, routing weights and keys (see `docs/FORMAT.md`). [`Snapshot`] reads
//! it where it lies, over any `D: AsRef<[u8]>`: a memory map for serving, a
//! `Vec<u8>` in tests. Opening parses only the header, so it costs the same
//! for ten items or ten million.
//!
//! Because items are sorted by SID, the items under any prefix are one
//! contiguous run of that list: `items(prefix)` is a trie walk and a slice,
//! with nothing decoded.
//!
//! Invariants: a snapshot answers every query exactly as the [`crate::Index`]
//! it was written from (tested model-based); reading arbitrary bytes never
//! panics: [`Snapshot::new`] rejects a bad header, [`Snapshot::verify`]
//! checks every section's checksum, and queries on unverified bytes bounds-
//! check every read (a corrupt section gives wrong answers, not a crash).

mod candidates;
mod checks;
mod format;
mod keyhash;
mod shape;
#[cfg(test)]
mod tests;
mod writer;

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::index::{
    ByteCodes, Candidate, CandidateQuery, Child, Coded, ItemId, NO_CHILD, Postings, ReadView,
    SidIndex, has_slot,
};
use crate::sid::{SidLayout, Token};

pub use format::{MAGIC, VERSION, reseal};
#[cfg(feature = "store")]
pub(crate) use keyhash::fmix64;
pub(crate) use shape::of_sorted as shape_of_sorted;
#[cfg(feature = "store")]
pub(crate) use writer::Sections;
pub(crate) use writer::{Source, assemble, write_source};
pub use writer::{to_bytes, write, write_bytes};

use format::Section;

/// Counts read from the meta section.
#[derive(Clone, Copy, Debug)]
struct Counts {
    items: u64,
    bound: usize,
}

/// A read-only index snapshot over bytes `D` (an [`memmap2::Mmap`] or a `Vec<u8>`).
pub struct Snapshot<D> {
    data: D,
    layout: SidLayout,
    counts: Counts,
    /// The file's format version (which sections it holds).
    version: u16,
    ranges: Vec<Range<usize>>,
    crcs: Vec<u32>,
    /// Built on first use by a scan (see [`SidIndex::byte_codes`]).
    codes: OnceLock<Option<ByteCodes>>,
}

impl<D> std::fmt::Debug for Snapshot<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("layout", &self.layout)
            .field("items", &self.counts.items)
            .finish()
    }
}

fn corrupt(detail: impl Into<String>) -> Error {
    Error::corruption("snapshot", detail)
}

/// Where a prefix ends in the trie.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Node(u32),
    Item(ItemId),
}

impl Snapshot<memmap2::Mmap> {
    /// Maps the snapshot file at `path` and checks its header (O(1)).
    ///
    /// The file must not be modified while mapped; [`write`] never does that
    /// (it replaces a snapshot by renaming a new file over it, and a mapping
    /// keeps reading the old one).
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} is a folder, not a snapshot file",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: snapshot files are immutable once renamed into place (see above).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Snapshot::new(map)
    }
}

impl<D: AsRef<[u8]>> Snapshot<D> {
    /// Reads a snapshot from `data`, checking the header, the section table
    /// and that section sizes agree with the counts (O(1)). `data` must start
    /// at an 8-byte aligned address (a memory map or a `Vec<u8>` does).
    pub fn new(data: D) -> Result<Self> {
        if cfg!(target_endian = "big") {
            return Err(Error::InvalidArgument(
                "snapshots are little-endian; this platform is big-endian".into(),
            ));
        }
        let bytes = data.as_ref();
        let table = format::parse(bytes)?;
        if bytes.as_ptr().align_offset(8) != 0 {
            return Err(Error::InvalidArgument(
                "snapshot bytes must start at an 8-byte aligned address".into(),
            ));
        }
        let meta: &[u64] = bytemuck::try_cast_slice(&bytes[table.ranges[0].clone()])
            .map_err(|_| corrupt("meta section"))?;
        let &[levels, k, behavior, items, bound, nodes, children, dense] = meta else {
            return Err(corrupt("meta section has the wrong size"));
        };
        let small = |v: u64| u32::try_from(v).map_err(|_| corrupt("meta section"));
        let layout = SidLayout::new(small(levels)?, small(k)?, small(behavior)?)
            .map_err(|e| corrupt(format!("layout: {e}")))?;
        let snapshot = Snapshot {
            data,
            layout,
            counts: Counts {
                items,
                bound: small(bound)? as usize,
            },
            version: table.version,
            ranges: table.ranges,
            crcs: table.crcs,
            codes: OnceLock::new(),
        };
        snapshot.check_sizes([items, bound, nodes, children, dense])?;
        if nodes == 0 || items > bound {
            return Err(corrupt("meta section counts"));
        }
        Ok(snapshot)
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// Where section `s` lies (empty where the file's version has none).
    fn range(&self, s: Section) -> Range<usize> {
        self.ranges.get(s as usize).cloned().unwrap_or(0..0)
    }

    fn bytes(&self, s: Section) -> &[u8] {
        self.data.as_ref().get(self.range(s)).unwrap_or(&[])
    }

    fn u32s(&self, s: Section) -> &[u32] {
        bytemuck::try_cast_slice(self.bytes(s)).unwrap_or(&[])
    }

    fn u64s(&self, s: Section) -> &[u64] {
        bytemuck::try_cast_slice(self.bytes(s)).unwrap_or(&[])
    }

    fn u16s(&self, s: Section) -> &[u16] {
        bytemuck::try_cast_slice(self.bytes(s)).unwrap_or(&[])
    }

    /// Items sorted by full SID.
    pub(crate) fn order(&self) -> &[u32] {
        self.u32s(Section::Order)
    }

    /// first, end, first child, child count, dense slot of node `n`.
    fn node(&self, n: u32) -> Option<[u32; 5]> {
        let nodes: &[[u32; 5]] = bytemuck::try_cast_slice(self.bytes(Section::Nodes)).ok()?;
        nodes.get(n as usize).copied()
    }

    /// The range of [`Snapshot::order`] under node `n`.
    fn span(&self, n: u32) -> Option<Range<usize>> {
        let [lo, hi, ..] = self.node(n)?;
        let r = lo as usize..hi as usize;
        (r.start <= r.end && r.end <= self.order().len()).then_some(r)
    }

    fn children(&self, n: u32) -> Option<(&[Token], &[u32])> {
        let [_, _, first, count, _] = self.node(n)?;
        let r = first as usize..(first as usize).checked_add(count as usize)?;
        Some((
            self.u16s(Section::ChildTokens).get(r.clone())?,
            self.u32s(Section::ChildRefs).get(r)?,
        ))
    }

    fn child(&self, n: u32, token: Token) -> Option<u32> {
        let [.., dense] = self.node(n)?;
        if dense != NO_CHILD {
            let (bits, bit) = (self.layout.mask_bits(), self.layout.mask_bit(token));
            // Dense nodes hold slot tokens only (see `has_slot`).
            if bit >= bits || !has_slot(bits, token) {
                return None;
            }
            let slot = *self
                .u32s(Section::DenseSlots)
                .get((dense as usize).checked_mul(bits)? + bit)?;
            return (slot != NO_CHILD).then_some(slot);
        }
        let (tokens, refs) = self.children(n)?;
        refs.get(tokens.binary_search(&token).ok()?).copied()
    }

    fn sid_tokens(&self, item: ItemId) -> Option<&[Token]> {
        let full = self.layout.full_len();
        let s = (item as usize).checked_mul(full)?;
        self.u16s(Section::Sids).get(s..s + full)
    }

    fn locate(&self, prefix: &[Token]) -> Option<Loc> {
        if prefix.len() > self.layout.full_len() {
            return None;
        }
        let mut node = 0;
        for (depth, &token) in prefix.iter().enumerate() {
            match Child::unpack(self.child(node, token)?) {
                Child::Item(item) => {
                    let sid = self.sid_tokens(item)?;
                    return (sid.get(depth + 1..prefix.len())? == &prefix[depth + 1..])
                        .then_some(Loc::Item(item));
                }
                Child::Node(n) => node = n,
            }
        }
        Some(Loc::Node(node))
    }

    /// The items under each prefix of `sid` (lengths 0 ..= `sid.len()`):
    /// `count(&sid[..len])` for every `len` from one walk down the trie,
    /// where asking each length anew walks it once per length.
    #[cfg(any(feature = "store", test))]
    pub(crate) fn counts_along(&self, sid: &[Token]) -> smallvec::SmallVec<[u64; 12]> {
        let mut counts = smallvec::SmallVec::from_elem(0u64, sid.len() + 1);
        let span = |n: u32| self.span(n).map_or(0, |r| r.len() as u64);
        counts[0] = span(0);
        let mut node = 0;
        for (depth, &token) in sid.iter().enumerate() {
            match self.child(node, token).map(Child::unpack) {
                Some(Child::Node(n)) => {
                    counts[depth + 1] = span(n);
                    node = n;
                }
                Some(Child::Item(item)) => {
                    // One item from here down, while its SID agrees.
                    let Some(own) = self.sid_tokens(item) else {
                        break;
                    };
                    for len in depth + 1..=sid.len() {
                        if own.get(depth + 1..len) != Some(&sid[depth + 1..len]) {
                            break;
                        }
                        counts[len] = 1;
                    }
                    break;
                }
                None => break,
            }
        }
        counts
    }

    /// Id of an external key: through the key hash table, or in a file
    /// of format 1 or 2 by binary search over the keys (O(log n)).
    fn find_key(&self, key: &str) -> Option<ItemId> {
        let key = key.as_bytes();
        if self.version >= 3 {
            let (buckets, hashes) = (
                self.u32s(Section::KeyBuckets),
                self.u64s(Section::KeyHashes),
            );
            return keyhash::candidates(buckets, hashes, self.counts.items, key)
                .find(|&id| self.key_bytes(id) == key);
        }
        let by_key = self.u32s(Section::KeyOrder);
        let i = by_key
            .binary_search_by(|&id| self.key_bytes(id).cmp(key))
            .ok()?;
        Some(by_key[i])
    }

    fn key_bytes(&self, id: ItemId) -> &[u8] {
        let offsets = self.u64s(Section::KeyOffsets);
        let (Some(&a), Some(&b)) = (offsets.get(id as usize), offsets.get(id as usize + 1)) else {
            return &[];
        };
        let (a, b) = (a as usize, b as usize);
        self.bytes(Section::KeyBytes)
            .get(a..b.max(a))
            .unwrap_or(&[])
    }

    /// External key of an item.
    fn key_of(&self, id: ItemId) -> Option<&str> {
        if !self.contains(id) {
            return None;
        }
        std::str::from_utf8(self.key_bytes(id)).ok()
    }

    /// The ready next-token mask of node `n`, if it is dense.
    fn dense_mask(&self, n: u32) -> Option<&[u64]> {
        let [.., dense] = self.node(n)?;
        let words = self.layout.mask_words();
        let start = (dense != NO_CHILD).then_some(dense as usize * words)?;
        self.u64s(Section::DenseMasks).get(start..start + words)
    }

    /// Items whose token at `position` is `token`, ascending.
    pub fn position_items(&self, position: usize, token: Token) -> &[u32] {
        let (bits, bit) = (self.layout.mask_bits(), self.layout.mask_bit(token));
        if position >= self.layout.levels() || bit >= bits || token as u32 == self.layout.k() {
            return &[];
        }
        let i = position * bits + bit;
        let offsets = self.u64s(Section::PosOffsets);
        let (Some(&a), Some(&b)) = (offsets.get(i), offsets.get(i + 1)) else {
            return &[];
        };
        self.u32s(Section::PosItems)
            .get(a as usize..(b as usize).max(a as usize))
            .unwrap_or(&[])
    }
}

impl<D: AsRef<[u8]>> ReadView for Snapshot<D> {
    fn id(&self, key: &str) -> Result<ItemId> {
        self.find_key(key)
            .ok_or_else(|| Error::UnknownKey(key.to_string()))
    }

    fn key(&self, id: ItemId) -> Option<&str> {
        self.key_of(id)
    }
}

impl<D: AsRef<[u8]>> SidIndex for Snapshot<D> {
    fn layout(&self) -> &SidLayout {
        &self.layout
    }

    fn len(&self) -> u64 {
        self.counts.items
    }

    fn contains(&self, item: ItemId) -> bool {
        (item as usize) < self.counts.bound
            && self
                .u32s(Section::Rank)
                .get(item as usize)
                .is_some_and(|&r| r != u32::MAX)
    }

    fn sid(&self, item: ItemId) -> Option<(&[Token], &[f32])> {
        if !self.contains(item) {
            return None;
        }
        let b = self.layout.behavior as usize;
        let weights: &[f32] = bytemuck::try_cast_slice(self.bytes(Section::Weights)).ok()?;
        let s = item as usize * b;
        Some((self.sid_tokens(item)?, weights.get(s..s + b)?))
    }

    fn for_each_sid(&self, f: &mut dyn FnMut(ItemId, &[Token])) {
        // By id, so the SID table is read front to back (in SID order each
        // row is a random read: exact top-100 of 10M items took 1.05 s that
        // way, 0.125 s this way, in bench_scale).
        let full = self.layout.full_len();
        let rows = self.u16s(Section::Sids).chunks_exact(full);
        for ((item, &rank), sid) in (0..).zip(self.u32s(Section::Rank)).zip(rows) {
            if rank != u32::MAX {
                f(item, sid);
            }
        }
    }

    fn items(&self, prefix: &[Token]) -> Option<Postings<'_>> {
        Some(match self.locate(prefix)? {
            Loc::Node(n) => Postings::Slice(&self.order()[self.span(n)?]),
            Loc::Item(i) => Postings::One(i),
        })
    }

    fn next_tokens(&self, prefix: &[Token]) -> Option<Cow<'_, [Token]>> {
        Some(Cow::Borrowed(match self.locate(prefix)? {
            Loc::Node(n) => self.children(n)?.0,
            Loc::Item(i) => {
                let sid = self.sid_tokens(i)?;
                &sid[prefix.len().min(sid.len())..(prefix.len() + 1).min(sid.len())]
            }
        }))
    }

    fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        candidates::rank(self, q)
    }

    fn position_postings(&self, position: usize, token: Token) -> Postings<'_> {
        Postings::Slice(self.position_items(position, token))
    }

    fn byte_codes(&self) -> Option<Coded<'_>> {
        let codes = self.codes.get_or_init(|| ByteCodes::build(self)).as_ref()?;
        Some(Coded {
            codes,
            hidden: None,
            rest: None,
        })
    }

    fn prefix_counts(&self) -> Vec<u64> {
        shape::prefix_counts(self)
    }

    fn node_count(&self) -> usize {
        self.bytes(Section::Nodes).len() / 20
    }

    fn write_mask(&self, prefix: &[Token], row: &mut [u64]) {
        row.fill(0);
        let tokens: &[Token] = match self.locate(prefix) {
            Some(Loc::Node(n)) => {
                if let Some(mask) = self.dense_mask(n).filter(|m| m.len() == row.len()) {
                    row.copy_from_slice(mask);
                    // Bits past K + 1 are padding; a damaged file may set them.
                    let bits = self.layout.mask_bits();
                    if let (Some(last), true) = (row.last_mut(), !bits.is_multiple_of(64)) {
                        *last &= (1u64 << (bits % 64)) - 1;
                    }
                    return;
                }
                self.children(n).map_or(&[], |(t, _)| t)
            }
            Some(Loc::Item(i)) => self
                .sid_tokens(i)
                .and_then(|s| s.get(prefix.len()..prefix.len() + 1))
                .unwrap_or(&[]),
            None => &[],
        };
        for &t in tokens {
            let b = self.layout.mask_bit(t);
            if let Some(w) = row.get_mut(b / 64) {
                *w |= 1 << (b % 64);
            }
        }
    }
}
