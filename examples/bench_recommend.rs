//! Latency of `Recommender::recommend` on a trained database (whichever
//! retriever it stores, or `--retriever`): each user's recent history in,
//! the top k out, one call at a time. For the parallel retriever the
//! network's forward pass alone is timed too, so the share of the exact
//! top-k through the index shows.
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
use adasid::generative::{Recommender, RetrieverKind};
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
    /// autoregressive or parallel (default: what `recommend` picks).
    #[arg(long)]
    retriever: Option<String>,
    #[arg(long)]
    json: bool,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let db = Database::open(&a.db)?;
    let kind = match a.retriever.as_deref() {
        None => None,
        Some("autoregressive") => Some(RetrieverKind::Autoregressive),
        Some("parallel") => Some(RetrieverKind::Parallel),
        Some(other) => {
            return Err(adasid::Error::InvalidArgument(format!(
                "unknown retriever {other}"
            )));
        }
    };
    let model = Recommender::from_blobs(&db, db.layout(), candle_core::Device::Cpu, kind)?;
    let keys = read_keys(&a.data, "items.txt")?;
    let seqs = sequences::read(&a.data, "sequences.tsv", keys.len())?;
    let state = db.read();
    let (mut times, mut forward) = (Vec::new(), Vec::new());
    for s in seqs.iter().take(a.users) {
        let Some((history, _)) = Split::Test.cut(s) else {
            continue;
        };
        let ids: Vec<u32> = history
            .iter()
            .filter_map(|&r| state.find(&keys[r as usize]))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let t = Instant::now();
        let hits = model.recommend(&*state, &ids, a.k, None)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(!hits.is_empty() && hits.len() <= a.k);
        if let Recommender::Parallel(m) = &model {
            let t = Instant::now();
            m.history_scores(&*state, &ids)?;
            forward.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    forward.sort_by(f64::total_cmp);
    let value = json!({
        "retriever": model.name(),
        "users": times.len(),
        "k": a.k,
        "items": adasid::SidIndex::len(&*state),
        "positions": db.layout().levels(),
        "p50_us": percentile(&times, 0.5),
        "p90_us": percentile(&times, 0.9),
        "p99_us": percentile(&times, 0.99),
        "forward_p50_us": (!forward.is_empty()).then(|| percentile(&forward, 0.5)),
    });
    if a.json {
        println!("{value}");
    } else {
        println!(
            "{} recommend top-{} over {} items ({} positions), {} users: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs (forward pass alone p50 {:.0} µs)",
            model.name(),
            a.k,
            value["items"],
            value["positions"],
            value["users"],
            value["p50_us"].as_f64().unwrap_or(0.0),
            value["p90_us"].as_f64().unwrap_or(0.0),
            value["p99_us"].as_f64().unwrap_or(0.0),
            value["forward_p50_us"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
