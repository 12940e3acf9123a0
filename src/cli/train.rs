use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use serde_json::{Value, json};

use super::progress::Progress;
use super::{emit, parse_device};
use adasid::data::embeddings::{self, Dataset};
use adasid::database::Reader;
use adasid::error::{Error, Result};

use adasid::eval::spearman;
use adasid::pipeline;
use adasid::stats::{IndexStats, index_stats};
use adasid::tokenizer::{
    AdaSidConfig, EpochStats, Inputs, ItemIdConfig, NormSource, OpqConfig, RqKmeansConfig,
    RqVaeConfig, Tokenizer, TokenizerConfig,
};

/// Which tokenizer `train` fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenizerKind {
    /// ADA-SID (the method; its ablations via the --no-* switches).
    Adasid,
    /// Residual k-means over the concatenated normalised modalities.
    RqKmeans,
    /// TIGER's residual-quantised VAE.
    RqVae,
    /// LETTER: the RQ-VAE with collaborative and diversity regularisers.
    Letter,
    /// MM-RQ-VAE: a residual quantiser per modality, one shared decoder.
    MmRqVae,
    /// Product quantisation with a learned rotation (RPG's long SIDs; --levels sub-spaces).
    Opq,
    /// Plain item ids as one-token SIDs (the baseline without semantics).
    ItemId,
}

/// Modalities a residual tokenizer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputsArg {
    /// Content modalities only.
    Content,
    /// Content and behavior.
    All,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Tokenizer to train.
    #[arg(long, value_enum, default_value = "adasid")]
    tokenizer: TokenizerKind,
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
    #[arg(long = "codebook-size", alias = "k")]
    k: Option<usize>,
    /// SID levels (rq-kmeans, rq-vae) or sub-spaces (opq).
    #[arg(long)]
    levels: Option<usize>,
    /// Modalities read (rq-kmeans default: all; rq-vae default: content).
    #[arg(long, value_enum)]
    inputs: Option<InputsArg>,
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

fn adasid_config(a: &TrainArgs) -> Result<AdaSidConfig> {
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

fn inputs(a: &TrainArgs, default: Inputs) -> Inputs {
    match a.inputs {
        Some(InputsArg::Content) => Inputs::Content,
        Some(InputsArg::All) => Inputs::All,
        None => default,
    }
}

/// Refuses options that do not apply to the chosen tokenizer.
fn check_applicable(a: &TrainArgs) -> Result<()> {
    let adasid_only = [
        ("--n-norm", a.n_norm.is_some()),
        ("--no-alignment-controller", a.no_alignment_controller),
        ("--no-contrastive", a.no_contrastive),
        ("--no-sparsity", a.no_sparsity),
        ("--no-behavior-routing", a.no_behavior_routing),
    ];
    let residual_only = [
        ("--levels", a.levels.is_some()),
        ("--inputs", a.inputs.is_some()),
    ];
    let trained_only = [
        ("--epochs", a.epochs.is_some()),
        ("--batch-size", a.batch_size.is_some()),
    ];
    let refused: Vec<&str> = match a.tokenizer {
        TokenizerKind::Adasid => residual_only.iter().filter(|f| f.1).map(|f| f.0).collect(),
        TokenizerKind::RqKmeans | TokenizerKind::Opq | TokenizerKind::ItemId => adasid_only
            .iter()
            .chain(&trained_only)
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect(),
        TokenizerKind::RqVae | TokenizerKind::Letter | TokenizerKind::MmRqVae => {
            adasid_only.iter().filter(|f| f.1).map(|f| f.0).collect()
        }
    };
    match refused.first() {
        Some(flag) => Err(Error::InvalidArgument(format!(
            "{flag} does not apply to --tokenizer {}",
            a.tokenizer.to_possible_value().expect("named").get_name()
        ))),
        None => Ok(()),
    }
}

fn config(a: &TrainArgs) -> Result<TokenizerConfig> {
    check_applicable(a)?;
    Ok(match a.tokenizer {
        TokenizerKind::Adasid => TokenizerConfig::AdaSid(adasid_config(a)?),
        TokenizerKind::RqKmeans => {
            let mut c = match &a.config {
                Some(p) => RqKmeansConfig::from_file(p)?,
                None => RqKmeansConfig::default(),
            };
            c.seed = a.seed.unwrap_or(c.seed);
            c.codebook_size = a.k.unwrap_or(c.codebook_size);
            c.levels = a.levels.unwrap_or(c.levels);
            c.inputs = inputs(a, c.inputs);
            c.validate()?;
            TokenizerConfig::RqKmeans(c)
        }
        TokenizerKind::RqVae | TokenizerKind::Letter | TokenizerKind::MmRqVae => {
            let mut c = match (&a.config, a.tokenizer) {
                (Some(p), _) => RqVaeConfig::from_file(p)?,
                (None, TokenizerKind::Letter) => RqVaeConfig::letter(),
                (None, TokenizerKind::MmRqVae) => RqVaeConfig::mm(),
                (None, _) => RqVaeConfig::default(),
            };
            c.seed = a.seed.unwrap_or(c.seed);
            c.codebook_size = a.k.unwrap_or(c.codebook_size);
            c.levels = a.levels.unwrap_or(c.levels);
            c.epochs = a.epochs.unwrap_or(c.epochs);
            c.batch_size = a.batch_size.unwrap_or(c.batch_size);
            c.inputs = inputs(a, c.inputs);
            c.validate()?;
            TokenizerConfig::RqVae(c)
        }
        TokenizerKind::Opq => {
            let mut c = match &a.config {
                Some(p) => OpqConfig::from_file(p)?,
                None => OpqConfig::default(),
            };
            c.seed = a.seed.unwrap_or(c.seed);
            c.codebook_size = a.k.unwrap_or(c.codebook_size);
            c.subspaces = a.levels.unwrap_or(c.subspaces);
            c.inputs = inputs(a, c.inputs);
            c.validate()?;
            TokenizerConfig::Opq(c)
        }
        TokenizerKind::ItemId => TokenizerConfig::ItemIds(match &a.config {
            Some(p) => ItemIdConfig::from_file(p)?,
            None => ItemIdConfig::default(),
        }),
    })
}

/// Spearman correlation of behavior norm and popularity, when counts exist.
fn norm_popularity_spearman(data: &Dataset) -> Option<f64> {
    let counts = data.popularity.as_ref()?;
    let norms = data.behavior_norms();
    Some(spearman(&norms, counts))
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

/// What one entry of a training history is: an epoch of a neural
/// tokenizer, one residual level of RQ-Kmeans, or OPQ's single fit.
fn step_unit(model: &Tokenizer) -> &'static str {
    match model {
        Tokenizer::RqKmeans(_) => "level",
        Tokenizer::Opq(_) | Tokenizer::ItemIds(_) => "fit",
        Tokenizer::AdaSid(_) | Tokenizer::RqVae(_) => "epoch",
    }
}

/// Below this share of used codes a codebook has collapsed.
const COLLAPSED: f64 = 0.05;

/// Says loudly on stderr when a codebook of the stored SIDs collapsed
/// (a short or diverged run), since a table row is easy to miss.
pub(crate) fn warn_collapsed(stats: &IndexStats) {
    for p in stats.positions.iter().filter(|p| p.utilisation < COLLAPSED) {
        eprintln!(
            "warning: the codebook of position {} collapsed: the SIDs use {:.1}% of its {} codes \
             (train longer, or lower the learning rate)",
            p.position,
            100.0 * p.utilisation,
            stats.codebook_size
        );
    }
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

/// [`pipeline::train_database`] with a progress bar (or line per step) named `name`.
pub(crate) fn train_showing_progress(
    path: &Path,
    name: &str,
    cfg: &TokenizerConfig,
    (data, meta): (&Dataset, &[(String, adasid::Meta)]),
    device: candle_core::Device,
) -> Result<pipeline::Built> {
    let progress = Progress::new(name);
    let built = pipeline::train_database(path, cfg, data, meta, device, |s| {
        progress.step(s.step, s.of, s.message)
    })?;
    progress.finish();
    Ok(built)
}

pub fn train(a: TrainArgs) -> Result<()> {
    let cfg = config(&a)?;
    pipeline::check_new(&a.db)?;
    let device = parse_device(&a.device)?;
    let start = Instant::now();
    let data = embeddings::load(&a.data, cfg.data_spec())?;
    let meta = super::serving::data_meta(&a.data, |_| true)?;
    let rho = norm_popularity_spearman(&data);
    // Only where the norm is the evidence signal in use.
    if let (Some(r), TokenizerConfig::AdaSid(c)) = (rho.filter(|r| *r <= 0.0), &cfg)
        && c.n_norm_source == NormSource::Norm
    {
        eprintln!(
            "warning: behavior-embedding norm and popularity are not positively correlated (Spearman {r:.3}); \
             the norm is a poor evidence signal here, consider --n-norm popularity"
        );
    }
    let built = train_showing_progress(&a.db, cfg.name(), &cfg, (&data, &meta), device)?;
    let recon = built.recon(&data)?;
    let (db, trained) = (built.db, built.trained);
    let model = &trained.tokenizer;
    let items = built.report.inserted;
    let stats = index_stats(&*db.read());
    let last = trained.adasid_last.as_ref();
    let steps = trained.history.as_array().map_or(0, |h| h.len());
    let unit = step_unit(model);
    warn_collapsed(&stats);
    let mut quality = quality_json(&stats, last);
    quality["recon"] = json!(recon);
    let value = json!({
        "tokenizer": model.name(),
        "items": items,
        "steps": steps,
        "step": unit,
        "train_seconds": trained.seconds,
        "seconds_per_step": trained.seconds / steps.max(1) as f64,
        "seconds": start.elapsed().as_secs_f64(),
        "history": trained.history,
        "quality": quality,
        "norm_popularity_spearman": rho,
        "meta": meta.len(),
    });
    emit(a.json, &value, || {
        let mut out = format!(
            "trained {} on {} items: {steps} {unit}s, {:.2}s per {unit}, {:.1}s in all\n",
            model.name(),
            items,
            trained.seconds / steps.max(1) as f64,
            start.elapsed().as_secs_f64()
        );
        if let Some(s) = last {
            out += &format!("final epoch: {}\n", epoch_message(s));
        }
        if let (Some(r), Tokenizer::AdaSid(_)) = (rho, model) {
            out += &format!("Spearman(behavior norm, popularity) = {r:.3}\n");
        }
        if let Some(recon) = &recon {
            out += &format!(
                "reconstruction error (normalised MSE): content {:.4}",
                recon.content
            );
            if let Some(b) = recon.behavior {
                out += &format!(", behavior {b:.4}");
            }
            out += "\n";
        }
        out += &super::stats::render(&stats);
        if !meta.is_empty() {
            out += &format!("metadata of {} items indexed for --filter\n", meta.len());
        }
        out += &format!("database written to {}\n", a.db.display());
        out
    });
    Ok(())
}

pub fn encode(a: EncodeArgs) -> Result<()> {
    let start = Instant::now();
    // Model and data are read (from the published view) and checked
    // before the store is opened for the write.
    let reader = Reader::open(&a.db)?;
    let model = Tokenizer::from_blobs(&reader, parse_device(&a.device)?)?;
    let data = embeddings::load(&a.data, model.data_spec())?;
    let encoded: std::collections::HashSet<&str> = data.keys.iter().map(String::as_str).collect();
    let meta = super::serving::data_meta(&a.data, |k| encoded.contains(k))?;
    let db = reader.into_database()?;
    let report = pipeline::encode(&db, &model, &data, &meta)?;
    let items = data.keys.len();
    let value = json!({
        "encoded": items,
        "meta": meta.len(),
        "inserted": report.inserted,
        "updated": report.updated,
        "items": adasid::SidIndex::len(&*db.read()),
        "seconds": start.elapsed().as_secs_f64(),
    });
    emit(a.json, &value, || {
        format!(
            "encoded {} items ({} new, {} re-encoded) in {:.2}s\n",
            items,
            report.inserted,
            report.updated,
            start.elapsed().as_secs_f64()
        )
    });
    Ok(())
}
