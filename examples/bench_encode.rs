//! Batch-encoding throughput of the ADA-SID encoder on synthetic items with
//! Beauty's input widths (two 384-wide content tables, 64-wide behavior).
//!
//! ```text
//! cargo run --release --example bench_encode -- --items 200000 --json
//! ```

use std::time::Instant;

use adasid::data::catalog::{CatalogSpec, generate};
use adasid::tokenizer::{AdaSid, AdaSidConfig};
use candle_core::Device;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    items: usize,
    /// Optional TOML config (defaults otherwise).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    #[arg(long)]
    json: bool,
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let spec = |items, seed| CatalogSpec {
        items,
        topics: 64,
        content_dims: vec![384, 384],
        behavior_dim: 64,
        seed,
    };
    let mut cfg = match &a.config {
        Some(p) => AdaSidConfig::from_file(p)?,
        None => AdaSidConfig::default(),
    };
    cfg.epochs = 1;
    let (model, _) = AdaSid::train(cfg, &generate(&spec(4096, 1)), Device::Cpu, |_| {})?;
    let data = generate(&spec(a.items, 2));
    let t = Instant::now();
    let items = model.encode(&data)?;
    let seconds = t.elapsed().as_secs_f64();
    let value = json!({ "items": items.len(), "seconds": seconds, "items_per_s": items.len() as f64 / seconds });
    if a.json {
        println!("{value}")
    } else {
        println!("{}", serde_json::to_string_pretty(&value).unwrap())
    }
    Ok(())
}
