//! The RQ-VAE network: an MLP encoder, one codebook per level over its
//! latent, and the mirrored MLP decoder. MM-RQ-VAE has one encoder and one
//! residual quantiser per modality (each encoder reads its modality's slice
//! of the input) and one decoder over their quantised latents concatenated.

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
    /// One encoder per branch (the whole input, or one modality each).
    encoders: Vec<Mlp>,
    /// `(offset, width)` of each branch's slice of the input.
    slices: Vec<(usize, usize)>,
    pub decoder: Mlp,
    /// Every position's codebook, branch-major (`levels` per branch).
    pub codebooks: Vec<Var>,
    levels: usize,
    latent: usize,
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
    /// The network over inputs of modality `widths` (concatenated); one
    /// branch over all of them, or with `cfg.per_modality` one per modality.
    /// A single branch keeps the plain RQ-VAE's tensor names.
    pub fn new(cfg: &RqVaeConfig, widths: &[usize], device: Device) -> Result<Net> {
        let mut params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let input: usize = widths.iter().sum();
        let slices = match cfg.per_modality {
            false => vec![(0, input)],
            true => widths
                .iter()
                .scan(0, |at, &w| {
                    *at += w;
                    Some((*at - w, w))
                })
                .collect(),
        };
        let prefix = |b: usize| match slices.len() {
            1 => String::new(),
            _ => format!("modality{b}."),
        };
        // Encoders, the decoder, then the codebooks: the order the plain
        // RQ-VAE has always drawn its initial weights in.
        let mut encoders = Vec::new();
        for (b, &(_, width)) in slices.iter().enumerate() {
            let mut layers = vec![width];
            layers.extend(&cfg.hidden);
            layers.push(cfg.latent);
            encoders.push(Mlp::new(
                &mut params,
                &format!("{}encoder", prefix(b)),
                &layers,
            )?);
        }
        let mut layers = vec![input];
        layers.extend(&cfg.hidden);
        layers.push(cfg.latent * slices.len());
        layers.reverse();
        let decoder = Mlp::new(&mut params, "decoder", &layers)?;
        let mut codebooks = Vec::new();
        for b in 0..slices.len() {
            for l in 0..cfg.levels {
                let name = format!("{}codebook.{l}", prefix(b));
                codebooks.push(params.uniform(&name, &[cfg.codebook_size, cfg.latent], 0.1)?);
            }
        }
        Ok(Net {
            encoders,
            slices,
            decoder,
            codebooks,
            levels: cfg.levels,
            latent: cfg.latent,
            params,
            distance: cfg.distance,
            commitment: cfg.commitment,
        })
    }

    /// Residual quantisers (one per branch).
    pub fn branches(&self) -> usize {
        self.slices.len()
    }

    /// The latents `[n, branches × latent]` of inputs `x`, branch-major.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        if let [encoder] = &self.encoders[..] {
            return encoder.forward(x);
        }
        let parts = self
            .encoders
            .iter()
            .zip(&self.slices)
            .map(|(e, &(at, w))| e.forward(&x.narrow(1, at, w).map_err(ml)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 1).map_err(ml)
    }

    /// Branch `b`'s slice of concatenated latents `z`.
    pub fn branch_latent(&self, z: &Tensor, b: usize) -> Result<Tensor> {
        z.narrow(1, b * self.latent, self.latent).map_err(ml)
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

    /// Quantises concatenated latents `z`, each branch's slice through its
    /// own levels; tokens and residuals come branch-major.
    pub fn quantize(&self, z: &Tensor) -> Result<Quantized> {
        if self.branches() == 1 {
            return self.quantize_branch(0, z);
        }
        let (mut tokens, mut residuals, mut sums, mut loss) =
            (Vec::new(), Vec::new(), Vec::new(), None::<Tensor>);
        for b in 0..self.branches() {
            let q = self.quantize_branch(b, &self.branch_latent(z, b)?)?;
            tokens.extend(q.tokens);
            residuals.extend(q.residuals);
            sums.push(q.straight_through);
            loss = Some(match loss {
                Some(l) => (l + q.loss).map_err(ml)?,
                None => q.loss,
            });
        }
        Ok(Quantized {
            tokens,
            straight_through: Tensor::cat(&sums, 1).map_err(ml)?,
            loss: loss.expect("at least one branch"),
            residuals,
        })
    }

    /// Residual quantisation of branch `b`'s latent `z` by its levels.
    fn quantize_branch(&self, b: usize, z: &Tensor) -> Result<Quantized> {
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
        let first = b * self.levels;
        for (level, codes) in self.codebooks[first..first + self.levels]
            .iter()
            .enumerate()
        {
            let t = self.assign(first + level, &residual)?;
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
            .map(|c| self.encode(&self.rows(points, d, c)?).map(|t| t.detach()))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0).map_err(ml)
    }

    /// Tokens (`n × positions`) and decoded inputs (`n × width`) of every row.
    pub fn run(&self, points: &[f32], d: usize) -> Result<(Vec<u32>, Vec<f32>)> {
        let n = points.len() / d;
        let positions = self.codebooks.len();
        let idx: Vec<usize> = (0..n).collect();
        let (mut codes, mut decoded) = (vec![0u32; n * positions], Vec::with_capacity(n * d));
        for chunk in idx.chunks(CHUNK) {
            let z = self.encode(&self.rows(points, d, chunk)?)?;
            let q = self.quantize(&z)?;
            for (l, t) in q.tokens.iter().enumerate() {
                for (row, tok) in t.to_vec1::<u32>().map_err(ml)?.into_iter().enumerate() {
                    codes[chunk[row] * positions + l] = tok;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cfg: &RqVaeConfig) -> Vec<String> {
        let net = Net::new(cfg, &[6, 4], Device::Cpu).unwrap();
        let bytes = net.params.to_bytes().unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort();
        names
    }

    /// Databases trained before MM-RQ-VAE existed store these names.
    #[test]
    fn one_branch_keeps_the_rq_vae_tensor_names() {
        let cfg = RqVaeConfig {
            levels: 2,
            hidden: vec![8],
            ..RqVaeConfig::default()
        };
        let expected = [
            "codebook.0",
            "codebook.1",
            "decoder.0.bias",
            "decoder.0.weight",
            "decoder.1.bias",
            "decoder.1.weight",
            "encoder.0.bias",
            "encoder.0.weight",
            "encoder.1.bias",
            "encoder.1.weight",
        ];
        assert_eq!(names(&cfg), expected);
        let mm = names(&RqVaeConfig {
            per_modality: true,
            ..cfg
        });
        assert!(mm.contains(&"modality1.codebook.1".to_string()), "{mm:?}");
        assert!(mm.contains(&"modality0.encoder.0.weight".to_string()));
        assert_eq!(mm.iter().filter(|n| n.contains("codebook")).count(), 4);
    }
}
