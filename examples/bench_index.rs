//! Index micro-benchmarks over N synthetic, skewed SIDs, with a plain
//! `HashMap<prefix, tokens>` baseline measured in the same run.
//!
//! ```text
//! cargo run --release --example bench_index -- --items 1000000 --levels 4 --k 256 --json
//! ```

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use adasid::data::synthetic;
use adasid::{Database, Index, SidIndex, SidLayout, Token};
use clap::Parser;
use common::median_ns;
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
    /// Behavior positions among the levels.
    #[arg(long, default_value_t = 0)]
    behavior: u32,
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 11)]
    reps: usize,
    #[arg(long)]
    json: bool,
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let layout = SidLayout::new(a.levels, a.k, a.behavior)?;
    let items = synthetic::items(a.items, &layout, 1);
    let full = synthetic::full_sids(&items);

    // In-memory insert throughput.
    let mut index = Index::new(layout);
    let t = Instant::now();
    for (id, (f, it)) in full.iter().zip(&items).enumerate() {
        index.insert(id as u32, f, &it.weights)?;
    }
    let insert_items_per_s = a.items as f64 / t.elapsed().as_secs_f64();
    // Bulk load (what opening a database does).
    let mut bulk = Index::new(layout);
    let t = Instant::now();
    bulk.bulk_load(
        full.iter()
            .zip(&items)
            .enumerate()
            .map(|(id, (f, it))| (id as u32, &f[..], &it.weights[..])),
    )?;
    let bulk_load_items_per_s = a.items as f64 / t.elapsed().as_secs_f64();
    drop(bulk);

    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let queries = 100_000.min(a.items * 4);
    let pick = |rng: &mut ChaCha8Rng, len: usize| -> Vec<Token> {
        full[rng.gen_range(0..full.len())][..len].to_vec()
    };

    let items_prefix_ns: Vec<f64> = (1..=layout.levels())
        .map(|len| {
            let qs: Vec<Vec<Token>> = (0..queries).map(|_| pick(&mut rng, len)).collect();
            median_ns(a.reps, qs.len(), || {
                for q in &qs {
                    black_box(index.items(q));
                }
            })
        })
        .collect();

    let next_qs: Vec<Vec<Token>> = (0..queries)
        .map(|_| {
            let len = rng.gen_range(0..layout.levels());
            pick(&mut rng, len)
        })
        .collect();
    let next_tokens_ns = median_ns(a.reps, next_qs.len(), || {
        for q in &next_qs {
            black_box(index.next_tokens(q).map(|t| t.len()));
        }
    });

    // One beam step of 100 beams at a random depth, as in constrained decoding.
    let words = index.mask_words();
    let steps: Vec<Vec<Vec<Token>>> = (0..1000)
        .map(|_| {
            let len = rng.gen_range(0..layout.levels());
            (0..100).map(|_| pick(&mut rng, len)).collect()
        })
        .collect();
    let mut mask = vec![0u64; 100 * words];
    let allowed_mask_100_beams_ns = median_ns(a.reps, steps.len(), || {
        for beams in &steps {
            index.allowed_mask(beams, &mut mask).unwrap();
            black_box(&mask);
        }
    });

    // Baseline: a plain hash map from prefix to its sorted next-token list.
    let mut baseline: HashMap<Vec<Token>, Vec<Token>> = HashMap::new();
    for f in &full {
        for len in 0..f.len() {
            let e = baseline.entry(f[..len].to_vec()).or_default();
            if let Err(i) = e.binary_search(&f[len]) {
                e.insert(i, f[len]);
            }
        }
    }
    let baseline_next_ns = median_ns(a.reps, next_qs.len(), || {
        for q in &next_qs {
            black_box(baseline.get(q).map(|t| t.len()));
        }
    });
    let baseline_mask_ns = median_ns(a.reps, steps.len(), || {
        for beams in &steps {
            for (b, row) in beams.iter().zip(mask.chunks_exact_mut(words)) {
                row.fill(0);
                if let Some(ts) = baseline.get(b) {
                    for &t in ts {
                        let bit = layout.mask_bit(t);
                        row[bit / 64] |= 1 << (bit % 64);
                    }
                }
            }
            black_box(&mask);
        }
    });
    drop(baseline);

    // On disk: ingest through the database, then time a cold open (index rebuild).
    let dir = std::env::temp_dir().join(format!("adasid-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    {
        let db = Database::create(&dir, layout)?;
        // Published for other processes once, as a bulk load should.
        db.publish_each_commit(false);
        for batch in items.chunks(100_000) {
            db.upsert(batch)?;
        }
        db.publish()?;
    }
    let ingest_items_per_s = a.items as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let db = Database::open(&dir)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let bytes = db.size_on_disk()?;
    let key_bytes: usize = items.iter().map(|it| it.key.len()).sum();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);

    let value = json!({
        "items": a.items, "levels": a.levels, "k": a.k,
        "items_prefix_ns": items_prefix_ns,
        "next_tokens_ns": next_tokens_ns,
        "allowed_mask_100_beams_ns": allowed_mask_100_beams_ns,
        "insert_items_per_s": insert_items_per_s,
        "bulk_load_items_per_s": bulk_load_items_per_s,
        "ingest_items_per_s": ingest_items_per_s,
        "open_ms": open_ms,
        "bytes_on_disk": bytes,
        "bytes_per_item": (bytes as f64 - key_bytes as f64) / a.items as f64,
        "trie_nodes": index.node_count(),
        "baseline_hashmap": {
            "next_tokens_ns": baseline_next_ns,
            "allowed_mask_100_beams_ns": baseline_mask_ns,
            "next_tokens_speedup": baseline_next_ns / next_tokens_ns,
            "allowed_mask_speedup": baseline_mask_ns / allowed_mask_100_beams_ns,
        },
    });
    if a.json {
        println!("{value}");
    } else {
        println!("{}", serde_json::to_string_pretty(&value).unwrap());
    }
    Ok(())
}
