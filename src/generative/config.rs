//! Settings of the generative retriever (TOML, every field optional).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::net::GenShape;
use crate::error::{Error, Result};
use crate::settings;
use crate::sid::SidLayout;

/// Settings of the generative retriever (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Most recent items read per user.
    pub history: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Dropout rate of embeddings and sublayer outputs while training.
    pub dropout: f32,
    /// Validation users decoded after each epoch (the first ones; 0: no
    /// validation, every epoch runs and the last is kept).
    pub valid_users: usize,
    /// Epochs without a better validation NDCG@10 before training stops
    /// (the best epoch's weights are kept).
    pub patience: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            d_model: 64,
            heads: 2,
            encoder_layers: 2,
            decoder_layers: 2,
            ff: 256,
            history: 20,
            epochs: 10,
            batch_size: 256,
            lr: 1e-3,
            weight_decay: 0.01,
            seed: 42,
            dropout: 0.0,
            valid_users: 1000,
            patience: 3,
        }
    }
}

impl GenConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        settings::read(path, Self::validate)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad("d_model must be a positive multiple of heads");
        }
        if self.ff == 0 || self.history == 0 || self.epochs == 0 || self.batch_size == 0 {
            return bad("ff, history, epochs and batch_size must be positive");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if !(self.lr > 0.0) {
            return bad("lr must be positive");
        }
        Ok(())
    }

    pub(super) fn shape(&self, layout: &SidLayout) -> GenShape {
        GenShape {
            steps: layout.full_len(),
            vocab: layout.mask_bits(),
            d: self.d_model,
            heads: self.heads,
            encoder_layers: self.encoder_layers,
            decoder_layers: self.decoder_layers,
            ff: self.ff,
            history: self.history,
            dropout: self.dropout,
        }
    }
}
