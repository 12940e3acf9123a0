//! RQ-VAE (TIGER's tokenizer): an MLP encoder, residual codebooks over its
//! latent (L2 or cosine matching, straight-through gradients), an MLP
//! decoder. Codebooks start from residual k-means of the initial latents;
//! codes no item chose in an epoch are re-seeded from live residuals.

use std::path::Path;
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Reconstruction;
use super::config::read_toml;
use super::inputs::{Inputs, model_inputs, residual_items, split};
use super::stored;
use crate::blobs::BlobSource;
use crate::data::embeddings::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::kmeans::{EuclideanParams, ResidualQuantizer};
use crate::model::ParamStore;
use crate::model::losses::l2_normalize;
use crate::model::params::{Linear, ml};
use crate::sid::SidLayout;

/// Blob names of a stored RQ-VAE.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "rq-vae/config";
    /// The widths of the modalities it reads.
    pub const WIDTHS: &str = "rq-vae/widths";
    /// Encoder, decoder and codebooks (safetensors).
    pub const WEIGHTS: &str = "rq-vae/weights";
}

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
            data: DataSpec::default(),
        }
    }
}

impl RqVaeConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        SidLayout::new(self.levels as u32, self.codebook_size as u32, 0)?;
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if self.codebook_size < 2 || self.latent == 0 || self.hidden.contains(&0) {
            return bad("codebook_size must be at least 2; latent and hidden widths positive");
        }
        if self.batch_size < 2 || self.epochs == 0 || !(self.lr > 0.0) {
            return bad("batch_size must be at least 2, epochs at least 1, lr positive");
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

struct Net {
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
    codebooks: Vec<Var>,
    params: ParamStore,
}

fn mlp(x: &Tensor, layers: &[Linear]) -> Result<Tensor> {
    let mut h = x.clone();
    for (i, l) in layers.iter().enumerate() {
        h = l.forward(&h)?;
        if i + 1 < layers.len() {
            h = h.relu().map_err(ml)?;
        }
    }
    Ok(h)
}

impl Net {
    fn new(cfg: &RqVaeConfig, input: usize, device: Device) -> Result<Net> {
        let mut params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let mut widths = vec![input];
        widths.extend(&cfg.hidden);
        widths.push(cfg.latent);
        let mut encoder = Vec::new();
        for (i, w) in widths.windows(2).enumerate() {
            encoder.push(Linear::new(
                &mut params,
                &format!("encoder.{i}"),
                w[0],
                w[1],
            )?);
        }
        let mut decoder = Vec::new();
        for (i, w) in widths.windows(2).rev().enumerate() {
            decoder.push(Linear::new(
                &mut params,
                &format!("decoder.{i}"),
                w[1],
                w[0],
            )?);
        }
        let codebooks = (0..cfg.levels)
            .map(|l| {
                params.uniform(
                    &format!("codebook.{l}"),
                    &[cfg.codebook_size, cfg.latent],
                    0.1,
                )
            })
            .collect::<Result<_>>()?;
        Ok(Net {
            encoder,
            decoder,
            codebooks,
            params,
        })
    }
}

/// What one quantisation pass gives.
struct Quantized {
    /// Token per level, each `[batch]` u32.
    tokens: Vec<Tensor>,
    /// Σ of chosen codes, straight-through to the latent.
    straight_through: Tensor,
    /// Σ over levels of codebook + β·commitment loss.
    loss: Tensor,
    /// Residual entering each level (detached), for re-seeding.
    residuals: Vec<Tensor>,
}

/// A trained RQ-VAE tokenizer.
pub struct RqVae {
    cfg: RqVaeConfig,
    widths: Vec<usize>,
    net: Net,
}

impl RqVae {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "rq-vae";

    fn build(cfg: RqVaeConfig, widths: Vec<usize>, device: Device) -> Result<RqVae> {
        let net = Net::new(&cfg, widths.iter().sum(), device)?;
        Ok(RqVae { cfg, widths, net })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &RqVaeConfig {
        &self.cfg
    }

    /// The SID layout (no behavior positions).
    pub fn layout(&self) -> SidLayout {
        SidLayout::new(self.cfg.levels as u32, self.cfg.codebook_size as u32, 0)
            .expect("validated config")
    }

    fn device(&self) -> &Device {
        self.net.params.device()
    }

    fn inputs(&self, data: &Dataset) -> Result<(Vec<f32>, usize)> {
        model_inputs(&self.widths, self.cfg.inputs, data)
    }

    fn rows(&self, points: &[f32], d: usize, idx: &[usize]) -> Result<Tensor> {
        let mut v = Vec::with_capacity(idx.len() * d);
        idx.iter()
            .for_each(|&i| v.extend_from_slice(&points[i * d..(i + 1) * d]));
        Tensor::from_vec(v, (idx.len(), d), self.device()).map_err(ml)
    }

    /// Nearest code of each row of `r` at `level`.
    fn assign(&self, level: usize, r: &Tensor) -> Result<Tensor> {
        let codes = self.net.codebooks[level].as_tensor();
        match self.cfg.distance {
            Distance::L2 => {
                let norms = codes.sqr().and_then(|c| c.sum(D::Minus1)).map_err(ml)?;
                r.matmul(&codes.t().map_err(ml)?)
                    .and_then(|s| s * -2.0)
                    .and_then(|s| s.broadcast_add(&norms))
                    .and_then(|s| s.argmin(D::Minus1))
                    .map_err(ml)
            }
            Distance::Cosine => {
                let (r, c) = (l2_normalize(r)?, l2_normalize(codes)?);
                r.matmul(&c.t().map_err(ml)?)
                    .and_then(|s| s.argmax(D::Minus1))
                    .map_err(ml)
            }
        }
    }

    fn quantize(&self, z: &Tensor) -> Result<Quantized> {
        let sq = |t: Tensor| -> Result<Tensor> {
            t.sqr()
                .and_then(|s| s.sum(D::Minus1))
                .and_then(|s| s.mean_all())
                .map_err(ml)
        };
        let mut residual = z.detach();
        let (mut tokens, mut residuals) = (Vec::new(), Vec::new());
        let mut sum: Option<Tensor> = None;
        let mut loss = Tensor::zeros((), DType::F32, self.device()).map_err(ml)?;
        // The encoder output enters level 0 with its graph; deeper residuals
        // take their gradient through `z` only via the commitment terms.
        let mut live = z.clone();
        for level in 0..self.cfg.levels {
            let t = self.assign(level, &residual)?;
            let q = self.net.codebooks[level]
                .as_tensor()
                .index_select(&t, 0)
                .map_err(ml)?;
            let codebook = sq((residual.clone() - &q).map_err(ml)?)?;
            let commit = sq((live.clone() - q.detach()).map_err(ml)?)?;
            loss = (loss + codebook + (commit * self.cfg.commitment).map_err(ml)?).map_err(ml)?;
            residuals.push(residual.clone());
            residual = (residual - q.detach()).map_err(ml)?;
            live = (live - q.detach()).map_err(ml)?;
            sum = Some(match sum {
                Some(s) => (s + &q).map_err(ml)?,
                None => q,
            });
            tokens.push(t);
        }
        let sum = sum.expect("at least one level");
        let straight_through = (z + (sum - z).map_err(ml)?.detach()).map_err(ml)?;
        Ok(Quantized {
            tokens,
            straight_through,
            loss,
            residuals,
        })
    }

    /// Trains on `data`; `progress` sees each epoch's figures.
    pub fn train(
        cfg: RqVaeConfig,
        data: &Dataset,
        device: Device,
        mut progress: impl FnMut(&RqVaeEpoch),
    ) -> Result<(RqVae, Vec<RqVaeEpoch>)> {
        cfg.validate()?;
        if data.len() < 2 {
            return Err(Error::InvalidArgument(
                "training needs at least 2 items".into(),
            ));
        }
        let widths = cfg.inputs.widths(data);
        let model = RqVae::build(cfg, widths, device)?;
        let (points, d) = model.inputs(data)?;
        let mut rng = ChaCha8Rng::seed_from_u64(model.cfg.seed ^ 0x5eed);
        model.init_codebooks(&points, d, &mut rng)?;
        let history = model.fit(&points, d, &mut rng, &mut progress)?;
        Ok((model, history))
    }

    fn latents(&self, points: &[f32], d: usize) -> Result<Tensor> {
        let n = points.len() / d;
        let idx: Vec<usize> = (0..n).collect();
        let parts = idx
            .chunks(8192)
            .map(|c| mlp(&self.rows(points, d, c)?, &self.net.encoder).map(|t| t.detach()))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0).map_err(ml)
    }

    /// Residual k-means of the initial latents gives every level its codes.
    fn init_codebooks(&self, points: &[f32], d: usize, rng: &mut ChaCha8Rng) -> Result<()> {
        let z: Vec<f32> = self
            .latents(points, d)?
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(ml)?;
        let params = EuclideanParams {
            k: self.cfg.codebook_size,
            ..Default::default()
        };
        let rq = ResidualQuantizer::train(
            &z,
            self.cfg.latent,
            self.cfg.levels,
            &params,
            rng,
            |_, _| {},
        );
        for (var, cb) in self.net.codebooks.iter().zip(rq.codebooks) {
            let t = Tensor::from_vec(cb, (self.cfg.codebook_size, self.cfg.latent), self.device())
                .map_err(ml)?;
            var.set(&t).map_err(ml)?;
        }
        Ok(())
    }

    fn fit(
        &self,
        points: &[f32],
        d: usize,
        rng: &mut ChaCha8Rng,
        progress: &mut impl FnMut(&RqVaeEpoch),
    ) -> Result<Vec<RqVaeEpoch>> {
        let cfg = &self.cfg;
        let params = ParamsAdamW {
            lr: cfg.lr,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(self.net.params.vars(), params).map_err(ml)?;
        let k = cfg.codebook_size;
        let mut order: Vec<usize> = (0..points.len() / d).collect();
        let mut history = Vec::with_capacity(cfg.epochs);
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            order.shuffle(rng);
            let mut usage = vec![vec![0u32; k]; cfg.levels];
            let (mut recon_sum, mut vq_sum, mut steps) = (0f64, 0f64, 0usize);
            let mut last_residuals = Vec::new();
            for idx in order.chunks(cfg.batch_size).filter(|c| c.len() >= 2) {
                let x = self.rows(points, d, idx)?;
                let z = mlp(&x, &self.net.encoder)?;
                let q = self.quantize(&z)?;
                let xhat = mlp(&q.straight_through, &self.net.decoder)?;
                let recon = (x - xhat)
                    .and_then(|e| e.sqr())
                    .and_then(|e| e.sum(D::Minus1))
                    .and_then(|e| e.mean_all())
                    .map_err(ml)?;
                let total = (&recon + &q.loss).map_err(ml)?;
                opt.backward_step(&total).map_err(ml)?;
                for (l, t) in q.tokens.iter().enumerate() {
                    for tok in t.to_vec1::<u32>().map_err(ml)? {
                        usage[l][tok as usize] += 1;
                    }
                }
                recon_sum += recon.to_scalar::<f32>().map_err(ml)? as f64;
                vq_sum += q.loss.to_scalar::<f32>().map_err(ml)? as f64;
                steps += 1;
                last_residuals = q.residuals;
            }
            if epoch * 10 <= cfg.epochs * 9 {
                self.reseed(&usage, &last_residuals, rng)?;
            }
            let stats = RqVaeEpoch {
                epoch,
                recon: recon_sum / steps.max(1) as f64,
                vq: vq_sum / steps.max(1) as f64,
                utilisation: usage
                    .iter()
                    .map(|u| u.iter().filter(|&&c| c > 0).count() as f64 / k as f64)
                    .collect(),
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(&stats);
            history.push(stats);
        }
        Ok(history)
    }

    /// Codes nobody chose this epoch take a random live residual of their level.
    fn reseed(&self, usage: &[Vec<u32>], residuals: &[Tensor], rng: &mut ChaCha8Rng) -> Result<()> {
        let dim = self.cfg.latent;
        for ((var, used), r) in self.net.codebooks.iter().zip(usage).zip(residuals) {
            let dead: Vec<usize> = (0..used.len()).filter(|&c| used[c] == 0).collect();
            if dead.is_empty() {
                continue;
            }
            let samples: Vec<f32> = r.flatten_all().and_then(|t| t.to_vec1()).map_err(ml)?;
            let n = samples.len() / dim;
            let mut codes: Vec<f32> = var
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(ml)?;
            for c in dead {
                let s = rng.gen_range(0..n);
                codes[c * dim..(c + 1) * dim].copy_from_slice(&samples[s * dim..(s + 1) * dim]);
            }
            let t = Tensor::from_vec(codes, (used.len(), dim), self.device()).map_err(ml)?;
            var.set(&t).map_err(ml)?;
        }
        Ok(())
    }

    /// Tokens (`n × levels`) and decoded inputs (`n × width`) of every row.
    fn run(&self, points: &[f32], d: usize) -> Result<(Vec<u32>, Vec<f32>)> {
        let n = points.len() / d;
        let idx: Vec<usize> = (0..n).collect();
        let (mut codes, mut decoded) = (vec![0u32; n * self.cfg.levels], Vec::with_capacity(n * d));
        for chunk in idx.chunks(8192) {
            let z = mlp(&self.rows(points, d, chunk)?, &self.net.encoder)?;
            let q = self.quantize(&z)?;
            for (l, t) in q.tokens.iter().enumerate() {
                for (row, tok) in t.to_vec1::<u32>().map_err(ml)?.into_iter().enumerate() {
                    codes[(chunk[row]) * self.cfg.levels + l] = tok;
                }
            }
            let xhat = mlp(&q.straight_through, &self.net.decoder)?;
            decoded.extend(
                xhat.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(ml)?,
            );
        }
        Ok((codes, decoded))
    }

    /// The SID of every item of `data`, in row order.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        let (points, d) = self.inputs(data)?;
        let (codes, _) = self.run(&points, d)?;
        Ok(residual_items(&codes, self.cfg.levels, &data.keys))
    }

    /// The decoder's output from each item's codes, split into modalities.
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        let (points, d) = self.inputs(data)?;
        let (_, decoded) = self.run(&points, d)?;
        Ok(Reconstruction::from_tables(
            split(&decoded, &self.widths),
            data.content.len(),
        ))
    }

    /// Everything a database needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = stored::residual_header(
            Self::NAME,
            blobs::CONFIG,
            &self.cfg,
            blobs::WIDTHS,
            &self.widths,
        );
        out.push((blobs::WEIGHTS.to_string(), self.net.params.to_bytes()?));
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized), device: Device) -> Result<RqVae> {
        let (cfg, widths): (RqVaeConfig, Vec<usize>) =
            stored::config_and_widths(db, blobs::CONFIG, blobs::WIDTHS)?;
        cfg.validate()?;
        let model = RqVae::build(cfg, widths, device)?;
        model
            .net
            .params
            .load_bytes(&stored::required(db, blobs::WEIGHTS)?)?;
        Ok(model)
    }
}
