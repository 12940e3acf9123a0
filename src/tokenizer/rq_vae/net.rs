//! The RQ-VAE network: an MLP encoder, one codebook per level over its
//! latent, and the mirrored MLP decoder.

use candle_core::{D, DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::{Distance, RqVaeConfig};
use crate::error::Result;
use crate::nn::ParamStore;
use crate::nn::losses::l2_normalize;
use crate::nn::params::{Mlp, ml};

/// Rows per forward pass outside training.
const CHUNK: usize = 8192;

pub(super) struct Net {
    pub encoder: Mlp,
    pub decoder: Mlp,
    pub codebooks: Vec<Var>,
    pub params: ParamStore,
    distance: Distance,
    commitment: f64,
}

/// What one quantisation pass gives.
pub(super) struct Quantized {
    /// Token per level, each `[batch]` u32.
    pub tokens: Vec<Tensor>,
    /// Σ of chosen codes, straight-through to the latent.
    pub straight_through: Tensor,
    /// Σ over levels of codebook + β·commitment loss.
    pub loss: Tensor,
    /// Residual entering each level (detached), for re-seeding.
    pub residuals: Vec<Tensor>,
}

impl Net {
    pub fn new(cfg: &RqVaeConfig, input: usize, device: Device) -> Result<Net> {
        let mut params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let mut widths = vec![input];
        widths.extend(&cfg.hidden);
        widths.push(cfg.latent);
        let encoder = Mlp::new(&mut params, "encoder", &widths)?;
        widths.reverse();
        let decoder = Mlp::new(&mut params, "decoder", &widths)?;
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
            distance: cfg.distance,
            commitment: cfg.commitment,
        })
    }

    pub fn device(&self) -> &Device {
        self.params.device()
    }

    /// Rows `idx` of the row-major table `points` (width `d`) as a tensor.
    pub fn rows(&self, points: &[f32], d: usize, idx: &[usize]) -> Result<Tensor> {
        let mut v = Vec::with_capacity(idx.len() * d);
        idx.iter()
            .for_each(|&i| v.extend_from_slice(&points[i * d..(i + 1) * d]));
        Tensor::from_vec(v, (idx.len(), d), self.device()).map_err(ml)
    }

    /// Nearest code of each row of `r` at `level`.
    fn assign(&self, level: usize, r: &Tensor) -> Result<Tensor> {
        let codes = self.codebooks[level].as_tensor();
        match self.distance {
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

    pub fn quantize(&self, z: &Tensor) -> Result<Quantized> {
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
        for (level, codes) in self.codebooks.iter().enumerate() {
            let t = self.assign(level, &residual)?;
            let q = codes.as_tensor().index_select(&t, 0).map_err(ml)?;
            let codebook = sq((residual.clone() - &q).map_err(ml)?)?;
            let commit = sq((live.clone() - q.detach()).map_err(ml)?)?;
            loss = (loss + codebook + (commit * self.commitment).map_err(ml)?).map_err(ml)?;
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

    /// The encoder's output of every row, without a graph.
    pub fn latents(&self, points: &[f32], d: usize) -> Result<Tensor> {
        let idx: Vec<usize> = (0..points.len() / d).collect();
        let parts = idx
            .chunks(CHUNK)
            .map(|c| {
                self.encoder
                    .forward(&self.rows(points, d, c)?)
                    .map(|t| t.detach())
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0).map_err(ml)
    }

    /// Tokens (`n × levels`) and decoded inputs (`n × width`) of every row.
    pub fn run(&self, points: &[f32], d: usize) -> Result<(Vec<u32>, Vec<f32>)> {
        let n = points.len() / d;
        let levels = self.codebooks.len();
        let idx: Vec<usize> = (0..n).collect();
        let (mut codes, mut decoded) = (vec![0u32; n * levels], Vec::with_capacity(n * d));
        for chunk in idx.chunks(CHUNK) {
            let z = self.encoder.forward(&self.rows(points, d, chunk)?)?;
            let q = self.quantize(&z)?;
            for (l, t) in q.tokens.iter().enumerate() {
                for (row, tok) in t.to_vec1::<u32>().map_err(ml)?.into_iter().enumerate() {
                    codes[chunk[row] * levels + l] = tok;
                }
            }
            let xhat = self.decoder.forward(&q.straight_through)?;
            decoded.extend(
                xhat.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(ml)?,
            );
        }
        Ok((codes, decoded))
    }
}
