//! User sequences expressed as full SIDs: what the retriever reads.

use crate::error::{Error, Result};
use crate::eval::Split;
use crate::index::{ItemId, SidIndex};
use crate::sid::{SidLayout, Token};
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

    /// The full SIDs of `rows` (stored catalogue rows).
    pub(crate) fn history_sids(&self, rows: &[u32]) -> Vec<&[Token]> {
        rows.iter()
            .map(|&r| self.sids[r as usize].as_deref().expect("stored item"))
            .collect()
    }

    /// The ids of `rows` (stored catalogue rows).
    pub(crate) fn history_ids(&self, rows: &[u32]) -> Vec<ItemId> {
        rows.iter().filter_map(|&r| self.ids[r as usize]).collect()
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

    /// The users to rank for on `split`: those whose target is stored and
    /// who have a stored history item (their most recent `history` ones),
    /// and how many were left out.
    pub(crate) fn cases(&self, split: Split, history: usize) -> (Vec<Case>, usize) {
        let (mut out, mut skipped) = (Vec::new(), 0);
        for s in &self.sequences {
            let Some((h, target)) = split.cut(s) else {
                continue;
            };
            let recent = self.recent(h, history);
            match self.ids[target as usize] {
                Some(id) if !recent.is_empty() => out.push(Case {
                    history: recent,
                    target,
                    id,
                }),
                _ => skipped += 1,
            }
        }
        (out, skipped)
    }
}

/// One user to rank for: recent stored history rows, the target's row and id.
pub(crate) struct Case {
    pub history: Vec<u32>,
    pub target: u32,
    pub id: ItemId,
}

/// The full SIDs of the most recent `history` of `items` (ids of `view`,
/// oldest first): what a retriever trained for `layout` reads to
/// recommend. `view` must hold SIDs of that layout and every item, and
/// there must be at least one item.
pub(crate) fn held_sids<'v>(
    view: &'v dyn SidIndex,
    layout: &SidLayout,
    items: &[ItemId],
    history: usize,
) -> Result<Vec<&'v [Token]>> {
    if view.layout() != layout {
        return Err(Error::InvalidArgument(
            "the retriever was trained for another SID layout".into(),
        ));
    }
    if items.is_empty() {
        return Err(Error::InvalidArgument("the history is empty".into()));
    }
    items[items.len().saturating_sub(history)..]
        .iter()
        .map(|&i| {
            view.sid(i)
                .map(|(s, _)| s)
                .ok_or_else(|| Error::InvalidArgument(format!("item {i} is not held")))
        })
        .collect()
}

/// The items a ranking leaves out: a history's own items when asked to
/// (`--exclude-history` in evaluation and serving alike), else none.
pub struct Excluded(Vec<ItemId>);

impl Excluded {
    /// `history`'s items when `on`, else the empty set.
    pub fn history(history: &[ItemId], on: bool) -> Excluded {
        let mut ids = match on {
            true => history.to_vec(),
            false => Vec::new(),
        };
        ids.sort_unstable();
        Excluded(ids)
    }

    /// Whether `item` stays in the ranking.
    pub fn keeps(&self, item: ItemId) -> bool {
        self.0.binary_search(&item).is_err()
    }
}
