//! Candidate lookup: hierarchical prefix backoff and weighted position overlap.
//!
//! Prefix mode suits coarse-to-fine residual SIDs (RQ-VAE, RQ-Kmeans): items
//! sharing a longer prefix come first. ADA-SID's positions are parallel
//! experts, so overlap mode scores items by the weighted number of positions
//! they share with the query instead; it reads only the postings of the
//! query's own (position, token) pairs, never the whole catalogue.

use rustc_hash::FxHashMap;

use super::{Index, ItemId, Postings};
use crate::sid::{SidLayout, Token};

/// How candidates are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CandidateMode {
    /// Longest shared prefix first; back off one level at a time until `k` items.
    #[default]
    Prefix,
    /// Weighted count of shared positions (behavior positions weighted by the
    /// query's routing weights, others by 1); ties by shared prefix depth.
    Overlap,
}

/// A candidate lookup request.
#[derive(Clone, Copy, Debug)]
pub struct CandidateQuery<'a> {
    /// The query SID (semantic tokens, optionally with the disambiguation token).
    pub tokens: &'a [Token],
    /// Routing weights of the query's behavior positions (may be empty).
    pub weights: &'a [f32],
    /// How many candidates to return at most.
    pub k: usize,
    /// Ranking mode.
    pub mode: CandidateMode,
    /// An item to leave out (typically the query item itself).
    pub exclude: Option<ItemId>,
}

/// One ranked candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The item.
    pub item: ItemId,
    /// Length of the prefix it shares with the query.
    pub shared_depth: u8,
    /// Ranking score: shared depth in prefix mode, weighted overlap in overlap mode.
    pub score: f32,
}

impl Index {
    /// Up to `q.k` candidates for `q.tokens`, best first; ties go to the lower item id.
    pub fn candidates(&self, q: &CandidateQuery<'_>) -> Vec<Candidate> {
        if q.k == 0 {
            return Vec::new();
        }
        let tokens = &q.tokens[..q.tokens.len().min(self.layout.full_len())];
        match q.mode {
            CandidateMode::Prefix => self.prefix_candidates(tokens, q.k, q.exclude),
            CandidateMode::Overlap => self.overlap_candidates(tokens, q.weights, q.k, q.exclude),
        }
    }

    /// Postings of every valid prefix of `tokens`, shallowest first (depth = index).
    fn prefix_chain(&self, tokens: &[Token]) -> Vec<Postings<'_>> {
        let mut chain = vec![Postings::Many(&self.postings[super::ROOT as usize])];
        let mut node = super::ROOT;
        for (depth, &token) in tokens.iter().enumerate() {
            match self.nodes[node as usize].child(&self.geo, token) {
                None => break,
                Some(super::Child::Node(c)) => {
                    node = c;
                    chain.push(Postings::Many(&self.postings[c as usize]));
                }
                Some(super::Child::Item(item)) => {
                    let sid = self.items.sid(item);
                    let shared = 1 + sid[depth + 1..]
                        .iter()
                        .zip(&tokens[depth + 1..])
                        .take_while(|(a, b)| a == b)
                        .count();
                    chain.extend(std::iter::repeat_n(Postings::One(item), shared));
                    break;
                }
            }
        }
        chain
    }

    fn prefix_candidates(
        &self,
        tokens: &[Token],
        k: usize,
        exclude: Option<ItemId>,
    ) -> Vec<Candidate> {
        let chain = self.prefix_chain(tokens);
        let mut out = Vec::with_capacity(k.min(self.len() as usize));
        for depth in (0..chain.len()).rev() {
            let deeper = chain.get(depth + 1);
            for item in chain[depth].iter() {
                if Some(item) == exclude || deeper.is_some_and(|d| d.contains(item)) {
                    continue;
                }
                out.push(Candidate {
                    item,
                    shared_depth: depth as u8,
                    score: depth as f32,
                });
                if out.len() == k {
                    return out;
                }
            }
        }
        out
    }

    fn overlap_candidates(
        &self,
        tokens: &[Token],
        weights: &[f32],
        k: usize,
        exclude: Option<ItemId>,
    ) -> Vec<Candidate> {
        let postings = |pos: usize, token: Token| self.position_items(pos, token).map(|b| b.iter());
        let sid = |item: ItemId| self.items.sid(item);
        overlap(&self.layout, tokens, weights, (k, exclude), postings, sid)
    }
}

/// Overlap-mode ranking over any source of per-(position, token) postings.
pub(crate) fn overlap<'s, I: Iterator<Item = ItemId>>(
    layout: &SidLayout,
    tokens: &[Token],
    weights: &[f32],
    (k, exclude): (usize, Option<ItemId>),
    postings: impl Fn(usize, Token) -> Option<I>,
    sid: impl Fn(ItemId) -> &'s [Token],
) -> Vec<Candidate> {
    let positions = tokens.len().min(layout.levels());
    let mut scores: FxHashMap<ItemId, f32> = FxHashMap::default();
    for pos in 0..positions {
        let w = layout.position_weight(tokens, weights, pos);
        if w <= 0.0 {
            continue;
        }
        let Some(items) = postings(pos, tokens[pos]) else {
            continue;
        };
        scores.reserve(items.size_hint().0);
        for item in items {
            *scores.entry(item).or_insert(0.0) += w;
        }
    }
    let shared_depth = |item: ItemId| {
        sid(item)
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count() as u8
    };
    let out: Vec<Candidate> = scores
        .into_iter()
        .filter(|(item, _)| Some(*item) != exclude)
        .map(|(item, score)| Candidate {
            item,
            shared_depth: shared_depth(item),
            score,
        })
        .collect();
    best(out, k)
}

/// The `k` best candidates, best first: higher score, then deeper shared
/// prefix, then lower item id.
pub(crate) fn best(mut out: Vec<Candidate>, k: usize) -> Vec<Candidate> {
    let order = |a: &Candidate, b: &Candidate| {
        b.score
            .total_cmp(&a.score)
            .then(b.shared_depth.cmp(&a.shared_depth))
            .then(a.item.cmp(&b.item))
    };
    if out.len() > k {
        out.select_nth_unstable_by(k - 1, order);
        out.truncate(k);
    }
    out.sort_unstable_by(order);
    out
}

/// Candidates over any [`super::SidIndex`] from its `items` and
/// `position_postings` answers alone: what a database whose items changed
/// since its base snapshot ranks with (the same ranking as
/// [`Index::candidates`]).
pub(crate) fn over_view(view: &dyn super::SidIndex, q: &CandidateQuery<'_>) -> Vec<Candidate> {
    if q.k == 0 {
        return Vec::new();
    }
    let layout = *view.layout();
    let tokens = &q.tokens[..q.tokens.len().min(layout.full_len())];
    if q.mode == CandidateMode::Overlap {
        return overlap(
            &layout,
            tokens,
            q.weights,
            (q.k, q.exclude),
            |pos, token| Some(view.position_postings(pos, token).iter()),
            |item| view.sid(item).map_or(&[], |(s, _)| s),
        );
    }
    // The query's valid prefixes, read deepest first and only as far as
    // the k are not found (a shallow one may hold most of the catalogue).
    let valid = (0..=tokens.len())
        .take_while(|&d| view.is_valid(&tokens[..d]))
        .count();
    let mut out = Vec::with_capacity(q.k.min(view.len() as usize));
    let mut deeper: Option<Vec<ItemId>> = None;
    for depth in (0..valid).rev() {
        let level = view
            .items(&tokens[..depth])
            .map_or(Vec::new(), |p| p.to_sorted_vec());
        for &item in &level {
            let in_deeper = deeper
                .as_ref()
                .is_some_and(|d| d.binary_search(&item).is_ok());
            if Some(item) == q.exclude || in_deeper {
                continue;
            }
            out.push(Candidate {
                item,
                shared_depth: depth as u8,
                score: depth as f32,
            });
            if out.len() == q.k {
                return out;
            }
        }
        deeper = Some(level);
    }
    out
}
