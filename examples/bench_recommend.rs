//! Latency of `ParallelRetriever::recommend` on a trained database: each
//! user's recent history in, the top k out (the network's forward pass and
//! the exact top-k through the index), one call at a time.
//!
//! ```text
//! adasid gen-train --retriever parallel --db opq.db --data ../shared/data/beauty
//! cargo run --release --example bench_recommend -- --db opq.db --data ../shared/data/beauty --json
//! ```

use std::path::PathBuf;
use std::time::Instant;

use adasid::Database;
use adasid::data::embeddings::read_keys;
use adasid::eval::{Split, sequences};
use adasid::generative::ParallelRetriever;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 100)]
    k: usize,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long)]
    json: bool,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let db = Database::open(&a.db)?;
    let model = ParallelRetriever::from_blobs(&db, db.layout(), candle_core::Device::Cpu)?;
    let keys = read_keys(&a.data, "items.txt")?;
    let seqs = sequences::read(&a.data, "sequences.tsv", keys.len())?;
    let state = db.read();
    let mut times = Vec::new();
    for s in seqs.iter().take(a.users) {
        let Some((history, _)) = Split::Test.cut(s) else {
            continue;
        };
        let ids: Vec<u32> = history
            .iter()
            .filter_map(|&r| state.keys.id(&keys[r as usize]))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let t = Instant::now();
        let hits = model.recommend(&*state, &ids, a.k, None)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(hits.len(), a.k.min(state.index.len() as usize));
    }
    times.sort_by(f64::total_cmp);
    let value = json!({
        "users": times.len(),
        "k": a.k,
        "items": state.index.len(),
        "positions": db.layout().levels(),
        "p50_us": percentile(&times, 0.5),
        "p90_us": percentile(&times, 0.9),
        "p99_us": percentile(&times, 0.99),
    });
    if a.json {
        println!("{value}");
    } else {
        println!(
            "recommend top-{} over {} items ({} positions), {} users: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs",
            a.k,
            value["items"],
            value["positions"],
            value["users"],
            value["p50_us"].as_f64().unwrap_or(0.0),
            value["p90_us"].as_f64().unwrap_or(0.0),
            value["p99_us"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
