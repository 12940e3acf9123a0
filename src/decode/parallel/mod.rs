//! Exact top-k for a parallel decoder: a model scores every token at every
//! semantic position at once, and an item's score is the sum over positions
//! of its own token's score.
//!
//! Scoring every item costs `items × positions`, and over many flat
//! positions nothing cheaper is exact: no item can be ruled out without
//! reading its tokens. [`top_k`] therefore reads them as cheaply as it
//! can: where the index keeps byte codes of its SIDs (a snapshot, and a
//! database served from one, for K ≤ 511), a vectorised
//! scan sums rounded scores 64 items at a time and scores exactly only
//! the few items that could reach the top k (`scan`). Elsewhere it runs
//! Fagin's threshold algorithm over the index's per-(position, token)
//! postings: it visits tokens in descending score, one posting list at a
//! time, scores each item it meets in full, and stops once the k-th best
//! score beats the threshold — the best score an item not yet met could
//! still have (the sum of each position's best unvisited token). Either
//! way it runs on anything that is a [`SidIndex`] and returns exactly what
//! [`brute_force`] returns (ties broken by item id).

mod best;
mod scan;

use crate::error::{Error, Result};
use crate::index::{ItemId, Postings, SidIndex};
use crate::sid::{SidLayout, Token, column_token, token_column};
use best::Best;

/// Per-position token scores: `positions × (K + 1)` values, row-major, in
/// mask-column order (column K is [`crate::EMPTY`]). Log-probabilities are
/// the usual content; any finite value or −∞ is allowed.
#[derive(Clone, Copy, Debug)]
pub struct PositionScores<'a> {
    scores: &'a [f32],
    positions: usize,
    columns: usize,
}

impl<'a> PositionScores<'a> {
    /// Checks the shape against `layout` (at most `levels` positions, the
    /// first ones) and that no score is NaN or +∞.
    pub fn new(layout: &SidLayout, scores: &'a [f32]) -> Result<Self> {
        let columns = layout.mask_bits();
        let positions = scores.len() / columns;
        if scores.is_empty() || !scores.len().is_multiple_of(columns) || positions > layout.levels()
        {
            return Err(Error::InvalidArgument(format!(
                "{} scores are not 1 to {} positions of {columns} columns",
                scores.len(),
                layout.levels()
            )));
        }
        if scores.iter().any(|s| s.is_nan() || *s == f32::INFINITY) {
            return Err(Error::InvalidArgument(
                "position scores must be finite or -inf".into(),
            ));
        }
        Ok(PositionScores {
            scores,
            positions,
            columns,
        })
    }

    /// Positions scored.
    pub fn positions(&self) -> usize {
        self.positions
    }

    fn row(&self, p: usize) -> &'a [f32] {
        &self.scores[p * self.columns..(p + 1) * self.columns]
    }

    /// The score of an item with these (full or semantic) tokens, summed in
    /// position order (so equal inputs give bit-equal sums everywhere).
    #[inline]
    pub fn item_score(&self, tokens: &[Token]) -> f32 {
        let k = self.columns - 1;
        let mut sum = 0.0;
        // One flat index per position instead of a row slice each: this is
        // the whole cost of a scan.
        for (p, &t) in tokens[..self.positions].iter().enumerate() {
            sum += self.scores[p * self.columns + token_column(k, t)];
        }
        sum
    }
}

/// An item and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// The item.
    pub item: ItemId,
    /// Σ over positions of its token's score.
    pub score: f32,
}

/// The result of a top-k query.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// Best first; ties by ascending item id.
    pub hits: Vec<Scored>,
    /// Items scored on the way (brute force: every item).
    pub scored: u64,
}

/// Every item scored: the reference [`top_k`] is checked against, and the
/// baseline its speed is measured against.
pub fn brute_force(
    index: &dyn SidIndex,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Ranked {
    let mut best = Best::new(k);
    let mut scored = 0;
    index.for_each_sid(&mut |item, tokens| {
        if keep.is_none_or(|f| f(item)) {
            let score = scores.item_score(tokens);
            scored += 1;
            best.offer(Scored { item, score });
        }
    });
    Ranked {
        hits: best.finish(),
        scored,
    }
}

/// The `k` best of `items` (those `keep` accepts) by dense per-item
/// scores (`scores[i]` is item `i`'s; an item past its end is skipped): a
/// model that scores every item directly (an item-id softmax) has nothing
/// for the threshold algorithm to skip.
///
/// Over a bitmap the scores are read in id order and the bitmap is asked
/// only about an item that would enter the top k (a few hundred of 12,101
/// on Beauty), which costs less than walking every listed item; a
/// snapshot's list (in SID order, no fast membership) is walked. Both go
/// in two passes (what reaches a sampled floor first).
pub fn best_of(
    scores: &[f32],
    items: Postings<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Vec<Scored> {
    let mut best = Best::new(k);
    let edge = likely_floor(scores, k);
    two_passes(&mut best, |best, upper| {
        let mut consider = |item: ItemId, score: f32, listed: &dyn Fn() -> bool| {
            if (score >= edge) == upper
                && best.admits(score)
                && listed()
                && keep.is_none_or(|f| f(item))
            {
                best.offer(Scored { item, score });
            }
        };
        match items {
            Postings::Slice(_) | Postings::Owned(_) => items.for_each(|item| {
                if let Some(&score) = scores.get(item as usize) {
                    consider(item, score, &|| true);
                }
            }),
            _ => {
                for (item, &score) in (0..).zip(scores) {
                    consider(item, score, &|| items.contains(item));
                }
            }
        }
    });
    best.finish()
}

/// Ranks what scores at least an edge first (`pass(best, true)`), the rest
/// (`pass(best, false)`) only when that did not fill the top k: once it is
/// full, its k-th best is at least the edge, above everything left.
fn two_passes(best: &mut Best, mut pass: impl FnMut(&mut Best, bool)) {
    pass(best, true);
    if !best.full() {
        pass(best, false);
    }
}

/// A score that somewhat more than `k` of `scores` reach, estimated from
/// every 16th (−∞ when there are too few to sample). Ranking those first
/// spares the heap the hundreds of items a one-pass scan offers before its
/// k-th best settles; exactness never depends on it ([`two_passes`]).
fn likely_floor(scores: &[f32], k: usize) -> f32 {
    const STRIDE: usize = 16;
    // Rank in the sample: 1.5x the share of k it should hold, plus slack,
    // so the first pass rarely falls short.
    let rank = k * 3 / (2 * STRIDE) + 4;
    let mut sample: Vec<f32> = scores.iter().step_by(STRIDE).copied().collect();
    if k == 0 || sample.len() <= rank {
        return f32::NEG_INFINITY;
    }
    let (_, nth, _) = sample.select_nth_unstable_by(rank, |a, b| b.total_cmp(a));
    *nth
}

/// Each position's columns in descending score (ties by column), and how
/// far down that order the search has gone. The order is sorted lazily, a
/// doubling head at a time: a search that stops early (one position of
/// 12,102 item ids, say) never pays for sorting the rest.
struct Frontier {
    order: Vec<Vec<u32>>,
    sorted: Vec<usize>,
    next: Vec<usize>,
}

impl Frontier {
    fn new(scores: &PositionScores<'_>) -> Self {
        let mut f = Frontier {
            order: vec![(0..scores.columns as u32).collect(); scores.positions],
            sorted: vec![0; scores.positions],
            next: vec![0; scores.positions],
        };
        (0..scores.positions).for_each(|p| f.sort_ahead(scores, p));
        f
    }

    /// Makes sure the two columns from `next[p]` on are in sorted order.
    fn sort_ahead(&mut self, scores: &PositionScores<'_>, p: usize) {
        let (len, done) = (self.order[p].len(), self.sorted[p]);
        if self.next[p] + 2 <= done || done == len {
            return;
        }
        let row = scores.row(p);
        let by = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
        let upto = (done * 2).max(16).max(self.next[p] + 2).min(len);
        let rest = &mut self.order[p][done..];
        let want = upto - done;
        if want < rest.len() {
            rest.select_nth_unstable_by(want - 1, by);
        }
        rest[..want].sort_by(by);
        self.sorted[p] = upto;
    }

    /// Moves past position `p`'s best unvisited column.
    fn advance(&mut self, scores: &PositionScores<'_>, p: usize) {
        self.next[p] += 1;
        self.sort_ahead(scores, p);
    }

    /// Score of position `p`'s best unvisited column (−∞ when none is left).
    fn head(&self, scores: &PositionScores<'_>, p: usize) -> f32 {
        self.order[p]
            .get(self.next[p])
            .map_or(f32::NEG_INFINITY, |&c| scores.row(p)[c as usize])
    }

    /// The best score an item not yet met can have, summed in position order.
    fn threshold(&self, scores: &PositionScores<'_>) -> f32 {
        (0..scores.positions).map(|p| self.head(scores, p)).sum()
    }

    /// The position whose next visit lowers the threshold most per item it
    /// costs; `None` when every column of some position was visited (every
    /// item was then met).
    fn pick(&self, index: &dyn SidIndex, scores: &PositionScores<'_>) -> Option<(usize, u32)> {
        let k = scores.columns - 1;
        let mut choice: Option<(f32, usize, u32)> = None;
        for p in 0..scores.positions {
            let &col = self.order[p].get(self.next[p])?;
            let after = self.order[p]
                .get(self.next[p] + 1)
                .map_or(f32::NEG_INFINITY, |&c| scores.row(p)[c as usize]);
            let cost = index
                .position_postings(p, column_token(k, col as usize))
                .len()
                .max(1);
            let gain = (scores.row(p)[col as usize] - after) / cost as f32;
            if choice.is_none_or(|(g, ..)| gain > g) {
                choice = Some((gain, p, col));
            }
        }
        choice.map(|(_, p, c)| (p, c))
    }
}

/// Share of the catalogue (1 / this) the threshold algorithm may score
/// before it hands over to [`brute_force`]. With flat scores over many
/// positions the threshold (a sum of per-position maxima) stays above the
/// k-th best score until nearly every item was met, and meeting an item
/// costs the threshold algorithm 31–55 times what scoring it in a scan
/// does (`examples/bench_topk.rs`: 1M items × 32 positions, 2.1–3.5 s
/// against 58–68 ms). Past the budget the answer costs a bounded extra.
const BUDGET_DIVISOR: u64 = 64;

/// The `k` best items (those `keep` accepts, when given) by the sum of
/// their tokens' position scores: exactly [`brute_force`]'s answer. One
/// position is ranked by its columns (no sort). More go by the scan of the
/// index's byte codes where it keeps them ([`SidIndex::byte_codes`]); else,
/// or when the scan cannot prove its answer, by the threshold algorithm
/// while it scores at most 1/64 of the items, by brute force after that
/// (from the start when `k` is more than that).
pub fn top_k(
    index: &dyn SidIndex,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Ranked {
    if scores.positions == 1 {
        return one_position(index, scores, k, keep);
    }
    if let Some(coded) = index.byte_codes()
        && index.layout().mask_bits() == scores.columns
        && let Some(ranked) = scan::top_k(index, coded, scores, k, keep)
    {
        return ranked;
    }
    threshold(index, scores, k, keep, Some(index.len() / BUDGET_DIVISOR))
}

/// One position: every item of a column has that column's score, so the
/// columns are read in order and only one that would enter the top k has
/// its posting list walked. The threshold algorithm would sort the columns
/// first, which for one column per item (item ids as SIDs: 12,102 on
/// Beauty) costs more than the whole answer.
fn one_position(
    index: &dyn SidIndex,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Ranked {
    let kk = scores.columns - 1;
    let row = scores.row(0);
    let mut best = Best::new(k);
    let mut scored = 0;
    let edge = likely_floor(row, k);
    two_passes(&mut best, |best, upper| {
        for (col, &raw) in row.iter().enumerate() {
            if (raw >= edge) != upper || !best.admits(raw) {
                continue;
            }
            let token = column_token(kk, col);
            // The sum brute force takes (0.0 + raw), bit for bit.
            let score = scores.item_score(&[token]);
            index.position_postings(0, token).for_each(|item| {
                if keep.is_none_or(|f| f(item)) {
                    scored += 1;
                    best.offer(Scored { item, score });
                }
            });
        }
    });
    Ranked {
        hits: best.finish(),
        scored,
    }
}

/// [`top_k`] by the threshold algorithm alone, however many items it
/// scores (for measuring it, and for testing it on small catalogues).
pub fn threshold_only(
    index: &dyn SidIndex,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Ranked {
    threshold(index, scores, k, keep, None)
}

fn threshold(
    index: &dyn SidIndex,
    scores: &PositionScores<'_>,
    k: usize,
    keep: Option<&dyn Fn(ItemId) -> bool>,
    budget: Option<u64>,
) -> Ranked {
    if budget.is_some_and(|b| k as u64 > b) {
        // It must score at least k items, more than the scan is worth.
        return brute_force(index, scores, k, keep);
    }
    let kk = scores.columns - 1;
    let mut best = Best::new(k);
    let mut frontier = Frontier::new(scores);
    let mut visited = vec![vec![false; scores.columns]; scores.positions];
    let mut scored = 0;
    while k > 0 && !best.beats(frontier.threshold(scores)) {
        if budget.is_some_and(|b| scored > b) {
            let mut all = brute_force(index, scores, k, keep);
            all.scored += scored;
            return all;
        }
        let Some((p, col)) = frontier.pick(index, scores) else {
            break;
        };
        let postings = index.position_postings(p, column_token(kk, col as usize));
        postings.for_each(|item| {
            let (tokens, _) = index.sid(item).expect("posted items are held");
            // Met before iff another position's token was visited earlier.
            let met =
                (0..scores.positions).any(|q| q != p && visited[q][token_column(kk, tokens[q])]);
            if met || keep.is_some_and(|f| !f(item)) {
                return;
            }
            best.offer(Scored {
                item,
                score: scores.item_score(tokens),
            });
            scored += 1;
        });
        visited[p][col as usize] = true;
        frontier.advance(scores, p);
    }
    Ranked {
        hits: best.finish(),
        scored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazily_sorted_frontier_visits_columns_as_a_full_sort_does() {
        let layout = SidLayout::new(2, 999, 0).unwrap();
        // Many ties (scores repeat every 37 columns) so the column order matters.
        let raw: Vec<f32> = (0..2000).map(|i| ((i * 7919) % 37) as f32 * -0.5).collect();
        let scores = PositionScores::new(&layout, &raw).unwrap();
        let mut f = Frontier::new(&scores);
        for p in 0..2 {
            let row = scores.row(p);
            let mut want: Vec<u32> = (0..1000).collect();
            want.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            let mut got = Vec::new();
            while f.next[p] < 1000 {
                got.push(f.order[p][f.next[p]]);
                f.advance(&scores, p);
            }
            assert_eq!(got, want);
        }
    }
}
