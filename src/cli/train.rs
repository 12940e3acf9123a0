use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::emit;
use crate::data::embeddings::{self, Dataset};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::stats::{IndexStats, index_stats};
use crate::store::Store;
use crate::tokenizer::adasid::spearman;
use crate::tokenizer::{AdaSid, AdaSidConfig, EpochStats, NormSource, parse_device};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Data folder: items.txt plus one embedding table per modality.
    #[arg(long)]
    data: PathBuf,
    /// Database folder to create.
    #[arg(long)]
    db: PathBuf,
    /// TOML configuration (defaults: the paper's public-dataset settings).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Items per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Codebook size K.
    #[arg(long)]
    k: Option<usize>,
    /// Source of the behavior-evidence signal N_norm.
    #[arg(long, value_parser = ["norm", "popularity"])]
    n_norm: Option<String>,
    /// Ablation: w ≡ 1 (no alignment-strength controller).
    #[arg(long)]
    no_alignment_controller: bool,
    /// Ablation: no behavior–content contrastive loss.
    #[arg(long)]
    no_contrastive: bool,
    /// Ablation: no sparsity regularisation.
    #[arg(long)]
    no_sparsity: bool,
    /// Ablation: no behavior-guided routing (equal weights).
    #[arg(long)]
    no_behavior_routing: bool,
    /// cpu or cuda:N (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// Database with a trained model.
    #[arg(long)]
    db: PathBuf,
    /// Data folder with the items to encode (same file names as at training).
    #[arg(long)]
    data: PathBuf,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn config(a: &TrainArgs) -> Result<AdaSidConfig> {
    let mut cfg = match &a.config {
        Some(p) => AdaSidConfig::from_file(p)?,
        None => AdaSidConfig::default(),
    };
    cfg.epochs = a.epochs.unwrap_or(cfg.epochs);
    cfg.seed = a.seed.unwrap_or(cfg.seed);
    cfg.batch_size = a.batch_size.unwrap_or(cfg.batch_size);
    cfg.codebook_size = a.k.unwrap_or(cfg.codebook_size);
    if let Some(s) = &a.n_norm {
        cfg.n_norm_source = if s == "popularity" {
            NormSource::Popularity
        } else {
            NormSource::Norm
        };
    }
    let ab = &mut cfg.ablation;
    ab.no_alignment_controller |= a.no_alignment_controller;
    ab.no_contrastive |= a.no_contrastive;
    ab.no_sparsity |= a.no_sparsity;
    ab.no_behavior_routing |= a.no_behavior_routing;
    cfg.validate()?;
    Ok(cfg)
}

/// Spearman correlation of behavior norm and popularity, when counts exist.
fn norm_popularity_spearman(data: &Dataset) -> Option<f64> {
    let counts = data.popularity.as_ref()?;
    let norms = data.behavior_norms();
    Some(spearman(&norms, counts))
}

fn progress_bar(epochs: usize, hidden: bool) -> ProgressBar {
    let pb = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(epochs as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg}").expect("valid template"),
    );
    pb
}

fn epoch_message(s: &EpochStats) -> String {
    let min_util = s.utilisation.iter().copied().fold(1.0, f64::min);
    format!(
        "loss {:.3} (recon {:.3} vq {:.3} content {:.3} align {:.3} reg {:.4}) util≥{:.2} active behavior {:.2} (target {:.2}) {:.2}s",
        s.total,
        s.recon,
        s.vq,
        s.content,
        s.align,
        s.reg,
        min_util,
        1.0 - s.masked_share,
        1.0 - s.target_share,
        s.seconds
    )
}

/// Quality figures of a trained database as JSON, shared with `demo`.
pub(crate) fn quality_json(stats: &IndexStats, last: Option<&EpochStats>) -> Value {
    json!({
        "recon_loss": last.map(|s| s.recon),
        "utilisation": stats.positions.iter().map(|p| p.utilisation).collect::<Vec<_>>(),
        "entropy_bits": stats.positions.iter().map(|p| p.entropy_bits).collect::<Vec<_>>(),
        "masked_share": stats.positions.iter().map(|p| p.masked_share).collect::<Vec<_>>(),
        "collision_rate": stats.collision_rate,
    })
}

pub fn train(a: TrainArgs) -> Result<()> {
    let cfg = config(&a)?;
    if Store::exists(&a.db) {
        return Err(Error::AlreadyExists { path: a.db.clone() });
    }
    let device = parse_device(&a.device)?;
    let start = Instant::now();
    let data = embeddings::load(&a.data, &cfg.data)?;
    let rho = norm_popularity_spearman(&data);
    if let Some(r) = rho.filter(|r| *r <= 0.0) {
        eprintln!(
            "warning: behavior-embedding norm and popularity are not positively correlated (Spearman {r:.3}); \
             the norm is a poor evidence signal here, consider --n-norm popularity"
        );
    }
    let pb = progress_bar(cfg.epochs, a.json);
    let (model, history) = AdaSid::train(cfg, &data, device, |s| {
        pb.set_message(epoch_message(s));
        pb.inc(1);
    })?;
    pb.finish_and_clear();
    let items = model.encode(&data)?;
    let (db, _) = Database::create_with(&a.db, model.layout(), &items, model.to_blobs()?)?;
    let stats = index_stats(&db.read().index);
    let last = history.last();
    let seconds_per_epoch = history.iter().map(|s| s.seconds).sum::<f64>() / history.len() as f64;
    let value = json!({
        "items": items.len(),
        "epochs": history.len(),
        "seconds_per_epoch": seconds_per_epoch,
        "seconds": start.elapsed().as_secs_f64(),
        "final": last,
        "history": history,
        "quality": quality_json(&stats, last),
        "norm_popularity_spearman": rho,
    });
    emit(a.json, &value, || {
        let mut out = format!(
            "trained ADA-SID on {} items: {} epochs, {seconds_per_epoch:.2}s per epoch, {:.1}s in all\n",
            items.len(),
            history.len(),
            start.elapsed().as_secs_f64()
        );
        if let Some(s) = last {
            out += &format!("final epoch: {}\n", epoch_message(s));
        }
        if let Some(r) = rho {
            out += &format!("Spearman(behavior norm, popularity) = {r:.3}\n");
        }
        out += &super::stats::render(&stats);
        out += &format!("database written to {}\n", a.db.display());
        out
    });
    Ok(())
}

pub fn encode(a: EncodeArgs) -> Result<()> {
    let start = Instant::now();
    let db = Database::open(&a.db)?;
    let model = AdaSid::from_database(&db, parse_device(&a.device)?)?;
    let data = embeddings::load(&a.data, &model.config().data)?;
    let items = model.encode(&data)?;
    let report = db.upsert(&items)?;
    let value = json!({
        "encoded": items.len(),
        "inserted": report.inserted,
        "updated": report.updated,
        "items": db.read().index.len(),
        "seconds": start.elapsed().as_secs_f64(),
    });
    emit(a.json, &value, || {
        format!(
            "encoded {} items ({} new, {} re-encoded) in {:.2}s\n",
            items.len(),
            report.inserted,
            report.updated,
            start.elapsed().as_secs_f64()
        )
    });
    Ok(())
}
