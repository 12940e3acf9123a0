//! Cosine-matched codebooks with straight-through estimation.

use candle_core::{D, Tensor, Var};
use rand::Rng;

use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::kmeans;
use crate::nn::epochs;
use crate::nn::losses::l2_normalize;
use crate::nn::params::{ParamStore, ml};

/// One expert's codebook: `K` code vectors, matched by cosine similarity.
pub struct Codebook {
    codes: Var,
    k: usize,
    dim: usize,
}

/// A quantised batch.
pub struct Quantized {
    /// Chosen code per row, `[batch]` u32.
    pub tokens: Tensor,
    /// `z + sg(q − z)`: the decoder sees `q`, gradients reach `z`.
    pub straight_through: Tensor,
    /// Codebook loss `‖sg(z) − q‖²` plus `commitment · ‖z − sg(q)‖²`, batch mean.
    pub loss: Tensor,
}

impl Codebook {
    /// `k` codes of width `dim`, randomly initialised (k-means replaces them).
    pub fn new(ps: &mut ParamStore, name: &str, k: usize, dim: usize) -> Result<Self> {
        Ok(Codebook {
            codes: ps.uniform(name, &[k, dim], 1.0)?,
            k,
            dim,
        })
    }

    /// Unit-norm code vectors.
    pub fn normalized(&self) -> Result<Tensor> {
        l2_normalize(self.codes.as_tensor())
    }

    /// `argmax_k cos(z, c_k)` for each row of unit-norm `z`.
    pub fn nearest(&self, z: &Tensor) -> Result<Tensor> {
        let sims = z.matmul(&self.normalized()?.t().map_err(ml)?).map_err(ml)?;
        sims.argmax(D::Minus1).map_err(ml)
    }

    /// Quantises unit-norm `z` with the straight-through estimator.
    pub fn quantize(&self, z: &Tensor, commitment: f64) -> Result<Quantized> {
        let codes = self.normalized()?;
        let tokens = z
            .matmul(&codes.t().map_err(ml)?)
            .and_then(|s| s.argmax(D::Minus1))
            .map_err(ml)?;
        let q = codes.index_select(&tokens, 0).map_err(ml)?;
        let sq = |t: Tensor| {
            t.sqr()
                .and_then(|s| s.sum(D::Minus1))
                .and_then(|s| s.mean_all())
                .map_err(ml)
        };
        let codebook_loss = sq((z.detach() - &q).map_err(ml)?)?;
        let commit_loss = sq((z - q.detach()).map_err(ml)?)?;
        let loss = (codebook_loss + (commit_loss * commitment).map_err(ml)?).map_err(ml)?;
        let straight_through = (z + (q - z).map_err(ml)?.detach()).map_err(ml)?;
        Ok(Quantized {
            tokens,
            straight_through,
            loss,
        })
    }

    /// Sets the codes to spherical k-means centroids of `points` (unit rows, width `dim`).
    pub fn init_kmeans<R: Rng>(&self, points: &[f32], max_iter: usize, rng: &mut R) -> Result<()> {
        let c = kmeans::spherical_kmeans(points, self.dim, self.k, max_iter, rng);
        self.set_rows(c.centroids)
    }

    /// Replaces the `dead` codes by randomly chosen rows of `samples` (unit rows).
    pub fn reseed(&self, dead: &[usize], samples: &Tensor, rng: &mut ChaCha8Rng) -> Result<()> {
        epochs::reseed(&self.codes, dead, samples, rng)
    }

    /// The codes as a row-major `K × dim` vector.
    pub fn rows(&self) -> Result<Vec<f32>> {
        self.normalized()?
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(ml)
    }

    fn set_rows(&self, rows: Vec<f32>) -> Result<()> {
        let t = Tensor::from_vec(rows, (self.k, self.dim), self.codes.device()).map_err(ml)?;
        self.codes.set(&t).map_err(ml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn codebook() -> Codebook {
        let mut ps = ParamStore::new(Device::Cpu, ChaCha8Rng::seed_from_u64(0));
        let cb = Codebook::new(&mut ps, "cb", 3, 2).unwrap();
        cb.set_rows(vec![1.0, 0.0, 0.0, 2.0, -1.0, 0.0]).unwrap();
        cb
    }

    #[test]
    fn cosine_argmax_ignores_code_length() {
        let cb = codebook();
        // (0.6, 0.8) is closer in angle to (0, 2) than to (1, 0), whatever the lengths.
        let z = Tensor::new(&[[0.6f32, 0.8], [0.8, -0.6], [-1.0, 0.1]], &Device::Cpu).unwrap();
        assert_eq!(
            cb.nearest(&z).unwrap().to_vec1::<u32>().unwrap(),
            vec![1, 0, 2]
        );
    }

    #[test]
    fn straight_through_passes_gradient_to_the_encoder() {
        let cb = codebook();
        let z = Var::new(&[[0.6f32, 0.8]], &Device::Cpu).unwrap();
        let q = cb.quantize(z.as_tensor(), 0.25).unwrap();
        // Forward value is the code (0, 1); the gradient of sum(q_st) w.r.t. z is 1 everywhere.
        assert_eq!(
            q.straight_through.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 1.0]]
        );
        let grads = q.straight_through.sum_all().unwrap().backward().unwrap();
        let g = grads.get(z.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(g, vec![vec![1.0, 1.0]]);
        // The VQ loss: ‖z − q‖² (1 + 0.25) = (0.36 + 0.04) · 1.25 = 0.5.
        assert!((q.loss.to_scalar::<f32>().unwrap() - 0.5).abs() < 1e-6);
    }
}
