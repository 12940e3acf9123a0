//! Dense layers over fixed weights in plain Rust, for inference paths
//! where candle's per-operation cost dominates (one request's forward
//! pass) or where batches are cut small to run on every core (encoding).
//! Each product runs on the calling thread: a few rows as dot products
//! against the weight's rows ([`super::gemv`]), many as one `gemm` call.

use super::ParamStore;
use super::gemv::x_wt;
use crate::error::Result;
use crate::kmeans::{View, matmul_serial};

/// From this many rows on a layer is one `gemm`, whose repacking of the
/// weight then pays for itself; below it the product is dot products in
/// tiles ([`x_wt`]). Measured once on a transformer block's shapes (d =
/// 128, feed-forward 512; a training run sharing the cores), the dots'
/// time over gemm's: 0.08–0.48 at 8 rows; at 32–64 rows 1.0–1.44 for
/// 128-wide inputs and 0.27–0.43 for 512-wide ones (the feed-forward's
/// second layer); from 96 rows 1.2–2.2 for 128-wide inputs.
const GEMM_ROWS: usize = 64;

/// A dense layer's weight (`out × in`, row-major) and bias.
pub(crate) struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Dense {
    /// The `Linear` named `name` of `params`.
    pub(crate) fn load(params: &ParamStore, name: &str) -> Result<Self> {
        Ok(Dense {
            w: params.flat(&format!("{name}.weight"))?,
            b: params.flat(&format!("{name}.bias"))?,
        })
    }

    /// Output width.
    pub(crate) fn out(&self) -> usize {
        self.b.len()
    }

    /// `x Wᵀ + b` for `rows` rows of `x`.
    pub(crate) fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (fan_in, out) = (x.len() / rows.max(1), self.out());
        let mut y = if rows < GEMM_ROWS {
            let mut y = vec![0f32; rows * out];
            x_wt(x, &self.w, fan_in, &mut y);
            y
        } else {
            let w = View::new(&self.w, out, fan_in).t();
            matmul_serial(View::new(x, rows, fan_in), w, 1.0)
        };
        for row in y.chunks_mut(out.max(1)) {
            row.iter_mut().zip(&self.b).for_each(|(v, b)| *v += b);
        }
        y
    }
}

/// An `Mlp`'s layers, ReLU between them.
pub(crate) struct DenseMlp {
    layers: Vec<Dense>,
}

impl DenseMlp {
    /// The `layers`-layer `Mlp` named `name` of `params`.
    pub(crate) fn load(params: &ParamStore, name: &str, layers: usize) -> Result<Self> {
        let layers = (0..layers)
            .map(|i| Dense::load(params, &format!("{name}.{i}")))
            .collect::<Result<_>>()?;
        Ok(DenseMlp { layers })
    }

    /// Output width.
    pub(crate) fn out(&self) -> usize {
        self.layers.last().map_or(0, Dense::out)
    }

    /// Every layer applied to `rows` rows of `x`.
    pub(crate) fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (first, rest) = self.layers.split_first().expect("at least one layer");
        let mut h = first.apply(x, rows);
        for l in rest {
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            h = l.apply(&h, rows);
        }
        h
    }
}
