//! `gen-train`, `gen-eval` and `recommend`: the generative retrievers
//! (autoregressive beam decoding, or every position at once) over a
//! database's SIDs.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::emit;
use super::parse_device;
use super::progress::Progress;
use adasid::data::embeddings::read_keys;
use adasid::database::{Database, Reader};
use adasid::error::Error;
use adasid::error::Result;
use adasid::eval::{Split, sequences};
use adasid::generative::{
    self, Corpus, GenConfig, GenReport, GenRetriever, ParallelConfig, ParallelRetriever,
    Recommender,
};
use adasid::snapshot::Snapshot;
use adasid::view::ReadView;

/// The database and the data folder's keys and sequences: what the
/// retrievers and the ranker read.
#[derive(clap::Args, Debug)]
pub struct GenData {
    /// Database whose SIDs are read (and where a retriever is stored).
    #[arg(long)]
    pub(super) db: PathBuf,
    /// Data folder with the item keys and the sequences.
    #[arg(long)]
    pub(super) data: PathBuf,
    /// Item keys in the data folder (row order of the sequences' item numbers).
    #[arg(long, default_value = "items.txt")]
    pub(super) items: String,
    /// Sequences file in the data folder.
    #[arg(long, default_value = "sequences.tsv")]
    pub(super) sequences: String,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub(super) device: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

impl GenData {
    /// The item keys and the sequences (catalogue rows) of the data folder.
    pub(super) fn keys_and_sequences(&self) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
        let keys = read_keys(&self.data, &self.items)?;
        let seqs = sequences::read(&self.data, &self.sequences, keys.len())?;
        Ok((keys, seqs))
    }
}

/// Which generative retriever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RetrieverKind {
    /// Writes the SID token by token (TIGER), trie-constrained beam search.
    Autoregressive,
    /// Predicts every semantic position at once (RPG), exact top-k.
    Parallel,
    /// Item ids in and out with SID tokens added to each input item
    /// (stored as the parallel retriever, `hybrid = true`).
    Hybrid,
}

impl RetrieverKind {
    /// Whether its model is the parallel retriever's blobs.
    fn is_parallel(self) -> bool {
        self != RetrieverKind::Autoregressive
    }
}

#[derive(clap::Args, Debug)]
pub struct GenTrainArgs {
    #[command(flatten)]
    common: GenData,
    /// Which retriever to train.
    #[arg(long, value_enum, default_value = "autoregressive")]
    retriever: RetrieverKind,
    /// TOML configuration (see `GenConfig` or `ParallelConfig`).
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
    /// Which stored retriever to evaluate.
    #[arg(long, value_enum, default_value = "autoregressive")]
    retriever: RetrieverKind,
    /// Leave each user's own history items out of the ranking.
    #[arg(long)]
    exclude_history: bool,
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

/// The settings in `path`, or the defaults.
fn settings_or_default<C: Default>(
    path: &Option<PathBuf>,
    from_file: fn(&std::path::Path) -> Result<C>,
) -> Result<C> {
    path.as_deref().map_or_else(|| Ok(C::default()), from_file)
}

/// What either retriever trains from: the database, its corpus, the
/// device. The store is held from the start, so training never ends
/// refused by another writer; readers read the published view meanwhile.
/// The data folder is read first, so a bad one fails before the database
/// is opened.
fn training_inputs(a: &GenData) -> Result<(Database, Corpus, candle_core::Device)> {
    let device = parse_device(&a.device)?;
    let (keys, seqs) = a.keys_and_sequences()?;
    let db = Database::open(&a.db)?;
    let corpus = Corpus::new(&*db.read(), &keys, seqs);
    Ok((db, corpus, device))
}

pub fn train(a: GenTrainArgs) -> Result<()> {
    if a.retriever.is_parallel() {
        return train_parallel(a);
    }
    let start = Instant::now();
    let mut cfg = settings_or_default(&a.config, GenConfig::from_file)?;
    (cfg.epochs, cfg.seed) = (a.epochs.unwrap_or(cfg.epochs), a.seed.unwrap_or(cfg.seed));
    cfg.validate()?;
    let (db, corpus, device) = training_inputs(&a.common)?;
    let progress = Progress::new("gen-train");
    let epochs = cfg.epochs;
    let (model, history) = {
        let state = db.read();
        GenRetriever::train(cfg, &*state, &corpus, device, |e| {
            let valid = e
                .valid_ndcg10
                .map_or(String::new(), |v| format!(", valid NDCG@10 {v:.4}"));
            let msg = format!("loss {:.4}{valid} ({:.1}s)", e.loss, e.seconds);
            progress.step(e.epoch, epochs, &msg)
        })?
    };
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

fn report_text(r: &GenReport, kind: RetrieverKind) -> String {
    let title = match kind {
        RetrieverKind::Autoregressive => format!(
            "generative retrieval, beam {} ({:.1}s):",
            r.beams, r.seconds
        ),
        RetrieverKind::Parallel | RetrieverKind::Hybrid => format!(
            "parallel retrieval, exact top {} ({:.1}s):",
            r.beams, r.seconds
        ),
    };
    super::eval::quartile_table(&title, &r.overall, &r.quartiles, r.skipped)
}

pub fn eval(a: GenEvalArgs) -> Result<()> {
    let device = parse_device(&a.common.device)?;
    let (keys, seqs) = a.common.keys_and_sequences()?;
    let db = Reader::open(&a.common.db)?;
    let corpus = Corpus::new(db.view().get(), &keys, seqs);
    let split = Split::from_name(&a.split).unwrap_or(Split::Test);
    let report = if a.retriever.is_parallel() {
        let model = ParallelRetriever::from_blobs(&db, db.layout(), device)?;
        let view = db.view();
        model.evaluate(view.get(), &corpus, split, a.users, a.exclude_history)?
    } else {
        let model = GenRetriever::from_blobs(&db, db.layout(), device)?;
        let view = db.view();
        let users = (a.users, a.exclude_history);
        model.evaluate(view.get(), &corpus, split, a.beams, users)?
    };
    emit(a.common.json, &json!(report), || {
        report_text(&report, a.retriever)
    });
    Ok(())
}

fn train_parallel(a: GenTrainArgs) -> Result<()> {
    let start = Instant::now();
    let mut cfg = settings_or_default(&a.config, ParallelConfig::from_file)?;
    (cfg.epochs, cfg.seed) = (a.epochs.unwrap_or(cfg.epochs), a.seed.unwrap_or(cfg.seed));
    cfg.hybrid |= a.retriever == RetrieverKind::Hybrid;
    cfg.validate()?;
    let (db, corpus, device) = training_inputs(&a.common)?;
    let progress = Progress::new(match cfg.hybrid {
        true => "gen-train hybrid",
        false => "gen-train parallel",
    });
    let epochs = cfg.epochs;
    let (model, history) = {
        let state = db.read();
        ParallelRetriever::train(cfg, &*state, &corpus, device, |e| {
            let msg = format!(
                "loss {:.4}, valid NDCG@10 {:.4} ({:.1}s)",
                e.loss, e.valid_ndcg10, e.seconds
            );
            progress.step(e.epoch, epochs, &msg)
        })?
    };
    progress.finish();
    db.put_blobs(model.to_blobs()?)?;
    let train_seconds: f64 = history.iter().map(|e| e.seconds).sum();
    let best = history
        .iter()
        .map(|e| e.valid_ndcg10)
        .fold(f64::NEG_INFINITY, f64::max);
    let repeat_bias = model.repeat_bias()?;
    let value = json!({
        "retriever": if model.is_hybrid() { "hybrid" } else { "parallel" },
        "epochs": history.len(),
        "best_valid_ndcg10": best,
        "train_seconds": train_seconds,
        "seconds": start.elapsed().as_secs_f64(),
        "history": history,
        "config": model.config(),
        "repeat_bias": repeat_bias,
    });
    emit(a.common.json, &value, || {
        let repeat = match repeat_bias.is_empty() {
            false => format!(", repeat bias {repeat_bias:.3?}"),
            true => String::new(),
        };
        format!(
            "trained the {} retriever: {} epochs in {train_seconds:.1}s, best validation NDCG@10 {best:.4} (kept{repeat}); stored in {}\n",
            if model.is_hybrid() {
                "hybrid"
            } else {
                "parallel"
            },
            history.len(),
            a.common.db.display()
        )
    });
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RecommendArgs {
    #[command(flatten)]
    db: super::DbArgs,
    /// Comma-separated item keys the user interacted with, oldest first.
    #[arg(long, allow_hyphen_values = true)]
    history: String,
    /// Items to return.
    #[arg(long, alias = "count", default_value_t = 10)]
    k: usize,
    /// Keep only items whose metadata matches this tantivy query (see `adasid meta`).
    #[arg(long)]
    filter: Option<String>,
    /// Answer from this snapshot of the database (the model still comes from --db).
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Which stored retriever answers (default: parallel when stored, else autoregressive).
    #[arg(long, value_enum)]
    retriever: Option<RetrieverKind>,
    /// Leave the history's own items out of the answer (what a shop does for
    /// items bought once; keep them where users come back to the same items).
    #[arg(long)]
    exclude_history: bool,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn recommend(a: RecommendArgs) -> Result<()> {
    if a.k == 0 {
        return Err(Error::InvalidArgument("--k must be at least 1".into()));
    }
    let keys: Vec<&str> = a
        .history
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(Error::InvalidArgument("--history names no item".into()));
    }
    // A filter needs the metadata index, in the store itself.
    if let Some(q) = &a.filter {
        adasid::filter::check_query(q)?;
    }
    let reader = Reader::open(&a.db.db)?;
    let kind = a.retriever.map(|k| match k {
        RetrieverKind::Autoregressive => generative::RetrieverKind::Autoregressive,
        RetrieverKind::Parallel | RetrieverKind::Hybrid => generative::RetrieverKind::Parallel,
    });
    let model = Recommender::from_blobs(&reader, reader.layout(), parse_device(&a.device)?, kind)?;
    // Opened (and repaired, if it must be) before the read lock: a repair waits for readers.
    let allowed = match &a.filter {
        None => None,
        Some(q) => {
            let filters = match &reader {
                Reader::Store(db) => db.filters()?.map(|f| f.matching(q)),
                Reader::Published(p) => p.filters()?.map(|f| f.matching(q)),
            };
            let no_metadata = || {
                Error::InvalidArgument(
                    "--filter needs item metadata: attach it with `adasid meta`".into(),
                )
            };
            Some(filters.ok_or_else(no_metadata)??)
        }
    };
    let snapshot = match &a.snapshot {
        Some(path) => {
            let snap = Snapshot::open(path)?;
            snap.verify()?;
            Some(snap)
        }
        None => None,
    };
    let guard = reader.view();
    let state: &dyn ReadView = match &snapshot {
        Some(snap) => snap,
        None => guard.get(),
    };
    let ids: Vec<u32> = keys.iter().filter_map(|k| state.id(k).ok()).collect();
    let skipped = keys.len() - ids.len();
    if ids.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "none of the {} history keys is in the database",
            keys.len()
        )));
    }
    let start = Instant::now();
    let seen = generative::Excluded::history(&ids, a.exclude_history);
    let keep = |id: u32| allowed.as_ref().is_none_or(|docs| docs.contains(id)) && seen.keeps(id);
    let hits = model.recommend(state, &ids, a.k, Some(&keep))?;
    let seconds = start.elapsed().as_secs_f64();
    let items: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| json!({ "key": state.key(h.item).unwrap_or(""), "score": h.score }))
        .collect();
    let value = json!({
        "retriever": model.name(),
        "items": items,
        "skipped_history": skipped,
        "seconds": seconds,
    });
    emit(a.db.json, &value, || {
        let mut out = format!(
            "{} items after {} history items ({skipped} unknown skipped), {} retriever, {:.2} ms:\n",
            hits.len(),
            ids.len(),
            model.name(),
            seconds * 1e3
        );
        for (h, v) in hits.iter().zip(&items) {
            out += &format!("  {:<24} {:.4}\n", v["key"].as_str().unwrap_or(""), h.score);
        }
        out
    });
    Ok(())
}
