//! Leave-one-out evaluation of the generative retriever: every user's
//! history decoded with trie-constrained beam search, users in lockstep groups.

use std::time::Instant;

use serde::Serialize;

use super::corpus::{Case, Corpus};
use super::net::token_id;
use super::retriever::{GenRetriever, column};
use crate::decode::{BeamSearch, Hit, Precomputed};
use crate::error::Result;
use crate::eval::{Accumulator, RankMetrics, Split, popularity_quartiles, rank_of, sequences};
use crate::index::{ItemId, SidIndex};
use crate::nn::params::ml;
use crate::view::ReadView;

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
    /// `beams` SIDs decoded from the user's history. Users are decoded in
    /// groups, in lockstep: one model call per step serves every beam of
    /// every user in the group. `users` caps how many users are scored.
    pub fn evaluate(
        &self,
        state: &dyn ReadView,
        corpus: &Corpus,
        split: Split,
        beams: usize,
        users: Option<usize>,
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
            let hits = self.decode_group(state, corpus, group, &mut searches[..group.len()])?;
            for (c, hits) in group.iter().zip(hits) {
                let ranking: Vec<ItemId> = hits.iter().map(|h| h.item).collect();
                ranks.push(rank_of(&ranking, &c.id));
            }
        }
        Ok(report(corpus, &cases, &ranks, (beams, skipped), start))
    }

    /// Beam-searches a group of users in lockstep.
    fn decode_group(
        &self,
        state: &dyn ReadView,
        corpus: &Corpus,
        group: &[Case],
        searches: &mut [BeamSearch],
    ) -> Result<Vec<Vec<Hit>>> {
        let net = &self.net;
        let shape = *net.shape();
        let histories: Vec<&[u32]> = group.iter().map(|c| &c.history[..]).collect();
        let (ids, valid, len) = self.histories(corpus, &histories);
        let (memory, mask) = net.encode(&ids, &valid, group.len(), len)?;
        searches.iter_mut().for_each(|s| s.start());
        // Every user gets `width` decoder rows (unused ones are padding), so
        // rows of one user share one memory row.
        let width = searches.first().map_or(0, |s| s.width());
        let rows = group.len() * width;
        let mut cache = net.start_decoding(&memory)?;
        let mut tokens = Vec::with_capacity(rows);
        let mut parents = Vec::with_capacity(rows);
        for depth in 0..shape.steps {
            // Each row feeds the token its beam wrote last (padding rows: any).
            tokens.clear();
            for s in searches.iter() {
                for b in 0..width {
                    tokens.push(match depth {
                        0 => net.start_id(),
                        _ if b < s.beams() => {
                            let t = s.prefixes()[b * depth + depth - 1];
                            token_id(&shape, depth - 1, column(shape.vocab, t))
                        }
                        _ => 0,
                    });
                }
            }
            let logp: Vec<f32> = net
                .decode_next(&mut cache, mask.as_ref(), &tokens, depth, width)?
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(ml)?;
            parents.clear();
            for (u, s) in searches.iter_mut().enumerate() {
                let offset = u * width * shape.vocab;
                let mut given = Precomputed(&logp[offset..offset + s.beams() * shape.vocab]);
                s.step(Some(state as &dyn SidIndex), &mut given, depth)?;
                let base = (u * width) as u32;
                parents.extend(s.parents().map(|p| base + p as u32));
                parents.resize((u + 1) * width, base);
            }
            cache.reorder(&parents)?;
        }
        searches.iter().map(|s| s.finish(state)).collect()
    }
}
