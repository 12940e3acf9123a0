//! Writes a snapshot of held items: an [`Index`] and its keys, or any
//! other [`Source`] (a database's state implements it in `crate::view`).

use std::io::Write;

use rayon::prelude::*;
use std::path::Path;

use super::format::{self, Section};
use crate::error::{Error, Result};

use crate::index::{Child, Index, ItemId, NO_CHILD, goes_dense};
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token};

/// What a snapshot is written from: held items with their SIDs and keys.
pub(crate) trait Source: Sync {
    fn layout(&self) -> SidLayout;
    /// Every held item, sorted by full SID.
    fn by_sid(&self) -> Vec<ItemId>;
    /// A held item's full SID and routing weights.
    fn sid(&self, item: ItemId) -> (&[Token], &[f32]);
    fn key(&self, item: ItemId) -> Option<&str>;
}

impl Source for (&Index, &KeyMap) {
    fn layout(&self) -> SidLayout {
        *self.0.layout()
    }

    fn by_sid(&self) -> Vec<ItemId> {
        self.0.items_by_sid()
    }

    fn sid(&self, item: ItemId) -> (&[Token], &[f32]) {
        Index::sid(self.0, item).expect("a held item")
    }

    fn key(&self, item: ItemId) -> Option<&str> {
        self.1.key(item)
    }
}

fn le_u32(values: &[u32]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

fn le_u64(values: &[u64]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

/// Trie nodes built from the items sorted by SID, breadth first.
#[derive(Default)]
struct Trie {
    /// first, end, first child, child count, dense slot.
    nodes: Vec<[u32; 5]>,
    tokens: Vec<Token>,
    refs: Vec<u32>,
    masks: Vec<u64>,
    slots: Vec<u32>,
}

impl Trie {
    /// A node for every prefix two or more items share (and the root); a
    /// prefix reached by one item is a reference to that item. `sids` is
    /// the SID table (a full row per id), `order` the items in SID order.
    fn build(layout: SidLayout, sids: &[Token], order: &[ItemId]) -> Trie {
        let (bits, words) = (layout.mask_bits(), layout.mask_words());
        let stride = layout.full_len();
        // The rows in SID order, side by side: the walk below reads them
        // column by column, over and over.
        let mut sorted = Vec::with_capacity(order.len() * stride);
        for &i in order {
            sorted.extend_from_slice(&sids[i as usize * stride..][..stride]);
        }
        let token_at = |row: usize, depth: usize| sorted[row * stride + depth];
        let mut t = Trie::default();
        t.nodes.push([0, order.len() as u32, 0, 0, NO_CHILD]);
        let mut depths = vec![0usize];
        let mut next = 0;
        while next < t.nodes.len() {
            let [lo, hi, ..] = t.nodes[next];
            let depth = depths[next];
            let first = t.tokens.len();
            let mut start = lo as usize;
            while start < hi as usize {
                let token = token_at(start, depth);
                let mut end = start + 1;
                while end < hi as usize && token_at(end, depth) == token {
                    end += 1;
                }
                t.tokens.push(token);
                if end - start == 1 {
                    t.refs.push(Child::Item(order[start]).pack());
                } else {
                    t.refs.push(Child::Node(t.nodes.len() as u32).pack());
                    t.nodes.push([start as u32, end as u32, 0, 0, NO_CHILD]);
                    depths.push(depth + 1);
                }
                start = end;
            }
            let count = t.tokens.len() - first;
            t.nodes[next][2] = first as u32;
            t.nodes[next][3] = count as u32;
            if goes_dense(bits, &t.tokens[first..]) {
                t.nodes[next][4] = (t.masks.len() / words) as u32;
                let mut mask = vec![0u64; words];
                let mut slots = vec![NO_CHILD; bits];
                for (&tok, &r) in t.tokens[first..].iter().zip(&t.refs[first..]) {
                    let b = layout.mask_bit(tok);
                    mask[b / 64] |= 1 << (b % 64);
                    slots[b] = r;
                }
                t.masks.extend(mask);
                t.slots.extend(slots);
            }
            next += 1;
        }
        t
    }
}

/// The per-(position, token) postings: offsets and ascending ids, from
/// the SID table `sids` (a full row per id) and the `live` ids ascending.
fn position_postings(layout: SidLayout, sids: &[Token], live: &[ItemId]) -> (Vec<u64>, Vec<u32>) {
    let bits = layout.mask_bits();
    let mut offsets = Vec::with_capacity(layout.levels() * bits + 1);
    let (levels, full) = (layout.levels(), layout.full_len());
    let mut items = Vec::with_capacity(live.len() * levels);
    for pos in 0..levels {
        let mut runs: Vec<Vec<ItemId>> = vec![Vec::new(); bits];
        for &i in live {
            runs[layout.mask_bit(sids[i as usize * full + pos])].push(i);
        }
        for run in runs {
            offsets.push(items.len() as u64);
            items.extend(run);
        }
    }
    offsets.push(items.len() as u64);
    (offsets, items)
}

/// The key sections: offsets, bytes, ids sorted by key, the hash table.
struct Keys {
    offsets: Vec<u64>,
    bytes: Vec<u8>,
    order: Vec<u32>,
    buckets: Vec<u32>,
    hashes: Vec<u64>,
}

/// The key sections of the `live` items below `bound`.
fn key_sections(src: &impl Source, live: &[ItemId], bound: usize) -> Result<Keys> {
    let mut offsets = vec![0u64; bound + 1];
    let mut bytes = Vec::new();
    let mut at = 0;
    for id in 0..bound as u32 {
        offsets[id as usize] = bytes.len() as u64;
        if live.get(at) == Some(&id) {
            at += 1;
            let key = src
                .key(id)
                .ok_or_else(|| Error::InvalidArgument(format!("item {id} has no key")))?;
            bytes.extend_from_slice(key.as_bytes());
        }
    }
    offsets[bound] = bytes.len() as u64;
    let key = |i: ItemId| &bytes[offsets[i as usize] as usize..offsets[i as usize + 1] as usize];
    let head = |k: &[u8]| {
        let mut b = [0u8; 8];
        b[..k.len().min(8)].copy_from_slice(&k[..k.len().min(8)]);
        u64::from_be_bytes(b)
    };
    // The key order sorts every key; the hash table sorts hashes. Side by side.
    let (order, (buckets, hashes)) = rayon::join(
        || {
            let keyed = live.iter().map(|&i| (head(key(i)), i)).collect();
            crate::index::sort_by_head(keyed, |a, b| key(a).cmp(key(b)))
        },
        || super::keyhash::build(live, key),
    );
    Ok(Keys {
        offsets,
        bytes,
        order,
        buckets,
        hashes,
    })
}

/// The section payloads of a snapshot of `src`.
fn sections(src: &impl Source) -> Result<Vec<Vec<u8>>> {
    let layout = src.layout();
    let order = src.by_sid();
    let mut live = order.clone();
    live.par_sort_unstable();
    let bound = live.last().map_or(0, |&l| l as usize + 1);
    let sid = |i: ItemId| src.sid(i);
    let mut rank = vec![u32::MAX; bound];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let (full, behavior) = (layout.full_len(), layout.behavior as usize);
    let mut sids = vec![0 as Token; bound * full];
    let mut weights = vec![0f32; bound * behavior];
    for &i in &live {
        let (s, w) = sid(i);
        sids[i as usize * full..][..full].copy_from_slice(s);
        weights[i as usize * behavior..][..behavior].copy_from_slice(w);
    }
    // Three independent parts, side by side (the key order sorts every key),
    // the first two from the SID table just filled rather than the source.
    let (trie, ((pos_offsets, pos_items), keyed)) = rayon::join(
        || Trie::build(layout, &sids, &order),
        || {
            rayon::join(
                || position_postings(layout, &sids, &live),
                || key_sections(src, &live, bound),
            )
        },
    );
    let keys = keyed?;
    let meta = [
        layout.levels() as u64,
        layout.k() as u64,
        behavior as u64,
        live.len() as u64,
        bound as u64,
        trie.nodes.len() as u64,
        trie.tokens.len() as u64,
        (trie.masks.len() / layout.mask_words()) as u64,
    ];
    let out: Vec<(Section, Vec<u8>)> = vec![
        (Section::Meta, le_u64(&meta)),
        (Section::Order, le_u32(&order)),
        (Section::Rank, le_u32(&rank)),
        (Section::Sids, bytemuck::cast_slice(&sids).to_vec()),
        (Section::Weights, bytemuck::cast_slice(&weights).to_vec()),
        (Section::Nodes, bytemuck::cast_slice(&trie.nodes).to_vec()),
        (
            Section::ChildTokens,
            bytemuck::cast_slice(&trie.tokens).to_vec(),
        ),
        (Section::ChildRefs, le_u32(&trie.refs)),
        (Section::DenseMasks, le_u64(&trie.masks)),
        (Section::DenseSlots, le_u32(&trie.slots)),
        (Section::PosOffsets, le_u64(&pos_offsets)),
        (Section::PosItems, le_u32(&pos_items)),
        (Section::KeyOffsets, le_u64(&keys.offsets)),
        (Section::KeyBytes, keys.bytes),
        (Section::KeyOrder, le_u32(&keys.order)),
        (Section::KeyBuckets, le_u32(&keys.buckets)),
        (Section::KeyHashes, le_u64(&keys.hashes)),
    ];
    debug_assert!(out.iter().map(|(s, _)| *s).eq(format::SECTIONS));
    Ok(out.into_iter().map(|(_, bytes)| bytes).collect())
}

/// A snapshot of `index` and `keys` as bytes (for [`super::Snapshot::new`]).
pub fn to_bytes(index: &Index, keys: &KeyMap) -> Result<Vec<u8>> {
    assemble(&(index, keys))
}

/// A snapshot of `src` as bytes.
pub(crate) fn assemble(src: &impl Source) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    format::assemble(&sections(src)?, &mut out).expect("writing to a Vec");
    Ok(out)
}

/// Temporary snapshot files are named `TEMP_PREFIX` + writer's pid + `-` + random.
const TEMP_PREFIX: &str = ".adasid-snapshot-";

/// Writes a snapshot of `index` and `keys` to `path`: into a temporary file
/// beside it, fsynced, then renamed over `path` (and the folder fsynced), so
/// `path` is always either the old file or the whole new one.
pub fn write(index: &Index, keys: &KeyMap, path: &Path) -> Result<u64> {
    write_source(&(index, keys), path)
}

/// Writes a snapshot of `src` to `path`, as [`write`] does.
pub(crate) fn write_source(src: &impl Source, path: &Path) -> Result<u64> {
    Sections::of(src)?.write(path)
}

/// A snapshot's sections, built and not yet written: a writer may build
/// them while something else runs (a new database's first commit).
pub(crate) struct Sections(Vec<Vec<u8>>);

impl Sections {
    /// The sections of a snapshot of `src`.
    pub(crate) fn of(src: &impl Source) -> Result<Sections> {
        sections(src).map(Sections)
    }

    /// Writes them to `path` as [`write`] does; returns the file's size.
    pub(crate) fn write(&self, path: &Path) -> Result<u64> {
        crate::stale::replace(path, TEMP_PREFIX, |w| format::assemble(&self.0, w))
    }
}

/// Writes the bytes of a snapshot (a published one, say) to `path` the way
/// [`write`] does.
pub fn write_bytes(bytes: &[u8], path: &Path) -> Result<u64> {
    crate::stale::replace(path, TEMP_PREFIX, |w| w.write_all(bytes))
}
