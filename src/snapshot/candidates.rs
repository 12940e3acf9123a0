//! Candidate lookup over a snapshot: the same ranking as the in-memory index.
//!
//! Prefix mode walks the query's prefix chain as nested runs of the
//! SID-sorted item list: the items sharing exactly `d` tokens are the run at
//! depth `d` minus the nested run at `d + 1`. Within one depth the index
//! yields ascending ids, so the same is done here: the smallest ids of that
//! set are selected (linear in the set's size, which is large only when the
//! deeper levels hold fewer than `k` items).

use std::ops::Range;

use super::Snapshot;

use crate::index::candidates::overlap;
use crate::index::{Candidate, CandidateMode, CandidateQuery, Child, ItemId};
use crate::sid::Token;

/// The items sharing a prefix of one length with the query.
enum Span {
    /// A run of [`Snapshot::order`].
    Run(Range<usize>),
    /// The one item reaching this prefix.
    One(ItemId),
}

pub(super) fn rank<D: AsRef<[u8]>>(s: &Snapshot<D>, q: &CandidateQuery<'_>) -> Vec<Candidate> {
    if q.k == 0 {
        return Vec::new();
    }
    let tokens = &q.tokens[..q.tokens.len().min(s.layout.full_len())];
    match q.mode {
        CandidateMode::Prefix => prefix(s, tokens, q.k, q.exclude),
        CandidateMode::Overlap => overlap(
            &s.layout,
            tokens,
            q.weights,
            (q.k, q.exclude),
            |pos, token| Some(s.position_items(pos, token).iter().copied()),
            |item| s.sid_tokens(item).unwrap_or(&[]),
        ),
    }
}

/// Spans of every valid prefix of `tokens`, shallowest first (depth = index).
fn chain<D: AsRef<[u8]>>(s: &Snapshot<D>, tokens: &[Token]) -> Vec<Span> {
    let Some(root) = s.span(0) else {
        return Vec::new();
    };
    let mut chain = vec![Span::Run(root)];
    let mut node = 0;
    for (depth, &token) in tokens.iter().enumerate() {
        let Some(r) = s.child(node, token) else { break };
        if let Child::Item(item) = Child::unpack(r) {
            let Some(sid) = s.sid_tokens(item) else { break };
            let shared = 1 + sid
                .get(depth + 1..)
                .unwrap_or(&[])
                .iter()
                .zip(&tokens[depth + 1..])
                .take_while(|(a, b)| a == b)
                .count();
            chain.extend(std::iter::repeat_with(|| Span::One(item)).take(shared));
            break;
        }
        let Some(run) = s.span(r) else { break };
        node = r;
        chain.push(Span::Run(run));
    }
    chain
}

fn prefix<D: AsRef<[u8]>>(
    s: &Snapshot<D>,
    tokens: &[Token],
    k: usize,
    exclude: Option<ItemId>,
) -> Vec<Candidate> {
    let chain = chain(s, tokens);
    let order = s.order();
    let run = |r: Range<usize>| order.get(r).unwrap_or(&[]);
    let mut out = Vec::with_capacity(k.min(order.len()));
    for depth in (0..chain.len()).rev() {
        let mut level: Vec<ItemId> = match (&chain[depth], chain.get(depth + 1)) {
            (Span::Run(r), None) => run(r.clone()).to_vec(),
            (Span::Run(r), Some(Span::Run(d))) => {
                let (a, b) = (run(r.start..d.start), run(d.end..r.end));
                a.iter().chain(b).copied().collect()
            }
            (Span::Run(r), Some(Span::One(i))) => {
                run(r.clone()).iter().copied().filter(|x| x != i).collect()
            }
            (Span::One(i), None) => vec![*i],
            (Span::One(_), Some(_)) => Vec::new(),
        };
        level.retain(|&i| Some(i) != exclude);
        let need = k - out.len();
        if level.len() > need {
            level.select_nth_unstable(need - 1);
            level.truncate(need);
        }
        level.sort_unstable();
        out.extend(level.into_iter().map(|item| Candidate {
            item,
            shared_depth: depth as u8,
            score: depth as f32,
        }));
        if out.len() == k {
            break;
        }
    }
    out
}
