//! Residual k-means quantisation (RQ-Kmeans): level `l` clusters what levels
//! `0..l` left unexplained, so each token refines the one before it.

use rand::Rng;
use rayon::prelude::*;

use super::euclidean::{EuclideanParams, nearest, train_euclidean};

/// Rows per encoding batch: enough to keep every core busy in `nearest`.
pub const ENCODE_ROWS: usize = 1 << 16;

/// `levels` codebooks of `k` centroids in `d` dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualQuantizer {
    /// Vector width.
    pub d: usize,
    /// Centroids per level.
    pub k: usize,
    /// One `k × d` row-major codebook per level.
    pub codebooks: Vec<Vec<f32>>,
}

fn subtract_codes(residual: &mut [f32], d: usize, codebook: &[f32], best: &[(u32, f32)]) {
    residual
        .par_chunks_exact_mut(d)
        .zip(best)
        .for_each(|(r, &(c, _))| {
            let c = &codebook[c as usize * d..(c as usize + 1) * d];
            r.iter_mut().zip(c).for_each(|(x, y)| *x -= y);
        });
}

impl ResidualQuantizer {
    /// Trains `levels` codebooks on the rows of `points`; `on_level` sees each
    /// level's mean squared residual norm once that level is fitted.
    pub fn train<R: Rng>(
        points: &[f32],
        d: usize,
        levels: usize,
        params: &EuclideanParams,
        rng: &mut R,
        mut on_level: impl FnMut(usize, f64),
    ) -> ResidualQuantizer {
        let mut residual = points.to_vec();
        let mut codebooks = Vec::with_capacity(levels);
        for level in 0..levels {
            let codebook = train_euclidean(&residual, d, params, rng);
            let best = nearest(&residual, d, &codebook, params.k);
            subtract_codes(&mut residual, d, &codebook, &best);
            let mse = best.iter().map(|b| b.1 as f64).sum::<f64>() / best.len().max(1) as f64;
            on_level(level, mse);
            codebooks.push(codebook);
        }
        ResidualQuantizer {
            d,
            k: params.k,
            codebooks,
        }
    }

    /// Levels.
    pub fn levels(&self) -> usize {
        self.codebooks.len()
    }

    /// Codes of every row, row-major `n × levels`, and the squared norm of each
    /// row's final residual (its squared reconstruction error). Rows go
    /// through in batches of [`ENCODE_ROWS`], so beyond the input and the
    /// output it holds one batch's residuals.
    pub fn encode(&self, points: &[f32]) -> (Vec<u32>, Vec<f32>) {
        let n = points.len() / self.d;
        let (mut codes, mut errors) =
            (Vec::with_capacity(n * self.levels()), Vec::with_capacity(n));
        for batch in points.chunks(ENCODE_ROWS * self.d) {
            let (c, e) = self.encode_batch(batch);
            codes.extend(c);
            errors.extend(e);
        }
        (codes, errors)
    }

    /// [`Self::encode`] of one batch of rows.
    fn encode_batch(&self, points: &[f32]) -> (Vec<u32>, Vec<f32>) {
        let n = points.len() / self.d;
        let mut residual = points.to_vec();
        let mut codes = vec![0u32; n * self.levels()];
        let mut errors = vec![0f32; n];
        for (level, codebook) in self.codebooks.iter().enumerate() {
            let best = nearest(&residual, self.d, codebook, self.k);
            subtract_codes(&mut residual, self.d, codebook, &best);
            for (i, &(c, e)) in best.iter().enumerate() {
                codes[i * self.levels() + level] = c;
                errors[i] = e;
            }
        }
        (codes, errors)
    }

    /// Sum of each row's code vectors (`n × d`).
    pub fn decode(&self, codes: &[u32]) -> Vec<f32> {
        let mut out = vec![0f32; codes.len() / self.levels().max(1) * self.d];
        for (row, sid) in out
            .chunks_exact_mut(self.d)
            .zip(codes.chunks_exact(self.levels()))
        {
            for (codebook, &c) in self.codebooks.iter().zip(sid) {
                let v = &codebook[c as usize * self.d..(c as usize + 1) * self.d];
                row.iter_mut().zip(v).for_each(|(x, y)| *x += y);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        crate::kmeans::normalize_rows(&mut v, d);
        v
    }

    #[test]
    fn batched_encoding_equals_one_pass() {
        let d = 4;
        let params = EuclideanParams {
            k: 8,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let rq = ResidualQuantizer::train(&data(2000, d, 2), d, 2, &params, &mut rng, |_, _| {});
        let points = data(ENCODE_ROWS + 1234, d, 3);
        assert_eq!(rq.encode(&points), rq.encode_batch(&points));
    }

    #[test]
    fn error_falls_with_every_level_and_decode_matches_encode() {
        let (n, d) = (3000, 16);
        let pts = data(n, d, 1);
        let p = EuclideanParams {
            k: 16,
            ..Default::default()
        };
        let mut per_level = Vec::new();
        let rq =
            ResidualQuantizer::train(&pts, d, 4, &p, &mut ChaCha8Rng::seed_from_u64(2), |_, m| {
                per_level.push(m)
            });
        assert!(per_level.windows(2).all(|w| w[1] < w[0]), "{per_level:?}");
        assert!(
            per_level[0] < 1.0,
            "first level explains something: {per_level:?}"
        );
        let (codes, errors) = rq.encode(&pts);
        let recon = rq.decode(&codes);
        for i in 0..n {
            let e: f32 = (0..d)
                .map(|j| (pts[i * d + j] - recon[i * d + j]).powi(2))
                .sum();
            assert!(
                (e - errors[i]).abs() < 1e-4,
                "row {i}: {e} vs {}",
                errors[i]
            );
        }
        let mse = errors.iter().map(|&e| e as f64).sum::<f64>() / n as f64;
        assert!((mse - per_level[3]).abs() < 1e-4);
    }
}
