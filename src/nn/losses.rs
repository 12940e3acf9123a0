//! Losses on unit rows, each small enough to check by hand.

use candle_core::{D, Tensor};

use super::params::ml;
use crate::error::Result;

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()
        .and_then(|s| s.sum_keepdim(D::Minus1))
        .and_then(|s| s.sqrt())
        .map_err(ml)?;
    x.broadcast_div(&(norm + 1e-8).map_err(ml)?).map_err(ml)
}

/// Per-item symmetric InfoNCE between paired rows of `a` and `b` (in-batch
/// negatives, temperature `tau`): item i's loss is the mean of −log p(b_i | a_i)
/// and −log p(a_i | b_i). Returns a `[batch]` tensor.
pub fn info_nce_per_item(a: &Tensor, b: &Tensor, tau: f64) -> Result<Tensor> {
    let (a, b) = (l2_normalize(a)?, l2_normalize(b)?);
    let logits = a
        .matmul(&b.t().map_err(ml)?)
        .and_then(|l| l / tau)
        .map_err(ml)?;
    let n = logits.dim(0).map_err(ml)?;
    let own = Tensor::arange(0u32, n as u32, logits.device())
        .and_then(|t| t.unsqueeze(1))
        .map_err(ml)?;
    let diag = |l: &Tensor| -> Result<Tensor> {
        let lsm = candle_nn::ops::log_softmax(l, D::Minus1).map_err(ml)?;
        lsm.gather(&own, 1).and_then(|t| t.squeeze(1)).map_err(ml)
    };
    let rows = diag(&logits)?;
    let cols = diag(&logits.t().map_err(ml)?)?;
    ((rows + cols).map_err(ml)? * -0.5).map_err(ml)
}

/// Batch-mean symmetric InfoNCE.
pub fn info_nce(a: &Tensor, b: &Tensor, tau: f64) -> Result<Tensor> {
    info_nce_per_item(a, b, tau)?.mean_all().map_err(ml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn info_nce_identical_vs_orthogonal_pairs() {
        let dev = Device::Cpu;
        let eye = Tensor::eye(4, candle_core::DType::F32, &dev).unwrap();
        // Identical pairs, orthogonal negatives: the loss is log(1 + 3·e^(−1/τ)).
        let tau = 0.07;
        let got = info_nce(&eye, &eye, tau)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let want = (1.0 + 3.0 * (-1.0f64 / tau).exp()).ln() as f32;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Every pair orthogonal, all logits equal: the loss is log(batch) = log 4.
        let a = Tensor::new(&[[1f32, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], &dev).unwrap();
        let b = Tensor::new(&[[0f32, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], &dev).unwrap();
        let got = info_nce(&a, &b, tau).unwrap().to_scalar::<f32>().unwrap();
        assert!((got - 4f32.ln()).abs() < 1e-5, "{got}");
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets` (same
/// shape), as `softplus(x) − y·x` with `softplus(x) = max(x, 0) +
/// ln(1 + e^−|x|)`, which stays finite for any logit (candle's own takes
/// the log of a sigmoid that rounds to 0 or 1).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus = logits
        .abs()
        .and_then(|a| a.neg())
        .and_then(|a| a.exp())
        .and_then(|e| e + 1.0)
        .and_then(|e| e.log())
        .and_then(|l| l + logits.relu()?)
        .map_err(ml)?;
    (softplus - (logits * targets).map_err(ml)?)
        .and_then(|l| l.mean_all())
        .map_err(ml)
}
