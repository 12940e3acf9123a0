//! One entry point to train any tokenizer: the configuration says which.

use std::time::Instant;

use candle_core::Device;
use serde_json::{Value, json};

use super::{
    AdaSid, AdaSidConfig, ItemIdConfig, ItemIds, Opq, OpqConfig, RqKmeans, RqKmeansConfig, RqVae,
    RqVaeConfig, Tokenizer,
};
use crate::data::embeddings::{DataSpec, Dataset};
use crate::error::Result;

/// The configuration of any tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerConfig {
    /// ADA-SID.
    AdaSid(AdaSidConfig),
    /// RQ-Kmeans.
    RqKmeans(RqKmeansConfig),
    /// RQ-VAE.
    RqVae(RqVaeConfig),
    /// OPQ.
    Opq(OpqConfig),
    /// Item ids.
    ItemIds(ItemIdConfig),
}

/// Progress of a training run: step (epoch or level), total steps, a one-line summary.
pub struct Step<'a> {
    /// 1-based step.
    pub step: usize,
    /// Steps in all.
    pub of: usize,
    /// What the step achieved.
    pub message: &'a str,
}

/// A trained tokenizer and how training went.
pub struct Trained {
    /// The model.
    pub tokenizer: Tokenizer,
    /// Wall time of training.
    pub seconds: f64,
    /// Per-epoch (or per-level) figures, as JSON.
    pub history: Value,
    /// ADA-SID's last epoch (its loss terms and masked share), when ADA-SID trained.
    pub adasid_last: Option<super::EpochStats>,
}

impl TokenizerConfig {
    /// The tokenizer's name, as [`Tokenizer::name`] spells it.
    pub fn name(&self) -> &'static str {
        match self {
            TokenizerConfig::AdaSid(_) => AdaSid::NAME,
            TokenizerConfig::RqKmeans(_) => RqKmeans::NAME,
            TokenizerConfig::RqVae(_) => RqVae::NAME,
            TokenizerConfig::Opq(_) => Opq::NAME,
            TokenizerConfig::ItemIds(_) => ItemIds::NAME,
        }
    }

    /// The data-folder files it reads.
    pub fn data_spec(&self) -> &DataSpec {
        match self {
            TokenizerConfig::AdaSid(c) => &c.data,
            TokenizerConfig::RqKmeans(c) => &c.data,
            TokenizerConfig::RqVae(c) => &c.data,
            TokenizerConfig::Opq(c) => &c.data,
            TokenizerConfig::ItemIds(c) => &c.data,
        }
    }

    /// Trains on `data`.
    pub fn train(
        &self,
        data: &Dataset,
        device: Device,
        mut progress: impl FnMut(Step<'_>),
    ) -> Result<Trained> {
        let start = Instant::now();
        let mut adasid_last = None;
        let (tokenizer, history) = match self {
            TokenizerConfig::AdaSid(c) => {
                let (m, h) = AdaSid::train(c.clone(), data, device, |s| {
                    let msg = format!(
                        "recon {:.3} masked {:.2} (target {:.2})",
                        s.recon, s.masked_share, s.target_share
                    );
                    progress(Step {
                        step: s.epoch,
                        of: c.epochs,
                        message: &msg,
                    })
                })?;
                adasid_last = h.last().cloned();
                (Tokenizer::AdaSid(m), json!(h))
            }
            TokenizerConfig::RqKmeans(c) => {
                let mut levels = Vec::new();
                let m = RqKmeans::train(c.clone(), data, |l, mse, secs| {
                    let msg = format!("residual {mse:.4}");
                    progress(Step {
                        step: l + 1,
                        of: c.levels,
                        message: &msg,
                    });
                    levels.push(json!({ "level": l + 1, "residual_mse": mse, "seconds": secs }));
                })?;
                (Tokenizer::RqKmeans(m), json!(levels))
            }
            TokenizerConfig::RqVae(c) => {
                let (m, h) = RqVae::train(c.clone(), data, device, |s| {
                    let msg = format!("recon {:.4} vq {:.4}", s.recon, s.vq);
                    progress(Step {
                        step: s.epoch,
                        of: c.epochs,
                        message: &msg,
                    })
                })?;
                (Tokenizer::RqVae(m), json!(h))
            }
            TokenizerConfig::Opq(c) => {
                let mut seconds = 0.0;
                let m = Opq::train(c.clone(), data, |s| {
                    seconds = s;
                    let msg = format!("{} sub-spaces × {} codes", c.subspaces, c.codebook_size);
                    progress(Step {
                        step: 1,
                        of: 1,
                        message: &msg,
                    })
                })?;
                (
                    Tokenizer::Opq(m),
                    json!([{ "step": 1, "seconds": seconds }]),
                )
            }
            TokenizerConfig::ItemIds(c) => {
                let m = ItemIds::train(c.clone(), data)?;
                let msg = format!("{} item ids", data.len());
                progress(Step {
                    step: 1,
                    of: 1,
                    message: &msg,
                });
                (Tokenizer::ItemIds(m), json!([{ "step": 1 }]))
            }
        };
        Ok(Trained {
            tokenizer,
            seconds: start.elapsed().as_secs_f64(),
            history,
            adasid_last,
        })
    }
}
