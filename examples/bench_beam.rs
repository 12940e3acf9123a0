//! Cost of constraining beam search: decoding steps of 100 beams with and
//! without the trie mask (same scorer), and the mask alone.
//!
//! ```text
//! cargo run --release --example bench_beam -- --items 1000000 --beams 100 --json
//! ```
//!
//! The scorer is the output layer of a small decoder: a `beams × hidden`
//! state times a `hidden × (K+1)` matrix (one single-thread gemm), then
//! log-softmax per row: the cheapest realistic model step, so the share
//! reported is an upper bound for a real decoder.

use std::time::Instant;

use adasid::data::synthetic;
use adasid::decode::{BeamSearch, StepScorer};
use adasid::{Index, SidIndex, SidLayout, Token};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    #[arg(long, default_value_t = 4)]
    levels: u32,
    #[arg(long, default_value_t = 256)]
    k: u32,
    #[arg(long, default_value_t = 100)]
    beams: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    #[arg(long, default_value_t = 200)]
    searches: usize,
    #[arg(long)]
    json: bool,
}

/// `log_softmax(states · W)` (one gemm, single thread) with fixed per-beam
/// states: a stand-in for a decoder's output layer.
struct OutputLayer {
    hidden: usize,
    vocab: usize,
    states: Vec<f32>,
    weights: Vec<f32>,
}

impl StepScorer for OutputLayer {
    fn score(
        &mut self,
        _: &[Token],
        depth: usize,
        beams: usize,
        out: &mut [f32],
    ) -> adasid::Result<()> {
        let (h, v) = (self.hidden, self.vocab);
        let states = &self.states[depth * h..(depth + beams) * h];
        // SAFETY: out is beams×v, states beams×h, weights h×v, all row-major and live.
        unsafe {
            gemm::gemm(
                beams,
                v,
                h,
                out.as_mut_ptr(),
                1,
                v as isize,
                false,
                states.as_ptr(),
                1,
                h as isize,
                self.weights.as_ptr(),
                1,
                v as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for row in out[..beams * v].chunks_exact_mut(v) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
            row.iter_mut().for_each(|x| *x -= lse);
        }
        Ok(())
    }
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let layout = SidLayout::new(a.levels, a.k, 0)?;
    let items = synthetic::items(a.items, &layout, 7);
    let full = synthetic::full_sids(&items);
    let mut index = Index::new(layout);
    index.bulk_load(
        full.iter()
            .zip(&items)
            .enumerate()
            .map(|(i, (f, it))| (i as u32, &f[..], &it.weights[..])),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let vocab = layout.mask_bits();
    let mut scorer = OutputLayer {
        hidden: a.hidden,
        vocab,
        states: (0..(layout.full_len() + a.beams) * a.hidden)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect(),
        weights: (0..a.hidden * vocab)
            .map(|_| rng.gen_range(-0.3..0.3))
            .collect(),
    };
    let mut beam = BeamSearch::new(layout, a.beams)?;
    let steps = layout.full_len();
    let time = |beam: &mut BeamSearch,
                scorer: &mut OutputLayer,
                constrained: bool|
     -> adasid::Result<f64> {
        let t = Instant::now();
        for _ in 0..a.searches {
            beam.start();
            for depth in 0..steps {
                beam.step(
                    constrained.then_some(&index as &dyn SidIndex),
                    scorer,
                    depth,
                )?;
            }
        }
        Ok(t.elapsed().as_secs_f64() * 1e9 / (a.searches * steps) as f64)
    };
    // Alternate to share any drift; best of three each.
    let (mut with, mut without) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        with = with.min(time(&mut beam, &mut scorer, true)?);
        without = without.min(time(&mut beam, &mut scorer, false)?);
    }
    // The mask alone, over the beams a constrained search holds at each depth.
    let mut prefixes: Vec<Vec<Token>> = Vec::new();
    beam.start();
    for depth in 0..steps - 1 {
        beam.step(Some(&index), &mut scorer, depth)?;
        prefixes.push(beam.prefixes().to_vec());
    }
    let mut masks = vec![0u64; a.beams * layout.mask_words()];
    let t = Instant::now();
    let rounds = a.searches * 10;
    for _ in 0..rounds {
        for (d, p) in prefixes.iter().enumerate() {
            let n = p.len() / (d + 1);
            index.allowed_mask_flat(p, d + 1, n, &mut masks[..n * layout.mask_words()])?;
        }
    }
    let mask = t.elapsed().as_secs_f64() * 1e9 / (rounds * prefixes.len()) as f64;
    let value = json!({
        "items": a.items, "levels": a.levels, "k": a.k, "beams": a.beams, "hidden": a.hidden,
        "step_constrained_ns": with,
        "step_unconstrained_ns": without,
        "mask_ns": mask,
        "overhead_share": (with - without) / with,
        "mask_share": mask / with,
    });
    if a.json {
        println!("{value}")
    } else {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"))
    }
    Ok(())
}
