//! `eval` (one database) and `compare` (every tokenizer on one data folder).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::ranking::{ranking_row, ranking_table};
use super::train::train_showing_progress;
use super::{emit, parse_device};
use adasid::data::embeddings;
use adasid::database::Reader;
use adasid::error::{Error, Result};
use adasid::eval::{self, EvalOptions, EvalReport, RankMetrics, RetrievalReport, Split, sequences};
use adasid::ranking::FeatureSet;
use adasid::tokenizer::{
    AdaSidConfig, Inputs, NormSource, OpqConfig, RqKmeansConfig, RqVaeConfig, TokenizerConfig,
};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Database (trained with `train`, or imported with `ingest-tokens`).
    #[arg(long)]
    db: PathBuf,
    /// Data folder (embeddings the tokenizer reads, and the sequences).
    #[arg(long)]
    data: PathBuf,
    /// Sequences file in the data folder (`user<TAB>item item …`, item = row of items.txt).
    #[arg(long, default_value = "sequences.tsv")]
    sequences: String,
    /// Item keys in the data folder (used for imported SIDs; a trained
    /// tokenizer names its own).
    #[arg(long, default_value = "items.txt")]
    items: String,
    /// Held-out target: the last item (test) or the one before it (valid).
    #[arg(long, default_value = "test", value_parser = ["test", "valid"])]
    split: String,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Data folder (embeddings and sequences).
    #[arg(long)]
    data: PathBuf,
    /// One seed for every tokenizer.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep each tokenizer's database in this folder (one subfolder per row).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Epochs for the trained tokenizers (default: each one's own default).
    #[arg(long)]
    epochs: Option<usize>,
    /// Only these rows (comma-separated names, as printed).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Sequences file in the data folder.
    #[arg(long, default_value = "sequences.tsv")]
    sequences: String,
    /// Also train a DIN-style ranker per row on its SIDs, and one on item
    /// ids, and report AUC/GAUC (see `rank-eval`).
    #[arg(long)]
    ranking: bool,
    /// Negatives per positive impression of the ranking columns.
    #[arg(long, default_value_t = 1)]
    negatives: usize,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Recall and NDCG at every cutoff, overall and per popularity quartile.
pub(super) fn quartile_table(
    title: &str,
    overall: &RankMetrics,
    quartiles: &[RankMetrics],
    skipped: usize,
) -> String {
    let row = |label: &str, m: &RankMetrics| {
        let cells: String = m
            .recall
            .iter()
            .chain(&m.ndcg)
            .map(|x| format!(" {x:>7.4}"))
            .collect();
        format!("{label:<10}{cells} {:>7}\n", m.users)
    };
    let heads: String = ["R", "N"]
        .iter()
        .flat_map(|k| {
            overall
                .cutoffs
                .iter()
                .map(move |c| format!(" {:>7}", format!("{k}@{c}")))
        })
        .collect();
    let mut out = format!("{title}\n{:<10}{heads} {:>7}\n", "", "users");
    out += &row("all", overall);
    for (q, m) in quartiles.iter().enumerate() {
        out += &row(["Q1 head", "Q2", "Q3", "Q4 tail"][q], m);
    }
    if skipped > 0 {
        out += &format!("({skipped} users skipped: query or target not in the database)\n");
    }
    out
}

fn retrieval_table(r: &RetrievalReport) -> String {
    quartile_table(
        &format!("{} mode:", r.mode),
        &r.overall,
        &r.quartiles,
        r.skipped,
    )
}

fn report_text(r: &EvalReport) -> String {
    let q = &r.quantization;
    let recon = match &q.recon {
        Some(e) => format!(
            "reconstruction error content {:.4}{}, ",
            e.content,
            e.behavior
                .map_or(String::new(), |b| format!(", behavior {b:.4}"))
        ),
        None => String::new(),
    };
    let mut out = format!(
        "{} SIDs of {} items: {recon}collisions {:.4}\n",
        r.tokenizer, r.items, q.stats.collision_rate
    );
    for p in &q.stats.positions {
        out += &format!(
            "  position {}: utilisation {:.3}, entropy {:.2} bits{}\n",
            p.position,
            p.utilisation,
            p.entropy_bits,
            if p.behavior {
                format!(", masked {:.3}", p.masked_share)
            } else {
                String::new()
            }
        );
    }
    for m in &r.retrieval {
        out += &retrieval_table(m);
    }
    out
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let db = Reader::open(&a.db)?;
    let opts = EvalOptions {
        sequences: a.sequences.clone(),
        items: a.items.clone(),
        split: Split::from_name(&a.split).unwrap_or(Split::Test),
    };
    let report = eval::evaluate(&db, &a.data, &opts, parse_device(&a.device)?)?;
    emit(a.json, &json!(report), || report_text(&report));
    Ok(())
}

/// The rows of `compare`: every tokenizer and ablation, one seed.
fn variants(seed: u64, epochs: Option<usize>) -> Vec<(&'static str, TokenizerConfig)> {
    let adasid = |f: fn(&mut AdaSidConfig)| {
        let mut c = AdaSidConfig {
            seed,
            ..Default::default()
        };
        c.epochs = epochs.unwrap_or(c.epochs);
        f(&mut c);
        TokenizerConfig::AdaSid(c)
    };
    let rq_vae = |base: RqVaeConfig, inputs| {
        let mut c = RqVaeConfig {
            seed,
            inputs,
            ..base
        };
        c.epochs = epochs.unwrap_or(c.epochs);
        TokenizerConfig::RqVae(c)
    };
    let opq = |subspaces| {
        TokenizerConfig::Opq(OpqConfig {
            seed,
            subspaces,
            ..Default::default()
        })
    };
    vec![
        ("adasid", adasid(|_| {})),
        (
            "adasid-w1",
            adasid(|c| c.ablation.no_alignment_controller = true),
        ),
        (
            "adasid-no-align",
            adasid(|c| c.ablation.no_contrastive = true),
        ),
        (
            "adasid-no-sparsity",
            adasid(|c| c.ablation.no_sparsity = true),
        ),
        (
            "adasid-no-routing",
            adasid(|c| c.ablation.no_behavior_routing = true),
        ),
        (
            "adasid-pop",
            adasid(|c| c.n_norm_source = NormSource::Popularity),
        ),
        (
            "rq-kmeans",
            TokenizerConfig::RqKmeans(RqKmeansConfig {
                seed,
                ..Default::default()
            }),
        ),
        ("rq-vae", rq_vae(RqVaeConfig::default(), Inputs::Content)),
        ("rq-vae++", rq_vae(RqVaeConfig::default(), Inputs::All)),
        ("letter", rq_vae(RqVaeConfig::letter(), Inputs::Content)),
        ("mm-rq-vae", rq_vae(RqVaeConfig::mm(), Inputs::All)),
        ("opq-16", opq(16)),
        ("opq-32", opq(32)),
        ("opq-64", opq(64)),
    ]
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

fn compare_row(name: &str, seconds: f64, r: &EvalReport) -> Value {
    let q = &r.quantization;
    let modes: serde_json::Map<String, Value> = r
        .retrieval
        .iter()
        .map(|m| {
            (
                m.mode.to_string(),
                json!({
                    "recall": m.overall.recall, "ndcg": m.overall.ndcg,
                    "tail_recall_100": m.quartiles[3].recall_at(100),
                    "quartile_recall_100": m.quartiles.iter().map(|x| x.recall_at(100)).collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    json!({
        "name": name,
        "tokenizer": r.tokenizer,
        "train_seconds": seconds,
        "recon_content": q.recon.as_ref().map(|e| e.content),
        "recon_behavior": q.recon.as_ref().and_then(|e| e.behavior),
        "entropy_bits": mean(q.stats.positions.iter().map(|p| p.entropy_bits)),
        "utilisation": mean(q.stats.positions.iter().map(|p| p.utilisation)),
        "collision_rate": q.stats.collision_rate,
        "levels": q.stats.levels,
        "codebook_size": q.stats.codebook_size,
        "modes": modes,
        "report": r,
    })
}

fn compare_table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:<19} {:>7} {:>7} {:>7} {:>6} {:>7} {:>8}\n",
        "tokenizer", "L_rec", "L_rec_b", "entropy", "util", "collis", "train_s"
    );
    for r in rows {
        out += &format!(
            "{:<19} {:>7.4} {:>7} {:>7.2} {:>6.3} {:>7.4} {:>8.1}\n",
            r["name"].as_str().unwrap_or(""),
            r["recon_content"].as_f64().unwrap_or(f64::NAN),
            r["recon_behavior"]
                .as_f64()
                .map_or("-".into(), |b| format!("{b:.4}")),
            r["entropy_bits"].as_f64().unwrap_or(f64::NAN),
            r["utilisation"].as_f64().unwrap_or(f64::NAN),
            r["collision_rate"].as_f64().unwrap_or(f64::NAN),
            r["train_seconds"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for mode in ["prefix", "overlap"] {
        out += &format!(
            "\n{mode} mode:\n{:<19} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}\n",
            "tokenizer", "R@10", "R@50", "R@100", "N@10", "N@50", "N@100", "tail R@100"
        );
        for r in rows {
            let m = &r["modes"][mode];
            let f = |v: &Value, i: usize| v[i].as_f64().unwrap_or(f64::NAN);
            out += &format!(
                "{:<19} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>9.4}\n",
                r["name"].as_str().unwrap_or(""),
                f(&m["recall"], 0),
                f(&m["recall"], 1),
                f(&m["recall"], 2),
                f(&m["ndcg"], 0),
                f(&m["ndcg"], 1),
                f(&m["ndcg"], 2),
                m["tail_recall_100"].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
    out
}

pub fn compare(a: CompareArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let mut rows_to_run = variants(a.seed, a.epochs);
    if !a.only.is_empty() {
        if let Some(bad) = a
            .only
            .iter()
            .find(|n| !rows_to_run.iter().any(|(v, _)| v == n))
        {
            let names: Vec<&str> = rows_to_run.iter().map(|(v, _)| *v).collect();
            return Err(Error::InvalidArgument(format!(
                "--only {bad}: no such row (rows: {})",
                names.join(", ")
            )));
        }
        rows_to_run.retain(|(v, _)| a.only.iter().any(|n| n == v));
    }
    let scratch = tempfile_dir()?;
    let base = a.out.clone().unwrap_or_else(|| scratch.clone());
    std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
    let data = embeddings::load(&a.data, rows_to_run[0].1.data_spec())?;
    let seqs = sequences::read(&a.data, &a.sequences, data.len())?;
    let (mut rows, mut item_ids) = (Vec::new(), Value::Null);
    for (name, cfg) in &rows_to_run {
        let path = base.join(name);
        let built = train_showing_progress(&path, name, cfg, (&data, &[]), device.clone())?;
        let recon = built.recon(&data)?;
        let (db, trained) = (built.db, built.trained);
        let model = &trained.tokenizer;
        let report = eval::evaluate_loaded(
            &*db.read(),
            model.name(),
            &data.keys,
            recon,
            &seqs,
            Split::Test,
        )?;
        super::train::warn_collapsed(&report.quantization.stats);
        eprintln!("{name}: trained in {:.1}s", trained.seconds);
        let mut row = compare_row(name, trained.seconds, &report);
        if a.ranking {
            let how = (FeatureSet::Sid, a.negatives, a.seed);
            row["ranking"] = ranking_row(&db, &data.keys, &seqs, how, device.clone())?;
            if item_ids.is_null() {
                let how = (FeatureSet::Id, a.negatives, a.seed);
                item_ids = ranking_row(&db, &data.keys, &seqs, how, device.clone())?;
            }
        }
        rows.push(row);
    }
    if a.out.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let value =
        json!({ "data": a.data, "seed": a.seed, "rows": rows, "ranking_item_ids": item_ids });
    emit(a.json, &value, || match a.ranking {
        true => compare_table(&rows) + &ranking_table(&item_ids, &rows),
        false => compare_table(&rows),
    });
    Ok(())
}

/// A fresh scratch folder under the system temp directory.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "adasid-compare-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    Ok(dir)
}
