//! Evaluation: quantisation quality and retrieval quality of a database's
//! SIDs, the figures `adasid eval` and `adasid compare` report.
//!
//! Retrieval is leave-one-out over `sequences.tsv`: each user's held-out item
//! is looked for among the candidates of the SID of the item before it, in
//! both candidate modes, overall and by the target's popularity quartile
//! (popularity counted on training interactions only).

pub mod correlation;
pub mod metrics;
pub mod quantization;
pub mod retrieval;
pub mod sequences;

use std::path::Path;

use candle_core::Device;
use serde::Serialize;

use crate::data::embeddings;
use crate::database::Reader;
use crate::error::Result;
use crate::index::CandidateMode;
use crate::stats::{IndexStats, index_stats};
use crate::tokenizer::Tokenizer;
use crate::view::ReadView;

pub use correlation::spearman;
pub use metrics::{Accumulator, CUTOFFS, RankMetrics, popularity_quartiles, rank_of};
pub use quantization::{ReconError, recon_error};
pub use retrieval::{RetrievalReport, Task};
pub use sequences::Split;

/// Quantisation figures of a database.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    /// Reconstruction error from the SIDs (see [`quantization`]); `None`
    /// for imported SIDs, which come without a model.
    pub recon: Option<ReconError>,
    /// Codebook use per position and collisions before disambiguation.
    pub stats: IndexStats,
}

/// Everything `adasid eval` reports.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Which tokenizer made the SIDs (`imported` for `ingest-tokens` databases).
    pub tokenizer: &'static str,
    /// Items in the database.
    pub items: u64,
    /// Quantisation quality.
    pub quantization: QuantReport,
    /// Retrieval quality, one entry per candidate mode (prefix, overlap).
    pub retrieval: Vec<RetrievalReport>,
}

/// Options of an evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Sequences file in the data folder.
    pub sequences: String,
    /// Item keys in the data folder, for databases without a tokenizer (the
    /// tokenizer's own data spec names them otherwise).
    pub items: String,
    /// Target split.
    pub split: Split,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            sequences: "sequences.tsv".into(),
            items: "items.txt".into(),
            split: Split::Test,
        }
    }
}

/// Evaluates a database (the store or its published view) against the
/// data folder `dir` (the tokenizer's own data spec names the files). A
/// database of imported SIDs gets retrieval figures only, with keys from
/// `opts.items`.
pub fn evaluate(db: &Reader, dir: &Path, opts: &EvalOptions, device: Device) -> Result<EvalReport> {
    let (name, keys, recon) = match Tokenizer::stored_in(db, device)? {
        Some(tokenizer) => {
            let data = embeddings::load(dir, tokenizer.data_spec())?;
            let recon = tokenizer.reconstruct(&data)?;
            let recon = recon.map(|r| recon_error(&data, &r)).transpose()?;
            (tokenizer.name(), data.keys, recon)
        }
        None => ("imported", embeddings::read_keys(dir, &opts.items)?, None),
    };
    let sequences = sequences::read(dir, &opts.sequences, keys.len())?;
    evaluate_loaded(db.view().get(), name, &keys, recon, &sequences, opts.split)
}

/// [`evaluate`] with the catalogue keys loaded and the reconstruction error known.
pub fn evaluate_loaded(
    state: &(dyn ReadView + Sync),
    tokenizer: &'static str,
    keys: &[String],
    recon: Option<ReconError>,
    sequences: &[Vec<u32>],
    split: Split,
) -> Result<EvalReport> {
    let ids: Vec<_> = keys.iter().map(|k| state.id(k).ok()).collect();
    let counts = sequences::training_counts(sequences, keys.len());
    let quartiles = popularity_quartiles(&counts);
    let task = Task {
        state,
        ids: &ids,
        sequences,
        quartiles: &quartiles,
        split,
        cutoffs: &CUTOFFS,
    };
    let retrieval = [CandidateMode::Prefix, CandidateMode::Overlap]
        .into_iter()
        .map(|m| task.run(m))
        .collect();
    Ok(EvalReport {
        tokenizer,
        items: state.len(),
        quantization: QuantReport {
            recon,
            stats: index_stats(state),
        },
        retrieval,
    })
}
