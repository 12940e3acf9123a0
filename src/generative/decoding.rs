//! Beam decoding for the autoregressive retriever: users' histories in,
//! the items whose SIDs the constrained beams spell out, for evaluation
//! and for serving (`recommend`).

use super::net::token_id;
use super::retriever::{GenRetriever, column};
use crate::decode::{BeamSearch, Hit, Precomputed, Scored};
use crate::error::Result;
use crate::index::{ItemId, SidIndex};
use crate::nn::params::ml;
use crate::sid::Token;

/// How many beams a filtered request decodes per item asked for: the
/// filter is applied to finished beams, so a selective filter returns
/// fewer than `k` items rather than a slow wide search.
const FILTER_WIDENING: usize = 4;

impl GenRetriever {
    /// The `k` best items after `history` (item ids of `view`, oldest
    /// first; the most recent `history` setting of them are read), those
    /// `keep` accepts when given, best first with their summed token
    /// log-probabilities. Beam search over the index's SID trie: `k` beams,
    /// or 4·`k` when filtered (the filter then applies to finished beams,
    /// so a selective filter can leave fewer than `k`).
    pub fn recommend(
        &self,
        view: &dyn SidIndex,
        history: &[ItemId],
        k: usize,
        keep: Option<&dyn Fn(ItemId) -> bool>,
    ) -> Result<Vec<Scored>> {
        let sids = super::corpus::held_sids(view, &self.layout, history, self.cfg.history)?;
        let width = if keep.is_some() {
            k * FILTER_WIDENING
        } else {
            k
        };
        let mut search = [BeamSearch::new(*view.layout(), width)?];
        let hits = self.decode_group(view, &[sids], &mut search)?.remove(0);
        Ok(hits
            .into_iter()
            .filter(|h| keep.is_none_or(|f| f(h.item)))
            .take(k)
            .map(|h| Scored {
                item: h.item,
                score: h.score,
            })
            .collect())
    }

    /// Beam-searches a group of histories (full SIDs, oldest first) in
    /// lockstep.
    pub(super) fn decode_group(
        &self,
        state: &dyn SidIndex,
        histories: &[Vec<&[Token]>],
        searches: &mut [BeamSearch],
    ) -> Result<Vec<Vec<Hit>>> {
        let net = &self.net;
        let shape = *net.shape();
        let (ids, valid, len) = self.histories(histories);
        let (memory, mask) = net.encode(&ids, &valid, histories.len(), len)?;
        searches.iter_mut().for_each(|s| s.start());
        // Every user gets `width` decoder rows (unused ones are padding), so
        // rows of one user share one memory row.
        let width = searches.first().map_or(0, |s| s.width());
        let rows = histories.len() * width;
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
                s.step(Some(state), &mut given, depth)?;
                let base = (u * width) as u32;
                parents.extend(s.parents().map(|p| base + p as u32));
                parents.resize((u + 1) * width, base);
            }
            cache.reorder(&parents)?;
        }
        searches.iter().map(|s| s.finish(state)).collect()
    }
}
