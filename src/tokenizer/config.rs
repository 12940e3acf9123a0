//! ADA-SID training configuration: a TOML file, every field optional, with
//! the paper's public-dataset defaults (K = 100, SID length 6, α = 10, β = 9,
//! τ = 0.07).
//!
//! ```toml
//! codebook_size = 100
//! shared_experts = 2
//! content_experts = 1      # per content modality
//! behavior_experts = 2
//! epochs = 40
//! n_norm_source = "norm"   # or "popularity"
//! [ablation]
//! no_sparsity = true
//! [data]
//! content = ["text.npy", "attr.npy"]
//! behavior = "behavior.npy"
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::adasid::ControllerConfig;
use crate::data::embeddings::DataSpec;
use crate::error::{Error, Result};
use crate::settings;

/// Where an item's behavior evidence N_norm comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormSource {
    /// L2 norm of the behavior embedding (the paper's signal).
    #[default]
    Norm,
    /// log(1 + interaction count) from the popularity file.
    Popularity,
}

/// The paper's ablations, each a switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Ablations {
    /// No alignment-strength controller: w ≡ 1.
    pub no_alignment_controller: bool,
    /// No behavior–content contrastive loss (L_align dropped).
    pub no_contrastive: bool,
    /// No sparsity regularisation (λ = 0).
    pub no_sparsity: bool,
    /// No behavior-guided routing: every behavior SID kept with weight 1.
    pub no_behavior_routing: bool,
}

/// Everything that shapes and trains an ADA-SID tokenizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaSidConfig {
    /// Codebook size K of every expert.
    pub codebook_size: usize,
    /// Shared experts N_s (read all modalities).
    pub shared_experts: usize,
    /// Experts per content modality (N_t, N_v, …).
    pub content_experts: usize,
    /// Behavior experts N_b (routed).
    pub behavior_experts: usize,
    /// Hidden width of every MLP.
    pub hidden: usize,
    /// Common width of projected modalities.
    pub width: usize,
    /// Width of expert outputs and codes.
    pub code_dim: usize,
    /// Alignment-strength slope α.
    pub alpha: f32,
    /// Alignment-strength offset β.
    pub beta: f32,
    /// InfoNCE temperature τ.
    pub tau: f64,
    /// Sparsity target scale θ: item target θ·(1 − N_norm).
    pub theta: f32,
    /// VQ commitment weight.
    pub commitment: f64,
    /// The λ controller.
    pub controller: ControllerConfig,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Steps over which the learning rate rises linearly to `lr` (0: none).
    /// Adam's first steps move every weight by about `lr` whatever its
    /// gradient, which turns all of an expert's latents at once.
    pub warmup_steps: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Items per step.
    pub batch_size: usize,
    /// Seed of initialisation, shuffling and k-means.
    pub seed: u64,
    /// Items sampled for the k-means initialisation of codebooks.
    pub kmeans_sample: usize,
    /// Maximum k-means rounds (it stops earlier when assignments settle).
    pub kmeans_max_iter: usize,
    /// Source of N_norm.
    pub n_norm_source: NormSource,
    /// Ablation switches.
    pub ablation: Ablations,
    /// Files of the data folder.
    pub data: DataSpec,
}

impl Default for AdaSidConfig {
    fn default() -> Self {
        AdaSidConfig {
            codebook_size: 100,
            shared_experts: 2,
            content_experts: 1,
            behavior_experts: 2,
            hidden: 128,
            width: 128,
            code_dim: 64,
            alpha: 10.0,
            beta: 9.0,
            tau: 0.07,
            theta: 0.5,
            commitment: 0.25,
            controller: ControllerConfig::default(),
            lr: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 30,
            epochs: 40,
            batch_size: 1024,
            seed: 42,
            kmeans_sample: 8192,
            kmeans_max_iter: 100,
            n_norm_source: NormSource::Norm,
            ablation: Ablations::default(),
            data: DataSpec::default(),
        }
    }
}

impl AdaSidConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        settings::read(path, Self::validate)
    }

    /// Parses TOML text; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self> {
        settings::parse(file, text, Self::validate)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        settings::to_toml(self)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !(2..=crate::sid::MAX_CODEBOOK_SIZE as usize).contains(&self.codebook_size) {
            return bad(format!(
                "codebook_size must be in 2..=65535, got {}",
                self.codebook_size
            ));
        }
        if self.behavior_experts == 0 {
            return bad("behavior_experts must be at least 1".into());
        }
        if self.batch_size < 2 || self.epochs == 0 {
            return bad("batch_size must be at least 2 and epochs at least 1".into());
        }
        if self.hidden == 0 || self.width == 0 || self.code_dim == 0 {
            return bad("hidden, width and code_dim must be positive".into());
        }
        if !(self.tau > 0.0) || !(self.lr > 0.0) {
            return bad("tau and lr must be positive".into());
        }
        Ok(())
    }

    /// Positions per SID for `content_modalities` content tables.
    pub fn sid_length(&self, content_modalities: usize) -> usize {
        self.shared_experts + self.content_experts * content_modalities + self.behavior_experts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let cfg = AdaSidConfig::from_toml("c.toml", "epochs = 3\n[ablation]\nno_sparsity = true\n")
            .unwrap();
        assert_eq!(cfg.epochs, 3);
        assert!(cfg.ablation.no_sparsity);
        assert_eq!(cfg.codebook_size, 100);
        assert_eq!(
            AdaSidConfig::from_toml("c.toml", &cfg.to_toml()).unwrap(),
            cfg
        );
        let err = AdaSidConfig::from_toml("c.toml", "epoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:") && err.contains("epoch"), "{err}");
        assert_eq!(AdaSidConfig::default().sid_length(2), 6);
    }
}
