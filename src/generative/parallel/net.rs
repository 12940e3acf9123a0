//! The parallel retriever's network (RPG-style): a causal transformer over
//! the user's items, each item the sum of its SID tokens' embeddings over
//! √positions (so an item's input keeps one embedding's scale however long
//! its SID: with RPG's plain mean, 32 independent tokens start √32 ≈ 5.7× weaker than the
//! position embedding they are added to), and
//! one head per semantic position that scores every token of that position
//! at once by temperature-scaled cosine similarity to the same (tied) token
//! embeddings.

use candle_core::{D, Device, Tensor, Var};

use crate::error::Result;
use crate::generative::layers::{BlockDims, Dropout, EncoderBlock, LayerNorm, MASKED};
use crate::nn::ParamStore;
use crate::nn::losses::l2_normalize;
use crate::nn::params::{Linear, ml};

/// Sizes of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParallelShape {
    /// Semantic positions predicted (the disambiguation token is not).
    pub positions: usize,
    /// Columns per position: K tokens and the empty token.
    pub vocab: usize,
    /// Model width.
    pub d: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Items read at most.
    pub history: usize,
    /// Dropout of embeddings and sublayer outputs while training.
    pub dropout: f32,
    /// Softmax temperature of the cosine logits.
    pub temperature: f64,
}

/// The network and its parameters.
pub struct ParallelNet {
    shape: ParallelShape,
    tokens: Var,
    position: Var,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
    heads: Vec<Linear>,
    params: ParamStore,
    dropout: Dropout,
}

impl ParallelNet {
    /// A freshly initialised network.
    pub fn new(shape: ParallelShape, mut params: ParamStore) -> Result<ParallelNet> {
        let d = shape.d;
        let emb = 1.0 / (d as f32).sqrt();
        let tokens = params.uniform("token_embedding", &[shape.positions * shape.vocab, d], emb)?;
        let position = params.uniform("position", &[shape.history, d], emb)?;
        let dims = BlockDims {
            d,
            heads: shape.heads,
            ff: shape.ff,
        };
        let blocks = (0..shape.layers)
            .map(|i| EncoderBlock::new(&mut params, &format!("block.{i}"), dims))
            .collect::<Result<_>>()?;
        let norm = LayerNorm::new(&mut params, "norm", d)?;
        let heads = (0..shape.positions)
            .map(|p| Linear::new(&mut params, &format!("head.{p}"), d, d))
            .collect::<Result<_>>()?;
        Ok(ParallelNet {
            shape,
            tokens,
            position,
            blocks,
            norm,
            heads,
            params,
            dropout: Dropout::new(shape.dropout),
        })
    }

    /// Its sizes.
    pub fn shape(&self) -> &ParallelShape {
        &self.shape
    }

    /// Its parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Arms dropout for training with `seed`, or disarms it (`None`).
    pub fn set_training(&self, seed: Option<u64>) {
        self.dropout.arm(seed);
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Hidden states `[batch, len, d]` of `batch` item sequences of `len`
    /// items each; `columns` holds `batch × len × positions` mask columns
    /// (the items' semantic tokens). Position `t` sees items `0..=t` only.
    pub fn states(&self, columns: &[u32], batch: usize, len: usize) -> Result<Tensor> {
        let (p, v, d) = (self.shape.positions, self.shape.vocab, self.shape.d);
        let ids: Vec<u32> = columns
            .iter()
            .enumerate()
            .map(|(i, &c)| ((i % p) * v) as u32 + c)
            .collect();
        let idx = Tensor::from_vec(ids, columns.len(), self.device()).map_err(ml)?;
        let items = self
            .tokens
            .as_tensor()
            .index_select(&idx, 0)
            .and_then(|e| e.reshape((batch, len, p, d)))
            .and_then(|e| e.sum(2))
            .and_then(|e| e / (p as f64).sqrt())
            .map_err(ml)?;
        let start = self.shape.history - len;
        let positions = self
            .position
            .as_tensor()
            .narrow(0, start, len)
            .map_err(ml)?;
        let mut x = self
            .dropout
            .apply(items.broadcast_add(&positions).map_err(ml)?)?;
        let causal: Vec<f32> = (0..len * len)
            .map(|i| if i % len > i / len { MASKED } else { 0.0 })
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, len, len), self.device()).map_err(ml)?;
        for block in &self.blocks {
            x = block.forward(&x, Some(&causal), &self.dropout)?;
        }
        self.norm.forward(&x)
    }

    /// Logits `[rows, vocab]` of position `p` for hidden states `[rows, d]`:
    /// `cos(h + W_p h, e_{p,c}) / τ` for every column `c`.
    pub fn logits(&self, h: &Tensor, p: usize) -> Result<Tensor> {
        let v = self.shape.vocab;
        let q = (h + self.heads[p].forward(h)?.gelu().map_err(ml)?).map_err(ml)?;
        let table = self.tokens.as_tensor().narrow(0, p * v, v).map_err(ml)?;
        l2_normalize(&q)?
            .matmul(&l2_normalize(&table)?.t().map_err(ml)?)
            .and_then(|s| s / self.shape.temperature)
            .map_err(ml)
    }

    /// Log-probabilities `[rows, positions × vocab]` (each position's own
    /// softmax), ready for [`crate::decode::PositionScores`].
    pub fn log_probs(&self, h: &Tensor) -> Result<Tensor> {
        let parts = (0..self.shape.positions)
            .map(|p| candle_nn::ops::log_softmax(&self.logits(h, p)?, D::Minus1).map_err(ml))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 1).map_err(ml)
    }
}
