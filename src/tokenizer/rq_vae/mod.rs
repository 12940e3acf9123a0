//! RQ-VAE (TIGER's tokenizer): an MLP encoder, residual codebooks over its
//! latent (L2 or cosine matching, straight-through gradients), an MLP
//! decoder. With `per_modality` it is MM-RQ-VAE: a residual quantiser per
//! modality, their tokens concatenated, one shared decoder. Codebooks start
//! from residual k-means of the initial latents; codes no item chose in an
//! epoch are re-seeded from live residuals.

use candle_core::{D, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Reconstruction;
use super::inputs::{model_inputs, residual_items, residual_layout, split};
use super::stored;
use crate::blobs::BlobSource;
use crate::data::embeddings::Dataset;
use crate::error::Result;
use crate::item::NewItem;
use crate::kmeans::{EuclideanParams, ResidualQuantizer};
use crate::nn::epochs::{self, Epoch, Plan};
use crate::nn::params::ml;
use crate::sid::SidLayout;
use letter::Letter;
use net::Net;

mod config;
mod letter;
mod net;

pub use config::{Distance, RqVaeConfig, RqVaeEpoch};

/// Blob names of a stored RQ-VAE.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "rq-vae/config";
    /// The widths of the modalities it reads.
    pub const WIDTHS: &str = "rq-vae/widths";
    /// Encoder, decoder and codebooks (safetensors).
    pub const WEIGHTS: &str = "rq-vae/weights";
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
        let net = Net::new(&cfg, &widths, device)?;
        let model = RqVae { cfg, widths, net };
        residual_layout(model.positions(), model.cfg.codebook_size)?;
        Ok(model)
    }

    /// The configuration trained with.
    pub fn config(&self) -> &RqVaeConfig {
        &self.cfg
    }

    /// SID positions: `levels`, once per modality for MM-RQ-VAE.
    fn positions(&self) -> usize {
        self.cfg.levels * self.net.branches()
    }

    /// The SID layout (no behavior positions).
    pub fn layout(&self) -> SidLayout {
        residual_layout(self.positions(), self.cfg.codebook_size).expect("validated config")
    }

    fn inputs(&self, data: &Dataset) -> Result<(Vec<f32>, usize)> {
        model_inputs(&self.widths, self.cfg.inputs, data)
    }

    /// Trains on `data`; `progress` sees each epoch's figures.
    pub fn train(
        cfg: RqVaeConfig,
        data: &Dataset,
        device: Device,
        mut progress: impl FnMut(&RqVaeEpoch),
    ) -> Result<(RqVae, Vec<RqVaeEpoch>)> {
        cfg.validate()?;
        epochs::check_trainable(data.len())?;
        let widths = cfg.inputs.widths(data);
        let model = RqVae::build(cfg, widths, device)?;
        let (points, d) = model.inputs(data)?;
        let mut rng = ChaCha8Rng::seed_from_u64(model.cfg.seed ^ 0x5eed);
        model.init_codebooks(&points, d, &mut rng)?;
        let letter = Letter::new(&model.cfg, data, model.net.device().clone())?;
        let history = model.fit((&points, d), letter, &mut rng, &mut progress)?;
        Ok((model, history))
    }

    /// Residual k-means of the initial latents gives every level of every
    /// branch its codes.
    fn init_codebooks(&self, points: &[f32], d: usize, rng: &mut ChaCha8Rng) -> Result<()> {
        let latents = self.net.latents(points, d)?;
        let params = EuclideanParams {
            k: self.cfg.codebook_size,
            ..Default::default()
        };
        let (k, width, levels) = (self.cfg.codebook_size, self.cfg.latent, self.cfg.levels);
        for b in 0..self.net.branches() {
            let z: Vec<f32> = self
                .net
                .branch_latent(&latents, b)
                .and_then(|t| t.flatten_all().map_err(ml))
                .and_then(|t| t.to_vec1().map_err(ml))?;
            let rq = ResidualQuantizer::train(&z, width, levels, &params, rng, |_, _| {});
            let vars = &self.net.codebooks[b * levels..(b + 1) * levels];
            for (var, cb) in vars.iter().zip(rq.codebooks) {
                let t = Tensor::from_vec(cb, (k, width), self.net.device()).map_err(ml)?;
                var.set(&t).map_err(ml)?;
            }
        }
        Ok(())
    }

    fn fit(
        &self,
        (points, d): (&[f32], usize),
        mut letter: Option<Letter>,
        rng: &mut ChaCha8Rng,
        progress: &mut impl FnMut(&RqVaeEpoch),
    ) -> Result<Vec<RqVaeEpoch>> {
        let cfg = &self.cfg;
        let params = ParamsAdamW {
            lr: cfg.lr,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut vars = self.net.params.vars();
        vars.extend(letter.as_ref().map_or(Vec::new(), Letter::vars));
        let mut opt = AdamW::new(vars, params).map_err(ml)?;
        let plan = Plan {
            rows: points.len() / d,
            batch_size: cfg.batch_size,
            epochs: cfg.epochs,
            codebooks: self.positions(),
            k: cfg.codebook_size,
        };
        let table = (points, d);
        epochs::run(
            plan,
            rng,
            |e, rng| self.epoch(e, rng, (&mut opt, letter.as_mut()), table),
            progress,
        )
    }

    /// One epoch over the rows of `points` (width `d`); dead codes then take
    /// a random residual of their level from the last batch.
    fn epoch(
        &self,
        epoch: &mut Epoch<'_>,
        rng: &mut ChaCha8Rng,
        (opt, mut letter): (&mut AdamW, Option<&mut Letter>),
        (points, d): (&[f32], usize),
    ) -> Result<RqVaeEpoch> {
        if let Some(l) = letter.as_deref_mut() {
            l.recluster(&self.net, rng)?;
        }
        let (mut recon_sum, mut vq_sum, mut steps) = (0f64, 0f64, 0usize);
        let mut last_residuals = Vec::new();
        for idx in epoch.batches() {
            let x = self.net.rows(points, d, idx)?;
            let z = self.net.encode(&x)?;
            let q = self.net.quantize(&z)?;
            let xhat = self.net.decoder.forward(&q.straight_through)?;
            let recon = (x - xhat)
                .and_then(|e| e.sqr())
                .and_then(|e| e.sum(D::Minus1))
                .and_then(|e| e.mean_all())
                .map_err(ml)?;
            let mut total = (&recon + &q.loss).map_err(ml)?;
            if let Some(l) = letter.as_deref() {
                total = (total + l.loss(&self.net, &q, idx, rng)?).map_err(ml)?;
            }
            opt.backward_step(&total).map_err(ml)?;
            epoch.usage.record(&q.tokens)?;
            recon_sum += recon.to_scalar::<f32>().map_err(ml)? as f64;
            vq_sum += q.loss.to_scalar::<f32>().map_err(ml)? as f64;
            steps += 1;
            last_residuals = q.residuals;
        }
        if epoch.reseeds() {
            for (l, (codes, r)) in self.net.codebooks.iter().zip(&last_residuals).enumerate() {
                epochs::reseed(codes, &epoch.usage.dead(l), r, rng)?;
            }
        }
        Ok(RqVaeEpoch {
            epoch: epoch.number,
            recon: recon_sum / steps.max(1) as f64,
            vq: vq_sum / steps.max(1) as f64,
            utilisation: epoch.usage.utilisation(),
            seconds: epoch.seconds(),
        })
    }

    /// The SID of every item of `data`, in row order.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        let (points, d) = self.inputs(data)?;
        let (codes, _) = self.net.run(&points, d)?;
        Ok(residual_items(&codes, self.positions(), &data.keys))
    }

    /// The decoder's output from each item's codes, split into modalities.
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        let (points, d) = self.inputs(data)?;
        let (_, decoded) = self.net.run(&points, d)?;
        Ok(Reconstruction::from_tables(
            split(&decoded, &self.widths),
            data.content.len(),
        ))
    }

    /// Its configuration, input widths and weights, as the blobs a database
    /// needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let names = [blobs::CONFIG, blobs::WIDTHS];
        let mut out = stored::residual_header(Self::NAME, names, &self.cfg, &self.widths);
        out.push((blobs::WEIGHTS.to_string(), self.net.params.to_bytes()?));
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized), device: Device) -> Result<RqVae> {
        let (cfg, widths): (RqVaeConfig, Vec<usize>) =
            stored::config_and_widths(db, (blobs::CONFIG, RqVaeConfig::validate), blobs::WIDTHS)?;
        let model = RqVae::build(cfg, widths, device)?;
        model
            .net
            .params
            .load_bytes(&stored::required(db, blobs::WEIGHTS)?)?;
        Ok(model)
    }
}
