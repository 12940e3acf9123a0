use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use super::emit;
use super::query::{candidate_rows, candidate_table, item_json};
use super::stats::render;
use super::train::{quality_json, train_showing_progress, warn_collapsed};
use adasid::data::catalog::{CatalogSpec, generate};
use adasid::data::embeddings::write;
use candle_core::Device;

use adasid::error::{Error, Result};
use adasid::index::{CandidateMode, CandidateQuery, SidIndex};
use adasid::sid::format_tokens;
use adasid::stats::index_stats;
use adasid::tokenizer::{AdaSidConfig, Tokenizer, TokenizerConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Items in the synthetic catalogue.
    #[arg(long, default_value_t = 20_000)]
    items: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Keep the database (DIR/db) and the generated data folder (DIR/data) here
    /// (default: a temporary folder, removed afterwards).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Random seed of the catalogue and the training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Removes the temporary folder when the demo ends, however it ends.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.items < 2 || a.epochs == 0 {
        return Err(Error::InvalidArgument(
            "--items must be at least 2 and --epochs at least 1".into(),
        ));
    }
    let (root, _cleanup) = match &a.out {
        Some(p) => (p.clone(), TempDir(None)),
        None => {
            let p = std::env::temp_dir().join(format!("adasid-demo-{}", std::process::id()));
            (p.clone(), TempDir(Some(p)))
        }
    };
    let db_path = root.join("db");
    if db_path.exists() {
        return Err(Error::AlreadyExists { path: db_path });
    }
    let start = Instant::now();
    let data = generate(&CatalogSpec {
        items: a.items,
        seed: a.seed,
        ..CatalogSpec::default()
    });
    let cfg = AdaSidConfig {
        epochs: a.epochs,
        seed: a.seed,
        ..AdaSidConfig::default()
    };
    if a.out.is_some() {
        write(&root.join("data"), &data, &cfg.data)?;
    }
    let config = TokenizerConfig::AdaSid(cfg);
    let name = "training ADA-SID, epoch";
    let built = train_showing_progress(&db_path, name, &config, (&data, &[]), Device::Cpu)?;
    let train_s = start.elapsed().as_secs_f64();
    let db = built.db;
    let Tokenizer::AdaSid(model) = &built.trained.tokenizer else {
        unreachable!("an ADA-SID configuration trains ADA-SID")
    };
    let epochs = built.trained.history.as_array().map_or(0, |h| h.len());
    let state = db.read();
    let index: &dyn SidIndex = &*state;

    // Show a popular item: the catalogue's most interacted-with one.
    let popularity = data.popularity.as_ref().expect("synthetic counts");
    let top = (0..data.len())
        .max_by(|&x, &y| popularity[x].total_cmp(&popularity[y]))
        .expect("items");
    let id = state.id(&data.keys[top])?;
    let (sid, weights) = index.sid(id).expect("just stored");
    let prefix = &sid[..2];
    let under: Vec<Value> = index
        .items(prefix)
        .map(|p| p.iter().take(5).map(|i| item_json(&*state, i)).collect())
        .unwrap_or_default();
    let next = index.next_tokens(prefix).unwrap_or_default();
    let query = CandidateQuery {
        tokens: sid,
        weights,
        k: 5,
        mode: CandidateMode::Prefix,
        exclude: Some(id),
    };
    let by_prefix = candidate_rows(&*state, &query);
    let by_overlap = candidate_rows(
        &*state,
        &CandidateQuery {
            mode: CandidateMode::Overlap,
            ..query
        },
    );
    let stats = index_stats(index);
    warn_collapsed(&stats);
    let last = built.trained.adasid_last.as_ref();
    let total_s = start.elapsed().as_secs_f64();
    let value = json!({
        "items": built.report.inserted,
        "epochs": epochs,
        "train_seconds": train_s,
        "seconds": total_s,
        "database": a.out.as_ref().map(|_| db_path.display().to_string()),
        "item": item_json(&*state, id),
        "prefix": super::tokens_json(prefix),
        "prefix_count": index.count(prefix),
        "prefix_items": under,
        "next_tokens": super::tokens_json(&next),
        "candidates_prefix": by_prefix,
        "candidates_overlap": by_overlap,
        "quality": quality_json(&stats, last),
        "stats": stats,
    });
    emit(a.json, &value, || {
        let l = model.layout();
        let mut out = format!(
            "Trained ADA-SID on {} synthetic items ({} epochs, {train_s:.1}s) and indexed them ({total_s:.1}s in all).\n\
             Each SID has {} positions from codebooks of K = {}: {} shared, {} per content modality, and {} behavior\n\
             positions whose routing weight can be exactly 0 ('-', a masked behavior SID), plus a disambiguation token.\n\n",
            built.report.inserted,
            epochs,
            l.levels,
            l.codebook_size,
            model.config().shared_experts,
            model.config().content_experts,
            l.behavior
        );
        out += &format!(
            "The most popular item, {}, has SID [{}]\n  routing weights {:?}\n\n",
            data.keys[top],
            format_tokens(sid),
            weights
        );
        out += &format!(
            "{} items live under its 2-token prefix [{}]; the first few:\n",
            index.count(prefix),
            format_tokens(prefix)
        );
        for v in &under {
            out += &format!(
                "  {:<12} {}\n",
                v["key"].as_str().unwrap_or(""),
                v["sid"].as_str().unwrap_or("")
            );
        }
        out += &format!(
            "\nValid next tokens after [{}] (all a constrained beam may write there): {}\n",
            format_tokens(prefix),
            format_tokens(&next)
        );
        out += "\n";
        out += &candidate_table(
            "Candidates by hierarchical prefix backoff (longest shared prefix first):",
            &by_prefix,
        );
        out += "\n";
        out += &candidate_table(
            "Candidates by position overlap (shared positions, behavior ones weighted by routing):",
            &by_overlap,
        );
        if let Some(s) = last {
            out += &format!(
                "\nQuality: reconstruction loss {:.3}, masked behavior SIDs {:.2} (target {:.2})\n",
                s.recon, s.masked_share, s.target_share
            );
        }
        out += &render(&stats);
        if a.out.is_some() {
            out += &format!(
                "\nKept: database {0}/db, data folder {0}/data. Try:\n  adasid lookup --db {0}/db --prefix {1}\n  adasid similar --db {0}/db --item {2} --mode overlap\n",
                root.display(),
                format_tokens(prefix),
                data.keys[top]
            );
        }
        out
    });
    Ok(())
}
