//! User sequences expressed as full SIDs: what the retriever reads.

use crate::index::ItemId;
use crate::sid::Token;
use crate::view::ReadView;

/// Sequences expressed as full SIDs: what the retriever reads.
pub struct Corpus {
    /// Full SID of each catalogue row stored in the database.
    pub sids: Vec<Option<Vec<Token>>>,
    /// Database id of each catalogue row.
    pub ids: Vec<Option<ItemId>>,
    /// User sequences of catalogue rows.
    pub sequences: Vec<Vec<u32>>,
}

impl Corpus {
    /// Looks up every catalogue key in `state`.
    pub fn new(state: &dyn ReadView, keys: &[String], sequences: Vec<Vec<u32>>) -> Corpus {
        let ids: Vec<Option<ItemId>> = keys.iter().map(|k| state.id(k).ok()).collect();
        let sids = ids
            .iter()
            .map(|id| id.and_then(|i| state.sid(i)).map(|(s, _)| s.to_vec()))
            .collect();
        Corpus {
            sids,
            ids,
            sequences,
        }
    }

    /// Training examples: every item of every training part (all but the
    /// last two items) after the first, with up to `history` items before it.
    pub(super) fn training_examples(&self, history: usize) -> Vec<(Vec<u32>, u32)> {
        let mut out = Vec::new();
        for s in &self.sequences {
            let known: Vec<u32> = s[..s.len().saturating_sub(2)]
                .iter()
                .copied()
                .filter(|&r| self.sids[r as usize].is_some())
                .collect();
            for t in 1..known.len() {
                out.push((known[t.saturating_sub(history)..t].to_vec(), known[t]));
            }
        }
        out
    }

    /// The last `history` stored items of `rows`.
    pub(super) fn recent(&self, rows: &[u32], history: usize) -> Vec<u32> {
        let known: Vec<u32> = rows
            .iter()
            .copied()
            .filter(|&r| self.sids[r as usize].is_some())
            .collect();
        known[known.len().saturating_sub(history)..].to_vec()
    }
}
