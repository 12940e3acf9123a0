//! ADA-SID's training: k-means codebook initialisation, then epochs of the
//! full objective (reconstruction, VQ, content InfoNCE, behavior alignment
//! weighted by N_norm, sparsity under the λ controller).

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::net::{Forward, ForwardOptions};
use super::router::SparsityController;
use super::weights::{alignment_weight, sparsity_target};
use super::{AdaSid, ModelMeta, raw_signal};
use crate::data::embeddings::Dataset;
use crate::error::Result;
use crate::nn::epochs::{self, Epoch, Plan};
use crate::nn::params::ml;
use crate::nn::warmup_lr;
use crate::tokenizer::config::AdaSidConfig;

/// Figures of one training epoch.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean reconstruction loss.
    pub recon: f64,
    /// Mean VQ (codebook + commitment) loss.
    pub vq: f64,
    /// Mean content–content InfoNCE.
    pub content: f64,
    /// Mean weighted behavior–content InfoNCE.
    pub align: f64,
    /// Mean sparsity loss (with λ).
    pub reg: f64,
    /// Mean total loss.
    pub total: f64,
    /// λ at the end of the epoch.
    pub lambda: f64,
    /// Share of masked (zero-weight) behavior SIDs over the epoch.
    pub masked_share: f64,
    /// The catalogue's target masked share, mean of θ·(1 − N_norm).
    pub target_share: f64,
    /// Share of codes used by the epoch's training batches, per codebook
    /// (before dead codes are re-seeded; the stored SIDs' own share is in
    /// the index statistics).
    #[serde(rename = "batch_utilisation")]
    pub utilisation: Vec<f64>,
    /// Wall time of the epoch.
    pub seconds: f64,
}

/// Running sums of one epoch's steps.
#[derive(Default)]
struct Sums {
    /// recon, vq, content, align, reg, total.
    losses: [f64; 6],
    masked: usize,
    routed: usize,
    steps: usize,
}

/// What every step of a run reads or updates.
struct Run<'a> {
    model: &'a AdaSid,
    data: &'a Dataset,
    norms: Vec<f32>,
    targets: Vec<f32>,
    opts: ForwardOptions,
    opt: AdamW,
    controller: SparsityController,
    /// Optimiser steps taken (1-based after the first).
    steps: usize,
}

impl AdaSid {
    /// Trains on `data`; `progress` sees each epoch's figures as it ends.
    pub fn train(
        cfg: AdaSidConfig,
        data: &Dataset,
        device: Device,
        mut progress: impl FnMut(&EpochStats),
    ) -> Result<(AdaSid, Vec<EpochStats>)> {
        cfg.validate()?;
        epochs::check_trainable(data.len())?;
        let signal = raw_signal(data, cfg.n_norm_source)?;
        let (min, max) = signal
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let meta = ModelMeta {
            content_dims: data.content.iter().map(|t| t.dim).collect(),
            behavior_dim: data.behavior.dim,
            source: cfg.n_norm_source,
            min,
            max,
            router_offsets: vec![0.0; cfg.behavior_experts],
        };
        let mut model = AdaSid::build(cfg, meta, device)?;
        let (stats, offsets) = model.fit(data, &mut progress)?;
        model.meta.router_offsets = offsets;
        Ok((model, stats))
    }

    /// Trains in place; returns each epoch's figures and the final router offsets.
    fn fit(
        &self,
        data: &Dataset,
        progress: &mut impl FnMut(&EpochStats),
    ) -> Result<(Vec<EpochStats>, Vec<f32>)> {
        let cfg = &self.cfg;
        let norms = self.n_norms(data)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
        self.init_codebooks(data, &norms, &mut rng)?;
        let params = ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        };
        let mut run = Run {
            model: self,
            data,
            targets: norms
                .iter()
                .map(|&n| sparsity_target(n, cfg.theta))
                .collect(),
            norms,
            opts: ForwardOptions {
                equal_routing: cfg.ablation.no_behavior_routing,
                commitment: cfg.commitment,
                tau: cfg.tau,
            },
            opt: AdamW::new(self.net.params().vars(), params).map_err(ml)?,
            controller: SparsityController::new(cfg.controller, cfg.behavior_experts),
            steps: 0,
        };
        let plan = Plan {
            rows: data.len(),
            batch_size: cfg.batch_size,
            epochs: cfg.epochs,
            codebooks: self.net.shape().experts(),
            k: cfg.codebook_size,
        };
        let history = epochs::run(plan, &mut rng, |e, rng| run.epoch(e, rng), progress)?;
        Ok((history, run.controller.offsets().to_vec()))
    }

    /// k-means initialisation of every codebook from the initial network's
    /// outputs, then the decoder's bias set so that its mean reconstruction
    /// is the data mean.
    fn init_codebooks(&self, data: &Dataset, norms: &[f32], rng: &mut ChaCha8Rng) -> Result<()> {
        let mut sample: Vec<usize> = (0..data.len()).collect();
        sample.shuffle(rng);
        sample.truncate(self.cfg.kmeans_sample.max(self.cfg.codebook_size));
        let batch = self.batch(data, &sample, norms, &self.meta.router_offsets)?;
        for (e, z) in self.net.latents(&batch)?.iter().enumerate() {
            let points: Vec<f32> = z.flatten_all().and_then(|t| t.to_vec1()).map_err(ml)?;
            self.net
                .codebook(e)
                .init_kmeans(&points, self.cfg.kmeans_max_iter, rng)?;
        }
        self.net
            .centre_decoder(&batch, self.cfg.ablation.no_behavior_routing)?;
        Ok(())
    }
}

impl Run<'_> {
    fn epoch(&mut self, epoch: &mut Epoch<'_>, rng: &mut ChaCha8Rng) -> Result<EpochStats> {
        let mut sums = Sums::default();
        let mut last_latents = Vec::new();
        for idx in epoch.batches() {
            self.steps += 1;
            let cfg = &self.model.cfg;
            let lr = warmup_lr(cfg.lr, self.steps, cfg.warmup_steps);
            self.opt.set_learning_rate(lr);
            let f = self.step(idx, &mut sums)?;
            epoch.usage.record(&f.tokens)?;
            last_latents = f.latents;
        }
        if epoch.reseeds() {
            for (e, z) in last_latents.iter().enumerate() {
                let dead = epoch.usage.dead(e);
                self.model.net.codebook(e).reseed(&dead, z, rng)?;
            }
        }
        let mean = |i: usize| sums.losses[i] / sums.steps.max(1) as f64;
        Ok(EpochStats {
            epoch: epoch.number,
            recon: mean(0),
            vq: mean(1),
            content: mean(2),
            align: mean(3),
            reg: mean(4),
            total: mean(5),
            lambda: self.controller.lambda() as f64,
            masked_share: sums.masked as f64 / sums.routed.max(1) as f64,
            target_share: self.targets.iter().map(|&t| t as f64).sum::<f64>()
                / self.targets.len() as f64,
            utilisation: epoch.usage.utilisation(),
            seconds: epoch.seconds(),
        })
    }

    /// One optimiser step on the rows `idx`; the controller follows the
    /// batch's masked share.
    fn step(&mut self, idx: &[usize], sums: &mut Sums) -> Result<Forward> {
        let (model, cfg) = (self.model, &self.model.cfg);
        let ab = cfg.ablation;
        let dev = model.net.device();
        let zero = || Tensor::zeros((), DType::F32, dev).map_err(ml);
        let batch = model.batch(self.data, idx, &self.norms, self.controller.offsets())?;
        let f = model.net.forward(&batch, &self.opts)?;
        let align = if ab.no_contrastive {
            zero()?
        } else {
            let w: Vec<f32> = idx
                .iter()
                .map(|&i| match ab.no_alignment_controller {
                    true => 1.0,
                    false => alignment_weight(self.norms[i], cfg.alpha, cfg.beta),
                })
                .collect();
            let w = Tensor::from_vec(w, idx.len(), dev).map_err(ml)?;
            (f.align_per_item.clone() * &w)
                .and_then(|t| t.mean_all())
                .map_err(ml)?
        };
        let regularise = !(ab.no_sparsity || ab.no_behavior_routing);
        let targets: Vec<f32> = idx.iter().map(|&i| self.targets[i]).collect();
        let reg = match regularise {
            true => model.sparsity_loss(&f.routing, &targets)?,
            false => zero()?,
        };
        let reg = (reg * self.controller.lambda() as f64).map_err(ml)?;
        let total = [&f.recon, &f.vq, &f.content, &align, &reg]
            .into_iter()
            .try_fold(zero()?, |acc, t| acc + t)
            .map_err(ml)?;
        self.opt.backward_step(&total).map_err(ml)?;
        let routing: Vec<Vec<f32>> = f.routing.to_vec2().map_err(ml)?;
        let zeros = self.follow_masking(&routing, &targets, regularise);
        sums.masked += zeros;
        sums.routed += routing.len() * cfg.behavior_experts;
        for (s, t) in sums
            .losses
            .iter_mut()
            .zip([&f.recon, &f.vq, &f.content, &align, &reg, &total])
        {
            *s += t.to_scalar::<f32>().map_err(ml)? as f64;
        }
        sums.steps += 1;
        Ok(f)
    }

    /// Moves λ and the router offsets toward the batch's target share;
    /// returns how many behavior SIDs the batch masked.
    fn follow_masking(&mut self, routing: &[Vec<f32>], targets: &[f32], regularise: bool) -> usize {
        let nb = self.model.cfg.behavior_experts;
        let zeros: usize = routing
            .iter()
            .map(|r| r.iter().filter(|&&x| x == 0.0).count())
            .sum();
        if regularise {
            let per_expert: Vec<f32> = (0..nb)
                .map(|j| {
                    routing.iter().filter(|r| r[j] == 0.0).count() as f32 / routing.len() as f32
                })
                .collect();
            let target = targets.iter().sum::<f32>() / targets.len() as f32;
            self.controller
                .update(target, zeros as f32 / (routing.len() * nb) as f32);
            self.controller.update_offsets(target, &per_expert);
        }
        zeros
    }
}

impl AdaSid {
    /// `(1/B) Σ_i Σ_j f_j |R_ij| · t_i / mean(t)` with load-balancing factors
    /// `f_j = N_b · nnz_j / Σ nnz` (1 under uniform load), treated as constants.
    fn sparsity_loss(&self, routing: &Tensor, targets: &[f32]) -> Result<Tensor> {
        let dev = self.net.device();
        let (b, nb) = routing.dims2().map_err(ml)?;
        let nonzero: Vec<f32> = routing
            .gt(0.0)
            .and_then(|m| m.to_dtype(DType::F32))
            .and_then(|m| m.sum(0))
            .and_then(|m| m.to_vec1())
            .map_err(ml)?;
        let total: f32 = nonzero.iter().sum();
        let f: Vec<f32> = if total > 0.0 {
            nonzero.iter().map(|&n| nb as f32 * n / total).collect()
        } else {
            vec![1.0; nb]
        };
        let mean_t = targets.iter().sum::<f32>() / b as f32;
        let item_w: Vec<f32> = targets
            .iter()
            .map(|&t| if mean_t > 0.0 { t / mean_t } else { 0.0 })
            .collect();
        let f = Tensor::from_vec(f, (1, nb), dev).map_err(ml)?;
        let item_w = Tensor::from_vec(item_w, (b, 1), dev).map_err(ml)?;
        routing
            .abs()
            .and_then(|r| r.broadcast_mul(&f))
            .and_then(|r| r.broadcast_mul(&item_w))
            .and_then(|r| r.sum_all())
            .and_then(|s| s / b as f64)
            .map_err(ml)
    }
}
