//! RQ-VAE settings (TOML, every field optional, TIGER's defaults) and the
//! figures each training epoch reports.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::embeddings::DataSpec;
use crate::error::{Error, Result};
use crate::tokenizer::inputs::{Inputs, residual_layout};

/// How a residual is matched to a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    /// Nearest code in Euclidean distance (TIGER).
    L2,
    /// Code with the highest cosine similarity.
    Cosine,
}

/// Settings of an RQ-VAE (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RqVaeConfig {
    /// SID levels.
    pub levels: usize,
    /// Codes per level (K).
    pub codebook_size: usize,
    /// Hidden widths of the encoder (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Latent width.
    pub latent: usize,
    /// Code matching.
    pub distance: Distance,
    /// Commitment weight β.
    pub commitment: f64,
    /// AdamW learning rate.
    pub lr: f64,
    /// Training epochs.
    pub epochs: usize,
    /// Items per step.
    pub batch_size: usize,
    /// Modalities read (content only is TIGER's choice).
    pub inputs: Inputs,
    /// Seed of initialisation, shuffling and k-means.
    pub seed: u64,
    /// LETTER's collaborative weight α (0: plain RQ-VAE).
    pub collaborative: f64,
    /// LETTER's diversity weight β (0: plain RQ-VAE).
    pub diversity: f64,
    /// MM-RQ-VAE: one encoder and residual quantiser per modality read,
    /// `levels` tokens each, concatenated in modality order.
    pub per_modality: bool,
    /// Files of the data folder.
    pub data: DataSpec,
}

impl Default for RqVaeConfig {
    fn default() -> Self {
        RqVaeConfig {
            levels: 3,
            codebook_size: 256,
            hidden: vec![256, 128],
            latent: 32,
            distance: Distance::L2,
            commitment: 0.25,
            lr: 1e-3,
            epochs: 100,
            batch_size: 256,
            inputs: Inputs::Content,
            seed: 42,
            collaborative: 0.0,
            diversity: 0.0,
            per_modality: false,
            data: DataSpec::default(),
        }
    }
}

impl RqVaeConfig {
    /// LETTER (Wang et al., CIKM 2024): the RQ-VAE with its collaborative
    /// (α = 0.1) and diversity (β = 1e-4) regularisers, the weights of its
    /// released tokenizer checkpoint and scripts, over content.
    pub fn letter() -> Self {
        RqVaeConfig {
            collaborative: 0.1,
            diversity: 1e-4,
            ..RqVaeConfig::default()
        }
    }
}

impl RqVaeConfig {
    /// MM-RQ-VAE: a residual quantiser per modality (content and behavior),
    /// their tokens concatenated, one shared decoder over the concatenated
    /// quantised latents, each modality's reconstruction in one loss.
    pub fn mm() -> Self {
        RqVaeConfig {
            per_modality: true,
            inputs: Inputs::All,
            ..RqVaeConfig::default()
        }
    }

    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::settings::read(path, Self::validate)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        residual_layout(self.levels, self.codebook_size)?;
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if self.latent == 0 || self.hidden.contains(&0) {
            return bad("latent and hidden widths must be positive");
        }
        if self.batch_size < 2 || self.epochs == 0 || !(self.lr > 0.0) {
            return bad("batch_size must be at least 2, epochs at least 1, lr positive");
        }
        if !(self.collaborative >= 0.0 && self.diversity >= 0.0) {
            return bad("collaborative and diversity weights must be at least 0");
        }
        if self.per_modality && (self.collaborative > 0.0 || self.diversity > 0.0) {
            return bad("per_modality does not combine with LETTER's regularisers");
        }
        Ok(())
    }
}

/// Figures of one RQ-VAE epoch.
#[derive(Clone, Debug, Serialize)]
pub struct RqVaeEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean reconstruction loss (squared error of the concatenated input).
    pub recon: f64,
    /// Mean codebook + commitment loss.
    pub vq: f64,
    /// Share of codes used, per level.
    pub utilisation: Vec<f64>,
    /// Wall time.
    pub seconds: f64,
}
