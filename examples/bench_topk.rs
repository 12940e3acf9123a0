//! Exact parallel top-k through the index against scoring every item, in
//! the same run on the same queries, over a snapshot of the items (what a
//! database serves from): `top_k` scans the snapshot's byte codes (built on
//! first use, timed apart) where the layout allows, else runs the threshold
//! algorithm over per-position postings.
//!
//! ```text
//! cargo run --release --example bench_topk -- --items 1000000 --positions 32 --k 256 --json
//! ```
//!
//! `--threshold-only` also times the threshold algorithm alone (slow over
//! many flat positions: seconds per query at 1M × 32).
//!
//! Items get uniform random tokens. Each query imitates a parallel
//! retriever's output for a user whose next item is a random catalogue
//! item: every position's logits are Gaussian noise (σ = `noise`) plus
//! `boost` on that item's token, log-softmaxed per position. Both methods
//! must return identical rankings; the run checks that for every query.

use std::time::Instant;

use adasid::decode::parallel::{PositionScores, brute_force, threshold_only, top_k};
use adasid::keymap::KeyMap;
use adasid::snapshot::{self, Snapshot};
use adasid::{Index, SidIndex, SidLayout, Token};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    #[arg(long, default_value_t = 32)]
    positions: u32,
    #[arg(long, default_value_t = 256)]
    k: u32,
    /// Results per query.
    #[arg(long, default_value_t = 100)]
    top: usize,
    #[arg(long, default_value_t = 50)]
    queries: usize,
    #[arg(long, default_value_t = 1.0)]
    noise: f32,
    #[arg(long, default_value_t = 4.0)]
    boost: f32,
    /// Also time the threshold algorithm alone.
    #[arg(long)]
    threshold_only: bool,
    #[arg(long)]
    json: bool,
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let (u, v): (f32, f32) = (rng.gen_range(f32::EPSILON..1.0), rng.r#gen());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn query(layout: &SidLayout, target: &[Token], a: &Args, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let cols = layout.mask_bits();
    let mut out = Vec::with_capacity(a.positions as usize * cols);
    for p in 0..a.positions as usize {
        let mut row: Vec<f32> = (0..cols).map(|_| a.noise * gauss(rng)).collect();
        row[layout.mask_bit(target[p])] += a.boost;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        out.extend(row.iter().map(|x| x - lse));
    }
    out
}

fn median(v: Vec<f64>) -> f64 {
    quantile(&v, 0.5)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let layout = SidLayout::new(a.positions, a.k, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let start = Instant::now();
    let mut index = Index::new(layout);
    let sids: Vec<Vec<Token>> = (0..a.items)
        .map(|_| {
            let mut s: Vec<Token> = (0..a.positions)
                .map(|_| rng.gen_range(0..a.k) as Token)
                .collect();
            s.push(0);
            s
        })
        .collect();
    let mut keys = KeyMap::default();
    for (i, s) in sids.iter().enumerate() {
        // A repeated random SID (vanishingly rare) is simply left out.
        if index.insert(i as u32, s, &[]).is_ok() {
            keys.insert(&format!("i{i}"), i as u32);
        }
    }
    let snap = Snapshot::new(snapshot::to_bytes(&index, &keys)?)?;
    let build_s = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let codes = snap.byte_codes().map(|c| c.codes.heap_bytes());
    let codes_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut fast, mut slow, mut scored) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pure_times, mut pure_scored) = (Vec::new(), Vec::new());
    for _ in 0..a.queries {
        let target = &sids[rng.gen_range(0..a.items)];
        let raw = query(&layout, target, &a, &mut rng);
        let s = PositionScores::new(&layout, &raw)?;
        let t = Instant::now();
        let got = top_k(&snap, &s, a.top, None);
        fast.push(t.elapsed().as_secs_f64());
        if a.threshold_only {
            let t = Instant::now();
            let pure = threshold_only(&index, &s, a.top, None);
            pure_times.push(t.elapsed().as_secs_f64());
            assert_eq!(pure.hits, got.hits);
            pure_scored.push(pure.scored as f64);
        }
        let t = Instant::now();
        let want = brute_force(&snap, &s, a.top, None);
        slow.push(t.elapsed().as_secs_f64());
        assert_eq!(got.hits, want.hits, "top_k must equal brute force");
        scored.push(got.scored as f64);
    }
    let p90 = quantile(&fast, 0.9);
    let (f, b) = (median(fast), median(slow));
    let pure = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
    let value = json!({
        "items": index.len(),
        "positions": a.positions,
        "k": a.k,
        "top": a.top,
        "queries": a.queries,
        "build_seconds": build_s,
        "codes_build_ms": codes_ms,
        "codes_bytes": codes,
        "top_k_median_ms": f * 1e3,
        "top_k_p90_ms": p90 * 1e3,
        "threshold_only_median_ms": pure(pure_times).map(|t| t * 1e3),
        "threshold_only_median_items_scored": pure(pure_scored),
        "brute_force_median_ms": b * 1e3,
        "speedup": b / f,
        "median_items_scored": median(scored),
    });
    if a.json {
        println!("{value}");
    } else {
        println!(
            "{} items, {} positions × K {}: top-{} median {:.3} ms (top_k) vs {:.3} ms (every item), {:.1}×; {} items scored (median)",
            index.len(),
            a.positions,
            a.k,
            a.top,
            f * 1e3,
            b * 1e3,
            b / f,
            value["median_items_scored"]
        );
    }
    Ok(())
}
