use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::decode::parallel::brute_force;
use crate::index::Index;
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token};
use crate::snapshot::Snapshot;
use crate::view::{BaseBytes, State};

fn kernels() -> Vec<Kernel> {
    let mut all: Vec<Kernel> = vec![portable_sums];
    let best = kernel();
    if best as usize != portable_sums as Kernel as usize {
        all.push(best);
    }
    all
}

#[test]
fn the_vector_kernel_sums_as_the_portable_one_does() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vbmi") {
        assert_eq!(kernels().len(), 2, "the vector kernel is chosen");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for positions in [1, 2, 3, 31, 32, 33, 64] {
        let block: Vec<u8> = (0..positions * BLOCK).map(|_| rng.r#gen()).collect();
        for wide in [false, true] {
            let high: Vec<u64> = match wide {
                true => (0..positions).map(|_| rng.r#gen()).collect(),
                false => Vec::new(),
            };
            let width = BYTE * (1 + wide as usize);
            let tables: Vec<u8> = (0..positions * width).map(|_| rng.r#gen()).collect();
            for cutoff in [
                0,
                1,
                100 * positions as u16,
                127 * positions as u16,
                u16::MAX,
            ] {
                let (mut want, mut got) = ([0u16; BLOCK], [0u16; BLOCK]);
                let m = portable_sums(&block, &high, &tables, positions, cutoff, &mut want);
                for k in kernels() {
                    assert_eq!(k(&block, &high, &tables, positions, cutoff, &mut got), m);
                    assert_eq!(got, want, "{positions} positions, wide {wide}");
                }
            }
        }
    }
}

/// Distinct random SIDs over `levels` positions of K = `k`.
fn random_index(n: usize, levels: u32, k: u32, seed: u64) -> (Index, KeyMap) {
    let layout = SidLayout::new(levels, k, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut index, mut keys) = (Index::new(layout), KeyMap::default());
    let mut id = 0;
    while (id as usize) < n {
        let mut sid: Vec<Token> = (0..levels).map(|_| rng.gen_range(0..k) as Token).collect();
        sid.push(0);
        if index.insert(id * 2 + 1, &sid, &[]).is_ok() {
            keys.insert(&format!("i{id}"), id * 2 + 1);
            id += 1;
        }
    }
    (index, keys)
}

fn snapshot(index: &Index, keys: &KeyMap) -> Snapshot<Vec<u8>> {
    Snapshot::new(crate::snapshot::to_bytes(index, keys).unwrap()).unwrap()
}

/// Gaussian-like logits (a sum of uniforms) plus a boost on one token
/// per position, log-softmaxed: the shape of a parallel retriever's output.
fn model_scores(layout: &SidLayout, positions: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cols = layout.mask_bits();
    let mut out = Vec::new();
    for _ in 0..positions {
        let mut row: Vec<f32> = (0..cols)
            .map(|_| (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum())
            .collect();
        row[rng.gen_range(0..cols - 1)] += 4.0;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        out.extend(row.iter().map(|x| x - lse));
    }
    out
}

#[test]
fn the_scan_proves_and_returns_the_brute_force_answer() {
    for (k_codes, width) in [(256, 256), (300, 512)] {
        proves_brute_force_answers(k_codes, width);
    }
}

fn proves_brute_force_answers(k_codes: u32, width: usize) {
    let (index, keys) = random_index(3000, 8, k_codes, 1);
    let snap = snapshot(&index, &keys);
    let coded = snap.byte_codes().expect("K < 512 is coded");
    assert_eq!(coded.codes.width(), width);
    let odd = |i: ItemId| i % 4 == 1;
    for (seed, positions) in [(1, 8), (2, 2), (3, 5)] {
        let raw = model_scores(snap.layout(), positions, seed);
        let s = PositionScores::new(snap.layout(), &raw).unwrap();
        for k in [1, 10, 100, 2999, 3000, 3100] {
            for keep in [None, Some(&odd as &dyn Fn(ItemId) -> bool)] {
                let want = brute_force(&snap, &s, k, keep);
                for kernel in kernels() {
                    let got = top_k_with(&snap, coded, &s, k, keep, kernel)
                        .unwrap_or_else(|| panic!("unproved: k {k}, {positions} positions"));
                    assert_eq!(got.hits, want.hits, "k {k}, {positions} positions");
                    if k == 10 && keep.is_none() {
                        assert!(got.scored < 300, "{} of 3000 rescored", got.scored);
                    }
                }
            }
        }
    }
}

#[test]
fn an_answer_it_cannot_prove_is_left_to_the_full_scan() {
    let (index, keys) = random_index(500, 3, 200, 2);
    let snap = snapshot(&index, &keys);
    let coded = snap.byte_codes().unwrap();
    // Position 0 ranks the items; at position 1 three in four tokens score
    // −∞, which a byte cannot tell from 0: the items with the best sums
    // are mostly −∞, fewer than k finite ones are left near the top, and
    // the bound cannot be beaten.
    let cols = snap.layout().mask_bits();
    let mut raw = vec![0.0; 3 * cols];
    for c in 0..cols {
        raw[c] = -(c as f32) / 20.0;
        if c < 150 {
            raw[cols + c] = f32::NEG_INFINITY;
        }
    }
    let s = PositionScores::new(snap.layout(), &raw).unwrap();
    assert!(top_k_with(&snap, coded, &s, 5, None, portable_sums).is_none());
    let served = super::super::top_k(&snap, &s, 5, None);
    assert_eq!(served.hits, brute_force(&snap, &s, 5, None).hits);
    // Scores of a few values tie across many items; the answer is still
    // brute force's, ties by id, whichever way it is found.
    let raw: Vec<f32> = (0..3 * snap.layout().mask_bits())
        .map(|i| -((i * 7 % 3) as f32))
        .collect();
    let s = PositionScores::new(snap.layout(), &raw).unwrap();
    for k in [1, 20, 499] {
        let want = brute_force(&snap, &s, k, None).hits;
        if let Some(got) = top_k_with(&snap, coded, &s, k, None, portable_sums) {
            assert_eq!(got.hits, want);
        }
        assert_eq!(super::super::top_k(&snap, &s, k, None).hits, want);
    }
}

/// A database's view: a base snapshot, base items re-encoded or removed
/// since (hidden), and the changes in memory (the rest).
#[test]
fn over_a_base_with_changes_the_hidden_are_skipped_and_the_rest_scored() {
    let (index, keys) = random_index(2000, 4, 64, 3);
    let bytes = crate::snapshot::to_bytes(&index, &keys).unwrap();
    let mut state = State::from_snapshot(Snapshot::new(BaseBytes::Vec(bytes)).unwrap());
    let (mut model, mut rng) = (index.clone(), ChaCha8Rng::seed_from_u64(9));
    for id in (1..4000).step_by(14) {
        state.take(id).unwrap();
        model.remove(id).unwrap();
        if id % 4 == 1 {
            // Re-encoded: the same item under a new SID.
            let sid: Vec<Token> = vec![rng.gen_range(0..64), 63, 63, 63, id as Token];
            state.insert_with_keys(&[(id, &sid, &[])], &[]).unwrap();
            model.insert(id, &sid, &[]).unwrap();
        }
    }
    let coded = state.byte_codes().unwrap();
    assert!(coded.hidden.is_some_and(|h| !h.is_empty()) && coded.rest.is_some());
    let raw = model_scores(state.layout(), 4, 4);
    let s = PositionScores::new(state.layout(), &raw).unwrap();
    for k in [1, 10, 100] {
        let want = brute_force(&model, &s, k, None).hits;
        let got = top_k_with(&state, coded, &s, k, None, kernel()).expect("proved");
        assert_eq!(got.hits, want, "k {k}");
        assert_eq!(super::super::top_k(&state, &s, k, None).hits, want);
    }
}

#[test]
fn the_vector_table_loops_agree_with_the_portable_ones() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for len in [1, 7, 16, 255, 256, 257] {
        let row: Vec<f32> = (0..len)
            .map(|_| match rng.gen_range(0..10) {
                0 => f32::NEG_INFINITY,
                _ => rng.gen_range(-30.0f32..5.0),
            })
            .collect();
        let (lo, hi) = finite_range(&row);
        let (blo, bhi) = finite_range_body(&row);
        if blo <= bhi {
            assert_eq!((lo, hi), (blo as f64, bhi as f64));
        }
        let step = (hi - lo).max(1e-3) / 255.0;
        let (mut got, mut want) = (vec![0u8; len], vec![0u8; len]);
        let over = quantise(&row, lo, step, &mut got);
        assert_eq!(over, quantise_body(&row, lo, step, &mut want));
        assert_eq!(got, want);
        for (&s, &q) in row.iter().zip(&got) {
            if s.is_finite() {
                let off = s as f64 - (lo + q as f64 * step);
                assert!(off.abs() <= step * 0.5 + 1e-9, "{s} as {q}");
            } else {
                assert_eq!(q, 0);
            }
        }
    }
}
