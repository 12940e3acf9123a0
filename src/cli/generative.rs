//! `gen-train` and `gen-eval`: the generative retriever over a database's SIDs.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::emit;
use super::parse_device;
use super::progress::Progress;
use adasid::data::embeddings::read_keys;
use adasid::database::Database;
use adasid::error::Result;
use adasid::eval::{Split, sequences};
use adasid::generative::{Corpus, GenConfig, GenReport, GenRetriever};

/// Options both commands share.
#[derive(clap::Args, Debug)]
pub struct GenData {
    /// Database whose SIDs the retriever reads and writes.
    #[arg(long)]
    db: PathBuf,
    /// Data folder with the item keys and the sequences.
    #[arg(long)]
    data: PathBuf,
    /// Item keys in the data folder (row order of the sequences' item numbers).
    #[arg(long, default_value = "items.txt")]
    items: String,
    /// Sequences file in the data folder.
    #[arg(long, default_value = "sequences.tsv")]
    sequences: String,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct GenTrainArgs {
    #[command(flatten)]
    common: GenData,
    /// TOML configuration (see `GenConfig`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct GenEvalArgs {
    #[command(flatten)]
    common: GenData,
    /// Beam width (also the longest ranking scored).
    #[arg(long, default_value_t = 100)]
    beams: usize,
    /// Held-out target: the last item (test) or the one before it (valid).
    #[arg(long, default_value = "test", value_parser = ["test", "valid"])]
    split: String,
    /// Score only the first N users (a quick estimate).
    #[arg(long)]
    users: Option<usize>,
}

fn corpus(a: &GenData, db: &Database) -> Result<Corpus> {
    let keys = read_keys(&a.data, &a.items)?;
    let seqs = sequences::read(&a.data, &a.sequences, keys.len())?;
    Ok(Corpus::new(&*db.read(), &keys, seqs))
}

pub fn train(a: GenTrainArgs) -> Result<()> {
    let start = Instant::now();
    let mut cfg = match &a.config {
        Some(p) => GenConfig::from_file(p)?,
        None => GenConfig::default(),
    };
    cfg.epochs = a.epochs.unwrap_or(cfg.epochs);
    cfg.seed = a.seed.unwrap_or(cfg.seed);
    cfg.validate()?;
    let device = parse_device(&a.common.device)?;
    let db = Database::open(&a.common.db)?;
    let corpus = corpus(&a.common, &db)?;
    let progress = Progress::new("gen-train");
    let epochs = cfg.epochs;
    let (model, history) = GenRetriever::train(cfg, &db.layout(), &corpus, device, |e| {
        progress.step(
            e.epoch,
            epochs,
            &format!("loss {:.4} ({:.1}s)", e.loss, e.seconds),
        )
    })?;
    progress.finish();
    db.put_blobs(model.to_blobs()?)?;
    let train_seconds: f64 = history.iter().map(|e| e.seconds).sum();
    let value = json!({
        "epochs": history.len(),
        "train_seconds": train_seconds,
        "seconds": start.elapsed().as_secs_f64(),
        "history": history,
        "config": model.config(),
    });
    emit(a.common.json, &value, || {
        let last = history.last().map_or(f64::NAN, |e| e.loss);
        format!(
            "trained the generative retriever: {} epochs in {train_seconds:.1}s, final loss {last:.4}; stored in {}\n",
            history.len(),
            a.common.db.display()
        )
    });
    Ok(())
}

fn report_text(r: &GenReport) -> String {
    let title = format!(
        "generative retrieval, beam {} ({:.1}s):",
        r.beams, r.seconds
    );
    super::eval::quartile_table(&title, &r.overall, &r.quartiles, r.skipped)
}

pub fn eval(a: GenEvalArgs) -> Result<()> {
    let db = Database::open(&a.common.db)?;
    let model = GenRetriever::from_blobs(&db, db.layout(), parse_device(&a.common.device)?)?;
    let corpus = corpus(&a.common, &db)?;
    let split = Split::from_name(&a.split).unwrap_or(Split::Test);
    let state = db.read();
    let report = model.evaluate(&*state, &corpus, split, a.beams, a.users)?;
    emit(a.common.json, &json!(report), || report_text(&report));
    Ok(())
}
