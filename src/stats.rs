//! Summary figures of an index: prefix counts, codebook use, collisions.

use serde::Serialize;

use crate::index::SidIndex;

/// Use of one SID position's codebook.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PositionStats {
    /// Position in the SID.
    pub position: usize,
    /// Whether it is a behavior position.
    pub behavior: bool,
    /// Share of the K codes used by at least one item.
    pub utilisation: f64,
    /// Shannon entropy of the token distribution (non-empty tokens), in bits.
    pub entropy_bits: f64,
    /// Share of items whose token here is empty (masked behavior SID).
    pub masked_share: f64,
}

/// Figures for a whole index.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IndexStats {
    /// Live items.
    pub items: u64,
    /// Semantic levels.
    pub levels: usize,
    /// Codebook size K.
    pub codebook_size: u32,
    /// Behavior positions (the last ones).
    pub behavior_positions: usize,
    /// Distinct prefixes of each length `1..=levels+1`.
    pub prefixes_per_length: Vec<u64>,
    /// Share of items whose semantic tokens are shared with another item
    /// (1 − distinct semantic SIDs / items); the disambiguation token resolves these.
    pub collision_rate: f64,
    /// Per-position codebook use.
    pub positions: Vec<PositionStats>,
    /// Trie nodes (prefixes shared by two or more items).
    pub trie_nodes: usize,
}

/// Computes [`IndexStats`] of a live index or a snapshot alike.
pub fn index_stats(index: &dyn SidIndex) -> IndexStats {
    let layout = *index.layout();
    let items = index.len();
    let prefixes = index.prefix_counts();
    let distinct = prefixes[layout.levels() - 1];
    let positions = (0..layout.levels())
        .map(|position| {
            let codes: Vec<u64> = (0..layout.k())
                .map(|t| index.position_postings(position, t as u16).len())
                .collect();
            let used: u64 = codes.iter().sum();
            // Every item has one token per position: the rest are empty.
            let empty = items - used;
            let entropy = codes
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / used as f64;
                    -p * p.log2()
                })
                .sum();
            PositionStats {
                position,
                behavior: layout.is_behavior(position),
                utilisation: codes.iter().filter(|&&c| c > 0).count() as f64 / layout.k() as f64,
                entropy_bits: entropy,
                masked_share: if items == 0 {
                    0.0
                } else {
                    empty as f64 / items as f64
                },
            }
        })
        .collect();
    IndexStats {
        items,
        levels: layout.levels(),
        codebook_size: layout.k(),
        behavior_positions: layout.behavior as usize,
        prefixes_per_length: prefixes,
        collision_rate: if items == 0 {
            0.0
        } else {
            1.0 - distinct as f64 / items as f64
        },
        positions,
        trie_nodes: index.node_count(),
    }
}
