//! Snapshot benchmarks: write, open and query a snapshot of N synthetic
//! items, against the in-memory index it was written from (the baseline,
//! measured in the same run).
//!
//! ```text
//! cargo run --release --example bench_snapshot -- --items 10000000 --levels 5 --json
//! ```

mod common;

use std::hint::black_box;
use std::time::Instant;

use adasid::data::synthetic;
use adasid::keymap::KeyMap;
use adasid::snapshot::{self, Snapshot};
use adasid::{Index, SidIndex, SidLayout, Token};
use clap::Parser;
use common::median_ns;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    items: usize,
    /// Semantic levels (5: at 10M skewed items, 4 levels put more than K
    /// items on some SIDs).
    #[arg(long, default_value_t = 5)]
    levels: u32,
    #[arg(long, default_value_t = 256)]
    k: u32,
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Folder for the snapshot file (default: the system's temporary folder).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Time per query of `index.items(p)` alone, and with every id read.
fn items_ns(index: &dyn SidIndex, queries: &[Vec<Token>], reps: usize) -> (f64, f64) {
    let locate = median_ns(reps, queries.len(), || {
        for q in queries {
            black_box(index.items(q).map(|p| p.len()));
        }
    });
    let read = median_ns(reps, queries.len(), || {
        for q in queries {
            let sum: u64 = index.items(q).map_or(0, |p| p.iter().map(u64::from).sum());
            black_box(sum);
        }
    });
    (locate, read)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let layout = SidLayout::new(a.levels, a.k, 0)?;
    let t = Instant::now();
    let items = synthetic::items(a.items, &layout, 1);
    let full = synthetic::full_sids(&items);
    let mut index = Index::new(layout);
    index.bulk_load(
        full.iter()
            .enumerate()
            .map(|(id, f)| (id as u32, &f[..], &[][..])),
    )?;
    let mut keys = KeyMap::default();
    for (id, it) in items.iter().enumerate() {
        keys.insert(&it.key, id as u32);
    }
    drop(items);
    let build_seconds = t.elapsed().as_secs_f64();

    let dir = match &a.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let path = dir.path().join("index.snap");
    let t = Instant::now();
    let bytes = snapshot::write(&index, &keys, &path)?;
    let write_seconds = t.elapsed().as_secs_f64();

    let mut opens: Vec<f64> = (0..a.reps)
        .map(|_| {
            let t = Instant::now();
            let s = Snapshot::open(&path).expect("open");
            black_box(s.len());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    opens.sort_by(f64::total_cmp);
    let snap = Snapshot::open(&path)?;
    let t = Instant::now();
    snap.verify()?;
    let verify_seconds = t.elapsed().as_secs_f64();

    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut by_depth = Vec::new();
    for depth in 1..=layout.full_len() {
        // Fewer queries at shallow depths, where each run is long.
        let n = [200, 2000, 20_000, 50_000, 50_000][(depth - 1).min(4)];
        let queries: Vec<Vec<Token>> = (0..n)
            .map(|_| full[rng.gen_range(0..full.len())][..depth].to_vec())
            .collect();
        let mean_items = queries.iter().map(|q| index.count(q)).sum::<u64>() as f64 / n as f64;
        let (mem_locate, mem_read) = items_ns(&index, &queries, a.reps);
        let (snap_locate, snap_read) = items_ns(&snap, &queries, a.reps);
        let words = layout.mask_words();
        let mut mask = vec![0u64; words];
        let mem_mask = median_ns(a.reps, n, || {
            for q in &queries {
                SidIndex::write_mask(&index, q, &mut mask);
                black_box(&mask);
            }
        });
        let snap_mask = median_ns(a.reps, n, || {
            for q in &queries {
                snap.write_mask(q, &mut mask);
                black_box(&mask);
            }
        });
        by_depth.push(json!({
            "depth": depth,
            "mean_items": mean_items,
            "items_locate_ns": { "index": mem_locate, "snapshot": snap_locate, "ratio": snap_locate / mem_locate },
            "items_read_ns": { "index": mem_read, "snapshot": snap_read, "ratio": snap_read / mem_read },
            "mask_ns": { "index": mem_mask, "snapshot": snap_mask, "ratio": snap_mask / mem_mask },
        }));
    }
    let report = json!({
        "items": a.items,
        "levels": a.levels,
        "k": a.k,
        "build_index_seconds": build_seconds,
        "snapshot_bytes": bytes,
        "bytes_per_item": bytes as f64 / a.items as f64,
        "write_seconds": write_seconds,
        "open_ms": { "median": opens[opens.len() / 2], "max": opens[opens.len() - 1] },
        "verify_seconds": verify_seconds,
        "by_depth": by_depth,
    });
    if a.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
