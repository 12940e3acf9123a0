//! Retrieval by hierarchical lookup: each user's next item is searched among
//! the candidates of the SID of the user's last history item.

use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{Accumulator, RankMetrics, rank_of};
use super::sequences::Split;
use crate::index::{CandidateMode, CandidateQuery, ItemId};
use crate::view::ReadView;

/// Figures of one candidate mode.
#[derive(Clone, Debug, Serialize)]
pub struct RetrievalReport {
    /// `prefix` or `overlap`.
    pub mode: &'static str,
    /// All users with a target.
    pub overall: RankMetrics,
    /// Users split by the target's popularity quartile, head (0) to tail (3).
    pub quartiles: Vec<RankMetrics>,
    /// Users left out because the query or target item is not in the database.
    pub skipped: usize,
}

/// The inputs every mode shares.
pub struct Task<'a> {
    /// The items and their SIDs (a database's read view or a snapshot).
    pub state: &'a (dyn ReadView + Sync),
    /// Database id of each catalogue row (`None`: not stored).
    pub ids: &'a [Option<ItemId>],
    /// Item sequences (catalogue rows).
    pub sequences: &'a [Vec<u32>],
    /// Popularity quartile of each catalogue row.
    pub quartiles: &'a [u8],
    /// Which held-out item is the target.
    pub split: Split,
    /// The cutoffs; candidates are fetched up to the largest.
    pub cutoffs: &'a [usize],
}

fn mode_name(mode: CandidateMode) -> &'static str {
    match mode {
        CandidateMode::Prefix => "prefix",
        CandidateMode::Overlap => "overlap",
    }
}

/// Sums of one chunk of users: overall, per quartile, and skipped.
type Partial = (Accumulator, Vec<Accumulator>, usize);

impl Task<'_> {
    fn empty(&self) -> Partial {
        let acc = Accumulator::new(self.cutoffs);
        (acc.clone(), vec![acc; 4], 0)
    }

    fn add(&self, mode: CandidateMode, sums: &mut Partial, s: &[u32]) {
        let Some((history, target)) = self.split.cut(s) else {
            return;
        };
        let query = *history.last().expect("cut keeps history");
        let (Some(q), Some(t)) = (self.ids[query as usize], self.ids[target as usize]) else {
            sums.2 += 1;
            return;
        };
        let (tokens, weights) = self.state.sid(q).expect("keyed items are indexed");
        let found = self.state.candidates(&CandidateQuery {
            tokens,
            weights,
            k: self.cutoffs.iter().copied().max().unwrap_or(0),
            mode,
            exclude: Some(q),
        });
        let ranking: Vec<ItemId> = found.iter().map(|c| c.item).collect();
        let rank = rank_of(&ranking, &t);
        sums.0.add(rank);
        sums.1[self.quartiles[target as usize] as usize].add(rank);
    }

    /// Evaluates one candidate mode over every user (in parallel).
    pub fn run(&self, mode: CandidateMode) -> RetrievalReport {
        let (overall, quartiles, skipped) = self
            .sequences
            .par_chunks(512)
            .map(|chunk| {
                let mut sums = self.empty();
                chunk.iter().for_each(|s| self.add(mode, &mut sums, s));
                sums
            })
            .reduce(
                || self.empty(),
                |mut a, b| {
                    a.0.merge(&b.0);
                    a.1.iter_mut().zip(&b.1).for_each(|(x, y)| x.merge(y));
                    a.2 += b.2;
                    a
                },
            );
        RetrievalReport {
            mode: mode_name(mode),
            overall: overall.finish(),
            quartiles: quartiles.iter().map(|q| q.finish()).collect(),
            skipped,
        }
    }
}
