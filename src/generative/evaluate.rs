//! Leave-one-out evaluation of the generative retriever: every user's
//! history decoded with trie-constrained beam search, users in lockstep groups.

use std::time::Instant;

use serde::Serialize;

use super::corpus::{Case, Corpus, Excluded};
use super::retriever::GenRetriever;
use crate::decode::BeamSearch;
use crate::error::Result;
use crate::eval::{Accumulator, RankMetrics, Split, popularity_quartiles, rank_of, sequences};
use crate::index::{ItemId, SidIndex};
use crate::sid::Token;

/// Leave-one-out figures of the retriever.
#[derive(Clone, Debug, Serialize)]
pub struct GenReport {
    /// The longest ranking scored: the beam width of the autoregressive
    /// retriever, the top-k depth of the parallel one.
    pub beams: usize,
    /// All users with a target.
    pub overall: RankMetrics,
    /// By the target's popularity quartile, head (0) to tail (3).
    pub quartiles: Vec<RankMetrics>,
    /// Users left out: no stored history item or target not stored.
    pub skipped: usize,
    /// Wall time of the evaluation.
    pub seconds: f64,
}

/// The cutoffs `gen-eval` reports.
pub const GEN_CUTOFFS: [usize; 4] = [5, 10, 50, 100];

/// Recall/NDCG at [`GEN_CUTOFFS`] of each case's rank (`None`: not in the
/// ranking), overall and by the target's popularity quartile in training.
pub(crate) fn report(
    corpus: &Corpus,
    cases: &[Case],
    ranks: &[Option<usize>],
    (depth, skipped): (usize, usize),
    start: Instant,
) -> GenReport {
    let counts = sequences::training_counts(&corpus.sequences, corpus.sids.len());
    let quartiles = popularity_quartiles(&counts);
    let mut overall = Accumulator::new(&GEN_CUTOFFS);
    let mut by_quartile = vec![overall.clone(); 4];
    for (c, &r) in cases.iter().zip(ranks) {
        overall.add(r);
        by_quartile[quartiles[c.target as usize] as usize].add(r);
    }
    GenReport {
        beams: depth,
        overall: overall.finish(),
        quartiles: by_quartile.iter().map(|q| q.finish()).collect(),
        skipped,
        seconds: start.elapsed().as_secs_f64(),
    }
}

impl GenRetriever {
    /// Leave-one-out evaluation: each user's held-out item among the
    /// `beams` SIDs decoded from the user's history (less the user's own
    /// history items when `exclude_history`, so that ranking is shorter).
    /// Users are decoded in groups, in lockstep: one model call per step
    /// serves every beam of every user in the group. `users` caps how many
    /// users are scored.
    pub fn evaluate(
        &self,
        state: &dyn SidIndex,
        corpus: &Corpus,
        split: Split,
        beams: usize,
        (users, exclude_history): (Option<usize>, bool),
    ) -> Result<GenReport> {
        const GROUP: usize = 8;
        let start = Instant::now();
        let (mut cases, skipped) = corpus.cases(split, self.cfg.history);
        cases.truncate(users.unwrap_or(usize::MAX));
        let layout = *state.layout();
        let mut searches: Vec<BeamSearch> = (0..GROUP)
            .map(|_| BeamSearch::new(layout, beams))
            .collect::<Result<_>>()?;
        let mut ranks = Vec::with_capacity(cases.len());
        for group in cases.chunks(GROUP) {
            let histories: Vec<Vec<&[Token]>> = group
                .iter()
                .map(|c| corpus.history_sids(&c.history))
                .collect();
            let hits = self.decode_group(state, &histories, &mut searches[..group.len()])?;
            for (c, hits) in group.iter().zip(hits) {
                let seen = Excluded::history(&corpus.history_ids(&c.history), exclude_history);
                let ranking: Vec<ItemId> = hits
                    .iter()
                    .map(|h| h.item)
                    .filter(|&i| seen.keeps(i))
                    .collect();
                ranks.push(rank_of(&ranking, &c.id));
            }
        }
        Ok(report(corpus, &cases, &ranks, (beams, skipped), start))
    }
}
