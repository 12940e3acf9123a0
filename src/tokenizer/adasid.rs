//! ADA-SID: training, batch encoding, and persistence in a database.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Reconstruction;
use super::config::{AdaSidConfig, NormSource};
use crate::blobs::BlobSource;
use crate::codec::{self, Kind, Matrix};
use crate::data::embeddings::Dataset;
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::model::losses::{alignment_weight, n_norm, sparsity_target};
use crate::model::params::ml;
use crate::model::{AdaSidNet, Batch, ForwardOptions, NetShape, ParamStore, SparsityController};
use crate::sid::{EMPTY, SidLayout, Token};

/// Blob names under which a trained model is stored.
pub mod blobs {
    /// Which tokenizer made the SIDs.
    pub const TOKENIZER: &str = "tokenizer";
    /// The training configuration (TOML).
    pub const CONFIG: &str = "adasid/config";
    /// Input sizes and N_norm statistics.
    pub const META: &str = "adasid/meta";
    /// Network weights (safetensors).
    pub const WEIGHTS: &str = "adasid/weights";
    /// Prefix of each expert's codebook (matrix frame), followed by its index.
    pub const CODEBOOK: &str = "adasid/codebook/";
}

/// What encoding new items needs besides the weights: input sizes and the
/// training catalogue's N_norm range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Width of each content modality.
    pub content_dims: Vec<usize>,
    /// Width of the behavior embedding.
    pub behavior_dim: usize,
    /// Source of N_norm.
    pub source: NormSource,
    /// Smallest raw signal (norm, or log(1 + count)) in the training catalogue.
    pub min: f32,
    /// Largest raw signal in the training catalogue.
    pub max: f32,
    /// Router offsets `b` at the end of training.
    pub router_offsets: Vec<f32>,
}

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

/// A trained ADA-SID tokenizer.
pub struct AdaSid {
    cfg: AdaSidConfig,
    meta: ModelMeta,
    net: AdaSidNet,
}

/// Raw N_norm signal per item: behavior norm, or log(1 + count).
fn raw_signal(data: &Dataset, source: NormSource) -> Result<Vec<f32>> {
    match source {
        NormSource::Norm => Ok(data.behavior_norms()),
        NormSource::Popularity => data
            .popularity
            .as_ref()
            .map(|p| p.iter().map(|c| c.ln_1p()).collect())
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "n_norm_source = \"popularity\" needs the popularity file in the data folder"
                        .into(),
                )
            }),
    }
}

impl AdaSid {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "adasid";

    fn build(cfg: AdaSidConfig, meta: ModelMeta, device: Device) -> Result<Self> {
        let shape = NetShape {
            content_dims: meta.content_dims.clone(),
            behavior_dim: meta.behavior_dim,
            hidden: cfg.hidden,
            width: cfg.width,
            code_dim: cfg.code_dim,
            k: cfg.codebook_size,
            shared: cfg.shared_experts,
            per_content: cfg.content_experts,
            behavior: cfg.behavior_experts,
        };
        let params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        Ok(AdaSid {
            net: AdaSidNet::new(shape, params)?,
            cfg,
            meta,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &AdaSidConfig {
        &self.cfg
    }

    /// Input sizes and N_norm range.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The SID layout this tokenizer produces.
    pub fn layout(&self) -> SidLayout {
        SidLayout::new(
            self.net.shape().experts() as u32,
            self.cfg.codebook_size as u32,
            self.cfg.behavior_experts as u32,
        )
        .expect("validated config")
    }

    /// N_norm of every item of `data`, with this model's stored range.
    pub fn n_norms(&self, data: &Dataset) -> Result<Vec<f32>> {
        Ok(raw_signal(data, self.meta.source)?
            .into_iter()
            .map(|x| n_norm(x, self.meta.min, self.meta.max))
            .collect())
    }

    fn check_dims(&self, data: &Dataset) -> Result<()> {
        let dims: Vec<usize> = data.content.iter().map(|t| t.dim).collect();
        if dims != self.meta.content_dims || data.behavior.dim != self.meta.behavior_dim {
            return Err(Error::InvalidArgument(format!(
                "the model was trained on content widths {:?} and behavior width {}, the data has {:?} and {}",
                self.meta.content_dims, self.meta.behavior_dim, dims, data.behavior.dim
            )));
        }
        Ok(())
    }

    fn batch(
        &self,
        data: &Dataset,
        idx: &[usize],
        norms: &[f32],
        offsets: &[f32],
    ) -> Result<Batch> {
        let dev = self.net.device();
        let table = |t: &crate::data::embeddings::Table| {
            Tensor::from_vec(t.gather(idx).data, (idx.len(), t.dim), dev).map_err(ml)
        };
        let n: Vec<f32> = idx.iter().map(|&i| norms[i]).collect();
        Ok(Batch {
            content: data.content.iter().map(table).collect::<Result<_>>()?,
            behavior: table(&data.behavior)?,
            n_norm: Tensor::from_vec(n, (idx.len(), 1), dev).map_err(ml)?,
            router_offset: Tensor::from_slice(offsets, (1, offsets.len()), dev).map_err(ml)?,
        })
    }

    /// Trains on `data`; `progress` sees each epoch's figures as it ends.
    pub fn train(
        cfg: AdaSidConfig,
        data: &Dataset,
        device: Device,
        mut progress: impl FnMut(&EpochStats),
    ) -> Result<(AdaSid, Vec<EpochStats>)> {
        cfg.validate()?;
        if data.len() < 2 {
            return Err(Error::InvalidArgument(
                "training needs at least 2 items".into(),
            ));
        }
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
        let mut opt = AdamW::new(self.net.params().vars(), params).map_err(ml)?;
        let mut controller = SparsityController::new(cfg.controller, cfg.behavior_experts);
        let ab = cfg.ablation;
        let opts = ForwardOptions {
            equal_routing: ab.no_behavior_routing,
            commitment: cfg.commitment,
            tau: cfg.tau,
        };
        let targets: Vec<f32> = norms
            .iter()
            .map(|&n| sparsity_target(n, cfg.theta))
            .collect();
        let target_share = targets.iter().map(|&t| t as f64).sum::<f64>() / targets.len() as f64;
        let experts = self.net.shape().experts();
        let k = cfg.codebook_size;
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut history = Vec::with_capacity(cfg.epochs);
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            order.shuffle(&mut rng);
            let mut usage = vec![vec![0u32; k]; experts];
            let mut sums = [0f64; 6];
            let (mut masked, mut routed, mut steps) = (0usize, 0usize, 0usize);
            let mut last_latents = Vec::new();
            for idx in order.chunks(cfg.batch_size).filter(|c| c.len() >= 2) {
                let batch = self.batch(data, idx, &norms, controller.offsets())?;
                let f = self.net.forward(&batch, &opts)?;
                let w: Vec<f32> = idx
                    .iter()
                    .map(|&i| {
                        if ab.no_alignment_controller {
                            1.0
                        } else {
                            alignment_weight(norms[i], cfg.alpha, cfg.beta)
                        }
                    })
                    .collect();
                let w = Tensor::from_vec(w, idx.len(), self.net.device()).map_err(ml)?;
                let align = if ab.no_contrastive {
                    Tensor::zeros((), DType::F32, self.net.device()).map_err(ml)?
                } else {
                    (f.align_per_item.clone() * &w)
                        .and_then(|t| t.mean_all())
                        .map_err(ml)?
                };
                let regularise = !(ab.no_sparsity || ab.no_behavior_routing);
                let reg = if regularise {
                    let t: Vec<f32> = idx.iter().map(|&i| targets[i]).collect();
                    self.sparsity_loss(&f.routing, &t)?
                } else {
                    Tensor::zeros((), DType::F32, self.net.device()).map_err(ml)?
                };
                let reg = (reg * controller.lambda() as f64).map_err(ml)?;
                let total = [&f.recon, &f.vq, &f.content, &align, &reg]
                    .into_iter()
                    .try_fold(
                        Tensor::zeros((), DType::F32, self.net.device()).map_err(ml)?,
                        |acc, t| acc + t,
                    )
                    .map_err(ml)?;
                opt.backward_step(&total).map_err(ml)?;
                let routing: Vec<Vec<f32>> = f.routing.to_vec2().map_err(ml)?;
                let nb = cfg.behavior_experts;
                let per_expert: Vec<f32> = (0..nb)
                    .map(|j| {
                        routing.iter().filter(|r| r[j] == 0.0).count() as f32 / routing.len() as f32
                    })
                    .collect();
                let zeros: usize = routing
                    .iter()
                    .map(|r| r.iter().filter(|&&x| x == 0.0).count())
                    .sum();
                masked += zeros;
                routed += routing.len() * nb;
                if regularise {
                    let target = idx.iter().map(|&i| targets[i]).sum::<f32>() / idx.len() as f32;
                    controller.update(target, zeros as f32 / (routing.len() * nb) as f32);
                    controller.update_offsets(target, &per_expert);
                }
                for (e, t) in f.tokens.iter().enumerate() {
                    for tok in t.to_vec1::<u32>().map_err(ml)? {
                        usage[e][tok as usize] += 1;
                    }
                }
                for (s, t) in sums
                    .iter_mut()
                    .zip([&f.recon, &f.vq, &f.content, &align, &reg, &total])
                {
                    *s += t.to_scalar::<f32>().map_err(ml)? as f64;
                }
                steps += 1;
                last_latents = f.latents;
            }
            // Re-seed codes nobody chose this epoch, except near the end so the codebooks settle.
            if epoch * 10 <= cfg.epochs * 9 {
                for (e, z) in last_latents.iter().enumerate() {
                    let dead: Vec<usize> = (0..k).filter(|&c| usage[e][c] == 0).collect();
                    let samples: Vec<f32> =
                        z.flatten_all().and_then(|t| t.to_vec1()).map_err(ml)?;
                    self.net.codebook(e).reseed(&dead, &samples, &mut rng)?;
                }
            }
            let mean = |i: usize| sums[i] / steps.max(1) as f64;
            let stats = EpochStats {
                epoch,
                recon: mean(0),
                vq: mean(1),
                content: mean(2),
                align: mean(3),
                reg: mean(4),
                total: mean(5),
                lambda: controller.lambda() as f64,
                masked_share: masked as f64 / routed.max(1) as f64,
                target_share,
                utilisation: usage
                    .iter()
                    .map(|u| u.iter().filter(|&&c| c > 0).count() as f64 / k as f64)
                    .collect(),
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(&stats);
            history.push(stats);
        }
        Ok((history, controller.offsets().to_vec()))
    }

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

    /// k-means initialisation of every codebook from the initial network's outputs.
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
        Ok(())
    }

    /// SIDs (semantic tokens) and routing weights of every item of `data`, in
    /// row order. A behavior SID whose routing weight is exactly 0 is [`EMPTY`].
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        self.check_dims(data)?;
        let norms = self.n_norms(data)?;
        let nb = self.cfg.behavior_experts;
        let equal = self.cfg.ablation.no_behavior_routing;
        let idx: Vec<usize> = (0..data.len()).collect();
        let mut out = Vec::with_capacity(data.len());
        for chunk in idx.chunks(8192) {
            let batch = self.batch(data, chunk, &norms, &self.meta.router_offsets)?;
            let (tokens, routing) = self.net.encode(&batch, equal)?;
            let tokens: Vec<Vec<u32>> = tokens
                .iter()
                .map(|t| t.to_vec1::<u32>().map_err(ml))
                .collect::<Result<_>>()?;
            let routing: Vec<Vec<f32>> = routing.to_vec2().map_err(ml)?;
            let first_behavior = tokens.len() - nb;
            for (row, &i) in chunk.iter().enumerate() {
                let weights = routing[row].clone();
                let sid: Vec<Token> = (0..tokens.len())
                    .map(|e| {
                        if e >= first_behavior && weights[e - first_behavior] == 0.0 {
                            EMPTY
                        } else {
                            tokens[e][row] as Token
                        }
                    })
                    .collect();
                out.push(NewItem {
                    key: data.keys[i].clone(),
                    tokens: sid,
                    weights,
                });
            }
        }
        Ok(out)
    }

    /// The decoder's output from every item's SID, split into modalities
    /// (content tables, then behavior).
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        self.check_dims(data)?;
        let norms = self.n_norms(data)?;
        let equal = self.cfg.ablation.no_behavior_routing;
        let mut widths = self.meta.content_dims.clone();
        widths.push(self.meta.behavior_dim);
        let idx: Vec<usize> = (0..data.len()).collect();
        let mut rows = Vec::with_capacity(data.len() * widths.iter().sum::<usize>());
        for chunk in idx.chunks(8192) {
            let batch = self.batch(data, chunk, &norms, &self.meta.router_offsets)?;
            let xhat = self.net.reconstruct(&batch, equal)?;
            rows.extend(
                xhat.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(ml)?,
            );
        }
        Ok(Reconstruction::from_tables(
            super::inputs::split(&rows, &widths),
            data.content.len(),
        ))
    }

    /// Everything a database needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = vec![
            (blobs::TOKENIZER.to_string(), Self::NAME.as_bytes().to_vec()),
            (blobs::CONFIG.to_string(), self.cfg.to_toml().into_bytes()),
            (
                blobs::META.to_string(),
                codec::encode(Kind::Blob, &self.meta),
            ),
            (blobs::WEIGHTS.to_string(), self.net.params().to_bytes()?),
        ];
        for e in 0..self.net.shape().experts() {
            let rows = self.net.codebook(e).rows()?;
            let m = Matrix::new(
                self.cfg.codebook_size as u32,
                self.cfg.code_dim as u32,
                rows,
            )?;
            out.push((format!("{}{e}", blobs::CODEBOOK), m.encode()));
        }
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized), device: Device) -> Result<AdaSid> {
        if super::stored::required(db, blobs::TOKENIZER)? != Self::NAME.as_bytes() {
            return Err(Error::InvalidArgument(
                "the database's SIDs were not made by ADA-SID".into(),
            ));
        }
        let cfg_text = super::stored::required_text(db, blobs::CONFIG)?;
        let cfg = AdaSidConfig::from_toml("stored model config", &cfg_text)?;
        let meta: ModelMeta =
            codec::decode(Kind::Blob, &super::stored::required(db, blobs::META)?)?;
        let model = AdaSid::build(cfg, meta, device)?;
        model
            .net
            .params()
            .load_bytes(&super::stored::required(db, blobs::WEIGHTS)?)?;
        Ok(model)
    }
}
