//! `rank-eval`: the ranking table (AUC/GAUC) of a database's SIDs as item
//! features of a DIN-style CTR model, against item ids.

use serde_json::json;

use super::progress::Progress;
use super::{emit, parse_device};
use adasid::database::Database;
use adasid::error::Result;
use adasid::ranking::{AucReport, FeatureSet, ItemFeatures, RankConfig, RankReport, rank_eval};

/// Item features of the ranker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Features {
    /// An embedding per item id (the baseline).
    Id,
    /// The weighted sum of the item's SID token embeddings.
    Sid,
    /// Both, added.
    Both,
}

#[derive(clap::Args, Debug)]
pub struct RankEvalArgs {
    #[command(flatten)]
    common: super::generative::GenData,
    /// Item representation.
    #[arg(long, value_enum, default_value = "sid")]
    features: Features,
    /// Negatives drawn per positive impression.
    #[arg(long, default_value_t = 1)]
    negatives: usize,
    /// Training epochs at most (validation AUC picks the epoch).
    #[arg(long)]
    epochs: Option<usize>,
    /// Impressions per training step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Random seed (initialisation, shuffling and the negatives).
    #[arg(long)]
    seed: Option<u64>,
}

pub fn rank_eval_cmd(a: RankEvalArgs) -> Result<()> {
    let features = match a.features {
        Features::Id => FeatureSet::Id,
        Features::Sid => FeatureSet::Sid,
        Features::Both => FeatureSet::Both,
    };
    let mut cfg = RankConfig::new(features, a.negatives);
    cfg.epochs = a.epochs.unwrap_or(cfg.epochs);
    cfg.batch_size = a.batch_size.unwrap_or(cfg.batch_size);
    if let Some(seed) = a.seed {
        (cfg.seed, cfg.protocol.seed) = (seed, seed);
    }
    let device = parse_device(&a.common.device)?;
    let db = Database::open(&a.common.db)?;
    let (keys, seqs) = a.common.keys_and_sequences()?;
    let items = ItemFeatures::new(&*db.read(), &keys)?;
    let progress = Progress::new("rank-eval");
    let epochs = cfg.epochs;
    let report = rank_eval(&cfg, &items, &seqs, device, |e| {
        let msg = format!(
            "loss {:.4}, valid AUC {:.4} ({:.1}s)",
            e.loss, e.valid_auc, e.seconds
        );
        progress.step(e.epoch, epochs, &msg)
    })?;
    progress.finish();
    let value = json!({
        "features": cfg.features,
        "negatives": cfg.protocol.negatives,
        "seed": cfg.seed,
        "overall": report.overall,
        "quartiles": report.quartiles,
        "history": report.history,
        "train_seconds": report.train_seconds,
        "config": cfg,
    });
    emit(a.common.json, &value, || {
        text(&report, a.features, cfg.protocol.negatives)
    });
    Ok(())
}

fn text(r: &RankReport, features: Features, negatives: usize) -> String {
    let cell = |x: Option<f64>| x.map_or("     -".to_string(), |v| format!("{v:.4}"));
    let row = |label: &str, m: &AucReport| {
        format!(
            "{label:<10} {:>7} {:>7} {:>11} {:>7}\n",
            cell(m.auc),
            cell(m.gauc),
            m.impressions,
            m.users
        )
    };
    let mut out = format!(
        "ranking with {features:?} features, {negatives} negative(s) per positive, {} epochs ({:.1}s):\n{:<10} {:>7} {:>7} {:>11} {:>7}\n",
        r.history.len(),
        r.train_seconds,
        "",
        "AUC",
        "GAUC",
        "impressions",
        "users"
    );
    out += &row("all", &r.overall);
    for (q, m) in r.quartiles.iter().enumerate() {
        out += &row(["Q1 head", "Q2", "Q3", "Q4 tail"][q], m);
    }
    out
}

/// `compare --ranking`: one ranker trained on `db`'s SIDs (or, with
/// [`FeatureSet::Id`], on item ids alone), its report as JSON.
pub(super) fn ranking_row(
    db: &Database,
    keys: &[String],
    seqs: &[Vec<u32>],
    (features, negatives, seed): (FeatureSet, usize, u64),
    device: candle_core::Device,
) -> Result<serde_json::Value> {
    let mut cfg = RankConfig::new(features, negatives);
    (cfg.seed, cfg.protocol.seed) = (seed, seed);
    let items = ItemFeatures::new(&*db.read(), keys)?;
    let name = format!("rank-eval {features:?}");
    let progress = Progress::new(&name);
    let epochs = cfg.epochs;
    let r = rank_eval(&cfg, &items, seqs, device, |e| {
        progress.step(e.epoch, epochs, &format!("valid AUC {:.4}", e.valid_auc))
    })?;
    progress.finish();
    Ok(json!({
        "features": features,
        "overall": r.overall,
        "quartiles": r.quartiles,
        "epochs": r.history.len(),
        "train_seconds": r.train_seconds,
    }))
}

/// The ranking columns of `compare`: AUC and GAUC overall and on the tail
/// quartile, one line per row (`ranking` of each) after the item-id line.
pub(super) fn ranking_table(item_ids: &serde_json::Value, rows: &[serde_json::Value]) -> String {
    let line = |name: &str, r: &serde_json::Value| {
        let f = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
        format!(
            "{name:<19} {:>7} {:>7} {:>8} {:>9}\n",
            f(&r["overall"]["auc"]),
            f(&r["overall"]["gauc"]),
            f(&r["quartiles"][3]["auc"]),
            f(&r["quartiles"][3]["gauc"])
        )
    };
    let mut out = format!(
        "\nranking (DIN-style, SID features):\n{:<19} {:>7} {:>7} {:>8} {:>9}\n",
        "tokenizer", "AUC", "GAUC", "tail AUC", "tail GAUC"
    );
    out += &line("item ids", item_ids);
    for r in rows {
        out += &line(r["name"].as_str().unwrap_or(""), &r["ranking"]);
    }
    out
}
