//! Transformer pieces in candle: layer norm, multi-head attention, pre-norm
//! encoder and decoder blocks. Built from differentiable primitives only.

use candle_core::{D, Tensor, Var};

use crate::error::Result;
use crate::nn::ParamStore;
use crate::nn::params::{Linear, ml};

/// A large negative logit for masked attention.
pub(crate) const MASKED: f32 = -1e9;

/// Inverted dropout drawing its masks from its own seeded generator, so
/// training stays deterministic for a seed. Inactive until armed.
pub(crate) struct Dropout {
    p: f32,
    rng: std::sync::Mutex<Option<rand_chacha::ChaCha8Rng>>,
}

impl Dropout {
    pub(crate) fn new(p: f32) -> Self {
        Dropout {
            p,
            rng: std::sync::Mutex::new(None),
        }
    }

    /// Starts dropping (training, seeded) or stops (`None`: evaluation).
    pub(crate) fn arm(&self, seed: Option<u64>) {
        use rand::SeedableRng;
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) =
            seed.map(rand_chacha::ChaCha8Rng::seed_from_u64);
    }

    /// Zeroes each element with probability p and scales the rest by 1/(1 − p).
    pub(crate) fn apply(&self, x: Tensor) -> Result<Tensor> {
        use rand::Rng;
        let mut guard = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rng) = guard.as_mut().filter(|_| self.p > 0.0) else {
            return Ok(x);
        };
        let keep = 1.0 - self.p;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if rng.r#gen::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device()).map_err(ml)?;
        (x * mask).map_err(ml)
    }
}

/// Layer normalisation with learned gain and bias.
pub(crate) struct LayerNorm {
    gain: Var,
    bias: Var,
}

impl LayerNorm {
    pub(crate) fn new(ps: &mut ParamStore, name: &str, d: usize) -> Result<Self> {
        Ok(LayerNorm {
            gain: ps.constant(&format!("{name}.gain"), &[d], 1.0)?,
            bias: ps.constant(&format!("{name}.bias"), &[d], 0.0)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1).map_err(ml)?;
        let centred = x.broadcast_sub(&mean).map_err(ml)?;
        let var = centred
            .sqr()
            .and_then(|v| v.mean_keepdim(D::Minus1))
            .map_err(ml)?;
        centred
            .broadcast_div(&(var + 1e-5).and_then(|v| v.sqrt()).map_err(ml)?)
            .and_then(|n| n.broadcast_mul(self.gain.as_tensor()))
            .and_then(|n| n.broadcast_add(self.bias.as_tensor()))
            .map_err(ml)
    }
}

/// Multi-head attention with separate query, key, value and output maps.
pub(crate) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
}

impl Attention {
    pub(crate) fn new(ps: &mut ParamStore, name: &str, d: usize, heads: usize) -> Result<Self> {
        Ok(Attention {
            q: Linear::new(ps, &format!("{name}.q"), d, d)?,
            k: Linear::new(ps, &format!("{name}.k"), d, d)?,
            v: Linear::new(ps, &format!("{name}.v"), d, d)?,
            o: Linear::new(ps, &format!("{name}.o"), d, d)?,
            heads,
        })
    }

    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3().map_err(ml)?;
        x.reshape((b, t, self.heads, d / self.heads))
            .and_then(|x| x.transpose(1, 2))
            .and_then(|x| x.contiguous())
            .map_err(ml)
    }

    /// `query` `[B, Tq, d]` attends over `keys` `[B, Tk, d]`; `mask` is added
    /// to the scores and broadcasts to `[B, heads, Tq, Tk]`.
    pub(crate) fn forward(
        &self,
        query: &Tensor,
        keys: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (k, v) = self.project(keys)?;
        self.attend(query, &k, &v, mask)
    }

    /// Keys and values of `keys` `[B, Tk, d]`, each `[B, heads, Tk, d / heads]`.
    pub(crate) fn project(&self, keys: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.k.forward(keys)?)?,
            self.split(&self.v.forward(keys)?)?,
        ))
    }

    /// `query` `[B, Tq, d]` attends over keys and values from [`Attention::project`].
    pub(crate) fn attend(
        &self,
        query: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, tq, d) = query.dims3().map_err(ml)?;
        let q = self.split(&self.q.forward(query)?)?;
        let scale = 1.0 / ((d / self.heads) as f64).sqrt();
        let mut scores = q
            .matmul(&k.transpose(2, 3).and_then(|k| k.contiguous()).map_err(ml)?)
            .and_then(|s| s * scale)
            .map_err(ml)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m).map_err(ml)?;
        }
        let weights = candle_nn::ops::softmax(&scores, D::Minus1).map_err(ml)?;
        let out = weights
            .matmul(v)
            .and_then(|o| o.transpose(1, 2))
            .and_then(|o| o.contiguous())
            .and_then(|o| o.reshape((b, tq, d)))
            .map_err(ml)?;
        self.o.forward(&out)
    }
}

/// Position-wise feed-forward: `d → ff → d` with ReLU.
pub(crate) struct FeedForward {
    up: Linear,
    down: Linear,
}

impl FeedForward {
    pub(crate) fn new(ps: &mut ParamStore, name: &str, d: usize, ff: usize) -> Result<Self> {
        Ok(FeedForward {
            up: Linear::new(ps, &format!("{name}.up"), d, ff)?,
            down: Linear::new(ps, &format!("{name}.down"), ff, d)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.down.forward(&self.up.forward(x)?.relu().map_err(ml)?)
    }
}

/// A pre-norm residual sublayer: `x + dropout(f(norm(x)))`.
fn residual(
    x: &Tensor,
    norm: &LayerNorm,
    drop: &Dropout,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let h = norm.forward(x)?;
    (x + drop.apply(f(&h)?)?).map_err(ml)
}

/// Widths shared by every transformer block: model width, heads, feed-forward.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockDims {
    pub d: usize,
    pub heads: usize,
    pub ff: usize,
}

impl BlockDims {
    /// The `i`-th layer norm of `block`, named `{block}.norm{i}`.
    fn norm(self, ps: &mut ParamStore, block: &str, i: usize) -> Result<LayerNorm> {
        LayerNorm::new(ps, &format!("{block}.norm{i}"), self.d)
    }

    fn attention(self, ps: &mut ParamStore, block: &str, part: &str) -> Result<Attention> {
        Attention::new(ps, &format!("{block}.{part}"), self.d, self.heads)
    }

    fn feed_forward(self, ps: &mut ParamStore, block: &str) -> Result<FeedForward> {
        FeedForward::new(ps, &format!("{block}.ff"), self.d, self.ff)
    }
}

/// Pre-norm encoder block: self-attention then feed-forward, each residual.
pub(crate) struct EncoderBlock {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    ff: FeedForward,
}

impl EncoderBlock {
    pub(crate) fn new(ps: &mut ParamStore, name: &str, dims: BlockDims) -> Result<Self> {
        Ok(EncoderBlock {
            norm1: dims.norm(ps, name, 1)?,
            attn: dims.attention(ps, name, "attn")?,
            norm2: dims.norm(ps, name, 2)?,
            ff: dims.feed_forward(ps, name)?,
        })
    }

    pub(crate) fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        drop: &Dropout,
    ) -> Result<Tensor> {
        let x = residual(x, &self.norm1, drop, |h| self.attn.forward(h, h, mask))?;
        residual(&x, &self.norm2, drop, |h| self.ff.forward(h))
    }
}

/// Pre-norm decoder block: causal self-attention, cross-attention to the
/// encoder's memory, feed-forward.
pub(crate) struct DecoderBlock {
    norm1: LayerNorm,
    own: Attention,
    norm2: LayerNorm,
    cross: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl DecoderBlock {
    pub(crate) fn new(ps: &mut ParamStore, name: &str, dims: BlockDims) -> Result<Self> {
        Ok(DecoderBlock {
            norm1: dims.norm(ps, name, 1)?,
            own: dims.attention(ps, name, "self")?,
            norm2: dims.norm(ps, name, 2)?,
            cross: dims.attention(ps, name, "cross")?,
            norm3: dims.norm(ps, name, 3)?,
            ff: dims.feed_forward(ps, name)?,
        })
    }

    /// `y` is `[B, len, d]`; `memory` is `[B / group, T, d]`: each memory
    /// row serves `group` consecutive rows of `y` (the beams of one user), so
    /// cross-attention runs on `[B / group, group · len, d]` queries and the
    /// memory is never copied per beam.
    pub(crate) fn forward(
        &self,
        y: &Tensor,
        causal: &Tensor,
        memory: &Tensor,
        memory_mask: Option<&Tensor>,
        group: usize,
        drop: &Dropout,
    ) -> Result<Tensor> {
        let y = residual(y, &self.norm1, drop, |h| {
            self.own.forward(h, h, Some(causal))
        })?;
        let (k, v) = self.cross.project(memory)?;
        self.cross_and_ff(&y, (&k, &v), memory_mask, group, drop)
    }

    /// One new position per row, with this block's self-attention keys and
    /// values of the earlier positions in `own` (extended here) and the
    /// cross-attention keys and values of the memory in `memory_kv`.
    pub(crate) fn step(
        &self,
        y: &Tensor,
        own: &mut Option<(Tensor, Tensor)>,
        memory_kv: &(Tensor, Tensor),
        memory_mask: Option<&Tensor>,
        group: usize,
        drop: &Dropout,
    ) -> Result<Tensor> {
        let y = residual(y, &self.norm1, drop, |h| {
            let (k, v) = self.own.project(h)?;
            let (k, v) = match own.take() {
                Some((pk, pv)) => (
                    Tensor::cat(&[&pk, &k], 2).map_err(ml)?,
                    Tensor::cat(&[&pv, &v], 2).map_err(ml)?,
                ),
                None => (k, v),
            };
            let out = self.own.attend(h, &k, &v, None);
            *own = Some((k, v));
            out
        })?;
        self.cross_and_ff(&y, (&memory_kv.0, &memory_kv.1), memory_mask, group, drop)
    }

    /// The block after self-attention: cross-attention over the memory's
    /// keys and values (each memory row serving `group` rows of `y`), then
    /// the feed-forward, each residual.
    fn cross_and_ff(
        &self,
        y: &Tensor,
        (k, v): (&Tensor, &Tensor),
        memory_mask: Option<&Tensor>,
        group: usize,
        drop: &Dropout,
    ) -> Result<Tensor> {
        let (b, len, d) = y.dims3().map_err(ml)?;
        let y = residual(y, &self.norm2, drop, |h| {
            let h = h.reshape((b / group, group * len, d)).map_err(ml)?;
            self.cross
                .attend(&h, k, v, memory_mask)?
                .reshape((b, len, d))
                .map_err(ml)
        })?;
        residual(&y, &self.norm3, drop, |h| self.ff.forward(h))
    }

    /// Cross-attention keys and values of `memory` (once per decode).
    pub(crate) fn memory_kv(&self, memory: &Tensor) -> Result<(Tensor, Tensor)> {
        self.cross.project(memory)
    }
}

#[cfg(test)]
mod dropout_tests {
    use super::*;

    #[test]
    fn dropout_is_identity_unarmed_and_seeded_when_armed() {
        let x = Tensor::ones(
            (100, 100),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let d = Dropout::new(0.25);
        let same: Vec<f32> = d
            .apply(x.clone())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(same.iter().all(|&v| v == 1.0));
        let run = |seed| -> Vec<f32> {
            d.arm(Some(seed));
            d.apply(x.clone())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same mask");
        assert_ne!(a, run(8));
        let zeros = a.iter().filter(|&&v| v == 0.0).count();
        assert!((2200..2800).contains(&zeros), "{zeros} of 10000 dropped");
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        assert!(
            (mean - 1.0).abs() < 0.05,
            "inverted scaling keeps the mean: {mean}"
        );
        d.arm(None);
        assert_eq!(
            d.apply(x.clone())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            same
        );
    }
}
