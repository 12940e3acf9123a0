//! Exact parallel top-k (the threshold algorithm over per-position postings)
//! against brute-force scoring of every item, on the live index and on a
//! snapshot of it, with and without a filter.

use adasid::decode::parallel::{PositionScores, best_of, brute_force, threshold_only, top_k};
use adasid::snapshot::{self, Snapshot};
use adasid::{SidIndex, SidLayout};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::snapshot::random_index;

/// Scores drawn from a few values (so ties are common) with some −∞.
fn scores(seed: u64, layout: &SidLayout, positions: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x70c);
    (0..positions * layout.mask_bits())
        .map(|_| match rng.gen_range(0..8) {
            0 => f32::NEG_INFINITY,
            v => -(v as f32) * 0.5,
        })
        .collect()
}

/// The definition: every kept item scored, sorted by score (best first,
/// ties by id), the first `k`.
fn sorted_all(
    index: &dyn SidIndex,
    s: &PositionScores<'_>,
    k: usize,
    keep_odd: bool,
) -> Vec<(u32, f32)> {
    let mut all = Vec::new();
    index.for_each_sid(&mut |item, sid| {
        if !keep_odd || item % 2 == 1 {
            all.push((item, s.item_score(sid)));
        }
    });
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check(index: &dyn SidIndex, s: &PositionScores<'_>, k: usize, keep_odd: bool) {
    let odd = |i: u32| i % 2 == 1;
    let keep: Option<&dyn Fn(u32) -> bool> = if keep_odd { Some(&odd) } else { None };
    let fast = threshold_only(index, s, k, keep);
    let slow = brute_force(index, s, k, keep);
    let pairs: Vec<(u32, f32)> = slow.hits.iter().map(|h| (h.item, h.score)).collect();
    assert_eq!(
        pairs,
        sorted_all(index, s, k, keep_odd),
        "brute force, k = {k}"
    );
    assert_eq!(fast.hits, slow.hits, "k = {k}");
    assert_eq!(top_k(index, s, k, keep).hits, slow.hits, "k = {k}");
    assert!(fast.scored <= slow.scored.max(1) * s.positions() as u64);
    for h in &fast.hits {
        assert!(!keep_odd || odd(h.item));
        assert_eq!(h.score, s.item_score(index.sid(h.item).unwrap().0));
    }
}

/// What `for_each_sid` visits: every item of `items(&[])` by ascending
/// id, with its SID.
fn every_sid(index: &dyn SidIndex) -> Vec<(u32, Vec<u16>)> {
    let mut seen = Vec::new();
    index.for_each_sid(&mut |item, sid| seen.push((item, sid.to_vec())));
    let listed: Vec<u32> = index.items(&[]).map_or(Vec::new(), |p| p.to_sorted_vec());
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), listed);
    for (item, sid) in &seen {
        assert_eq!(&index.sid(*item).unwrap().0[..], &sid[..]);
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn threshold_top_k_equals_brute_force_on_index_and_snapshot(
        seed in any::<u64>(),
        levels in 1u32..5,
        k_codes in prop::sample::select(vec![4u32, 8, 255, 256, 300]),
        behavior in 0u32..3,
        ops in 0usize..120,
        positions in 1usize..5,
        k in 0usize..40,
        keep_odd in any::<bool>(),
    ) {
        let layout = SidLayout::new(levels, k_codes, behavior.min(levels)).unwrap();
        let positions = positions.min(levels as usize);
        let (index, keys) = random_index(seed, layout, ops);
        let raw = scores(seed, &layout, positions);
        let s = PositionScores::new(&layout, &raw).unwrap();
        check(&index, &s, k, keep_odd);
        let snap = Snapshot::new(snapshot::to_bytes(&index, &keys).unwrap()).unwrap();
        check(&snap, &s, k, keep_odd);
        prop_assert_eq!(every_sid(&index), every_sid(&snap));
    }

    /// `best_of` (dense per-item scores, as a hybrid's item softmax gives)
    /// against sorting every listed item that has a score, on the live
    /// index's bitmap and a snapshot's list alike.
    #[test]
    fn best_of_dense_scores_equals_sorting_every_listed_item(
        seed in any::<u64>(),
        ops in 0usize..120,
        short in 0usize..20,
        k in 0usize..40,
        keep_odd in any::<bool>(),
    ) {
        let layout = SidLayout::new(2, 8, 0).unwrap();
        let (index, keys) = random_index(seed, layout, ops);
        let listed: Vec<u32> = index.items(&[]).map_or(Vec::new(), |p| p.to_sorted_vec());
        let len = (listed.last().map_or(0, |&m| m as usize + 1)).saturating_sub(short);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dense: Vec<f32> = (0..len).map(|_| -(rng.gen_range(0..6) as f32)).collect();
        let mut want: Vec<(u32, f32)> = listed
            .iter()
            .filter(|&&i| (i as usize) < len && (!keep_odd || i % 2 == 1))
            .map(|&i| (i, dense[i as usize]))
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(k);
        let odd = |i: u32| i % 2 == 1;
        let keep: Option<&dyn Fn(u32) -> bool> = if keep_odd { Some(&odd) } else { None };
        let snap = Snapshot::new(snapshot::to_bytes(&index, &keys).unwrap()).unwrap();
        for view in [&index as &dyn SidIndex, &snap] {
            let got: Vec<(u32, f32)> = match view.items(&[]) {
                Some(items) => best_of(&dense, items, k, keep)
                    .iter()
                    .map(|h| (h.item, h.score))
                    .collect(),
                None => Vec::new(),
            };
            prop_assert_eq!(&got, &want);
        }
    }
}

#[test]
fn scores_must_fit_the_layout_and_be_ordered() {
    let layout = SidLayout::new(2, 4, 0).unwrap();
    assert!(PositionScores::new(&layout, &[0.0; 5]).is_ok());
    assert!(PositionScores::new(&layout, &[0.0; 10]).is_ok());
    for bad in [vec![0.0; 4], vec![0.0; 15], vec![], vec![f32::NAN; 5]] {
        assert!(PositionScores::new(&layout, &bad).is_err(), "{bad:?}");
    }
    assert!(PositionScores::new(&layout, &[f32::INFINITY, 0.0, 0.0, 0.0, 0.0]).is_err());
}

/// On a peaked distribution the threshold stops long before scoring every
/// item: a fixed 4,000-item catalogue, scores falling with the square of the
/// token, so a few tokens per position hold the best items.
#[test]
fn peaked_scores_are_answered_from_a_small_share_of_items() {
    let layout = SidLayout::new(3, 64, 0).unwrap();
    let mut index = adasid::Index::new(layout);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut seen = std::collections::HashSet::new();
    let mut id = 0;
    while id < 4000 {
        let sid: Vec<u16> = (0..3).map(|_| rng.gen_range(0..64)).collect();
        if seen.insert(sid.clone()) {
            let full = [sid, vec![0]].concat();
            index.insert(id, &full, &[]).unwrap();
            id += 1;
        }
    }
    let raw: Vec<f32> = (0..3 * layout.mask_bits())
        .map(|i| -(((i % layout.mask_bits()) as f32).powi(2)))
        .collect();
    let s = PositionScores::new(&layout, &raw).unwrap();
    let fast = threshold_only(&index, &s, 10, None);
    let slow = brute_force(&index, &s, 10, None);
    assert_eq!(fast.hits, slow.hits);
    // 695 is more than 4,000 / 64: the served path hands over to brute force.
    let served = top_k(&index, &s, 10, None);
    assert_eq!(served.hits, slow.hits);
    assert!(served.scored > 4000, "{}", served.scored);
    assert_eq!(slow.scored, 4000);
    // 695 of 4,000 when written; a quarter leaves room for tie order.
    assert!(fast.scored < 1000, "scored {} of 4000", fast.scored);
}
