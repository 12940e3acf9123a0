//! Synthetic SIDs shaped like real quantiser output, for demos, tests and
//! benchmarks.
//!
//! Real codebooks are used unevenly and levels are correlated: the token at
//! level `d` depends on the prefix before it. So each level draws a Zipf rank
//! (exponent 0.8 over K codes) and maps it through a permutation seeded by the
//! prefix hash: popular codes differ from parent to parent, as in residual
//! quantisation. Behavior positions are masked (empty token, weight 0) with
//! probability 0.3 and otherwise carry a weight in (0, 1].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::item::NewItem;
use crate::sid::{EMPTY, SidLayout, Token};
use crate::snapshot::fmix64 as mix;

const ZIPF_EXPONENT: f64 = 0.8;
const MASKED_SHARE: f64 = 0.3;

/// Cumulative Zipf distribution over `k` ranks.
fn zipf_cdf(k: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=k)
        .map(|r| {
            acc += 1.0 / (r as f64).powf(ZIPF_EXPONENT);
            acc
        })
        .collect();
    let total = acc;
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `n` items `item0..item{n-1}` with skewed, prefix-correlated SIDs.
pub fn items(n: usize, layout: &SidLayout, seed: u64) -> Vec<NewItem> {
    items_in(0..n, layout, seed)
}

/// Items `item{start}..item{end-1}`, exactly as [`items`] makes them: each
/// item draws from its own random stream, so a catalogue too large to hold
/// can be made a batch at a time (and in parallel).
pub fn items_in(range: std::ops::Range<usize>, layout: &SidLayout, seed: u64) -> Vec<NewItem> {
    let cdf = zipf_cdf(layout.k() as usize);
    let base = ChaCha8Rng::seed_from_u64(seed);
    range
        .into_par_iter()
        .map(|i| {
            let mut rng = base.clone();
            rng.set_stream(i as u64);
            item(i, layout, seed, &cdf, &mut rng)
        })
        .collect()
}

fn item(i: usize, layout: &SidLayout, seed: u64, cdf: &[f64], rng: &mut ChaCha8Rng) -> NewItem {
    let k = layout.k() as usize;
    let first_behavior = layout.first_behavior();
    let mut prefix_hash = seed ^ 0x9e3779b97f4a7c15;
    let mut tokens = Vec::with_capacity(layout.levels());
    let mut weights = Vec::new();
    for pos in 0..layout.levels() {
        let u: f64 = rng.r#gen();
        let rank = cdf.partition_point(|&c| c < u).min(k - 1);
        // rank -> (a * rank + b) mod k with gcd(a, k) = 1 is a permutation of 0..k.
        let mut a = (mix(prefix_hash) % k as u64) as usize;
        while gcd(a, k) != 1 {
            a += 1;
        }
        let b = (mix(prefix_hash ^ 0xabcdef) % k as u64) as usize;
        let token = ((rank * a + b) % k) as Token;
        prefix_hash = mix(prefix_hash ^ (token as u64 + 1).wrapping_mul(0x100000001b3));
        if pos >= first_behavior {
            if rng.gen_bool(MASKED_SHARE) {
                tokens.push(EMPTY);
                weights.push(0.0);
                continue;
            }
            weights.push(rng.gen_range(0.05f32..=1.0));
        }
        tokens.push(token);
    }
    NewItem {
        key: format!("item{i}"),
        tokens,
        weights,
    }
}

/// Full SIDs of `items`: each with the disambiguation token a database would
/// give it (the smallest free one under its semantic SID, in order).
pub fn full_sids(items: &[NewItem]) -> Vec<Vec<Token>> {
    let mut seen: std::collections::HashMap<&[Token], Token> = std::collections::HashMap::new();
    items
        .iter()
        .map(|it| {
            let d = seen.entry(&it.tokens[..]).or_insert(0);
            let mut f = it.tokens.clone();
            f.push(*d);
            *d += 1;
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_skewed() {
        let layout = SidLayout::new(4, 64, 1).unwrap();
        let a = items(2000, &layout, 7);
        assert_eq!(a, items(2000, &layout, 7));
        for it in &a {
            layout.canonical(&it.tokens, &it.weights).unwrap();
        }
        let mut counts = vec![0usize; 64];
        a.iter().for_each(|it| counts[it.tokens[0] as usize] += 1);
        counts.sort_unstable();
        assert!(
            counts[63] > 4 * counts[32].max(1),
            "level 1 should be skewed: {counts:?}"
        );
        let masked = a.iter().filter(|it| it.tokens[3] == EMPTY).count();
        assert!((400..800).contains(&masked), "{masked}");
    }

    #[test]
    fn a_range_is_a_slice_of_the_whole() {
        let layout = SidLayout::new(5, 32, 2).unwrap();
        let whole = items(1000, &layout, 3);
        assert_eq!(items_in(400..700, &layout, 3), whole[400..700]);
        assert_ne!(items(1000, &layout, 4), whole);
    }
}
