//! Trie-constrained beam search against brute force: random catalogues and
//! random (deterministic) scorers.

use std::collections::HashMap;

use adasid::decode::{BeamSearch, StepScorer};
use adasid::{EMPTY, Index, SidLayout, Token};
use proptest::prelude::*;

use crate::common::HashScorer;

fn column(layout: &SidLayout, t: Token) -> usize {
    layout.mask_bit(t)
}

/// A random catalogue: semantic SIDs drawn from a small space (`spread`
/// tokens per position, so prefixes are shared and collisions happen, past
/// K too), the last position behavior (may be empty), disambiguation
/// counters per semantic SID.
fn catalogue(layout: SidLayout, raw: &[(Vec<u16>, bool)], spread: u16) -> (Index, Vec<Vec<Token>>) {
    let mut index = Index::new(layout);
    let mut seen: HashMap<Vec<Token>, Token> = HashMap::new();
    let mut sids = Vec::new();
    for (i, (tokens, masked)) in raw.iter().enumerate() {
        let mut semantic: Vec<Token> = tokens.iter().map(|t| t % spread).collect();
        if *masked {
            *semantic.last_mut().unwrap() = EMPTY;
        }
        let disamb = seen.entry(semantic.clone()).or_insert(0);
        let mut full = semantic.clone();
        full.push(*disamb);
        *disamb += 1;
        let weight = if *masked { 0.0 } else { 1.0 };
        index.insert(i as u32, &full, &[weight]).unwrap();
        sids.push(full);
    }
    (index, sids)
}

/// The score beam search gives `full`, computed directly: the sum of its
/// tokens' logits, where the `n` counters of K or more under one semantic
/// SID share column K, each taking its logit minus `ln n`.
fn brute_force(
    scorer: &HashScorer,
    layout: &SidLayout,
    sids: &[Vec<Token>],
    full: &[Token],
) -> f32 {
    let mut total = 0.0f32;
    for t in 0..full.len() {
        total += scorer.logit(&full[..t], column(layout, full[t]));
    }
    let levels = layout.levels();
    if full[levels] as u32 >= layout.k() {
        let over = sids
            .iter()
            .filter(|s| s[..levels] == full[..levels] && s[levels] as u32 >= layout.k())
            .count();
        if over > 1 {
            total -= (over as f32).ln();
        }
    }
    total
}

fn raw_items() -> impl Strategy<Value = Vec<(Vec<u16>, bool)>> {
    prop::collection::vec(
        (prop::collection::vec(0u16..6, 3), prop::bool::weighted(0.2)),
        1..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_hit_exists_sorted_and_wide_beams_return_every_item_once(
        raw in raw_items(),
        seed in any::<u64>(),
        width in 1usize..40,
        spread in 1u16..=6,
    ) {
        let layout = SidLayout::new(3, 6, 1).unwrap();
        let (index, sids) = catalogue(layout, &raw, spread);
        let mut scorer = HashScorer { seed, vocab: layout.mask_bits() };

        let mut beam = BeamSearch::new(layout, width).unwrap();
        let hits = beam.search(&index, &mut scorer).unwrap();
        prop_assert!(hits.len() <= width);
        prop_assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        let mut items: Vec<u32> = hits.iter().map(|h| h.item).collect();
        items.sort_unstable();
        items.dedup();
        prop_assert_eq!(items.len(), hits.len());
        for h in &hits {
            let (sid, _) = index.sid(h.item).expect("a hit is an indexed item");
            prop_assert_eq!(h.score, brute_force(&scorer, &layout, &sids, sid));
        }

        // Wide enough: every item exactly once, scored as brute force scores it.
        let mut wide = BeamSearch::new(layout, sids.len()).unwrap();
        let all = wide.search(&index, &mut scorer).unwrap();
        prop_assert_eq!(all.len(), sids.len());
        let mut best: Vec<(f32, Vec<Token>)> =
            sids.iter().map(|s| (brute_force(&scorer, &layout, &sids, s), s.clone())).collect();
        best.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got: Vec<f32> = all.iter().map(|h| h.score).collect();
        let want: Vec<f32> = best.iter().map(|b| b.0).collect();
        prop_assert_eq!(got, want);
        let mut found: Vec<u32> = all.iter().map(|h| h.item).collect();
        found.sort_unstable();
        found.dedup();
        prop_assert_eq!(found.len(), sids.len());
    }
}

/// A scorer that ties everything: ties go to the lower parent beam, then the
/// lower token, so beams come out in SID order (EMPTY last).
struct Flat(usize);

impl StepScorer for Flat {
    fn score(
        &mut self,
        _: &[Token],
        _: usize,
        beams: usize,
        out: &mut [f32],
    ) -> adasid::Result<()> {
        out[..beams * self.0].fill(0.0);
        Ok(())
    }
}

#[test]
fn ties_break_by_sid_order_deterministically() {
    let layout = SidLayout::new(2, 4, 1).unwrap();
    let mut index = Index::new(layout);
    let sids: [&[Token]; 6] = [
        &[2, 1, 0],
        &[0, 3, 0],
        &[0, EMPTY, 0],
        &[0, 1, 0],
        &[0, 1, 1],
        &[1, 2, 0],
    ];
    for (i, s) in sids.iter().enumerate() {
        let w = if s[1] == EMPTY { 0.0 } else { 1.0 };
        index.insert(i as u32, s, &[w]).unwrap();
    }
    let mut beam = BeamSearch::new(layout, 4).unwrap();
    let hits = beam.search(&index, &mut Flat(layout.mask_bits())).unwrap();
    let items: Vec<u32> = hits.iter().map(|h| h.item).collect();
    // SID order: [0,1,0] [0,1,1] [0,3,0] [0,-,0] [1,2,0] [2,1,0]; width 4 keeps the first four.
    assert_eq!(items, vec![3, 4, 1, 2]);
    assert_eq!(
        beam.search(&index, &mut Flat(layout.mask_bits())).unwrap(),
        hits
    );
}

#[test]
fn empty_index_and_bad_width() {
    let layout = SidLayout::new(2, 4, 0).unwrap();
    let index = Index::new(layout);
    let mut beam = BeamSearch::new(layout, 8).unwrap();
    assert!(
        beam.search(&index, &mut Flat(layout.mask_bits()))
            .unwrap()
            .is_empty()
    );
    assert!(BeamSearch::new(layout, 0).is_err());
    let other = Index::new(SidLayout::new(3, 4, 0).unwrap());
    assert!(beam.search(&other, &mut Flat(layout.mask_bits())).is_err());
}
