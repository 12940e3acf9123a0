//! Evaluation: quantisation quality and retrieval quality of a database's
//! SIDs, the figures `adasid eval` and `adasid compare` report.
//!
//! Retrieval is leave-one-out over `sequences.tsv`: each user's held-out item
//! is looked for among the candidates of the SID of the item before it, in
//! both candidate modes, overall and by the target's popularity quartile
//! (popularity counted on training interactions only).

pub mod metrics;
pub mod quantization;
pub mod retrieval;
pub mod sequences;

use std::path::Path;

use candle_core::Device;
use serde::Serialize;

use crate::data::embeddings::{self, Dataset};
use crate::database::Database;
use crate::error::Result;
use crate::index::CandidateMode;
use crate::stats::{IndexStats, index_stats};
use crate::tokenizer::Tokenizer;

pub use metrics::{Accumulator, CUTOFFS, RankMetrics, popularity_quartiles, rank_of};
pub use quantization::{ReconError, recon_error};
pub use retrieval::{RetrievalReport, Task};
pub use sequences::Split;

/// Quantisation figures of a database.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    /// Reconstruction error from the SIDs (see [`quantization`]).
    pub recon: ReconError,
    /// Codebook use per position and collisions before disambiguation.
    pub stats: IndexStats,
}

/// Everything `adasid eval` reports.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Which tokenizer made the SIDs.
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
    /// Target split.
    pub split: Split,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            sequences: "sequences.tsv".into(),
            split: Split::Test,
        }
    }
}

/// Evaluates `db` against the data folder `dir` (the tokenizer's own data
/// spec names the files).
pub fn evaluate(
    db: &Database,
    dir: &Path,
    opts: &EvalOptions,
    device: Device,
) -> Result<EvalReport> {
    let tokenizer = Tokenizer::from_database(db, device)?;
    let data = embeddings::load(dir, tokenizer.data_spec())?;
    let recon = recon_error(&data, &tokenizer.reconstruct(&data)?)?;
    let sequences = sequences::read(dir, &opts.sequences, data.len())?;
    evaluate_loaded(db, &tokenizer, &data, recon, &sequences, opts.split)
}

/// [`evaluate`] with the data already loaded and the reconstruction error known.
pub fn evaluate_loaded(
    db: &Database,
    tokenizer: &Tokenizer,
    data: &Dataset,
    recon: ReconError,
    sequences: &[Vec<u32>],
    split: Split,
) -> Result<EvalReport> {
    let state = db.read();
    let ids: Vec<_> = data.keys.iter().map(|k| state.keys.id(k)).collect();
    let counts = sequences::training_counts(sequences, data.len());
    let quartiles = popularity_quartiles(&counts);
    let task = Task {
        state: &state,
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
        tokenizer: tokenizer.name(),
        items: state.index.len(),
        quantization: QuantReport {
            recon,
            stats: index_stats(&state.index),
        },
        retrieval,
    })
}
